#pragma once
// The threaded prefetching loader: batches of preprocessed images + token ids
// (+ labels, answers), shuffled by the seeded Philox stream each epoch.
//
//   LoaderOptions o;  o.batch_size = 64;  o.num_workers = 4;  o.seed = 1;
//   o.tokenize = [&](const std::string& s) { return tok.tokenize({s})[0]; };
//   Loader loader(dataset, o);
//   while (auto batch = loader.next()) { ... batch->pixel_values ... }   // (B, 3, R, R) f32
//   ckpt["loader"] = loader.state();                                     // {epoch, position}
//
// Determinism: batch g (epoch e = g / batches_per_epoch, position p) holds
// samples order(e)[p * B, (p + 1) * B) -- order(e) a Fisher-Yates shuffle from
// (seed, e) -- and sample i of epoch e is augmented from Philox positions
// derived from (seed, e, i) alone, written to its fixed slot of the batch; the
// consumer takes batches strictly in g order. So the batches are the same for any
// number of workers, and set_state({e, p}) resumes exactly.
//
// Workers: N std::threads claim (batch, sample) jobs in order, each decoding and
// preprocessing one sample straight into its slot of the batch's pixel tensor; a
// batch is handed out when all its samples are done. Workers stop claiming while
// `prefetch_batches` batches are built or being built ahead of the consumer (a
// bounded queue: memory stays at a few batches however many workers run). With
// num_workers = 0 batches are built on the calling thread. One consumer thread.
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/tensor.h"
#include "data/dataset.h"
#include "data/preprocess.h"

namespace minivl::data {

struct LoaderOptions {
  int64_t batch_size = 32;
  bool shuffle = true;
  bool drop_last = true;       // drop the short final batch of an epoch
  uint64_t seed = 0;
  int num_workers = 0;         // 0: build batches on the calling thread
  int prefetch_batches = 0;    // batches built ahead of the consumer; 0: enough for 2 jobs per worker, at least 2
  int64_t max_epochs = 0;      // next() returns nothing after this many epochs; 0: never ends
  ClipPreprocessConfig preprocess;
  AugmentConfig augment;
  // Text -> token ids (caption / question / prompt); called from worker threads, so it must be
  // thread-safe (ClipTokenizer::tokenize is). Empty: no token ids.
  std::function<std::vector<int32_t>(const std::string&)> tokenize;
  int32_t pad_id = 0;          // pads input_ids rows to the longest
};

// The cursor of the next batch next() returns: checkpoint it, restore it with set_state.
struct LoaderState {
  int64_t epoch = 0;
  int64_t position = 0;        // batches already delivered in this epoch
  bool operator==(const LoaderState&) const = default;
};

struct Batch {
  int64_t epoch = 0, position = 0;
  Tensor pixel_values;                          // (B, 3, R, R) f32
  std::vector<std::vector<int32_t>> token_ids;  // (B) rows as the tokenizer returned them
  Tensor input_ids;                             // (B, T) i64, padded with pad_id; undefined without a tokenizer
  std::vector<std::string> texts;               // (B)
  std::vector<int64_t> labels;                  // (B) class / answer id, -1 when none
  std::vector<int64_t> image_ids;               // (B)
  std::vector<int64_t> indices;                 // (B) dataset indices
  std::vector<std::string> answers;             // (B) VQA multiple-choice answers ("" elsewhere)
  std::vector<std::vector<std::string>> answer_lists;  // (B) VQA's 10 answers
  int64_t size() const { return int64_t(indices.size()); }
};

class Loader {
 public:
  Loader(std::shared_ptr<const Dataset> dataset, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // The next batch, rolling over into the next epoch; nothing after max_epochs. Rethrows a worker's
  // error (a corrupt image, say) for the batch that hit it.
  std::optional<Batch> next();

  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  LoaderState state() const;
  void set_state(LoaderState state);  // stops the workers, drops prefetched batches, resumes there

  // Dataset indices in epoch order (the identity without shuffle).
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  // The batch at global number g = epoch * batches_per_epoch + position, built on this thread.
  Batch build_batch(int64_t g) const;

 private:
  struct Pending {
    Batch batch;
    int64_t remaining = 0;     // samples not yet done
    std::exception_ptr error;  // the first sample error
  };
  int64_t batch_count(int64_t g) const;  // samples in batch g
  Batch allocate_batch(int64_t g) const;
  void fill_sample(Batch& batch, int64_t k) const;  // sample k of the batch: decode, augment, preprocess, tokenize
  void finish_batch(Batch& batch) const;            // input_ids from token_ids
  void start_workers();
  void stop_workers();
  void worker_loop();
  std::shared_ptr<const std::vector<int64_t>> order_for(int64_t epoch) const;

  std::shared_ptr<const Dataset> dataset_;
  LoaderOptions options_;
  int64_t batches_per_epoch_ = 0;
  int64_t end_ = 0;          // first batch number past max_epochs (INT64_MAX when endless)
  uint64_t augment_seed_ = 0;

  int64_t cursor_ = 0;       // next batch number next() returns

  // Worker pool state, guarded by mutex_.
  mutable std::mutex mutex_;
  std::condition_variable work_cv_, ready_cv_;
  std::vector<std::thread> workers_;
  std::map<int64_t, Pending> pending_;  // batch number -> batch being built or waiting
  int64_t claim_batch_ = 0, claim_sample_ = 0;  // the next job
  bool stop_ = false;

  // Shuffle orders of recent epochs.
  mutable std::mutex order_mutex_;
  mutable std::map<int64_t, std::shared_ptr<const std::vector<int64_t>>> orders_;
};

}  // namespace minivl::data
