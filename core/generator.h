#pragma once
// The host-side Philox stream: a (seed, offset) pair that hands out disjoint
// ranges of the counter-based stream in kernels/philox.h, so that every
// random op draws fresh numbers and a checkpoint can restore the position.
#include <cstdint>
#include <mutex>

#include "core/error.h"
#include "kernels/philox.h"

namespace minivl {

// A checkpointable generator position.
struct GeneratorState {
  uint64_t seed;
  uint64_t offset;
  bool operator==(const GeneratorState&) const = default;
};

// Holds (seed, offset) and hands out disjoint ranges of stream positions.
// An op drawing n numbers calls reserve(n) (or reserve_stream(n) to get the
// seed in the same atomic step) and draws elements 0..n-1 at that offset on
// whatever device. Thread-safe.
class Generator {
 public:
  static constexpr uint64_t kDefaultSeed = 0x6d696e69766cull;   // "minivl"

  explicit Generator(uint64_t seed = kDefaultSeed) : seed_(seed) {}
  Generator(const Generator& other) { set_state(other.state()); }
  Generator& operator=(const Generator& other) {
    if (this != &other) set_state(other.state());
    return *this;
  }

  // Restarts the stream: seed = SEED, offset = 0.
  void manual_seed(uint64_t seed) { set_state({seed, 0}); }

  // Start of n fresh positions; advances the offset by n.
  uint64_t reserve(uint64_t n) { return reserve_stream(n).offset; }

  // The seed and start offset of n fresh positions, read together.
  GeneratorState reserve_stream(uint64_t n) {
    std::lock_guard<std::mutex> lock(mutex_);
    MINIVL_CHECK(n <= UINT64_MAX - offset_, "Generator::reserve: ", n,
                 " positions past offset ", offset_, " overflow the 2^64-position stream");
    GeneratorState s{seed_, offset_};
    offset_ += n;
    return s;
  }

  uint64_t seed() const { return state().seed; }
  uint64_t offset() const { return state().offset; }

  GeneratorState state() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return {seed_, offset_};
  }
  void set_state(GeneratorState s) {
    std::lock_guard<std::mutex> lock(mutex_);
    seed_ = s.seed;
    offset_ = s.offset;
  }

 private:
  mutable std::mutex mutex_;
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// The process-wide generator (seed Generator::kDefaultSeed until manual_seed).
inline Generator& default_generator() {
  static Generator generator;
  return generator;
}

}  // namespace minivl

