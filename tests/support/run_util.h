// Test helpers: run the infini binary (capturing output and exit code), two ranks of it under
// launcher variables, scratch dirs, file reads.
// Header-only so every test executable can use it without a library of its own.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

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

// A TCP port on the loopback that was free a moment ago (for a test's MASTER_PORT).
inline int free_port() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t n = sizeof(a);
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &n);
  const int port = ntohs(a.sin_port);
  ::close(s);
  return port;
}

// `args` + OUT as two ranks started by a shell with the variables srun + MASTER_ADDR set, each under
// `timeout 300`: rank 0's output is returned and its OUT is dir/two.json; rank 1 writes dir/rank1.out
// (and would write dir/rank1.json). The exit code is nonzero when either rank's is.
inline RunResult two_ranks(const std::string& args, const std::string& dir) {
  const std::string env =
      "env WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(free_port());
  return run_cmd(env + " RANK=1 LOCAL_RANK=1 timeout 300 " + args + dir + "/rank1.json >" + dir +
                 "/rank1.out 2>&1 & " + env + " RANK=0 LOCAL_RANK=0 timeout 300 " + args + dir +
                 "/two.json; c=$?; wait $!; exit $(( c | $? ))");
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
