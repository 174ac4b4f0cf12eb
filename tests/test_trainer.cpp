// Trainer tests through the real binary on the tiny config: exact resume, signals, kill -9,
// non-finite stop, learning, init_from errors, the golden loss curve; and the SFT loss mask.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/compat.h"
#include "core/safetensors.h"
#include "support/run_util.h"
#include "support/small_model.h"
#include "support/tiny_data.h"
#include "train/run/checkpoint.h"
#include "train/run/checkpoint_dir.h"
#include "train/run/metrics_log.h"
#include "train/stages/lm_head_loss.h"
#include "train/run/trainer.h"
#include "train/stages/lm_loss.h"

// Everything of this file in its own namespace: the suite also builds as one unity translation unit.
namespace test_trainer {

using namespace infini;
using namespace infini::test;
namespace fs = std::filesystem;

namespace {

std::string tiny_args(const TinyData& d, const std::string& run_dir, const std::string& extra = "") {
  return source_path("configs/tiny/pretrain.yaml") + " run.dir=" + run_dir + " tokenizer.model=" + d.tokenizer +
         " data.train=[" + d.shards + "] " + extra;
}

std::vector<double> train_losses(const std::string& run_dir) {
  std::vector<double> out;
  for (const auto& r : read_metrics(run_dir + "/metrics.jsonl"))
    if (r.value("kind", "") == "train") out.push_back(r["loss"].get<double>());
  return out;
}

std::map<int64_t, double> losses_by_step(const std::string& run_dir) {
  std::map<int64_t, double> out;
  for (const auto& r : read_metrics(run_dir + "/metrics.jsonl"))
    if (r.value("kind", "") == "train") out[r["step"].get<int64_t>()] = r["loss"].get<double>();
  return out;
}

// Starts `infini train ...` as a child process (stdout/stderr to a file); returns its pid.
pid_t spawn_train(const std::string& args, const std::string& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    const std::string cmd = std::string("exec ") + INFINI_BINARY + " train " + args + " >" + log + " 2>&1";
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

int wait_code(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

// Stop at step 6 and resume to 12 == 12 straight, bitwise, in fp32 and under bf16 autocast alike
// (on CPU the same kernels run on the same inputs in the same order).
TEST(Trainer, ResumeIsBitwiseExactInFp32AndBf16) {
  TinyData d = tiny_data("trainer_data");
  for (const std::string precision : {"fp32", "bf16"}) {
    const std::string base = scratch_dir("trainer_resume_" + precision);
    const std::string common =
        "train.max_steps=12 train.log_every=1 checkpoint.every=0 run.deterministic=true run.precision=" + precision;
    auto a = run_infini("train " + tiny_args(d, base + "/straight", common));
    ASSERT_EQ(a.code, 0) << a.output;
    auto b1 = run_infini("train " + tiny_args(d, base + "/resumed", common + " train.stop_after=6"));
    ASSERT_EQ(b1.code, 0) << b1.output;
    EXPECT_EQ(losses_by_step(base + "/resumed").size(), 6u);
    auto b2 = run_infini("train " + tiny_args(d, base + "/resumed", common));
    ASSERT_EQ(b2.code, 0) << b2.output;
    EXPECT_NE(b2.output.find("resumed from"), std::string::npos) << b2.output;
    const auto la = losses_by_step(base + "/straight"), lb = losses_by_step(base + "/resumed");
    ASSERT_EQ(la.size(), 12u);
    ASSERT_EQ(lb.size(), 12u);
    for (const auto& [step, loss] : la) EXPECT_EQ(loss, lb.at(step)) << precision << " step " << step;  // bitwise
  }
}

TEST(Trainer, ResumeWithPrefetchIsExact) {
  TinyData d = tiny_data("trainer_data");
  const std::string base = scratch_dir("trainer_resume_prefetch");
  const std::string common = "train.max_steps=8 data.prefetch=2";
  ASSERT_EQ(run_infini("train " + tiny_args(d, base + "/straight", common)).code, 0);
  ASSERT_EQ(run_infini("train " + tiny_args(d, base + "/resumed", common + " train.stop_after=3")).code, 0);
  ASSERT_EQ(run_infini("train " + tiny_args(d, base + "/resumed", common)).code, 0);
  EXPECT_EQ(losses_by_step(base + "/straight"), losses_by_step(base + "/resumed"));
}

TEST(Trainer, LearnsTheTinyCorpus) {
  TinyData d = tiny_data("trainer_data");
  const std::string run = scratch_dir("trainer_learn") + "/run";
  auto r = run_infini("train " + tiny_args(d, run));
  ASSERT_EQ(r.code, 0) << r.output;
  double val = -1;
  for (const auto& rec : read_metrics(run + "/metrics.jsonl"))
    if (rec.value("kind", "") == "eval") val = rec["val_loss"].get<double>();
  // ln(320) = 5.77 for a uniform guess; the generated sentences are far more predictable.
  EXPECT_GT(val, 0);
  EXPECT_LT(val, 2.5) << r.output;
  const auto losses = train_losses(run);
  ASSERT_GE(losses.size(), 10u);
  EXPECT_LT(losses.back(), losses.front() - 2.0);
}

TEST(Trainer, GoldenLossCurveOfTinyConfig) {
  TinyData d = tiny_data("trainer_data");
  const std::string run = scratch_dir("trainer_golden") + "/run";
  auto r = run_infini("train " + tiny_args(d, run, "train.max_steps=10 checkpoint.every=0 train.eval_every=0"));
  ASSERT_EQ(r.code, 0) << r.output;
  const auto losses = train_losses(run);
  const std::string golden_path = source_path("tests/golden/tiny_pretrain_losses.json");
  if (std::getenv("INFINI_WRITE_GOLDEN")) {
    std::ofstream(golden_path) << nlohmann::json(losses).dump(1) << "\n";
    GTEST_SKIP() << "wrote " << golden_path;
  }
  ASSERT_TRUE(fs::exists(golden_path)) << "run with INFINI_WRITE_GOLDEN=1 to create " << golden_path;
  const auto golden = nlohmann::json::parse(read_text(golden_path)).get<std::vector<double>>();
  ASSERT_EQ(losses.size(), golden.size());
  for (size_t i = 0; i < golden.size(); ++i) EXPECT_NEAR(losses[i], golden[i], 1e-4 * golden[i]) << "step " << i + 1;
}

TEST(Trainer, SigtermWritesCheckpointAndExitsWithCode3) {
  TinyData d = tiny_data("trainer_data");
  const std::string base = scratch_dir("trainer_sigterm");
  const std::string run = base + "/run";
  pid_t pid = spawn_train(tiny_args(d, run, "train.max_steps=100000 checkpoint.every=0 train.eval_every=0"),
                          base + "/log.txt");
  // Wait until training is under way (metrics has a line), then ask it to stop.
  for (int i = 0; i < 600 && !fs::exists(run + "/metrics.jsonl"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(pid, SIGTERM);
  EXPECT_EQ(wait_code(pid), 3) << read_text(base + "/log.txt");
  const std::string log = read_text(base + "/log.txt");
  EXPECT_NE(log.find("interrupted by signal 15"), std::string::npos) << log;
  EXPECT_NE(log.find("Resume with: infini train"), std::string::npos) << log;
  const std::string ck = latest_checkpoint(run);
  ASSERT_FALSE(ck.empty());
  EXPECT_GT(load_trainer_state(ck)["step"].get<int64_t>(), 0);
}

TEST(Trainer, KillNineAtRandomMomentsLeavesALoadableCheckpoint) {
  TinyData d = tiny_data("trainer_data");
  const std::string base = scratch_dir("trainer_kill9");
  const std::string run = base + "/run";
  const std::string args = tiny_args(d, run, "train.max_steps=100000 checkpoint.every=1 checkpoint.keep_last=2 "
                                             "train.eval_every=0 train.log_every=5");
  std::mt19937 rng(1234);
  int64_t last_step = 0;
  for (int round = 0; round < 10; ++round) {
    pid_t pid = spawn_train(args, base + "/log.txt");
    if (round == 0) {
      // The first kill waits for the first checkpoint (start-up takes seconds on a loaded
      // machine), so there is always one to check; later ones land at random moments.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
      while (latest_checkpoint(run).empty() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 300));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(900 + rng() % 1200));
    }
    ::kill(pid, SIGKILL);
    wait_code(pid);
    const std::string ck = latest_checkpoint(run);
    if (ck.empty()) continue;  // killed before the first checkpoint of the run
    // The newest checkpoint loads completely: weights, optimizer, state.
    const int64_t step = load_trainer_state(ck)["step"].get<int64_t>();
    EXPECT_GE(step, last_step) << "round " << round;
    last_step = step;
    EXPECT_NO_THROW(load_safetensors(ck + "/model.safetensors")) << ck;
    EXPECT_NO_THROW(load_safetensors(ck + "/optimizer.safetensors")) << ck;
  }
  EXPECT_GT(last_step, 0);
  // And the run resumes from where it was killed.
  auto r = run_infini("train " + tiny_args(d, run, "train.max_steps=" + std::to_string(last_step + 2) +
                                                 " checkpoint.every=1 train.eval_every=0"));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("resumed from"), std::string::npos) << r.output;
}

TEST(Trainer, NonFiniteLossStopsWithClearMessage) {
  TinyData d = tiny_data("trainer_data");
  const std::string run = scratch_dir("trainer_nan") + "/run";
  // An absurd learning rate blows the weights up after the first update.
  auto r = run_infini("train " + tiny_args(d, run, "optim.lr=1e30 schedule.warmup_steps=0 schedule.min_lr=0 "
                                                 "optim.grad_clip=0 checkpoint.every=1 train.max_steps=20"));
  EXPECT_EQ(r.code, 4) << r.output;
  EXPECT_NE(r.output.find("non-finite loss"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("The last good checkpoint is"), std::string::npos) << r.output;
  EXPECT_FALSE(latest_checkpoint(run).empty());
  // skip mode keeps going and counts the skipped steps.
  const std::string run2 = scratch_dir("trainer_nan_skip") + "/run";
  auto s = run_infini("train " + tiny_args(d, run2, "optim.lr=1e30 schedule.warmup_steps=0 schedule.min_lr=0 "
                                                  "optim.grad_clip=0 train.max_steps=4 train.on_nonfinite=skip"));
  EXPECT_EQ(s.code, 0) << s.output;
  int skipped = 0;
  for (const auto& rec : read_metrics(run2 + "/metrics.jsonl")) skipped += rec.value("kind", "") == "nonfinite";
  EXPECT_GT(skipped, 0);
}

TEST(Trainer, InitFromMismatchedModelNamesTensorAndShapes) {
  TinyData d = tiny_data("trainer_data");
  const std::string base = scratch_dir("trainer_initfrom");
  ASSERT_EQ(run_infini("train " + tiny_args(d, base + "/a", "train.max_steps=1")).code, 0);
  auto r = run_infini("train " + tiny_args(d, base + "/b", "train.max_steps=1 model.d_model=32 init_from=" + base + "/a"));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("tok_embeddings.weight"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("32"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("64"), std::string::npos) << r.output;
}

TEST(Trainer, SftLossIgnoresPromptLabels) {
  // Changing the label (target token) at a masked position changes neither the loss nor its gradient.
  torch::manual_seed(0);
  auto hidden = torch::randn({2, 6, 5}, torch::requires_grad());
  auto w = torch::randn({11, 5});
  auto tokens = torch::randint(0, 11, {2, 6}, torch::kLong);
  auto mask = torch::tensor({0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0}, torch::kFloat).reshape({2, 6});
  auto [l1, n1] = masked_lm_loss(hidden, w, tokens, mask);
  auto g1 = torch::autograd::grad({l1}, {hidden})[0];
  auto tokens2 = tokens.clone();
  tokens2[0][1] = (tokens[0][1].item<int64_t>() + 1) % 11;  // a prompt label
  tokens2[1][4] = (tokens[1][4].item<int64_t>() + 3) % 11;  // a padding label
  auto [l2, n2] = masked_lm_loss(hidden, w, tokens2, mask);
  auto g2 = torch::autograd::grad({l2}, {hidden})[0];
  EXPECT_EQ(n1, 5);
  EXPECT_EQ(n2, 5);
  EXPECT_EQ(l1.item<float>(), l2.item<float>());
  EXPECT_TRUE(torch::equal(g1, g2));
  // ... and the hidden state of a masked position gets no gradient at all.
  EXPECT_EQ(g1[0][0].abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(g1[1][4].abs().sum().item<float>(), 0.0f);
  // ... while a response label does change it.
  auto tokens3 = tokens.clone();
  tokens3[0][4] = (tokens[0][4].item<int64_t>() + 1) % 11;
  auto [l3, n3] = masked_lm_loss(hidden, w, tokens3, mask);
  EXPECT_NE(l1.item<float>(), l3.item<float>());
  // Hand check: mean over the 5 counted targets of -log softmax(h W^T).
  auto logp = torch::log_softmax(torch::matmul(hidden.detach(), w.t()), -1);
  double expect = 0;
  for (auto [b, t] : std::vector<std::pair<int, int>>{{0, 3}, {0, 4}, {0, 5}, {1, 2}, {1, 3}})
    expect -= logp[b][t - 1][tokens[b][t].item<int64_t>()].item<double>();
  EXPECT_NEAR(l1.item<double>(), expect / 5, 1e-6);
}

TEST(Trainer, DetachedMemoryLossSkipsTheLossFreePrefixExactly) {
  // lm_loss streams the whole segments before the first counted target without gradient; with
  // detached memory that changes neither the loss nor any parameter's gradient.
  for (auto rule : {infini::MemoryUpdate::linear, infini::MemoryUpdate::delta}) {
    infini::ModelConfig c = infini::test::small_config(rule, infini::MemoryGradient::detach);
    infini::Decoder m = infini::test::small_model(rule, 11, infini::MemoryGradient::detach);
    infini::Batch b;
    b.tokens = torch::randint(0, 40, {2, 45}, torch::kLong);
    b.loss_mask = torch::zeros({2, 45});
    b.loss_mask.index_put_({0, torch::indexing::Slice(30, 45)}, 1.0);  // first target 30: row 29
    b.loss_mask.index_put_({1, torch::indexing::Slice(35, 40)}, 1.0);
    EXPECT_EQ(infini::loss_free_prefix(c, b.loss_mask), 24);  // segments 0-2

    auto grads = [&](const torch::Tensor& loss) {
      m->zero_grad();
      loss.backward();
      std::vector<torch::Tensor> g;
      for (auto& p : m->parameters()) g.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
      return g;
    };
    infini::LossOutput split = infini::lm_loss(m, b);
    auto g_split = grads(split.loss);
    auto [whole, count] = infini::masked_lm_loss(m->trunk(b.tokens), m->lm_head_weight(), b.tokens, b.loss_mask);
    auto g_whole = grads(whole);
    EXPECT_EQ(split.weight, 20.0);
    EXPECT_EQ(count, 20);
    EXPECT_NEAR(split.loss.item<double>(), whole.item<double>(), 1e-5);
    for (size_t i = 0; i < g_whole.size(); ++i)
      EXPECT_LE((g_split[i] - g_whole[i]).abs().max().item<double>(), 1e-5) << i;

    c.memory.gradient = infini::MemoryGradient::bptt;  // the prefix gets gradient: nothing skipped
    EXPECT_EQ(infini::loss_free_prefix(c, b.loss_mask), 0);
  }
}

namespace {

// Parameter gradients after `loss`'s backward and, when set, its backward_more.
std::vector<torch::Tensor> loss_grads(infini::Decoder& m, const infini::LossOutput& out) {
  m->zero_grad();
  out.loss.backward();
  if (out.backward_more) out.backward_more();
  std::vector<torch::Tensor> g;
  for (auto& p : m->parameters()) g.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
  return g;
}

double max_diff(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, (a[i] - b[i]).abs().max().item<double>());
  return d;
}

}  // namespace

TEST(Trainer, PrefixWritesIsBpttForOneLayerUnderTheLinearRule) {
  // One layer, linear rule, every counted target in the last segment: the memory that segment
  // reads is the sum of the earlier segments' writes, each a function of its own tokens only, so
  // bptt's gradient is exactly the tail's plus <dloss/dmemory, writes> - what prefix writes adds.
  auto make = [](infini::MemoryGradient gradient) {
    infini::ModelConfig c = infini::test::small_config(infini::MemoryUpdate::linear, gradient);
    c.n_layers = 1;
    torch::manual_seed(21);
    infini::Decoder m(c);
    torch::NoGradGuard ng;
    for (auto& b : m->blocks) b->attention->gate.normal_(0, 1);
    return m;
  };
  infini::Decoder detached = make(infini::MemoryGradient::detach), bptt = make(infini::MemoryGradient::bptt);
  infini::Batch b;
  b.tokens = torch::randint(0, 40, {2, 44}, torch::kLong);
  b.loss_mask = torch::zeros({2, 44});
  b.loss_mask.index_put_({0, torch::indexing::Slice(41, 44)}, 1.0);  // rows 40-42: segment 5
  b.loss_mask.index_put_({1, torch::indexing::Slice(42, 44)}, 1.0);
  ASSERT_EQ(infini::loss_free_prefix(detached->config(), b.loss_mask), 40);

  auto [whole, count] = infini::masked_lm_loss(bptt->trunk(b.tokens), bptt->lm_head_weight(), b.tokens, b.loss_mask);
  infini::LossOutput ref;
  ref.loss = whole;
  const auto g_bptt = loss_grads(bptt, ref);
  const auto g_detach = loss_grads(detached, infini::lm_loss(detached, b));
  EXPECT_GT(max_diff(g_bptt, g_detach), 1e-3);  // the writes' gradient is not small here
  for (int64_t chunk : {1, 2, 16}) {
    infini::LossOutput out = infini::lm_loss_prefix_writes(detached, b, 1.0, chunk);
    ASSERT_TRUE(static_cast<bool>(out.backward_more));
    EXPECT_EQ(count, 5);
    EXPECT_NEAR(out.loss.item<double>(), whole.item<double>(), 1e-5);
    EXPECT_LE(max_diff(loss_grads(detached, out), g_bptt), 1e-5) << "chunk " << chunk;
  }
}

TEST(Trainer, PrefixWritesAnyChunkingSameLossAndNothingWithoutAPrefix) {
  // Two layers, delta rule: each segment's write is taken from the memory before it, so how the
  // prefix is chunked does not matter; the loss is lm_loss's; no prefix -> plain lm_loss.
  infini::Decoder m = infini::test::small_model(infini::MemoryUpdate::delta, 12, infini::MemoryGradient::detach);
  infini::Batch b;
  b.tokens = torch::randint(0, 40, {2, 45}, torch::kLong);
  b.loss_mask = torch::zeros({2, 45});
  b.loss_mask.index_put_({0, torch::indexing::Slice(30, 45)}, 1.0);  // prefix: segments 0-2
  b.loss_mask.index_put_({1, torch::indexing::Slice(35, 40)}, 1.0);
  const infini::LossOutput plain = infini::lm_loss(m, b);
  const auto g_plain = loss_grads(m, plain);
  const auto g1 = loss_grads(m, infini::lm_loss_prefix_writes(m, b, 1.0, 1));
  for (int64_t chunk : {2, 3, 16}) {
    infini::LossOutput out = infini::lm_loss_prefix_writes(m, b, 1.0, chunk);
    EXPECT_NEAR(out.loss.item<double>(), plain.loss.item<double>(), 1e-6);
    EXPECT_LE(max_diff(loss_grads(m, out), g1), 1e-6) << "chunk " << chunk;
  }
  EXPECT_GT(max_diff(g1, g_plain), 1e-4);  // the prefix's writes did learn something
  // The weight scales only the writes' part: 0 is plain lm_loss, 0.5 half-way.
  EXPECT_LE(max_diff(loss_grads(m, infini::lm_loss_prefix_writes(m, b, 0.0)), g_plain), 1e-7);
  const auto g_half = loss_grads(m, infini::lm_loss_prefix_writes(m, b, 0.5, 3));
  for (size_t i = 0; i < g1.size(); ++i)
    EXPECT_LE((g_half[i] - (g_plain[i] + g1[i]) * 0.5).abs().max().item<double>(), 1e-6) << i;

  b.loss_mask.fill_(1.0);  // counted from the start: no prefix, nothing more to do
  infini::LossOutput out = infini::lm_loss_prefix_writes(m, b);
  EXPECT_FALSE(static_cast<bool>(out.backward_more));
  {
    torch::NoGradGuard ng;  // evaluation: nothing to backpropagate
    b.loss_mask.zero_();
    b.loss_mask.index_put_({torch::indexing::Slice(), torch::indexing::Slice(40, 45)}, 1.0);
    EXPECT_FALSE(static_cast<bool>(infini::lm_loss_prefix_writes(m, b).backward_more));
  }
}

TEST(Trainer, FusedLmHeadLossEqualsUnfusedHead) {
  // Loss and both gradients equal log_softmax over the full logits (fp64), for any chunking.
  torch::manual_seed(3);
  auto opt = torch::TensorOptions().dtype(torch::kDouble);
  auto h = torch::randn({10, 6}, opt).requires_grad_();
  auto w = torch::randn({13, 6}, opt).requires_grad_();
  auto t = torch::randint(0, 13, {10}, torch::kLong);
  auto wt = torch::rand({10}, opt);
  auto ref = -(torch::log_softmax(torch::matmul(h, w.t()), 1).gather(1, t.unsqueeze(1)).squeeze(1) * wt).sum();
  auto gref = torch::autograd::grad({ref}, {h, w});
  for (int64_t chunk : {1, 3, 7, 10, 64}) {
    auto loss = fused_lm_head_loss(h, w, t, wt, chunk);
    auto g = torch::autograd::grad({loss * 2.5}, {h, w});  // the incoming gradient scales both
    EXPECT_NEAR(loss.item<double>(), ref.item<double>(), 1e-12) << "chunk " << chunk;
    EXPECT_TRUE(torch::allclose(g[0], gref[0] * 2.5, 1e-10, 1e-12)) << "chunk " << chunk;
    EXPECT_TRUE(torch::allclose(g[1], gref[1] * 2.5, 1e-10, 1e-12)) << "chunk " << chunk;
  }
  {
    torch::NoGradGuard ng;  // evaluation: same value, no gradient work
    EXPECT_NEAR(fused_lm_head_loss(h, w, t, wt, 4).item<double>(), ref.item<double>(), 1e-12);
  }
  // Under bf16 autocast it agrees with the unfused bf16 head to bf16 accuracy.
  auto hf = h.detach().to(torch::kFloat), wf = w.detach().to(torch::kFloat);
  torch::Tensor fused, unfused;
  {
    compat::AutocastGuard ac(true, torch::kCPU);
    fused = fused_lm_head_loss(hf, wf, t, wt.to(torch::kFloat), 4);
    auto logits = torch::matmul(hf, wf.t()).to(torch::kFloat);
    compat::AutocastOff off;
    unfused = -(torch::log_softmax(logits, 1).gather(1, t.unsqueeze(1)).squeeze(1) * wt.to(torch::kFloat)).sum();
  }
  EXPECT_NEAR(fused.item<double>(), unfused.item<double>(), 1e-5 * std::abs(unfused.item<double>()) + 1e-6);
  EXPECT_GT(std::abs(fused.item<double>() - ref.item<double>()), 0.0);  // it really ran in bf16
}

TEST(Trainer, TinySftRunsFromPretrainedWeights) {
  TinyData d = tiny_data("trainer_data");
  const std::string base = scratch_dir("trainer_sft");
  ASSERT_EQ(run_infini("train " + tiny_args(d, base + "/pre", "train.max_steps=5")).code, 0);
  auto r = run_infini("train " + source_path("configs/tiny/sft.yaml") + " run.dir=" + base + "/sft tokenizer.model=" +
                  d.tokenizer + " data.train=[" + d.sft + "] init_from=" + base + "/pre train.max_steps=6");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("initialised weights from"), std::string::npos) << r.output;
  EXPECT_EQ(train_losses(base + "/sft").size(), 6u);
}
}  // namespace test_trainer
