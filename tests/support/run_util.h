// Test helpers: run the infini binary (capturing output and exit code), scratch dirs, file reads.
// Header-only so every test executable can use it without a library of its own.
#pragma once
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace infini::test {

struct RunResult {
  int code = -1;       // exit code (or 128 + signal)
  std::string output;  // stdout and stderr together
};

inline RunResult run_cmd(const std::string& cmd) {
  RunResult r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// Runs `infini ARGS` (the binary under test).
inline RunResult run_infini(const std::string& args) {
  std::string cmd = INFINI_BINARY;  // appended, not operator+: GCC 12 warns falsely on that in C++20
  cmd.append(" ").append(args);
  return run_cmd(cmd);
}

inline std::string scratch_dir(const std::string& name, bool fresh = true) {
  const char* base = std::getenv("INFINI_TEST_TMP");
  std::filesystem::path p = std::filesystem::path(base ? base : "/tmp/infini_test") / name;
  if (fresh) std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string source_path(const std::string& rel) { return std::string(INFINI_SOURCE_DIR) + "/" + rel; }

}  // namespace infini::test
