#include "models/epoch_cursor.h"

#include <numeric>
#include <random>
#include <utility>

namespace minivl::models {

uint64_t mix(uint64_t a, uint64_t b, uint64_t c) {
  uint64_t h = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull) * 0xBF58476D1CE4E5B9ull ^ c * 0x94D049BB133111EBull;
  h ^= h >> 31;
  h *= 0xD6E8FEB86659FD93ull;
  return h ^ (h >> 32);
}

std::vector<int64_t> EpochCursor::next(int64_t n, int64_t batch) {
  if (position >= n / batch) {
    ++epoch;
    position = 0;
  }
  if (order_epoch_ != epoch) {
    order_.resize(size_t(n));
    std::iota(order_.begin(), order_.end(), 0);
    std::mt19937_64 rng(mix(seed, uint64_t(epoch), 0x5EED));
    for (size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[size_t(rng() % i)]);  // Fisher-Yates
    order_epoch_ = epoch;
  }
  std::vector<int64_t> idx(order_.begin() + position * batch, order_.begin() + (position + 1) * batch);
  ++position;
  return idx;
}

void EpochCursor::from_json(const nlohmann::json& j) {
  epoch = j.at("epoch").get<int64_t>();
  position = j.at("position").get<int64_t>();
}

}  // namespace minivl::models
