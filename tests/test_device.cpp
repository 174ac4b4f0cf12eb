// The device-independent checks, run on the device INFINI_TEST_DEVICE names (cpu by default;
// cuda on a machine with a GPU): the model's forward, backward and streaming against the same
// model on the CPU (fp32 and bf16 tolerances, both attention kernels), a training run that stops
// and resumes exactly on the device, and the passkey evaluation's streaming path.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/compat.h"
#include "core/decoder.h"
#include "core/local_attention.h"
#include "support/run_util.h"
#include "support/small_model.h"
#include "support/tiny_data.h"
#include "train/run/checkpoint.h"
#include "train/run/checkpoint_dir.h"
#include "train/eval/passkey.h"
#include "train/run/metrics_log.h"

namespace test_device {

using namespace infini;
using namespace infini::test;

namespace {

std::string device_name() {
  const char* e = std::getenv("INFINI_TEST_DEVICE");
  return e && *e ? e : "cpu";
}

// GTEST_SKIP must stand in the test body itself, hence a macro.
#define SKIP_WITHOUT_DEVICE()                                                                                   \
  if (device_name() != "cpu" && !torch::cuda::is_available())                                                  \
  GTEST_SKIP() << "INFINI_TEST_DEVICE=" << device_name() << " but " << compat::build_description()             \
               << ": no GPU to run on"

torch::Device test_device() { return torch::Device(device_name()); }

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kCPU, torch::kDouble) - b.to(torch::kCPU, torch::kDouble)).abs().max().item<double>();
}

struct KernelScope {
  AttentionKernel prev;
  explicit KernelScope(AttentionKernel k) : prev(attention_kernel()) { set_attention_kernel(k); }
  ~KernelScope() { set_attention_kernel(prev); }
};

std::vector<AttentionKernel> kernels() {
  std::vector<AttentionKernel> k{AttentionKernel::matmul};
  if (sdpa_available()) k.push_back(AttentionKernel::sdpa);
  return k;
}

}  // namespace

TEST(Device, ForwardAndBackwardMatchTheCpu) {
  SKIP_WITHOUT_DEVICE();
  const torch::Device dev = test_device();
  for (AttentionKernel kernel : kernels()) {
    KernelScope scope(kernel);
    for (bool bf16 : {false, true}) {
      Decoder cpu = small_model(MemoryUpdate::delta, 4), on = small_model(MemoryUpdate::delta, 4);
      on->to(dev);
      torch::manual_seed(2);
      torch::Tensor tok = torch::randint(0, 40, {2, 29}, torch::kLong);
      torch::Tensor want = cpu->forward(tok);  // fp32 on the CPU: the reference
      want.pow(2).mean().backward();
      torch::Tensor got;
      {
        compat::AutocastGuard ac(bf16, dev.type());
        got = on->forward(tok.to(dev));
      }
      got.to(torch::kFloat).pow(2).mean().backward();
      const double scale = want.abs().max().item<double>();
      const auto& gw = cpu->blocks[1]->attention->wq->weight.grad();
      const auto& gg = on->blocks[1]->attention->wq->weight.grad();
      const double gscale = gw.abs().max().item<double>();
      const char* what = attention_kernel_name(kernel);
      // fp32: rounding of differently ordered sums; bf16: 8-bit mantissas on both products.
      EXPECT_LE(max_diff(got, want), (bf16 ? 0.03 : 1e-4) * scale) << what << (bf16 ? " bf16" : " fp32");
      EXPECT_LE(max_diff(gg, gw), (bf16 ? 0.05 : 1e-4) * gscale) << what << (bf16 ? " bf16" : " fp32") << " grad";
      EXPECT_EQ(got.device().type(), dev.type());
    }
  }
}

TEST(Device, StreamingEqualsParallelOnTheDevice) {
  SKIP_WITHOUT_DEVICE();
  const torch::Device dev = test_device();
  for (AttentionKernel kernel : kernels()) {
    KernelScope scope(kernel);
    Decoder m = small_model(MemoryUpdate::linear, 6);
    m->to(dev);
    torch::NoGradGuard ng;
    torch::Tensor tok = torch::randint(0, 40, {2, 37}, torch::kLong).to(dev);
    torch::Tensor want = m->forward(tok);
    StreamState st = m->new_state(2);
    std::vector<torch::Tensor> outs;
    int64_t at = 0;
    for (int64_t len : {5, 11, 1, 4, 16}) {
      outs.push_back(m->forward_stream(st, tok.narrow(1, at, len)));
      at += len;
    }
    EXPECT_LE(max_diff(torch::cat(outs, 1), want), 1e-4) << attention_kernel_name(kernel);
    EXPECT_EQ(st.tokens_seen, 37);
  }
}

