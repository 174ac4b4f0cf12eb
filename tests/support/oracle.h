// The Python the oracle tests compare with: INFINI_ORACLE_PYTHON names it (scripts/test.sh sets it
// to the build's virtual environment: torch, transformers, safetensors, tensorboard). Without it,
// or without a module a test needs, the test skips with the reason, and fails instead when
// INFINI_REQUIRE_ORACLE=1 (CI). Header-only, like run_util.h.
#pragma once
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/run_util.h"

namespace infini::test {

inline std::string oracle_python() {
  const char* p = std::getenv("INFINI_ORACLE_PYTHON");
  return p && *p ? p : "";
}

inline bool oracle_required() {
  const char* r = std::getenv("INFINI_REQUIRE_ORACLE");
  return r && std::string(r) == "1";
}

// Whether the oracle's Python imports `module` (asked once per process).
inline bool oracle_imports(const std::string& module) {
  static std::map<std::string, bool> known;
  auto it = known.find(module);
  if (it != known.end()) return it->second;
  const bool ok = !oracle_python().empty() && run_cmd(oracle_python() + " -c 'import " + module + "'").code == 0;
  known[module] = ok;
  return ok;
}

// What TensorBoard's own reader (EventAccumulator, tests/reference/tb_read.py) makes of PATH, a run
// directory or one event file: {"scalars": {tag: [[step, value, wall_time]]}, "text": {tag: [[step,
// text]]}}; purge = false keeps what SessionLog START would drop.
inline nlohmann::json tensorboard_read(const std::string& path, bool purge = true) {
  static int calls = 0;
  const std::string out = scratch_dir("tb_read", /*fresh=*/false) + "/" + std::to_string(::getpid()) + "_" +
                          std::to_string(++calls) + ".json";
  const auto r = run_cmd(oracle_python() + " " + source_path("tests/reference/tb_read.py") + " " + path + " " + out +
                         (purge ? "" : " --no-purge"));
  EXPECT_EQ(r.code, 0) << r.output;
  nlohmann::json j = nlohmann::json::parse(read_text(out), nullptr, false);
  std::filesystem::remove(out);
  EXPECT_FALSE(j.is_discarded()) << r.output;
  return j.is_discarded() ? nlohmann::json{{"scalars", nlohmann::json::object()}, {"text", nlohmann::json::object()}} : j;
}

}  // namespace infini::test

// Skips the test (or fails it, when CI requires the oracle) without a Python to run it with.
#define REQUIRE_ORACLE()                                                                                       \
  do {                                                                                                         \
    if (infini::test::oracle_python().empty()) {                                                               \
      if (infini::test::oracle_required()) FAIL() << "INFINI_REQUIRE_ORACLE=1 but INFINI_ORACLE_PYTHON is not set"; \
      GTEST_SKIP() << "INFINI_ORACLE_PYTHON is not set: no Python with torch, transformers and safetensors to " \
                      "compare with (scripts/test.sh sets it)";                                                \
    }                                                                                                          \
  } while (0)

// The same for a Python that must also import `module` (e.g. "tensorboard").
#define REQUIRE_ORACLE_MODULE(module)                                                                          \
  do {                                                                                                         \
    REQUIRE_ORACLE();                                                                                          \
    if (!infini::test::oracle_imports(module)) {                                                               \
      if (infini::test::oracle_required())                                                                     \
        FAIL() << "INFINI_REQUIRE_ORACLE=1 but " << infini::test::oracle_python() << " cannot import " << module; \
      GTEST_SKIP() << infini::test::oracle_python() << " cannot import " << module                             \
                   << " (scripts/setup.sh with INFINI_TORCH=pip installs it)";                                 \
    }                                                                                                          \
  } while (0)
