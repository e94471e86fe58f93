// The kernel version registry (core/kernel_versions.h): every CUDA family with several versions is
// registered and agrees with the kernels' own version switches, each dtype and shape class has
// exactly one default and it is a verified version, the defaults are the versions the CUDA slots
// ran before the registry, a candidate (attention v4, contrastive v3) is never a default,
// MINIVL_<FAMILY>_VERSION picks a version and rejects anything else by name, the CPU GEMM ladder's
// override reaches the matmul op, and `minivl ops --versions` prints every version.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/kernel_versions.h"
#include "core/ops.h"
#include "kernels/cpu/gemm_cpu.h"
#include "kernels/cpu/gemm_ladder_cpu.h"

#if MINIVL_CUDA
#include "kernels/cuda/adamw.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/fused.h"
#endif

using namespace minivl;

namespace {

const std::vector<DType> kFloating = {DType::f32, DType::f64, DType::bf16, DType::f16};

// A family of the test's own: v1 takes everything floating, v2 f32 with an even size, v3 (a
// candidate) everything.
KernelVersionRegistry toy_registry() {
  KernelVersionRegistry r;
  KernelVersionFamily& f = r.add_family("toyfam", "cuda", "size n", {{"even n", 4}, {"odd n", 5}});
  f.add({1, "plain", [](const VersionQuery&) { return true; }, "any", "", "parity passed on H100, 2026-11-27"});
  f.add({2, "even", [](const VersionQuery& q) { return q.dtype == DType::f32 && q.size % 2 == 0; }, "f32, even n",
         "", "parity passed on H100, 2026-11-27"});
  f.add({3, "new", [](const VersionQuery&) { return true; }, "any", "", ""});
  return r;
}

// Sets an environment variable for one scope.
struct ScopedEnv {
  std::string name;
  ScopedEnv(std::string n, const char* value) : name(std::move(n)) { setenv(name.c_str(), value, 1); }
  ~ScopedEnv() { unsetenv(name.c_str()); }
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The CLI's exit status and its stdout and stderr, run with `env` assignments before it.
struct CliResult {
  int status = 0;
  std::string output;
};
CliResult run_cli(const std::string& env, const std::string& args) {
  CliResult r;
  FILE* pipe = popen((env + " " + MINIVL_CLI_PATH + " " + args + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string chunk(4096, '\0');
  for (size_t n; (n = std::fread(chunk.data(), 1, chunk.size(), pipe)) > 0;) r.output.append(chunk, 0, n);
  r.status = pclose(pipe);
  return r;
}

// One run of `minivl ops --versions` with an environment assignment: whether it succeeds, and what
// its output must say.
struct VersionsCliCase {
  std::string env;
  bool succeeds;
  std::vector<std::string> says;
};

void check_versions_cli(const std::vector<VersionsCliCase>& cases) {
  for (const VersionsCliCase& c : cases) {
    CAPTURE(c.env);
    const CliResult r = run_cli(c.env, "ops --versions");
    CHECK((r.status == 0) == c.succeeds);
    for (const std::string& part : c.says) CHECK(r.output.find(part) != std::string::npos);
  }
}

}  // namespace

TEST_SUITE("kernel_versions") {
  TEST_CASE("kernel_versions: each dtype and shape class has exactly one default, a verified version") {
    for (const auto& f : kernel_versions().families()) {
      for (DType dt : f->dtypes()) {
        for (const ShapeClass& c : f->classes()) {
          INFO(f->name() << " " << dtype_name(dt) << " " << c.label);
          std::vector<int> defaults;
          for (const KernelVersion& v : f->versions())
            if (f->default_version({dt, c.size}) == v.number) defaults.push_back(v.number);
          REQUIRE(defaults.size() == 1);
          const KernelVersion* v = f->find(defaults[0]);
          CHECK_FALSE(v->candidate());
          CHECK(v->supports({dt, c.size}));
          for (const KernelVersion& newer : f->versions())  // the newest verified version that takes it
            if (newer.number > v->number && !newer.candidate()) CHECK_FALSE(newer.supports({dt, c.size}));
        }
      }
    }
  }

  TEST_CASE("kernel_versions: a candidate is never the default, and runs only when asked for") {
    KernelVersionRegistry r = toy_registry();
    KernelVersionFamily& f = r.family("toyfam");
    CHECK(f.find(3)->candidate());
    CHECK(f.default_version({DType::f32, 4}) == 2);
    CHECK(f.default_version({DType::f32, 5}) == 1);
    CHECK(f.default_version({DType::bf16, 4}) == 1);
    f.set_override(3);
    CHECK(f.choose({DType::bf16, 4}) == 3);
    f.set_override(2);
    CHECK(f.choose({DType::f32, 4}) == 2);
    CHECK(f.choose({DType::f32, 5}) == 1);  // v2 does not take odd n: the default runs
    f.set_override(0);
    CHECK(f.choose({DType::f32, 4}) == 2);
    const std::string text = r.describe();
    CHECK(text.find("candidate: not yet run on a GPU") != std::string::npos);
    CHECK(text.find("never: a candidate is not a default") != std::string::npos);
  }

  TEST_CASE("kernel_versions: the environment variable picks a version and rejects anything else by name") {
    KernelVersionRegistry r = toy_registry();
    KernelVersionFamily& f = r.family("toyfam");
    CHECK(f.env_var() == "MINIVL_TOYFAM_VERSION");
    {
      ScopedEnv env("MINIVL_TOYFAM_VERSION", "3");
      r.read_environment();
      CHECK(f.override_version() == 3);
      CHECK(f.choose({DType::f64, 5}) == 3);
    }
    r.read_environment();  // unset: the default again
    CHECK(f.override_version() == 0);
    for (const char* bad : {"7", "0", "two", "-1", "2x", "99999"}) {
      INFO(bad);
      ScopedEnv env("MINIVL_TOYFAM_VERSION", bad);
      const std::string msg = error_of([&] { r.read_environment(); });
      CHECK(msg.find("MINIVL_TOYFAM_VERSION='" + std::string(bad) + "'") != std::string::npos);
      CHECK(msg.find("1, 2, 3 (3: candidate)") != std::string::npos);
    }
    const std::string msg = error_of([&] { f.set_override(4); });
    CHECK(msg.find("toyfam") != std::string::npos);
    CHECK(msg.find("1, 2, 3") != std::string::npos);
  }

  TEST_CASE("kernel_versions: a call no version takes fails naming the family and the call") {
    KernelVersionRegistry r;
    KernelVersionFamily& f = r.add_family("onlyf32", "cuda", "size n", {{"any n", 1}}, {DType::f32});
    f.add({1, "f32", [](const VersionQuery& q) { return q.dtype == DType::f32; }, "f32", "", "checked"});
    const std::string msg = error_of([&] { f.choose({DType::i64, 3}); });
    CHECK(msg.find("onlyf32") != std::string::npos);
    CHECK(msg.find("i64") != std::string::npos);
    CHECK(msg.find("size n = 3") != std::string::npos);
    CHECK(error_of([&] { f.add({1, "again", f.find(1)->supports, "", "", ""}); }).find("twice") != std::string::npos);
    CHECK(error_of([&] { r.family("nosuch"); }).find("onlyf32") != std::string::npos);
  }

  TEST_CASE("kernel_versions: the CPU GEMM ladder is a family whose default is v4, gemm_f32") {
    const KernelVersionFamily& f = kernel_versions().family("gemm");
    CHECK(f.backend() == "cpu");
    CHECK(f.env_var() == "MINIVL_GEMM_VERSION");
    CHECK(f.numbers() == std::vector<int>{1, 2, 3, 4});
    for (const KernelVersion& v : f.versions()) {
      CHECK_FALSE(v.candidate());
      CHECK(v.supports({DType::f32, 7}));
      CHECK_FALSE(v.supports({DType::f64, 7}));
    }
    CHECK(f.default_version({DType::f32, 1}) == 4);
    CHECK(f.default_version({DType::f32, 4096}) == 4);
  }

  TEST_CASE("kernel_versions: MINIVL_GEMM_VERSION's override runs that rung of the ladder in the f32 matmul") {
    // K = 1300 spans three of v4's KC = 512 slices: v4 sums each slice in registers from zero and
    // adds it to C, v1 sums one dot product per output, so the two round differently even where no
    // SIMD or FMA is compiled in (the sanitizer builds). Each result is checked bit for bit against
    // its own kernel called directly.
    const int64_t M = 37, N = 29, K = 1300;
    Tensor a = randn({M, K}, DType::f32), b = randn({K, N}, DType::f32);
    const std::vector<double> av = a.to_vector(), bv = b.to_vector();
    std::vector<float> af(av.begin(), av.end()), bf(bv.begin(), bv.end());
    auto direct = [&](cpu::GemmF32Function gemm) {
      std::vector<float> c(size_t(M * N), 0.0f);
      gemm(1, M, N, K, 1.0f, af.data(), K, 1, nullptr, bf.data(), N, 1, nullptr, 0.0f, c.data(), N, 1, nullptr);
      return std::vector<double>(c.begin(), c.end());
    };
    const std::vector<double> v1 = direct(cpu::gemm_f32_v1_naive), v4 = direct(cpu::gemm_f32);
    REQUIRE(v1 != v4);  // otherwise the test could not tell the two apart
    KernelVersionFamily& f = kernel_versions().family("gemm");
    ScopedVersionOverride none(f, 0);  // whatever MINIVL_GEMM_VERSION says
    CHECK(matmul(a, b).to_vector() == v4);
    {
      ScopedVersionOverride naive(f, 1);
      CHECK(matmul(a, b).to_vector() == v1);
    }
    CHECK(f.override_version() == 0);
    CHECK(matmul(a, b).to_vector() == v4);
    CHECK(error_of([&] { ScopedVersionOverride bad(f, 5); }).find("1, 2, 3, 4") != std::string::npos);
  }

#if MINIVL_CUDA
  TEST_CASE("kernel_versions: every CUDA family with several versions is registered, as its switch knows it") {
    struct Switch {
      const char* family;
      bool (*supported)(int, DType, int64_t);
      std::vector<int64_t> sizes;
    };
    const std::vector<Switch> switches = {
        {"attention", cuda::attention_version_supported, {16, 32, 64, 80, 128, 256}},
        {"contrastive", cuda::contrastive_version_supported, {36, 512}},
        {"layernorm", cuda::layernorm_version_supported, {33, 768, 65536}},
        {"adamw", cuda::adamw_version_supported, {1}},
    };
    size_t cuda_families = 0;
    for (const auto& f : kernel_versions().families()) cuda_families += f->backend() == "cuda" ? 1 : 0;
    CHECK(cuda_families == switches.size());
    for (const Switch& s : switches) {
      INFO(s.family);
      const KernelVersionFamily* f = kernel_versions().find_family(s.family);
      REQUIRE(f != nullptr);
      CHECK(f->versions().size() >= 2);
      for (int v = 1; v <= 16; ++v) {
        bool known = false;
        for (DType dt : kFloating)
          for (int64_t n : s.sizes) {
            known = known || s.supported(v, dt, n);
            if (f->find(v)) CHECK(f->takes(v, {dt, n}) == s.supported(v, dt, n));
          }
        INFO("version " << v);
        CHECK(known == (f->find(v) != nullptr));
      }
    }
  }

  TEST_CASE("kernel_versions: the CUDA defaults are the versions the slots ran before the registry") {
    struct Want {
      const char* family;
      DType dtype;
      int64_t size;
      int version;
    };
    // Before: attention v3 where it applies (bf16/f16, D in {32, 64, 128}), else v2 (D <= 128, not
    // f64), else v1; contrastive v2 for bf16/f16 with d % 8 == 0, else v1; layernorm forward v3
    // (which ran v2 where its vectorised path does not apply) and backward v2; AdamW v2.
    const std::vector<Want> wants = {
        {"attention", DType::bf16, 64, 3},  {"attention", DType::f16, 32, 3},   {"attention", DType::bf16, 128, 3},
        {"attention", DType::bf16, 80, 2},  {"attention", DType::bf16, 16, 2},  {"attention", DType::f32, 64, 2},
        {"attention", DType::f32, 128, 2},  {"attention", DType::f64, 64, 1},   {"attention", DType::f32, 129, 1},
        {"attention", DType::bf16, 256, 1}, {"contrastive", DType::bf16, 512, 2}, {"contrastive", DType::f16, 8, 2},
        {"contrastive", DType::bf16, 36, 1}, {"contrastive", DType::f32, 512, 1}, {"contrastive", DType::f64, 512, 1},
        {"layernorm", DType::bf16, 768, 3}, {"layernorm", DType::f32, 36, 3},   {"layernorm", DType::bf16, 36, 2},
        {"layernorm", DType::f64, 768, 2},  {"layernorm", DType::f16, 33, 2},   {"layernorm", DType::bf16, 32768, 3},
        {"layernorm", DType::bf16, 32776, 2}, {"adamw", DType::f32, 200, 2},
        // The candidates (attention v4, contrastive v3) take these, and are not their default.
        {"attention", DType::f16, 64, 3},   {"attention", DType::f16, 128, 3},  {"attention", DType::bf16, 32, 3},
        {"contrastive", DType::f16, 1024, 2}, {"contrastive", DType::bf16, 65536, 2},
        {"contrastive", DType::bf16, 65544, 2},
    };
    for (const Want& w : wants) {
      INFO(w.family << " " << dtype_name(w.dtype) << " " << w.size);
      CHECK(kernel_versions().family(w.family).default_version({w.dtype, w.size}) == w.version);
    }
  }

  TEST_CASE("kernel_versions: attention v4 and contrastive v3 are candidates, run only when asked for") {
    struct Candidate {
      const char* family;
      int number;
      std::vector<int64_t> sizes;  // sizes it takes in bf16 and f16
    };
    for (const Candidate& c : {Candidate{"attention", 4, {32, 64, 128}}, Candidate{"contrastive", 3, {8, 512, 65536}}}) {
      INFO(c.family << " v" << c.number);
      KernelVersionFamily& f = kernel_versions().family(c.family);
      REQUIRE(f.find(c.number) != nullptr);
      CHECK(f.find(c.number)->candidate());
      CHECK(f.find(c.number)->status() == "candidate: not yet run on a GPU");
      ScopedVersionOverride none(f, 0);  // whatever MINIVL_<FAMILY>_VERSION says
      for (DType dt : {DType::bf16, DType::f16})
        for (int64_t n : c.sizes) {
          CHECK(f.takes(c.number, {dt, n}));
          CHECK(f.default_version({dt, n}) != c.number);
          CHECK(f.choose({dt, n}) != c.number);
          ScopedVersionOverride asked(f, c.number);
          CHECK(f.choose({dt, n}) == c.number);
        }
      CHECK(f.override_version() == 0);
      CHECK_FALSE(f.takes(c.number, {DType::f32, 64}));
      ScopedVersionOverride asked(f, c.number);
      CHECK(f.choose({DType::f32, 64}) == f.default_version({DType::f32, 64}));  // not taken: the default runs
    }
  }

  TEST_CASE("kernel_versions: MINIVL_ATTENTION_VERSION=9 fails the CLI naming the variable and the versions") {
    check_versions_cli({{"MINIVL_ATTENTION_VERSION=9", false, {"MINIVL_ATTENTION_VERSION='9'", "1, 2, 3, 4 (4: candidate)"}},
                        {"MINIVL_CONTRASTIVE_VERSION=three", false,
                         {"MINIVL_CONTRASTIVE_VERSION='three'", "1, 2, 3 (3: candidate)"}},
                        {"MINIVL_ATTENTION_VERSION=2", true, {"MINIVL_ATTENTION_VERSION=2 is set"}}});
  }
#endif

  TEST_CASE("kernel_versions: MINIVL_GEMM_VERSION=5 fails the CLI naming the variable and the versions") {
    check_versions_cli({{"MINIVL_GEMM_VERSION=5", false, {"MINIVL_GEMM_VERSION='5' is not a cpu gemm version", "1, 2, 3, 4, or unset it"}},
                        {"MINIVL_GEMM_VERSION=1", true, {"MINIVL_GEMM_VERSION=1 is set"}}});
  }

  TEST_CASE("kernel_versions: minivl ops --versions prints every registered version with its status") {
    CliResult r = run_cli("", "ops --versions");
    REQUIRE(r.status == 0);
    CHECK(r.output == kernel_versions().describe());
    for (const auto& f : kernel_versions().families()) {
      CHECK(r.output.find("\n" + f->name() + " (") != std::string::npos);
      for (const KernelVersion& v : f->versions()) {
        INFO(f->name() << " v" << v.number);
        CHECK(r.output.find("  v" + std::to_string(v.number) + "  " + v.name) != std::string::npos);
        CHECK(r.output.find("status   " + v.status()) != std::string::npos);
      }
    }
    CHECK(r.output.find("\ngemm (cpu") != std::string::npos);
#if MINIVL_CUDA
    for (const char* family : {"attention", "contrastive", "layernorm", "adamw"})
      CHECK(r.output.find(std::string("\n") + family + " (cuda") != std::string::npos);
#endif
  }
}