TEST(Device, PasskeyPromptStreamingOnTheDeviceMatchesTheCpu) {
  SKIP_WITHOUT_DEVICE();
  const torch::Device dev = test_device();
  Decoder cpu = small_model(MemoryUpdate::delta, 8), on = small_model(MemoryUpdate::delta, 8);
  on->to(dev);
  torch::manual_seed(3);
  torch::Tensor x = torch::randint(40, {1, 203}, torch::kLong);  // 25 segments of 8 and 3 tokens
  std::vector<int64_t> ids(x.data_ptr<int64_t>(), x.data_ptr<int64_t>() + 203);
  torch::InferenceMode im;
  StreamState sc = cpu->new_state(1), sd = on->new_state(1);
  torch::Tensor want = stream_prompt(cpu, sc, ids, false);
  torch::Tensor got = stream_prompt(on, sd, ids, false);
  EXPECT_LE(max_diff(got, want), 1e-4 * std::max(1.0, want.abs().max().item<double>()));
  EXPECT_EQ(sd.tokens_seen, 203);
  for (size_t l = 0; l < sd.layers.size(); ++l)
    EXPECT_LE(max_diff(sd.layers[l].M, sc.layers[l].M), 1e-4 * std::max(1.0, sc.layers[l].M.abs().max().item<double>()))
        << "layer " << l;
}

// Stop at step 4 and resume to 8 == 8 straight on the device, bitwise (deterministic algorithms,
// the same GPU), and the device's losses follow the CPU's.
TEST(Device, TrainingResumesExactlyOnTheDevice) {
  SKIP_WITHOUT_DEVICE();
  TinyData d = tiny_data("trainer_data");
  const std::string base = scratch_dir("device_resume");
  auto args = [&](const std::string& run, const std::string& device, const std::string& extra) {
    return "train " + source_path("configs/tiny/pretrain.yaml") + " run.dir=" + base + "/" + run +
           " tokenizer.model=" + d.tokenizer + " data.train=[" + d.shards + "] train.max_steps=8 train.log_every=1 " +
           "checkpoint.every=0 train.eval_every=0 run.deterministic=true run.precision=fp32 run.device=" + device +
           " " + extra;
  };
  auto losses = [&](const std::string& run) {
    std::map<int64_t, double> out;
    for (const auto& r : read_metrics(base + "/" + run + "/metrics.jsonl"))
      if (r.value("kind", "") == "train") out[r["step"].get<int64_t>()] = r["loss"].get<double>();
    return out;
  };
  const std::string dev = device_name();
  auto a = run_infini(args("straight", dev, ""));
  ASSERT_EQ(a.code, 0) << a.output;
  auto b1 = run_infini(args("resumed", dev, "train.stop_after=4"));
  ASSERT_EQ(b1.code, 0) << b1.output;
  const nlohmann::json st = load_trainer_state(latest_checkpoint(base + "/resumed"));
  EXPECT_TRUE(st.contains("rng_cpu"));
  EXPECT_EQ(st.contains("rng_cuda"), dev != "cpu") << st.dump();
  auto b2 = run_infini(args("resumed", dev, ""));
  ASSERT_EQ(b2.code, 0) << b2.output;
  EXPECT_NE(b2.output.find("resumed from"), std::string::npos) << b2.output;
  const auto la = losses("straight"), lb = losses("resumed");
  ASSERT_EQ(la.size(), 8u);
  EXPECT_EQ(la, lb);  // bitwise
  if (dev != "cpu") {
    auto c = run_infini(args("cpu", "cpu", ""));
    ASSERT_EQ(c.code, 0) << c.output;
    const auto lc = losses("cpu");
    for (const auto& [step, loss] : lc) EXPECT_NEAR(la.at(step), loss, 1e-3 * loss) << "step " << step;
  }
}

}  // namespace test_device

namespace test_device {

// --version names this build: the LibTorch version, and the CUDA version it was built with or "CPU
// only". INFINI_EXPECT_CUDA_BUILD=1 (scripts/test.sh sets it for PyPI's torch) makes a CPU-only
// build an error, so CI sees that the 2.x build really is the CUDA one.
TEST(Device, VersionNamesTheLibTorchAndItsCuda) {
  auto r = infini::test::run_infini("--version");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("LibTorch " + infini::compat::torch_version() + ","), std::string::npos) << r.output;
  const std::string cuda = infini::compat::cuda_build_version();
  if (cuda.empty()) {
    EXPECT_NE(r.output.find("CPU only"), std::string::npos) << r.output;
  } else {
    EXPECT_NE(r.output.find("CUDA " + cuda + ", "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(torch::cuda::is_available() ? "GPU" : "no GPU found"), std::string::npos) << r.output;
  }
  const char* want = std::getenv("INFINI_EXPECT_CUDA_BUILD");
  if (want && std::string(want) == "1") {
    EXPECT_FALSE(cuda.empty()) << "expected a CUDA build: " << r.output;
  }
}

}  // namespace test_device
