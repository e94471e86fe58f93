#pragma once
// The data order the in-memory trainers (clip, vqa, captioner) share. Batch p of epoch e holds
// order(e)[p B, (p + 1) B), order(e) a Fisher-Yates shuffle of 0..n-1 seeded by (seed, e); a short last
// batch is dropped. The cursor {epoch, position} is what a checkpoint keeps, so a resumed run sees
// exactly the batches it would have. (data::Loader has the same contract over Philox draws, for
// datasets read from disk while training.)
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

namespace minivl::models {

// A 64-bit hash of three words (splitmix-style finaliser): per-epoch shuffles, per-image caption draws.
uint64_t mix(uint64_t a, uint64_t b, uint64_t c);

struct EpochCursor {
  uint64_t seed = 0;
  int64_t epoch = 0, position = 0;
  // The next global batch of `batch` indices into 0..n-1 (moving to the next epoch when this one has no
  // full batch left). After it, `epoch` is the epoch the batch came from.
  std::vector<int64_t> next(int64_t n, int64_t batch);
  nlohmann::json to_json() const { return {{"epoch", epoch}, {"position", position}}; }
  void from_json(const nlohmann::json& j);

 private:
  int64_t order_epoch_ = -1;  // the epoch order_ was shuffled for
  std::vector<int64_t> order_;
};

}  // namespace minivl::models
