#include "data/loader.h"

#include <algorithm>
#include <climits>
#include <numeric>

#include "core/error.h"
#include "core/ops.h"
#include "kernels/philox.h"

namespace minivl::data {
namespace {

// Stream layout of the loader's seed: shuffles at offset epoch << 40 (one word per draw), and a
// derived seed for augmentations, read from offset 2^63, so no two uses share a position.
constexpr uint64_t kShuffleShift = 40;
constexpr uint64_t kDerivedSeedOffset = uint64_t(1) << 63;

}  // namespace

Loader::Loader(std::shared_ptr<const Dataset> dataset, LoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
  MINIVL_CHECK(dataset_ != nullptr, "Loader: no dataset");
  MINIVL_CHECK(options_.batch_size > 0, "Loader: batch_size ", options_.batch_size, " must be positive");
  MINIVL_CHECK(options_.num_workers >= 0 && options_.num_workers <= 256, "Loader: num_workers ",
               options_.num_workers, " is outside 0..256");
  MINIVL_CHECK(options_.max_epochs >= 0, "Loader: max_epochs must be >= 0");
  MINIVL_CHECK(options_.preprocess.image_size > 0, "Loader: image size must be positive");
  const int64_t n = dataset_->size();
  MINIVL_CHECK(n > 0, "Loader: the dataset is empty");
  batches_per_epoch_ = options_.drop_last ? n / options_.batch_size : (n + options_.batch_size - 1) / options_.batch_size;
  MINIVL_CHECK(batches_per_epoch_ > 0, "Loader: ", n, " samples make no full batch of ", options_.batch_size,
               " (set drop_last = false or a smaller batch)");
  end_ = options_.max_epochs > 0 ? options_.max_epochs * batches_per_epoch_ : INT64_MAX;
  if (options_.prefetch_batches <= 0) options_.prefetch_batches = std::max(2, 2 * options_.num_workers);
  augment_seed_ = uint64_t(philox_uint32(options_.seed, kDerivedSeedOffset, 0)) << 32 |
                  philox_uint32(options_.seed, kDerivedSeedOffset, 1);
}

Loader::~Loader() { stop_workers(); }

std::vector<int64_t> Loader::epoch_order(int64_t epoch) const { return *order_for(epoch); }

std::shared_ptr<const std::vector<int64_t>> Loader::order_for(int64_t epoch) const {
  std::lock_guard<std::mutex> lock(order_mutex_);
  auto it = orders_.find(epoch);
  if (it != orders_.end()) return it->second;
  const int64_t n = dataset_->size();
  auto order = std::make_shared<std::vector<int64_t>>(n);
  std::iota(order->begin(), order->end(), 0);
  if (options_.shuffle) {
    // Fisher-Yates from the back: swap i with j = floor(u * (i + 1)), u from 64 random bits.
    const uint64_t offset = uint64_t(epoch) << kShuffleShift;
    for (int64_t i = n - 1, k = 0; i > 0; --i, k += 2) {
      const uint64_t u = uint64_t(philox_uint32(options_.seed, offset, k)) << 32 | philox_uint32(options_.seed, offset, k + 1);
      const int64_t j = int64_t((static_cast<unsigned __int128>(u) * uint64_t(i + 1)) >> 64);
      std::swap((*order)[i], (*order)[j]);
    }
  }
  orders_[epoch] = order;
  while (orders_.size() > 3) orders_.erase(orders_.begin());  // workers only span neighbouring epochs
  return order;
}

Batch Loader::build_batch(int64_t g) const {
  const int64_t epoch = g / batches_per_epoch_, position = g % batches_per_epoch_;
  auto order = order_for(epoch);
  const int64_t n = dataset_->size();
  const int64_t begin = position * options_.batch_size;
  const int64_t count = std::min(options_.batch_size, n - begin);
  const int r = options_.preprocess.image_size;

  Batch b;
  b.epoch = epoch;
  b.position = position;
  b.pixel_values = empty({count, 3, r, r}, DType::f32);  // (B, 3, R, R)
  float* pixels = b.pixel_values.data<float>();
  for (int64_t k = 0; k < count; ++k) {
    const int64_t index = (*order)[begin + k];
    const Image image = dataset_->image(index);
    // Augmentation draws for (epoch, index): kAugmentDraws positions of the derived seed's stream.
    const uint64_t offset = (uint64_t(epoch) * uint64_t(n) + uint64_t(index)) * kAugmentDraws;
    augment_preprocess_into(image, options_.preprocess, options_.augment, augment_seed_, offset,
                            pixels + size_t(k) * 3 * r * r);
    SampleInfo info = dataset_->info(index, epoch);
    if (options_.tokenize) b.token_ids.push_back(options_.tokenize(info.text));
    b.indices.push_back(index);
    b.texts.push_back(std::move(info.text));
    b.labels.push_back(info.label);
    b.image_ids.push_back(info.image_id);
    b.answers.push_back(std::move(info.answer));
    b.answer_lists.push_back(std::move(info.answers));
  }
  if (options_.tokenize) {
    size_t t = 0;
    for (const auto& row : b.token_ids) t = std::max(t, row.size());
    std::vector<int64_t> ids(size_t(count) * t, options_.pad_id);
    for (int64_t k = 0; k < count; ++k) std::copy(b.token_ids[k].begin(), b.token_ids[k].end(), ids.begin() + k * t);
    b.input_ids = from_vector_i64(ids, {count, int64_t(t)});  // (B, T)
  }
  return b;
}

void Loader::worker_loop() {
  for (;;) {
    int64_t g;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_cv_.wait(lock, [&] {
        return stop_ || (next_claim_ < end_ && next_claim_ < cursor_ + options_.prefetch_batches);
      });
      if (stop_) return;
      g = next_claim_++;
    }
    Slot slot;
    try {
      slot.batch = build_batch(g);
    } catch (...) {
      slot.error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ready_[g] = std::move(slot);
    }
    ready_cv_.notify_all();
  }
}

void Loader::start_workers() {
  std::lock_guard<std::mutex> lock(mutex_);
  stop_ = false;
  next_claim_ = cursor_;
  for (int i = 0; i < options_.num_workers; ++i) workers_.emplace_back([this] { worker_loop(); });
}

void Loader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  ready_.clear();
}

std::optional<Batch> Loader::next() {
  int64_t g;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    g = cursor_;
  }
  if (g >= end_) return std::nullopt;
  if (options_.num_workers == 0) {
    Batch b = build_batch(g);
    std::lock_guard<std::mutex> lock(mutex_);
    ++cursor_;
    return b;
  }
  if (workers_.empty()) start_workers();
  Slot slot;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    ready_cv_.wait(lock, [&] { return ready_.count(g) > 0; });
    auto it = ready_.find(g);
    slot = std::move(it->second);
    ready_.erase(it);
    ++cursor_;
  }
  work_cv_.notify_all();
  if (slot.error) std::rethrow_exception(slot.error);
  return std::move(slot.batch);
}

LoaderState Loader::state() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return {cursor_ / batches_per_epoch_, cursor_ % batches_per_epoch_};
}

void Loader::set_state(LoaderState state) {
  MINIVL_CHECK(state.epoch >= 0 && state.position >= 0 && state.position < batches_per_epoch_,
               "Loader::set_state: position ", state.position, " of epoch ", state.epoch, " is outside 0..",
               batches_per_epoch_ - 1, " (batches per epoch with this data set and batch size)");
  stop_workers();
  std::lock_guard<std::mutex> lock(mutex_);
  cursor_ = state.epoch * batches_per_epoch_ + state.position;
}

}  // namespace minivl::data
