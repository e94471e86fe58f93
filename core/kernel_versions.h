#pragma once
// The registry of numbered kernel versions. Every kernel family with more than one version (the
// CUDA attention, contrastive losses, layernorm and AdamW; the CPU f32 GEMM ladder) lists each
// version once: its number and name, what it takes (a predicate over the dtype and one size, with
// the same in words), a note, and how it was verified (a CUDA version: its parity on a GPU; a CPU
// version: its tests). The registry answers one question for the kernel table: which version
// runs a call.
//
//   - MINIVL_<FAMILY>_VERSION=N (read once, with the table) or set_override(N) runs version N
//     wherever it takes the call; calls it does not take run the default.
//   - Otherwise the default runs: the newest verified version that takes the call.
//   - A candidate (verified empty: not yet run on a GPU) is never a default; it runs only when
//     asked for by number, which is how its parity is first checked on a GPU.
//
// The versions are registered by the backend that owns them (core/register_cuda.cpp,
// core/register_cpu.cpp); the slots there ask choose() on every call, `minivl ops --versions` prints describe(), and the benchmarks
// enumerate versions() rather than listing numbers by hand. The kernels themselves (kernels/)
// know nothing of this: they take a version number and run it.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace minivl {

// What a call asks of a version: the dtype and the one size a family's kernels specialise on
// (attention: the head dim D; layernorm: the row length C; contrastive: the feature dim d).
struct VersionQuery {
  DType dtype = DType::f32;
  int64_t size = 0;
};

struct KernelVersion {
  int number = 0;
  std::string name;                                   // "tiled SIMT"
  std::function<bool(const VersionQuery&)> supports;  // whether it takes a call
  std::string takes;                                  // supports, in words: "f32, bf16, f16; D <= 128"
  std::string note;                                   // the algorithm, and run-time fallbacks
  std::string verified;  // "parity passed on H200 and H100, 2026-11-27"; empty: a candidate (CUDA only)
  bool candidate() const { return verified.empty(); }
  std::string status() const;  // `verified`, or "candidate: not yet run on a GPU"
};

// A class of calls that shares one default, named for the listing and the tests: a label and a
// size inside the class ("D in {32, 64, 128}", 64).
struct ShapeClass {
  std::string label;
  int64_t size = 0;
};

class KernelVersionFamily {
 public:
  // size_name names VersionQuery::size in messages ("head dim D"); classes cover the sizes.
  KernelVersionFamily(std::string name, std::string backend, std::string size_name, std::vector<DType> dtypes,
                      std::vector<ShapeClass> classes);

  const std::string& name() const { return name_; }
  const std::string& backend() const { return backend_; }
  const std::string& size_name() const { return size_name_; }
  const std::vector<DType>& dtypes() const { return dtypes_; }
  const std::vector<ShapeClass>& classes() const { return classes_; }
  std::string env_var() const;  // MINIVL_<NAME>_VERSION

  void add(KernelVersion version);  // throws on a duplicate number, a missing predicate or name
  const std::vector<KernelVersion>& versions() const { return versions_; }  // ascending numbers
  std::vector<int> numbers() const;                                         // ascending: what a benchmark enumerates
  const KernelVersion* find(int number) const;
  bool takes(int number, const VersionQuery& q) const;

  int default_version(const VersionQuery& q) const;  // 0 when no verified version takes q
  int choose(const VersionQuery& q) const;           // the override where it takes q, else the default
  // 0 clears. Throws, naming the allowed numbers, for a number that is not registered.
  void set_override(int number);
  int override_version() const { return override_.load(); }
  // An environment value: null or empty clears; anything but a registered number throws, naming
  // the variable and the allowed numbers.
  void read_override(const char* value);

 private:
  std::string allowed() const;  // "1, 2, 3, 4 (4: candidate)"

  std::string name_, backend_, size_name_;
  std::vector<DType> dtypes_;
  std::vector<ShapeClass> classes_;
  std::vector<KernelVersion> versions_;
  std::atomic<int> override_{0};
};

// Sets a family's override for one scope and restores the one before (a benchmark row, a parity
// test that forces a candidate), also when the scope ends with an exception.
class ScopedVersionOverride {
 public:
  ScopedVersionOverride(KernelVersionFamily& family, int number)
      : family_(family), previous_(family.override_version()) {
    family_.set_override(number);
  }
  ~ScopedVersionOverride() { family_.set_override(previous_); }
  ScopedVersionOverride(const ScopedVersionOverride&) = delete;
  ScopedVersionOverride& operator=(const ScopedVersionOverride&) = delete;

 private:
  KernelVersionFamily& family_;
  int previous_;
};

class KernelVersionRegistry {
 public:
  KernelVersionFamily& add_family(std::string name, std::string backend, std::string size_name,
                                  std::vector<ShapeClass> classes,
                                  std::vector<DType> dtypes = {DType::f32, DType::f64, DType::bf16, DType::f16});
  const std::vector<std::unique_ptr<KernelVersionFamily>>& families() const { return families_; }
  const KernelVersionFamily* find_family(const std::string& name) const;
  KernelVersionFamily& family(const std::string& name);  // throws naming the families
  const KernelVersionFamily& family(const std::string& name) const;
  // Every family's MINIVL_<FAMILY>_VERSION.
  void read_environment();
  // The `minivl ops --versions` text: each family, each version with its status, and the default
  // for each dtype and shape class with the reason.
  std::string describe() const;

 private:
  std::vector<std::unique_ptr<KernelVersionFamily>> families_;
};

// The process's registry: on first use the backends register their versions and every
// MINIVL_<FAMILY>_VERSION is read (a bad value throws then, and again on the next use). The kernel
// table (core/dispatch.cpp) asks for it first, so a bad value fails the first op.
KernelVersionRegistry& kernel_versions();

// The backends' versions: the CPU's (core/register_cpu.cpp) and the CUDA backend's
// (core/register_cuda.cpp; no-op without CUDA).
void register_cpu_kernel_versions(KernelVersionRegistry& versions);
void register_cuda_kernel_versions(KernelVersionRegistry& versions);

}  // namespace minivl
