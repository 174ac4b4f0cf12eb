// Test helpers shared by the end-to-end suites: make a scratch folder's fixture once across the
// parallel test processes, run `infini` expecting success, and the one-line error of a config.
// Header-only, like the other helpers here.
#pragma once
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "support/run_util.h"
#include "train/config/config.h"

namespace infini::test {

// ctest runs the tests of one executable as parallel processes: the first to take DIR's lock runs
// `make`, and marks DIR done; the others wait for it, then find the mark.
inline void build_once(const std::string& dir, const std::function<void()>& make) {
  const int lock = ::open((dir + "/.lock").c_str(), O_CREAT | O_RDWR, 0644);
  ::flock(lock, LOCK_EX);
  if (!std::filesystem::exists(dir + "/.done")) {
    make();
    std::ofstream(dir + "/.done") << "ok\n";
  }
  ::flock(lock, LOCK_UN);
  ::close(lock);
}

// `infini ARGS`, which must exit 0 (a test failure with its output otherwise).
inline void expect_infini_ok(const std::string& args) {
  auto r = run_infini(args);
  EXPECT_EQ(r.code, 0) << args << "\n" << r.output;
}

// The ConfigError's line of a YAML text (parsed as cfg.yaml with `overrides`), "" when it loads.
inline std::string config_error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    parse_config(yaml, "cfg.yaml", overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace infini::test
