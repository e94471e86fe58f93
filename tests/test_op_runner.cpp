// `minivl op` end to end: input files written byte by byte here (as another
// program would write them, not through minivl's writer), the real CLI run,
// its output read back and checked against values computed in the test.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/safetensors.h"

namespace {

namespace fs = std::filesystem;

struct RawTensor {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

template <typename T>
RawTensor raw(const std::string& name, const std::string& dtype, std::vector<int64_t> shape, std::vector<T> values) {
  RawTensor t{name, dtype, std::move(shape), std::string(values.size() * sizeof(T), '\0')};
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

// The safetensors layout, written by hand: u64 header length, JSON, data.
void write_raw(const fs::path& path, const std::vector<RawTensor>& tensors) {
  std::string header = "{", data;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const RawTensor& t = tensors[i];
    std::string shape;
    for (size_t k = 0; k < t.shape.size(); ++k) shape += (k ? "," : "") + std::to_string(t.shape[k]);
    header += (i ? "," : "") + std::string("\"") + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[" + shape +
              "],\"data_offsets\":[" + std::to_string(data.size()) + "," +
              std::to_string(data.size() + t.bytes.size()) + "]}";
    data += t.bytes;
  }
  header += "}";
  uint64_t n = header.size();
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << header << data;
}

struct CliResult {
  int status;
  std::string output;
};

CliResult run_cli(const std::string& args) {
  std::string cmd = std::string(MINIVL_CLI_PATH) + " " + args + " 2>&1";
  CliResult r{0, ""};
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[512];
  while (fgets(buf, sizeof buf, p)) r.output += buf;
  r.status = pclose(p);
  return r;
}

std::vector<double> read_values(const minivl::SafetensorsFile& f, const std::string& name) {
  const minivl::SafetensorsEntry& e = f.at(name);
  std::vector<double> out;
  if (e.dtype == minivl::SafetensorsDType::F64) {
    out.resize(e.nbytes / 8);
    std::memcpy(out.data(), e.data, e.nbytes);
  } else {
    REQUIRE(e.dtype == minivl::SafetensorsDType::F32);
    std::vector<float> f32(e.nbytes / 4);
    std::memcpy(f32.data(), e.data, e.nbytes);
    out.assign(f32.begin(), f32.end());
  }
  return out;
}

fs::path temp_dir() {
  fs::path d = fs::temp_directory_path() / ("minivl_op_runner_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

}  // namespace

TEST_SUITE("op_runner") {
  TEST_CASE("minivl op matmul reads a foreign safetensors file and writes the product") {
    fs::path dir = temp_dir();
    // a (2, 3), b (3, 2), f32
    write_raw(dir / "in.safetensors", {raw<float>("a", "F32", {2, 3}, {1, 2, 3, 4, 5, 6}),
                                       raw<float>("b", "F32", {3, 2}, {7, 8, 9, 10, 11, 12})});
    CliResult r = run_cli("op matmul --inputs " + (dir / "in.safetensors").string() + " --out " +
                          (dir / "out.safetensors").string());
    INFO(r.output);
    REQUIRE(r.status == 0);
    auto f = minivl::SafetensorsFile::open((dir / "out.safetensors").string());
    CHECK(f.at("out").shape == std::vector<int64_t>{2, 2});
    // [1 2 3; 4 5 6] @ [7 8; 9 10; 11 12] = [58 64; 139 154]
    CHECK(read_values(f, "out") == std::vector<double>{58, 64, 139, 154});
    fs::remove_all(dir);
  }

  TEST_CASE("minivl op softmax --grad writes out and grad.x") {
    fs::path dir = temp_dir();
    std::vector<double> x = {0.5, -1.0, 2.0, 0.0, 3.0, 1.0};
    std::vector<double> g = {1.0, 0.0, -1.0, 0.5, 0.5, 2.0};
    write_raw(dir / "in.safetensors",
              {raw<double>("x", "F64", {2, 3}, x), raw<double>("grad_out", "F64", {2, 3}, g)});
    CliResult r = run_cli("op softmax --grad --attr dim=-1 --inputs " + (dir / "in.safetensors").string() +
                          " --out " + (dir / "out.safetensors").string());
    INFO(r.output);
    REQUIRE(r.status == 0);
    auto f = minivl::SafetensorsFile::open((dir / "out.safetensors").string());
    std::vector<double> y = read_values(f, "out"), gx = read_values(f, "grad.x");
    for (int row = 0; row < 2; ++row) {
      double m = -1e300, s = 0, dot = 0;
      for (int i = 0; i < 3; ++i) m = std::max(m, x[row * 3 + i]);
      for (int i = 0; i < 3; ++i) s += std::exp(x[row * 3 + i] - m);
      double p[3];
      for (int i = 0; i < 3; ++i) {
        p[i] = std::exp(x[row * 3 + i] - m) / s;
        dot += p[i] * g[row * 3 + i];
      }
      for (int i = 0; i < 3; ++i) {
        CHECK(y[row * 3 + i] == doctest::Approx(p[i]).epsilon(1e-12));
        CHECK(gx[row * 3 + i] == doctest::Approx(p[i] * (g[row * 3 + i] - dot)).epsilon(1e-12));
      }
    }
    fs::remove_all(dir);
  }

  TEST_CASE("minivl op rejects bad input files with a message naming the file") {
    fs::path dir = temp_dir();
    {
      std::ofstream f(dir / "garbage.safetensors", std::ios::binary);
      f << "this is not a safetensors file at all";
    }
    CliResult r = run_cli("op matmul --inputs " + (dir / "garbage.safetensors").string() + " --out " +
                          (dir / "out.safetensors").string());
    CHECK(r.status != 0);
    CHECK(r.output.find("garbage.safetensors") != std::string::npos);
    CHECK(!fs::exists(dir / "out.safetensors"));

    write_raw(dir / "missing.safetensors", {raw<float>("a", "F32", {2}, {1, 2})});
    r = run_cli("op matmul --inputs " + (dir / "missing.safetensors").string() + " --out " +
                (dir / "out.safetensors").string());
    CHECK(r.status != 0);
    CHECK(r.output.find("missing input tensor 'b'") != std::string::npos);

    write_raw(dir / "shapes.safetensors",
              {raw<float>("a", "F32", {2, 3}, {1, 2, 3, 4, 5, 6}), raw<float>("b", "F32", {2, 2}, {1, 2, 3, 4})});
    r = run_cli("op matmul --inputs " + (dir / "shapes.safetensors").string() + " --out " +
                (dir / "out.safetensors").string());
    CHECK(r.status != 0);
    CHECK(r.output.find("matmul") != std::string::npos);
    CHECK(r.output.find("(2, 3)") != std::string::npos);
    CHECK(r.output.find("(2, 2)") != std::string::npos);

    r = run_cli("op no_such_op --inputs " + (dir / "shapes.safetensors").string() + " --out " +
                (dir / "out.safetensors").string());
    CHECK(r.status != 0);
    CHECK(r.output.find("unknown op 'no_such_op'") != std::string::npos);
    fs::remove_all(dir);
  }

  TEST_CASE("minivl op knows every op of ops.def") {
    // An unknown op's error lists the op runner's table (tools/op_runner.cpp); every ops.def name must be in it.
    fs::path dir = temp_dir();
    write_raw(dir / "x.safetensors", {raw<float>("x", "F32", {2}, {1, 2})});
    CliResult r = run_cli("op no_such_op --inputs " + (dir / "x.safetensors").string() + " --out " +
                          (dir / "out.safetensors").string());
    fs::remove_all(dir);
    const size_t known = r.output.find("(known: ");
    REQUIRE(known != std::string::npos);
    std::string list = ", ";  // ", a, b, c," so that each name is found between ", " and ","
    list += r.output.substr(known + 8, r.output.find(')', known) - known - 8);
    list += ",";
    const char* names[] = {
#define MINIVL_OP(name, family, differentiable) #name,
#include "core/ops.def"
#undef MINIVL_OP
    };
    for (const std::string n : names) {
      CAPTURE(n);
      std::string entry = ", ";
      entry += n;
      entry += ",";
      CHECK_MESSAGE(list.find(entry) != std::string::npos,
                    "add '" << n << "' to op_runner_table() in tools/op_runner.cpp");
    }
  }

  TEST_CASE("minivl ops lists every op of ops.def with its CPU coverage") {
    CliResult r = run_cli("ops");
    REQUIRE(r.status == 0);
    const char* names[] = {
#define MINIVL_OP(name, family, differentiable) #name,
#include "core/ops.def"
#undef MINIVL_OP
    };
    for (const char* n : names) {
      INFO(n);
      CHECK(r.output.find(std::string("\n") + n + " ") != std::string::npos);
    }
  }
}
