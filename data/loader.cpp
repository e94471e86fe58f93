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
  if (options_.prefetch_batches <= 0) {
    const int64_t per_batch = std::max<int64_t>(1, std::min(options_.batch_size, n));
    options_.prefetch_batches = int(std::max<int64_t>(2, (2 * options_.num_workers + per_batch - 1) / per_batch));
  }
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

int64_t Loader::batch_count(int64_t g) const {
  const int64_t position = g % batches_per_epoch_;
  return std::min(options_.batch_size, dataset_->size() - position * options_.batch_size);
}

Batch Loader::allocate_batch(int64_t g) const {
  const int64_t count = batch_count(g);
  const int r = options_.preprocess.image_size;
  Batch b;
  b.epoch = g / batches_per_epoch_;
  b.position = g % batches_per_epoch_;
  b.pixel_values = empty({count, 3, r, r}, DType::f32);  // (B, 3, R, R)
  b.indices.resize(count);
  b.texts.resize(count);
  b.labels.resize(count, -1);
  b.image_ids.resize(count, -1);
  b.answers.resize(count);
  b.answer_lists.resize(count);
  if (options_.tokenize) b.token_ids.resize(count);
  return b;
}

void Loader::fill_sample(Batch& b, int64_t k) const {
  auto order = order_for(b.epoch);
  const int64_t n = dataset_->size();
  const int64_t index = (*order)[b.position * options_.batch_size + k];
  const int r = options_.preprocess.image_size;
  const Image image = dataset_->image(index);
  // Augmentation draws for (epoch, index): kAugmentDraws positions of the derived seed's stream.
  const uint64_t offset = (uint64_t(b.epoch) * uint64_t(n) + uint64_t(index)) * kAugmentDraws;
  augment_preprocess_into(image, options_.preprocess, options_.augment, augment_seed_, offset,
                          b.pixel_values.data<float>() + size_t(k) * 3 * r * r);
  SampleInfo info = dataset_->info(index, b.epoch);
  if (options_.tokenize) b.token_ids[k] = options_.tokenize(info.text);
  b.indices[k] = index;
  b.texts[k] = std::move(info.text);
  b.labels[k] = info.label;
  b.image_ids[k] = info.image_id;
  b.answers[k] = std::move(info.answer);
  b.answer_lists[k] = std::move(info.answers);
}

void Loader::finish_batch(Batch& b) const {
  if (!options_.tokenize) return;
  const int64_t count = b.size();
  size_t t = 0;
  for (const auto& row : b.token_ids) t = std::max(t, row.size());
  std::vector<int64_t> ids(size_t(count) * t, options_.pad_id);
  for (int64_t k = 0; k < count; ++k) std::copy(b.token_ids[k].begin(), b.token_ids[k].end(), ids.begin() + k * t);
  b.input_ids = from_vector_i64(ids, {count, int64_t(t)});  // (B, T)
}

Batch Loader::build_batch(int64_t g) const {
  Batch b = allocate_batch(g);
  for (int64_t k = 0; k < b.size(); ++k) fill_sample(b, k);
  finish_batch(b);
  return b;
}

void Loader::worker_loop() {
  for (;;) {
    Pending* job;
    int64_t k;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_cv_.wait(lock, [&] {
        return stop_ || (claim_batch_ < end_ && claim_batch_ < cursor_ + options_.prefetch_batches);
      });
      if (stop_) return;
      const int64_t g = claim_batch_;
      k = claim_sample_;
      if (k == 0) {
        Pending& p = pending_[g];
        try {
          p.batch = allocate_batch(g);
          p.remaining = p.batch.size();
        } catch (...) {  // out of memory, say: the batch fails as a whole
          p.error = std::current_exception();
          p.remaining = 0;
          ++claim_batch_;
          ready_cv_.notify_all();
          continue;
        }
      }
      job = &pending_[g];  // std::map nodes stay put while other batches come and go
      if (++claim_sample_ == job->batch.size()) ++claim_batch_, claim_sample_ = 0;
    }
    std::exception_ptr error;
    try {
      fill_sample(job->batch, k);  // its own slots only: no lock needed
    } catch (...) {
      error = std::current_exception();
    }
    bool done;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (error && !job->error) job->error = error;
      done = --job->remaining == 0;
    }
    if (done) ready_cv_.notify_all();
  }
}

void Loader::start_workers() {
  std::lock_guard<std::mutex> lock(mutex_);
  stop_ = false;
  claim_batch_ = cursor_;
  claim_sample_ = 0;
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
  pending_.clear();
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
  Pending done;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    ready_cv_.wait(lock, [&] {
      auto it = pending_.find(g);
      return it != pending_.end() && it->second.remaining == 0 && (it->second.error || claim_batch_ > g);
    });
    auto it = pending_.find(g);
    done = std::move(it->second);
    pending_.erase(it);
    ++cursor_;
  }
  work_cv_.notify_all();
  if (done.error) std::rethrow_exception(done.error);
  finish_batch(done.batch);
  return std::move(done.batch);
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
