#pragma once
// Helpers shared by the tests that write files or run the CLI: temporary folders and run_minivl.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>

namespace minivl::testing {

// A fresh temporary folder, removed with everything in it at scope exit.
struct NnTempDir {
  std::filesystem::path path;
  NnTempDir() {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           ("minivl_nn_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(path);
  }
  ~NnTempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// DIR/minivl_test_<name>, emptied and created; kept after the test for a look at what it wrote.
inline std::filesystem::path fresh_temp_dir(const std::string& name) {
  const std::filesystem::path d = std::filesystem::temp_directory_path() / ("minivl_test_" + name);
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

struct CliRun {
  int exit_code;
  std::string output;  // stdout and stderr together
};

// Runs the minivl CLI with `args` (a shell fragment).
inline CliRun run_minivl(const std::string& args) {
  std::string cmd = std::string(MINIVL_CLI_PATH) + " " + args + " 2>&1";
  CliRun r{-1, ""};
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[512];
  while (fgets(buf, sizeof buf, p)) r.output += buf;
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

}  // namespace minivl::testing
