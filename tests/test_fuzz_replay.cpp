// Replays the fuzz targets' committed inputs through the functions the libFuzzer binaries call
// (tests/fuzz/targets.h), in the normal suite: the seed corpus (tests/fuzz/corpus/<target>/) and
// every input a fuzz run found (tests/fuzz/regressions/<target>/). No input may give a finding;
// each target's corpus must have an accepted input (a corpus of refusals only seeds little); and each
// regression input must have the outcome its NAME.expect file states:
//   accepted                  read as valid
//   accepted: TEXT            read as valid, with TEXT in what was refused inside it (records)
//   refused: TEXT             refused with an infini::Error whose message holds TEXT
// Not fuzzing itself (scripts/fuzz.sh, docs/fuzzing.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/fuzz/targets.h"

// A target prints as its name (in test names and messages).
namespace infini::fuzz {
inline void PrintTo(const Target& t, std::ostream* os) { *os << t.name; }
}  // namespace infini::fuzz

namespace test_fuzz_replay {

namespace fs = std::filesystem;
using infini::fuzz::Outcome;
using infini::fuzz::Target;

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The inputs in DIR (sorted; .expect files are not inputs).
std::vector<fs::path> inputs_in(const fs::path& dir) {
  std::vector<fs::path> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() != ".expect") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

Outcome run(const Target& t, const fs::path& file) {
  const std::string bytes = read_bytes(file);
  return t.run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

std::string describe(const Outcome& o) {
  return std::string(o.accepted ? "accepted" : "refused") + (o.message.empty() ? "" : ": " + o.message) +
         (o.finding.empty() ? "" : "\nFINDING: " + o.finding);
}

const fs::path kFuzzDir = fs::path(INFINI_SOURCE_DIR) / "tests" / "fuzz";

class FuzzReplay : public ::testing::TestWithParam<Target> {};

TEST_P(FuzzReplay, SeedCorpus) {
  const Target& t = GetParam();
  const auto files = inputs_in(kFuzzDir / "corpus" / t.name);
  ASSERT_FALSE(files.empty()) << "no seed corpus in " << (kFuzzDir / "corpus" / t.name);
  int accepted = 0;
  for (const fs::path& f : files) {
    const Outcome o = run(t, f);
    EXPECT_TRUE(o.finding.empty()) << f << ": " << describe(o);
    accepted += o.accepted;
  }
  EXPECT_GT(accepted, 0) << "no input of the " << t.name << " corpus is accepted";
}

TEST_P(FuzzReplay, Regressions) {
  const Target& t = GetParam();
  for (const fs::path& f : inputs_in(kFuzzDir / "regressions" / t.name)) {
    const Outcome o = run(t, f);
    EXPECT_TRUE(o.finding.empty()) << f << ": " << describe(o);
    const fs::path expect_file = f.string() + ".expect";
    ASSERT_TRUE(fs::exists(expect_file)) << f << " has no " << expect_file.filename() << " saying its outcome";
    std::string expect = read_bytes(expect_file);
    expect = expect.substr(0, expect.find('\n'));
    const size_t colon = expect.find(": ");
    const std::string verdict = expect.substr(0, colon);
    const std::string text = colon == std::string::npos ? "" : expect.substr(colon + 2);
    ASSERT_TRUE(verdict == "accepted" || verdict == "refused") << expect_file << ": unknown verdict '" << verdict << "'";
    EXPECT_EQ(o.accepted, verdict == "accepted") << f << ": " << describe(o);
    EXPECT_NE(o.message.find(text), std::string::npos) << f << ": expected '" << text << "' in: " << describe(o);
  }
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzReplay, ::testing::ValuesIn(infini::fuzz::all_targets()),
                         [](const ::testing::TestParamInfo<Target>& info) { return std::string(info.param.name); });

}  // namespace test_fuzz_replay
