// The progress line of long commands (train/run/progress.h): its text (amounts, percentage, rate,
// ETA, note), plain lines on stderr when it is not a terminal (INFINI_PROGRESS_SECONDS=0: every
// update) with stdout unchanged, none at the default interval for a short command, and a line
// redrawn with "\r" on a terminal (a pseudo-terminal made by script(1)). No timings are checked.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "support/run_util.h"
#include "support/tiny_data.h"
#include "train/run/progress.h"

namespace test_progress {

using namespace infini;
using namespace infini::test;

// stdout and stderr of `infini ARGS`, apart.
std::pair<std::string, std::string> out_and_err(const std::string& env, const std::string& args) {
  const std::string cmd = env + " " + INFINI_BINARY + " " + args;
  return {run_cmd("(" + cmd + " 2>/dev/null)").output, run_cmd("(" + cmd + " 2>&1 >/dev/null)").output};
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}


TEST(Progress, TheLineSaysAmountRateEtaAndNote) {
  Progress p("eval passkey", 2000000, "tokens");
  p.update(500000);
  p.note("3/12 cases");
  const std::string line = p.line();
  EXPECT_EQ(line.rfind("eval passkey: 500.0k/2.00M tokens (25%), ", 0), 0u) << line;
  EXPECT_NE(line.find(" tokens/s, elapsed "), std::string::npos) << line;
  EXPECT_NE(line.find(", ETA "), std::string::npos) << line;
  EXPECT_NE(line.find(", 3/12 cases"), std::string::npos) << line;
  Progress unknown("x", 0, "MB");
  unknown.add(3);
  EXPECT_EQ(unknown.line().find("ETA"), std::string::npos) << unknown.line();
  EXPECT_EQ(unknown.line().rfind("x: 3 MB, ", 0), 0u) << unknown.line();
  Progress phase("convert hf", 0, "");
  phase.note("writing out");
  EXPECT_EQ(phase.line().rfind("convert hf: elapsed ", 0), 0u) << phase.line();
  EXPECT_NE(phase.line().find(", writing out"), std::string::npos);
  EXPECT_EQ(progress_duration(3725), "1h02m");
  EXPECT_EQ(progress_duration(185), "3m05s");
  EXPECT_EQ(progress_duration(-1), "?");
}

TEST(Progress, PlainLinesGoToStderrAndStdoutIsUnchanged) {
  TinyData d = tiny_data("trainer_data");
  const std::string dir = scratch_dir("progress_plain");
  // A tiny model to evaluate.
  auto r = run_infini("train " + source_path("configs/tiny/pretrain.yaml") + " run.dir=" + dir + "/run tokenizer.model=" +
                      d.tokenizer + " data.train=[" + d.shards + "] train.max_steps=1");
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string passkey = "eval passkey --checkpoint " + dir + "/run --lengths 512 --depths 0,1";
  const auto quiet = out_and_err("", passkey);
  const auto every = out_and_err("INFINI_PROGRESS_SECONDS=0", passkey);
  EXPECT_EQ(count(quiet.second, "eval passkey:"), 0u) << quiet.second;  // short: no line at the default interval
  EXPECT_GE(count(every.second, "eval passkey: "), 2u) << every.second;
  EXPECT_NE(every.second.find("/1024 tokens ("), std::string::npos) << every.second;
  EXPECT_NE(every.second.find("2/2 cases"), std::string::npos) << every.second;
  EXPECT_EQ(every.first.find("eval passkey:"), std::string::npos) << every.first;
  EXPECT_EQ(count(every.first, "\n"), count(quiet.first, "\n"));  // the same stdout lines
  EXPECT_EQ(every.second.find('\r'), std::string::npos);

  const auto ppl = out_and_err("INFINI_PROGRESS_SECONDS=0", "eval ppl --checkpoint " + dir + "/run --text " + d.dir +
                                                                "/corpus.txt --max-tokens 300 --compare");
  EXPECT_NE(ppl.second.find("eval ppl: "), std::string::npos) << ppl.second;
  EXPECT_NE(ppl.second.find("eval ppl (no memory): "), std::string::npos) << ppl.second;
  EXPECT_NE(ppl.second.find("/300 tokens (100%)"), std::string::npos) << ppl.second;
  EXPECT_NE(ppl.first.find("with memory:"), std::string::npos) << ppl.first;

  const auto prep = out_and_err("INFINI_PROGRESS_SECONDS=0", "data prepare --tokenizer " + d.tokenizer + " --input " +
                                                                 d.dir + "/corpus.txt --out " + dir + "/shards");
  EXPECT_NE(prep.second.find("data prepare: "), std::string::npos) << prep.second;
  EXPECT_NE(prep.second.find(" MB ("), std::string::npos) << prep.second;
  EXPECT_NE(prep.first.find("prepared "), std::string::npos) << prep.first;
}

// tokenizer train: the input's MB read to 100%, then bpe's merges counted against the pieces it
// has to make: vocabulary - 260 (unk, bos, eos, pad, 256 bytes) - the alphabet. The text below is
// random words over 8 letters, each frequent, plus the space (sentencepiece's "\u2581"), so the
// alphabet is 9 and the total 400 - 260 - 9 = 131; sentencepiece reports every 20th merge.
TEST(Progress, TokenizerTrainCountsBytesReadThenPiecesMerged) {
  const std::string dir = scratch_dir("progress_tokenizer");
  std::mt19937 rng(5);
  std::string text;
  for (int line = 0; line < 3000; ++line) {
    for (int w = 0; w < 6; ++w) {
      if (w > 0) text += ' ';
      for (int n = 3 + static_cast<int>(rng() % 5); n > 0; --n) text += "aeinorst"[rng() % 8];
    }
    text += '\n';
  }
  std::ofstream(dir + "/text.txt") << text;
  const auto r = out_and_err("INFINI_PROGRESS_SECONDS=0", "tokenizer train --input " + dir + "/text.txt --vocab-size 400 --out " + dir + "/t");
  EXPECT_NE(r.first.find("wrote "), std::string::npos) << r.first << r.second;
  EXPECT_EQ(r.first.find("tokenizer train:"), std::string::npos) << r.first;
  EXPECT_NE(r.second.find(" MB (100%), "), std::string::npos) << r.second;
  EXPECT_NE(r.second.find("reading the input, vocabulary 400 (bpe)"), std::string::npos) << r.second;
  EXPECT_NE(r.second.find("tokenizer train: 20/131 pieces (15%), "), std::string::npos) << r.second;
  EXPECT_NE(r.second.find("tokenizer train: 120/131 pieces (92%), "), std::string::npos) << r.second;
  EXPECT_EQ(r.second.find("/131 pieces (100%)"), std::string::npos) << r.second;  // 131 is no multiple of 20
  EXPECT_NE(r.second.find(", merging pieces, vocabulary 400 (bpe)"), std::string::npos) << r.second;
  EXPECT_EQ(r.second.find("LOG("), std::string::npos) << r.second;  // sentencepiece's own lines stay inside
  const auto u = out_and_err("INFINI_PROGRESS_SECONDS=0", "tokenizer train --input " + dir +
                                                             "/text.txt --vocab-size 300 --model-type unigram --out " + dir + "/u");
  EXPECT_NE(u.first.find("wrote "), std::string::npos) << u.first << u.second;
  EXPECT_NE(u.second.find("pieces, pruning to 330, vocabulary 300 (unigram)"), std::string::npos) << u.second;
}

TEST(Progress, ATerminalGetsOneRedrawnLine) {
  if (run_cmd("command -v script").code != 0) GTEST_SKIP() << "script(1) not found (util-linux)";
  TinyData d = tiny_data("trainer_data");
  const std::string dir = scratch_dir("progress_tty");
  // stderr is the pseudo-terminal; stdout goes to a file.
  const std::string cmd = std::string(INFINI_BINARY) + " data prepare --tokenizer " + d.tokenizer + " --input " +
                          d.dir + "/corpus.txt --out " + dir + "/shards >" + dir + "/stdout.txt";
  const auto r = run_cmd("script -qec '" + cmd + "' /dev/null");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("\r\033[Kdata prepare: "), std::string::npos) << r.output;
  EXPECT_NE(read_text(dir + "/stdout.txt").find("prepared "), std::string::npos);
  EXPECT_EQ(read_text(dir + "/stdout.txt").find("data prepare:"), std::string::npos);
}

}  // namespace test_progress
