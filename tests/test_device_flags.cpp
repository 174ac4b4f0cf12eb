// The --device flag of the evaluation and benchmark commands (train/run/device.h): what parse_device
// accepts and refuses, the one-line errors of the commands, and bench model's --attention.
// On a machine with a GPU the no-GPU cases are skipped; nothing here needs one.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include <torch/cuda.h>

#include "core/error.h"
#include "core/local_attention.h"
#include "support/run_util.h"
#include "train/run/device.h"

namespace infini {
// Named, not anonymous: the suite also builds as one unity translation unit.
namespace test_device_flags {

// The lines of `output` that start with `prefix`.
std::vector<std::string> lines_starting(const std::string& output, const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(prefix, 0) == 0) out.push_back(line);
  return out;
}

// The message of the ConfigError parse_device throws, or "" when it returns.
std::string parse_error(const std::string& flag, const std::string& value) {
  try {
    parse_device(flag, value);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(CliDeviceFlags, ParseAcceptsCpu) {
  const torch::Device d = parse_device("--device", "cpu");
  EXPECT_TRUE(d.is_cpu());
  EXPECT_EQ(device_name(d), "cpu");
  synchronize(d);  // nothing to wait for on the host
}

TEST(CliDeviceFlags, ParseRefusesOtherNamesWithTheFlag) {
  for (const std::string bad : {"gpu", "cuda:x", "cuda:", "CPU", "", "cuda:0x", "cuda1"}) {
    const std::string msg = parse_error("--device", bad);
    ASSERT_FALSE(msg.empty()) << "'" << bad << "' was accepted";
    EXPECT_EQ(msg.rfind("--device: expected cpu, cuda or cuda:N", 0), 0u) << msg;
    EXPECT_NE(msg.find("'" + bad + "'"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  EXPECT_NE(parse_error("run.device", "tpu").find("run.device:"), std::string::npos);
}

TEST(CliDeviceFlags, CudaWithoutAGpuIsAConfigError) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "this machine has a GPU: cuda is accepted here";
  for (const std::string v : {"cuda", "cuda:0", "cuda:3"}) {
    const std::string msg = parse_error("--device", v);
    ASSERT_FALSE(msg.empty()) << v << " was accepted without a GPU";
    EXPECT_EQ(msg.rfind("--device: " + v, 0), 0u) << msg;
    EXPECT_TRUE(msg.find("no GPU") != std::string::npos || msg.find("CPU only") != std::string::npos) << msg;
    EXPECT_NE(msg.find("LibTorch"), std::string::npos) << msg;
  }
}

TEST(CliDeviceFlags, CudaIndexBeyondTheGpusIsAConfigError) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no GPU: every cuda device is refused (the case above)";
  const std::string v = "cuda:" + std::to_string(static_cast<int64_t>(torch::cuda::device_count()));
  const std::string msg = parse_error("--device", v);
  EXPECT_NE(msg.find("has no GPU"), std::string::npos) << msg;
  EXPECT_TRUE(parse_device("--device", "cuda").is_cuda());
}

TEST(CliDeviceFlags, EvalPplBogusDeviceExitsTwoWithOneLine) {
  // The device is checked before anything is loaded: the checkpoint need not exist.
  auto r = test::run_infini("eval ppl --checkpoint /nonexistent/run --text /nonexistent/doc.txt --device bogus");
  EXPECT_EQ(r.code, 2) << r.output;
  const auto errors = lines_starting(r.output, "error:");
  ASSERT_EQ(errors.size(), 1u) << r.output;
  EXPECT_NE(errors[0].find("--device: expected cpu, cuda or cuda:N"), std::string::npos) << r.output;
  EXPECT_NE(errors[0].find("'bogus'"), std::string::npos) << r.output;
}

TEST(CliDeviceFlags, EveryCommandTakesDevice) {
  const std::string cfg = test::source_path("configs/tiny/pretrain.yaml");
  const std::vector<std::string> cmds = {"eval passkey --checkpoint /nonexistent/run --lengths 1k",
                                         "eval reward --checkpoint /nonexistent/run --data x.jsonl",
                                         "eval accuracy --checkpoint /nonexistent/run --data x.jsonl",
                                         "generate --checkpoint /nonexistent/run --prompt-ids 1",
                                         "bench model --config " + cfg, "bench train --config " + cfg};
  for (const std::string& cmd : cmds) {
    auto r = test::run_infini(cmd + " --device gpu");
    EXPECT_EQ(r.code, 2) << cmd << "\n" << r.output;
    EXPECT_EQ(lines_starting(r.output, "error: --device: expected").size(), 1u) << cmd << "\n" << r.output;
    auto help = test::run_infini(cmd.substr(0, cmd.find(" --")) + " --help");
    EXPECT_NE(help.output.find("--device"), std::string::npos) << cmd << "\n" << help.output;
  }
}

TEST(CliDeviceFlags, BenchModelAttentionFlag) {
  const std::string cfg = test::source_path("configs/tiny/pretrain.yaml");
  auto r = test::run_infini("bench model --config " + cfg + " --attention flash");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(lines_starting(r.output, "error: --attention: expected matmul or sdpa, found 'flash'").size(), 1u)
      << r.output;

  r = test::run_infini("bench model --config " + cfg + " --batch 1 --seq 64 --steps 1 --device cpu --attention matmul");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find(", device cpu, attention matmul"), std::string::npos) << r.output;

  r = test::run_infini("bench model --config " + cfg + " --batch 1 --seq 64 --steps 1 --attention sdpa");
  if (sdpa_available()) {
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_NE(r.output.find("attention sdpa"), std::string::npos) << r.output;
  } else {
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_EQ(lines_starting(r.output, "error: attention kernel sdpa:").size(), 1u) << r.output;
  }
}

}  // namespace test_device_flags
}  // namespace infini
