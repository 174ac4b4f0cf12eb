// Bad input through the CLI: each case gets one clear line naming the flag, key or file, what was
// expected and what was found, and the documented exit code (2: usage or config, 3: interrupted).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "support/run_util.h"
#include "support/tiny_data.h"

namespace fs = std::filesystem;
using namespace infini::test;

namespace {

size_t longest_line(const std::string& s) {
  size_t best = 0, start = 0;
  while (start <= s.size()) {
    size_t end = s.find('\n', start);
    if (end == std::string::npos) end = s.size();
    best = std::max(best, end - start);
    start = end + 1;
  }
  return best;
}

}  // namespace

TEST(CliErrors, IntegerFlagsSayWhatTheyExpect) {
  auto r = run_infini("eval passkey --checkpoint /nonexistent --lengths 1k --trials 0");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--trials: expected an integer >= 1, found '0'"), std::string::npos) << r.output;
  EXPECT_LT(longest_line(r.output), 120u) << r.output;  // not a 309-digit range
  r = run_infini("eval reward --checkpoint /nonexistent --data x.jsonl --batch 1.5");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("expected an integer >= 1, found '1.5'"), std::string::npos) << r.output;
}

TEST(CliErrors, GenerateChecksItsOptionsBeforeLoadingAnything) {
  // The checkpoint does not exist: the options' error comes first, and nothing is printed before it.
  auto r = run_infini("generate --checkpoint /nonexistent --prompt-ids \"1\" --temperature inf");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_EQ(r.output, "error: temperature must be a finite number >= 0, found inf\n");
  // An EOS id outside the model's vocabulary (512 in the tiny config).
  TinyData d = tiny_data("trainer_data");
  const std::string run = scratch_dir("cli_errors_generate");
  r = run_infini("train " + source_path("configs/tiny/pretrain.yaml") + " run.dir=" + run + " tokenizer.model=" +
                 d.tokenizer + " data.train=[" + d.shards + "] train.max_steps=1 train.eval_every=0");
  ASSERT_EQ(r.code, 0) << r.output;
  r = run_infini("generate --checkpoint " + run + " --prompt-ids \"1 5\" --eos 9999 --max-new-tokens 2");
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("--eos: expected a token id in [0, "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("found 9999"), std::string::npos) << r.output;
}

TEST(CliErrors, ConfigFilesThatAreNotConfigs) {
  const std::string dir = scratch_dir("cli_errors_config");
  auto r = run_infini("train " + dir);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find(dir + ": is a directory; expected a YAML config file"), std::string::npos) << r.output;
  // Two MiB of comments: refused by size before YAML parses it.
  {
    std::ofstream out(dir + "/huge.yaml");
    out << "stage: pretrain\n";
    const std::string line(1023, '#');
    for (int i = 0; i < 2048; ++i) out << line << "\n";
  }
  r = run_infini("train " + dir + "/huge.yaml");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("bytes; a config file may have at most 1048576 bytes"), std::string::npos) << r.output;
}

TEST(CliErrors, ExclusiveEvalFlags) {
  auto r = run_infini("eval ppl --checkpoint x --text y --no-memory --compare");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--no-memory excludes --compare"), std::string::npos) << r.output;
}

TEST(CliErrors, SafetensorsHeaderLengthIsCapped) {
  const std::string dir = scratch_dir("cli_errors_st");
  const std::string path = dir + "/big_header.safetensors";
  {
    std::ofstream out(path, std::ios::binary);
    const uint64_t len = 200ull << 20;  // 200 MiB of header announced
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((len >> (8 * i)) & 0xff));
    out << "{}";
  }
  fs::resize_file(path, (201ull << 20));  // a sparse file that long: the header fits, the cap refuses it
  auto r = run_infini("info " + dir);
  EXPECT_NE(r.code, 0) << r.output;
  r = run_infini("generate --checkpoint " + path + " --prompt-ids \"1\"");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("header length 209715200 bytes is over the limit of 104857600 bytes"), std::string::npos)
      << r.output;
}

TEST(CliErrors, SigtermDuringSetUpExitsWithCode3) {
  TinyData d = tiny_data("trainer_data");
  const std::string run = scratch_dir("cli_errors_sigterm");
  const std::string cmd = std::string("exec ") + INFINI_BINARY + " train " + source_path("configs/tiny/pretrain.yaml") +
                          " run.dir=" + run + " tokenizer.model=" + d.tokenizer + " data.train=[" + d.shards +
                          "] train.max_steps=100000 checkpoint.every=0 >" + run + "/out.txt 2>&1";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // The handlers are in place before the run directory is locked; signal as soon as it is.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(run + "/.lock") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status) << "\n" << read_text(run + "/out.txt");
  EXPECT_EQ(WEXITSTATUS(status), 3) << read_text(run + "/out.txt");
  EXPECT_NE(read_text(run + "/out.txt").find("interrupted by signal 15"), std::string::npos) << read_text(run + "/out.txt");
}

TEST(CliErrors, AFatalErrorOfARunReachesItsTrainLog) {
  TinyData d = tiny_data("trainer_data");
  const std::string run = scratch_dir("cli_errors_trainlog");
  auto r = run_infini("train " + source_path("configs/tiny/pretrain.yaml") + " run.dir=" + run + " tokenizer.model=" +
                      d.tokenizer + " data.train=[" + d.shards + "] model.vocab_size=100");
  EXPECT_EQ(r.code, 2) << r.output;
  const std::string log = read_text(run + "/train.log");
  EXPECT_NE(log.find("error: model.vocab_size (100) is smaller than the tokenizer's vocabulary"), std::string::npos)
      << log;
  // Once on stderr, not twice.
  const std::string line = "error: model.vocab_size (100)";
  EXPECT_EQ(r.output.find(line), r.output.rfind(line)) << r.output;
}
