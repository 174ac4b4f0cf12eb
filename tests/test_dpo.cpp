// stage dpo: the loss arithmetic on hand-made log-probabilities (train/rlhf/dpo_math.h), its value
// and gradients against an independent PyTorch implementation (tests/reference/dpo_reference.py),
// the config checks, and tiny end-to-end runs through the CLI: ln 2 at the first step (policy =
// reference), a falling loss, a separate reference, and exact resume.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/error.h"
#include "core/safetensors.h"
#include "support/oracle.h"
#include "support/run_util.h"
#include "support/tiny_rlhf.h"
#include "train/config/config.h"
#include "train/rlhf/dpo_math.h"
#include "train/run/checkpoint_dir.h"
#include "train/run/metrics_log.h"

namespace infini::test {
// Named, not anonymous: the suite also builds as one unity translation unit.
namespace test_dpo {

namespace fs = std::filesystem;

torch::Tensor vec(std::vector<double> v) { return torch::tensor(v, torch::kDouble); }

// dpo_loss on sequence log-probs given as plain numbers.
DpoTerms terms(std::vector<double> pc, std::vector<double> pr, std::vector<double> rc, std::vector<double> rr,
               double beta, DpoLoss loss, double eps = 0.0) {
  return dpo_loss(vec(pc), vec(pr), vec(rc), vec(rr), beta, loss, eps);
}

double value(const torch::Tensor& t) { return t.item<double>(); }

TEST(DpoMath, PolicyEqualToReferenceGivesLn2OneAndTheIpoTarget) {
  // h = 0 whatever the log-probs are, when the policy's equal the reference's.
  const std::vector<double> c = {-3.5, -10.25, -7.0}, r = {-4.0, -2.5, -7.0};
  for (double eps : {0.0, 0.1, 0.3})
    EXPECT_DOUBLE_EQ(value(terms(c, r, c, r, 0.1, DpoLoss::sigmoid, eps).loss), std::log(2.0)) << eps;
  EXPECT_DOUBLE_EQ(value(terms(c, r, c, r, 0.1, DpoLoss::hinge).loss), 1.0);
  for (double beta : {0.1, 0.5, 2.0})
    EXPECT_NEAR(value(terms(c, r, c, r, beta, DpoLoss::ipo).loss), 1.0 / (4 * beta * beta), 1e-12) << beta;
  const DpoTerms t = terms(c, r, c, r, 0.1, DpoLoss::sigmoid);
  EXPECT_EQ(t.reward_chosen, 0.0);
  EXPECT_EQ(t.reward_rejected, 0.0);
  EXPECT_EQ(t.margin, 0.0);
  EXPECT_EQ(t.accuracy, 0.0);  // ties are not counted as right
}

TEST(DpoMath, HandComputedNonZeroCases) {
  // Pair 1: policy (-2, -5), reference (-3, -4): h = (-2 + 5) - (-3 + 4) = 2.
  // Pair 2: policy (-6, -1), reference (-5, -2): h = (-6 + 1) - (-5 + 2) = -2.
  const std::vector<double> pc = {-2, -6}, pr = {-5, -1}, rc = {-3, -5}, rr = {-4, -2};
  const double beta = 0.5;
  // sigmoid: mean(-log sigmoid(1), -log sigmoid(-1)) = mean(log(1 + e^-1), log(1 + e)).
  const double s1 = std::log1p(std::exp(-1.0)), s2 = std::log1p(std::exp(1.0));
  EXPECT_NEAR(value(terms(pc, pr, rc, rr, beta, DpoLoss::sigmoid).loss), (s1 + s2) / 2, 1e-12);
  // label smoothing 0.2: pair 1 0.8 s1 + 0.2 s2, pair 2 0.8 s2 + 0.2 s1: the mean is unchanged
  // here by symmetry, so check one pair alone too.
  EXPECT_NEAR(value(terms({-2}, {-5}, {-3}, {-4}, beta, DpoLoss::sigmoid, 0.2).loss), 0.8 * s1 + 0.2 * s2, 1e-12);
  EXPECT_NEAR(value(terms(pc, pr, rc, rr, beta, DpoLoss::sigmoid, 0.2).loss), (s1 + s2) / 2, 1e-12);
  // hinge: mean(relu(1 - 1), relu(1 + 1)) = 1.
  EXPECT_NEAR(value(terms(pc, pr, rc, rr, beta, DpoLoss::hinge).loss), 1.0, 1e-12);
  EXPECT_NEAR(value(terms({-2}, {-5}, {-3}, {-4}, 0.25, DpoLoss::hinge).loss), 0.5, 1e-12);  // 1 - 0.25 * 2
  // ipo: 1 / (2 beta) = 1: mean((2 - 1)^2, (-2 - 1)^2) = 5.
  EXPECT_NEAR(value(terms(pc, pr, rc, rr, beta, DpoLoss::ipo).loss), 5.0, 1e-12);
  // rewards: beta (pi - ref): chosen (0.5, -0.5), rejected (-0.5, 0.5); margins (1, -1).
  const DpoTerms t = terms(pc, pr, rc, rr, beta, DpoLoss::sigmoid);
  EXPECT_NEAR(t.reward_chosen, 0.0, 1e-12);
  EXPECT_NEAR(t.reward_rejected, 0.0, 1e-12);
  EXPECT_NEAR(t.margin, 0.0, 1e-12);
  EXPECT_DOUBLE_EQ(t.accuracy, 0.5);
  EXPECT_NEAR(value(t.rewards_chosen[0]), 0.5, 1e-12);
  EXPECT_NEAR(value(t.rewards_rejected[1]), 0.5, 1e-12);
  const DpoTerms one = terms({-2}, {-5}, {-3}, {-4}, beta, DpoLoss::sigmoid);
  EXPECT_NEAR(one.margin, 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(one.accuracy, 1.0);
}

TEST(DpoMath, GradientReachesOnlyThePolicy) {
  auto pc = vec({-2.0}).requires_grad_(), pr = vec({-5.0}).requires_grad_();
  auto rc = vec({-3.0}).requires_grad_(), rr = vec({-4.0}).requires_grad_();
  // sigmoid: d/dpc = -beta sigmoid(-beta h) = -0.5 sigmoid(-1); d/dpr = +0.5 sigmoid(-1).
  dpo_loss(pc, pr, rc, rr, 0.5, DpoLoss::sigmoid).loss.backward();
  const double g = 0.5 / (1 + std::exp(1.0));
  EXPECT_NEAR(value(pc.grad()), -g, 1e-12);
  EXPECT_NEAR(value(pr.grad()), g, 1e-12);
  EXPECT_FALSE(rc.grad().defined());
  EXPECT_FALSE(rr.grad().defined());
}

TEST(DpoMath, SequenceLogprobsSumTheCountedTargetsOnly) {
  torch::manual_seed(3);
  const int64_t B = 2, T = 5, D = 4, V = 7;
  auto hidden = torch::randn({B, T, D}), w = torch::randn({V, D});
  auto tokens = torch::randint(0, V, {B, T}, torch::kLong);
  auto mask = torch::tensor({0, 0, 1, 1, 0, 0, 1, 1, 1, 1}, torch::kFloat).reshape({B, T});
  SequenceLogprobs s = sequence_logprobs(hidden, w, tokens, mask);
  auto logp = torch::log_softmax(torch::matmul(hidden, w.t()), -1);  // (B, T, V)
  for (int64_t b = 0; b < B; ++b) {
    double want = 0, n = 0;
    for (int64_t t = 1; t < T; ++t)
      if (mask[b][t].item<float>() > 0) {
        want += logp[b][t - 1][tokens[b][t].item<int64_t>()].item<double>();
        ++n;
      }
    EXPECT_NEAR(s.sum[b].item<double>(), want, 1e-5) << b;
    EXPECT_EQ(s.count[b].item<double>(), n) << b;
  }
}

// ---- against the PyTorch reference ----

nlohmann::json to_json(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU).contiguous();
  if (c.dim() == 0) return c.item<double>();
  nlohmann::json a = nlohmann::json::array();
  for (int64_t i = 0; i < c.size(0); ++i) a.push_back(to_json(c[i]));
  return a;
}

torch::Tensor from_json(const nlohmann::json& j) {
  std::vector<double> flat;
  std::vector<int64_t> shape;
  std::function<void(const nlohmann::json&, size_t)> walk = [&](const nlohmann::json& x, size_t depth) {
    if (x.is_array()) {
      if (shape.size() <= depth) shape.push_back(static_cast<int64_t>(x.size()));
      for (const auto& e : x) walk(e, depth + 1);
    } else {
      flat.push_back(x.get<double>());
    }
  };
  walk(j, 0);
  return torch::tensor(flat, torch::kDouble).reshape(shape);
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

// One problem: 2 pairs of sequences of 6 tokens, a vocabulary of 11, policy hidden states a
// perturbation of the reference's so that h != 0; compare loss, h, rewards and both gradients.
void compare_with_reference(DpoLoss kind, double beta, double eps) {
  torch::manual_seed(17);
  const int64_t B = 2, T = 6, D = 8, V = 11;
  auto ref_hidden = torch::randn({2 * B, T, D});
  auto hidden = (ref_hidden + 0.3 * torch::randn({2 * B, T, D})).requires_grad_();
  auto w = (0.5 * torch::randn({V, D})).requires_grad_();
  auto tokens = torch::randint(0, V, {2 * B, T}, torch::kLong);
  // Prompts of different lengths, a padded row, responses of different lengths (ipo's means differ).
  auto mask = torch::tensor({0, 0, 1, 1, 1, 1,  0, 0, 0, 1, 1, 0,  0, 0, 1, 1, 0, 0,  0, 1, 1, 1, 1, 1},
                            torch::kFloat).reshape({2 * B, T});
  SequenceLogprobs pi = sequence_logprobs(hidden, w, tokens, mask);
  SequenceLogprobs ref;
  {
    torch::NoGradGuard ng;
    ref = sequence_logprobs(ref_hidden, w, tokens, mask);
  }
  torch::Tensor lp = pi.sum, lr = ref.sum;
  if (kind == DpoLoss::ipo) {
    lp = lp / pi.count.clamp_min(1.0);
    lr = lr / ref.count.clamp_min(1.0);
  }
  DpoTerms t = dpo_loss(lp.slice(0, 0, B), lp.slice(0, B), lr.slice(0, 0, B), lr.slice(0, B), beta, kind, eps);
  t.loss.backward();

  // One folder per case: ctest runs the cases as parallel processes.
  const std::string dir = scratch_dir(fmt::format("dpo_oracle_{}_{}", choice_name(kind), eps > 0 ? "smoothed" : "plain"));
  nlohmann::json p{{"hidden", to_json(hidden)}, {"ref_hidden", to_json(ref_hidden)}, {"weight", to_json(w)},
                   {"tokens", to_json(tokens)}, {"mask", to_json(mask)}, {"beta", beta},
                   {"loss", choice_name(kind)}, {"label_smoothing", eps}};
  std::ofstream(dir + "/problem.json") << p.dump();
  auto r = run_cmd(oracle_python() + " " + source_path("tests/reference/dpo_reference.py") + " " + dir +
                   "/problem.json " + dir + "/out.json");
  ASSERT_EQ(r.code, 0) << r.output;
  const nlohmann::json o = nlohmann::json::parse(read_text(dir + "/out.json"));
  const auto h = (lp.slice(0, 0, B) - lp.slice(0, B)) - (lr.slice(0, 0, B) - lr.slice(0, B));
  EXPECT_GT(h.abs().min().item<double>(), 1e-3) << "h should be away from 0 in this problem";
  EXPECT_LT(max_abs_diff(h, from_json(o["h"])), 1e-5);
  EXPECT_NEAR(t.loss.item<double>(), o["loss"].get<double>(), 1e-5);
  EXPECT_LT(max_abs_diff(t.rewards_chosen, from_json(o["rewards_chosen"])), 1e-5);
  EXPECT_LT(max_abs_diff(t.rewards_rejected, from_json(o["rewards_rejected"])), 1e-5);
  const auto gh = from_json(o["grad_hidden"]), gw = from_json(o["grad_weight"]);
  EXPECT_GT(gh.abs().max().item<double>(), 1e-4) << "a gradient to compare";
  EXPECT_LT(max_abs_diff(hidden.grad(), gh), 1e-5);
  EXPECT_LT(max_abs_diff(w.grad(), gw), 1e-5);
}

TEST(DpoOracle, SigmoidLossAndGradientsMatchPyTorch) {
  REQUIRE_ORACLE_MODULE("torch");
  compare_with_reference(DpoLoss::sigmoid, 0.5, 0.0);
}
TEST(DpoOracle, SmoothedSigmoidLossAndGradientsMatchPyTorch) {
  REQUIRE_ORACLE_MODULE("torch");
  compare_with_reference(DpoLoss::sigmoid, 0.5, 0.2);
}
TEST(DpoOracle, IpoLossAndGradientsMatchPyTorch) {
  REQUIRE_ORACLE_MODULE("torch");
  compare_with_reference(DpoLoss::ipo, 0.5, 0.0);
}
TEST(DpoOracle, HingeLossAndGradientsMatchPyTorch) {
  REQUIRE_ORACLE_MODULE("torch");
  compare_with_reference(DpoLoss::hinge, 0.1, 0.0);
}

// ---- config ----

TEST(DpoConfig, DefaultsAndChecks) {
  const std::string base = "stage: dpo\ndata: {format: preference}\ninit_from: runs/sft\n";
  const Config c = parse_config(base, "cfg.yaml");
  EXPECT_EQ(c.stage, Stage::dpo);
  EXPECT_EQ(c.dpo.beta, 0.1);
  EXPECT_EQ(c.dpo.loss, DpoLoss::sigmoid);
  EXPECT_EQ(c.dpo.label_smoothing, 0.0);
  EXPECT_EQ(c.dpo.reference, "");
  EXPECT_EQ(parse_config(base, "cfg.yaml", {"dpo.loss=ipo"}).dpo.loss, DpoLoss::ipo);
  EXPECT_EQ(config_error_of(base + "dpo: {loss: kto}\n"), "cfg.yaml:4: dpo.loss: expected sigmoid, ipo or hinge, found 'kto'");
  EXPECT_EQ(config_error_of(base + "dpo: {beta: 0}\n"), "cfg.yaml:4: dpo.beta: expected > 0, found 0");
  EXPECT_EQ(config_error_of(base + "dpo: {label_smoothing: 0.5}\n"),
            "cfg.yaml:4: dpo.label_smoothing: expected in [0, 0.5), found 0.5");
  EXPECT_NE(config_error_of(base + "dpo: {loss: ipo, label_smoothing: 0.1}\n").find("only the sigmoid loss"),
            std::string::npos);
  EXPECT_NE(config_error_of("stage: dpo\ndata: {format: sft}\ninit_from: runs/sft\n").find("stage dpo reads preference"),
            std::string::npos);
  EXPECT_NE(config_error_of("stage: dpo\ndata: {format: preference}\n").find("init_from: stage dpo"), std::string::npos);
  // Round trip through the dumper.
  const Config d = parse_config(base + "dpo: {beta: 0.25, loss: hinge, reference: runs/other}\n", "cfg.yaml");
  const Config back = parse_config(config_to_yaml(d), "dump.yaml");
  EXPECT_EQ(back.dpo.beta, 0.25);
  EXPECT_EQ(back.dpo.loss, DpoLoss::hinge);
  EXPECT_EQ(back.dpo.reference, "runs/other");
}

// ---- end to end ----

std::string dpo_args(const TinyRlhf& p, const std::string& run_dir, const std::string& extra = "") {
  return "train " + source_path("configs/tiny/dpo.yaml") + " " + tiny_overrides(p) + " run.dir=" + run_dir +
         " data.train=[" + p.pref + "] data.val=[" + p.pref_val + "] init_from=" + p.sft_run + " " + extra;
}


TEST(DpoStage, FirstStepIsLn2AndTheLossFalls) {
  const TinyRlhf& p = tiny_rlhf();
  const std::string run = scratch_dir("dpo_sigmoid") + "/r";
  auto r = run_infini(dpo_args(p, run, "train.max_steps=12 optim.lr=5e-3 schedule.min_lr=5e-4 checkpoint.every=0"));
  ASSERT_EQ(r.code, 0) << r.output;
  auto train = records_of(run, "train");
  ASSERT_EQ(train.size(), 12u);
  EXPECT_NEAR(train[0]["loss"].get<double>(), std::log(2.0), 1e-6);
  for (const char* k : {"rewards_chosen", "rewards_rejected", "margin", "accuracy"})
    EXPECT_NEAR(train[0][k].get<double>(), 0.0, 1e-6) << k;
  for (const char* k : {"logp_chosen", "logp_rejected"}) {
    ASSERT_TRUE(train[0].contains(k)) << k;
    EXPECT_LT(train[0][k].get<double>(), 0.0) << k;
  }
  double first = 0, last = 0;
  for (size_t i = 0; i < 3; ++i) first += train[i]["loss"].get<double>() / 3;
  for (size_t i = 9; i < 12; ++i) last += train[i]["loss"].get<double>() / 3;
  EXPECT_LT(last, first - 0.05) << r.output;
  EXPECT_GT(train.back()["margin"].get<double>(), 0.0);
  EXPECT_GT(train.back()["accuracy"].get<double>(), 0.5);
  auto eval = records_of(run, "eval");
  ASSERT_FALSE(eval.empty());
  EXPECT_TRUE(eval.back().contains("val_accuracy"));
}

TEST(DpoStage, IpoAndHingeStartAtTheirPolicyEqualsReferenceValues) {
  const TinyRlhf& p = tiny_rlhf();
  const std::string dir = scratch_dir("dpo_ipo_hinge");
  auto ipo = run_infini(dpo_args(p, dir + "/ipo", "train.max_steps=1 dpo.loss=ipo dpo.beta=0.5 checkpoint.every=0"));
  ASSERT_EQ(ipo.code, 0) << ipo.output;
  EXPECT_NEAR(records_of(dir + "/ipo", "train")[0]["loss"].get<double>(), 1.0, 1e-6);  // 1 / (4 * 0.5^2)
  auto hinge = run_infini(dpo_args(p, dir + "/hinge", "train.max_steps=1 dpo.loss=hinge checkpoint.every=0"));
  ASSERT_EQ(hinge.code, 0) << hinge.output;
  EXPECT_NEAR(records_of(dir + "/hinge", "train")[0]["loss"].get<double>(), 1.0, 1e-6);
  auto smooth = run_infini(dpo_args(p, dir + "/smooth", "train.max_steps=1 dpo.label_smoothing=0.2 checkpoint.every=0"));
  ASSERT_EQ(smooth.code, 0) << smooth.output;
  EXPECT_NEAR(records_of(dir + "/smooth", "train")[0]["loss"].get<double>(), std::log(2.0), 1e-6);
}

TEST(DpoStage, SeparateReferenceIsUsedAndLeftUnchanged) {
  // The reference from the SFT run's step 30, the policy from its step 60: h != 0 at the first step.
  const TinyRlhf& p = tiny_rlhf();
  const std::string ref = p.sft_run + "/checkpoints/step_00000030";
  ASSERT_TRUE(fs::exists(ref + "/model.safetensors"));
  const std::string before = read_text(ref + "/model.safetensors");
  const std::string run = scratch_dir("dpo_separate_ref") + "/r";
  auto r = run_infini(dpo_args(p, run, "train.max_steps=2 checkpoint.every=0 dpo.reference=" + ref));
  ASSERT_EQ(r.code, 0) << r.output;
  auto train = records_of(run, "train");
  ASSERT_EQ(train.size(), 2u);
  EXPECT_GT(std::abs(train[0]["loss"].get<double>() - std::log(2.0)), 1e-4);
  EXPECT_GT(std::abs(train[0]["margin"].get<double>()), 1e-6);
  EXPECT_EQ(read_text(ref + "/model.safetensors"), before);
}

TEST(DpoStage, ResumeIsExact) {
  const TinyRlhf& p = tiny_rlhf();
  const std::string straight = scratch_dir("dpo_straight") + "/r", split = scratch_dir("dpo_split") + "/r";
  const std::string common = "train.max_steps=6 checkpoint.every=0 train.eval_every=0";
  expect_exact_resume([&](const std::string& dir, const std::string& extra) { return dpo_args(p, dir, common + extra); },
                      straight, split, 3, "train", 6,
                      {"loss", "grad_norm", "margin", "accuracy", "rewards_chosen", "logp_rejected"});
}

}  // namespace test_dpo
}  // namespace infini::test
