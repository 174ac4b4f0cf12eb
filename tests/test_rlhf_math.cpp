// Tests of the reward-model and PPO arithmetic (train/rlhf/ppo_math.h) and rule rewards (train/rlhf/rule_rewards.h)
// against values derived by hand in the comments. No models, no files.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "train/rlhf/ppo_math.h"
#include "train/rlhf/rule_rewards.h"


namespace infini {
// Named, not anonymous: the suite also builds as one unity translation unit.
namespace test_rlhf_math {

torch::Tensor T(std::vector<float> v) { return torch::tensor(v, torch::kFloat); }
torch::Tensor T2(std::vector<float> v, int64_t rows) { return T(v).reshape({rows, -1}); }
double softplus(double x) { return std::log1p(std::exp(x)); }

TEST(RlhfMath, PairwiseLossAccuracyMargin) {
  // diffs r_c - r_r = [1, -1, 0]: loss = mean(softplus(-1), softplus(1), softplus(0)).
  auto rc = T({2, 0, 1}), rr = T({1, 1, 1});
  auto p = pairwise_loss(rc, rr);
  EXPECT_NEAR(p.loss.item<double>(), (softplus(-1) + softplus(1) + std::log(2.0)) / 3, 1e-6);
  EXPECT_NEAR(p.accuracy, 1.0 / 3, 1e-6);  // only the first pair is strictly ordered right
  EXPECT_NEAR(p.margin, 0.0, 1e-7);
  // margin 0.5 shifts every diff: [0.5, -1.5, -0.5]; centring 0.1 adds 0.1 * mean([9, 1, 4]).
  auto q = pairwise_loss(rc, rr, 0.5, 0.1);
  EXPECT_NEAR(q.loss.item<double>(), (softplus(-0.5) + softplus(1.5) + softplus(0.5)) / 3 + 0.1 * 14.0 / 3, 1e-6);
  EXPECT_NEAR(q.accuracy, 1.0 / 3, 1e-6);
}

TEST(RlhfMath, PairwiseLossGradientMatchesSigmoid) {
  // d/dr_c softplus(-(r_c - r_r)) / B = -sigmoid(-(diff)) / B; diff 1 -> -0.26894 / 2.
  auto rc = T({2, 3}).requires_grad_(true);
  auto rr = T({1, 3});
  pairwise_loss(rc, rr).loss.backward();
  EXPECT_NEAR(rc.grad()[0].item<double>(), -1.0 / (1.0 + std::exp(1.0)) / 2, 1e-6);
  EXPECT_NEAR(rc.grad()[1].item<double>(), -0.5 / 2, 1e-6);
}

TEST(RlhfMath, LastTokenScores) {
  auto s = T2({1, 2, 3, 4, 5, 6, 7, 8}, 2);
  auto l = torch::tensor({2, 4}, torch::kLong);
  auto r = last_token_scores(s, l);
  EXPECT_FLOAT_EQ(r[0].item<float>(), 2);
  EXPECT_FLOAT_EQ(r[1].item<float>(), 8);
}

TEST(RlhfMath, PerTokenRewardsKlOnEveryTokenScoreOnLast) {
  // logp - logp_ref = [0.5, -0.5, 0, 1] in both rows; kl_coef 0.1.
  // Row 0, mask [0,1,1,0], score 2: [0, +0.05, 0 + 2, 0].
  // Row 1, mask [1,1,1,1], score -1: [-0.05, +0.05, 0, -0.1 - 1].
  auto logp = T2({-1, -2, -3, -4, -1, -2, -3, -4}, 2);
  auto ref = T2({-1.5, -1.5, -3, -5, -1.5, -1.5, -3, -5}, 2);
  auto mask = T2({0, 1, 1, 0, 1, 1, 1, 1}, 2);
  auto r = per_token_rewards(logp, ref, mask, T({2, -1}), 0.1);
  auto want = T2({0, 0.05f, 2, 0, -0.05f, 0.05f, 0, -1.1f}, 2);
  EXPECT_TRUE(torch::allclose(r, want, 1e-6, 1e-6)) << r;
}

TEST(RlhfMath, GaeHandComputed) {
  // Response of 4 tokens, rewards [0, 0, 0, 1], values [0.5, 0.4, 0.3, 0.2], gamma 0.9, lambda 0.8
  // (gamma * lambda = 0.72), V = 0 past the end:
  //   t=3: delta = 1 - 0.2 = 0.8                     A3 = 0.8
  //   t=2: delta = 0.9*0.2 - 0.3 = -0.12             A2 = -0.12 + 0.72*0.8    = 0.456
  //   t=1: delta = 0.9*0.3 - 0.4 = -0.13             A1 = -0.13 + 0.72*0.456  = 0.19832
  //   t=0: delta = 0.9*0.4 - 0.5 = -0.14             A0 = -0.14 + 0.72*0.19832 = 0.0027904
  // returns = A + V = [0.5027904, 0.59832, 0.756, 1.0].
  // The row is embedded with a prompt position before and a pad after (mask 0, junk values 9 and 7)
  // which must not change anything.
  auto rewards = T2({5, 0, 0, 0, 1, 3}, 1);
  auto values = T2({9, 0.5f, 0.4f, 0.3f, 0.2f, 7}, 1);
  auto mask = T2({0, 1, 1, 1, 1, 0}, 1);
  auto g = gae(rewards, values, mask, 0.9, 0.8);
  auto want_a = T2({0, 0.0027904f, 0.19832f, 0.456f, 0.8f, 0}, 1);
  auto want_r = T2({0, 0.5027904f, 0.59832f, 0.756f, 1.0f, 0}, 1);
  EXPECT_TRUE(torch::allclose(g.advantages, want_a, 1e-5, 1e-6)) << g.advantages;
  EXPECT_TRUE(torch::allclose(g.returns, want_r, 1e-5, 1e-6)) << g.returns;
  // gamma = lambda = 1: A_t = sum of future rewards - V_t = 1 - V_t.
  auto g1 = gae(rewards, values, mask, 1.0, 1.0);
  EXPECT_TRUE(torch::allclose(g1.advantages, T2({0, 0.5f, 0.6f, 0.7f, 0.8f, 0}, 1), 1e-6, 1e-6));
}

TEST(RlhfMath, LeaveOneOutBaselineMixedGroupsAndRlooAdvantages) {
  // Two prompts, four samples each. Scores [1, 0, 0, 1 | 2, 2, 2, 5]:
  //   group 1 sum 2:  b = [(2-1)/3, 2/3, 2/3, 1/3];  group 2 sum 11: b = [9/3, 9/3, 9/3, 6/3].
  auto s = T({1, 0, 0, 1, 2, 2, 2, 5});
  auto b = leave_one_out_baseline(s, 4);
  EXPECT_TRUE(torch::allclose(b, T({1.f / 3, 2.f / 3, 2.f / 3, 1.f / 3, 3, 3, 3, 2}), 1e-6, 1e-6)) << b;
  // Groups of 2: each baseline is the other sample's score.
  EXPECT_TRUE(torch::equal(leave_one_out_baseline(T({1, 0, 3, 7}), 2), T({0, 1, 7, 3})));
  EXPECT_THROW(leave_one_out_baseline(s, 3), Error);
  EXPECT_THROW(leave_one_out_baseline(s, 1), Error);
  // Groups {1,1,0} (mixed), {1,1,1}, {0,0,0}, {0.5,0.5,0.2} (mixed): half of them.
  EXPECT_DOUBLE_EQ(mixed_group_fraction(T({1, 1, 0, 1, 1, 1, 0, 0, 0, .5f, .5f, .2f}), 3), 0.5);
  EXPECT_DOUBLE_EQ(mixed_group_fraction(T({1, 0}), 1), 0.0);
  // The rloo advantage as the stage builds it: per-token rewards of (score - baseline), then GAE
  // with V = 0, gamma 1, lambda 1 = the return-to-go. One row, mask [0, 1, 1, 1], score - baseline
  // = 2/3, logp - logp_ref = [., 0.5, -0.5, 1], kl_coef 0.1: rewards [0, -0.05, 0.05, -0.1 + 2/3],
  // advantages [0, 0.5667, 0.6167, 0.5667].
  auto logp = T2({-1, -1, -2, -1}, 1), ref = T2({-1, -1.5f, -1.5f, -2}, 1), mask = T2({0, 1, 1, 1}, 1);
  auto r = per_token_rewards(logp, ref, mask, T({2.f / 3}), 0.1);
  auto g = gae(r, torch::zeros_like(r), mask, 1.0, 1.0);
  EXPECT_TRUE(torch::allclose(g.advantages, T2({0, 0.56666667f, 0.61666667f, 0.56666667f}, 1), 1e-6, 1e-6))
      << g.advantages;
}

TEST(RlhfMath, WhitenOverMask) {
  // x = [1, 2, 3, 4] (the 100 is masked out): mean 2.5, unbiased var 5/3.
  auto x = T2({1, 2, 100, 3, 4}, 1), m = T2({1, 1, 0, 1, 1}, 1);
  auto w = masked_whiten(x, m);
  const double s = std::sqrt(5.0 / 3.0 + 1e-8);
  EXPECT_TRUE(torch::allclose(w, T2({float(-1.5 / s), float(-0.5 / s), 0, float(0.5 / s), float(1.5 / s)}, 1), 1e-5,
                              1e-6)) << w;
}

// Two ranks holding rows {1, 2, 100} and {3, 4} of the example above (the 100 masked out): each
// rank's part of the global whitening is the whole batch's, when the sums of the other rank arrive
// through the hook (first (sum, count), then the squared deviations from the global mean 2.5).
TEST(RlhfMath, WhitenAcrossRanksIsTheWholeBatchs) {
  auto xa = T2({1, 2, 100}, 1), ma = T2({1, 1, 0}, 1);
  auto xb = T2({3, 4}, 1), mb = T2({1, 1}, 1);
  auto as_rank = [](const torch::Tensor& other_x, const torch::Tensor& other_m) {
    return [other_x, other_m, call = 0, mean = 0.0](torch::Tensor& sums) mutable {
      if (call++ == 0) {
        sums[0] += (other_x * other_m).sum().item<double>();
        sums[1] += other_m.sum().item<double>();
        mean = sums[0].item<double>() / sums[1].item<double>();  // 10 / 4 on both ranks
      } else {
        sums[0] += ((other_x - mean).pow(2) * other_m).sum().item<double>();
      }
    };
  };
  const double s = std::sqrt(5.0 / 3.0 + 1e-8);
  auto wa = masked_whiten_across(xa, ma, as_rank(xb, mb));
  auto wb = masked_whiten_across(xb, mb, as_rank(xa, ma));
  EXPECT_TRUE(torch::allclose(wa, T2({float(-1.5 / s), float(-0.5 / s), 0}, 1), 1e-5, 1e-6)) << wa;
  EXPECT_TRUE(torch::allclose(wb, T2({float(0.5 / s), float(1.5 / s)}, 1), 1e-5, 1e-6)) << wb;
  // One process: the identity hook gives masked_whiten.
  auto x = torch::randn({3, 7}), m = (torch::rand({3, 7}) > 0.3).to(torch::kFloat);
  EXPECT_TRUE(torch::allclose(masked_whiten_across(x, m, [](torch::Tensor&) {}), masked_whiten(x, m), 1e-5, 1e-6));
}

TEST(RlhfMath, PolicyLossClipsBothSidesBothSigns) {
  // ratios [1.5, 0.5, 1.5, 0.5, 1.1], advantages [1, 1, -1, -1, 2], eps 0.2:
  //   1.5, A=+1: max(-1.5, -1.2) = -1.2 (clipped)     0.5, A=+1: max(-0.5, -0.8) = -0.5
  //   1.5, A=-1: max( 1.5,  1.2) =  1.5               0.5, A=-1: max( 0.5,  0.8) =  0.8 (clipped)
  //   1.1, A=+2: inside the band, -2.2
  // loss = (-1.2 - 0.5 + 1.5 + 0.8 - 2.2) / 5 = -0.32; clip fraction 2/5.
  auto ratio = T2({1.5, 0.5, 1.5, 0.5, 1.1}, 1);
  auto logp_new = ratio.log().requires_grad_(true);
  auto logp_old = torch::zeros_like(ratio);
  auto adv = T2({1, 1, -1, -1, 2}, 1);
  auto mask = torch::ones_like(ratio);
  auto p = policy_loss(logp_new, logp_old, adv, mask, 0.2);
  EXPECT_NEAR(p.loss.item<double>(), -0.32, 1e-6);
  EXPECT_NEAR(p.clip_fraction, 0.4, 1e-6);
  double kl = 0;
  for (double r : {1.5, 0.5, 1.5, 0.5, 1.1}) kl += 0.5 * std::log(r) * std::log(r) / 5;
  EXPECT_NEAR(p.approx_kl, kl, 1e-6);
  // Clipped tokens get no gradient; the others d(-A r)/dlogp = -A r / 5.
  p.loss.backward();
  auto want = T2({0, -0.5f / 5, 1.5f / 5, 0, -2.2f / 5}, 1);
  EXPECT_TRUE(torch::allclose(logp_new.grad(), want, 1e-5, 1e-6)) << logp_new.grad();
  // A masked-out token changes nothing: mask the last one -> mean over 4 = (-1.2-0.5+1.5+0.8)/4.
  auto mask4 = T2({1, 1, 1, 1, 0}, 1);
  EXPECT_NEAR(policy_loss(ratio.log(), logp_old, adv, mask4, 0.2).loss.item<double>(), 0.6 / 4, 1e-6);
}

TEST(RlhfMath, ValueLossClipped) {
  // v_old 0, eps 0.2; v = [0.5, -0.1, 0.3], R = [1, 1, -1]:
  //   0.5 -> clipped 0.2: max(0.25, 0.64) = 0.64 (clipped)
  //  -0.1 -> inside: 1.21
  //   0.3 -> clipped 0.2: max(1.69, 1.44) = 1.69
  // loss = 0.5 * (0.64 + 1.21 + 1.69) / 3 = 0.59; clip fraction 1/3.
  auto v = T2({0.5, -0.1f, 0.3f}, 1);
  auto l = value_loss(v, torch::zeros_like(v), T2({1, 1, -1}, 1), torch::ones_like(v), 0.2);
  EXPECT_NEAR(l.loss.item<double>(), 0.59, 1e-6);
  EXPECT_NEAR(l.clip_fraction, 1.0 / 3, 1e-6);
}

TEST(RlhfMath, ExplainedVariance) {
  auto R = T2({1, 2, 3, 4}, 1), m = torch::ones_like(R);
  EXPECT_NEAR(explained_variance(R, R, m), 1.0, 1e-9);
  // values = mean: residual variance equals the returns' variance -> 0.
  EXPECT_NEAR(explained_variance(torch::full_like(R, 2.5), R, m), 0.0, 1e-6);
}

TEST(RlhfMath, KlControllerAdaptive) {
  KLController k;
  k.value = 0.2;
  k.adaptive = true;
  k.target = 6;
  k.horizon = 10000;
  k.update(3.0, 256);  // error clipped to -0.2: 0.2 * (1 - 0.2 * 256 / 10000)
  EXPECT_NEAR(k.value, 0.2 * (1 - 0.2 * 0.0256), 1e-12);
  const double before = k.value;
  k.update(6.6, 100);  // error +0.1: * (1 + 0.1 * 0.01)
  EXPECT_NEAR(k.value, before * 1.001, 1e-12);
  KLController fixed;
  fixed.value = 0.05;
  fixed.update(100.0, 1000);
  EXPECT_EQ(fixed.value, 0.05);
  KLController back;
  back.load_state(k.state(), "test");
  EXPECT_EQ(back.value, k.value);
}

TEST(RlhfRewards, RuleReward) {
  EXPECT_EQ(rule_reward(" 42\n", "42", "exact"), 1.0);
  EXPECT_EQ(rule_reward("42 apples", "42", "exact"), 0.0);
  EXPECT_EQ(rule_reward("42.0", "42", "exact"), 0.0);
  EXPECT_EQ(rule_reward("42.0", "42", "numeric"), 1.0);
  EXPECT_EQ(rule_reward("-7", " -7 ", "numeric"), 1.0);
  EXPECT_EQ(rule_reward("41", "42", "numeric"), 0.0);
  EXPECT_EQ(rule_reward("forty-two", "42", "numeric"), 0.0);
  EXPECT_EQ(rule_reward("", "42", "numeric"), 0.0);
  EXPECT_THROW(rule_reward("1", "1", "fuzzy"), ConfigError);
}

// GRPO: groups of 4; group 1 scores 1, 0, 0, 1 (mean 0.5, unbiased std sqrt(1/3)), group 2 all
// equal (advantage exactly 0, no NaN). Unscaled: the centred scores.
TEST(RlhfMath, GroupAdvantagesCentreAndScaleEachGroup) {
  const auto score = torch::tensor({1.f, 0.f, 0.f, 1.f, 2.f, 2.f, 2.f, 2.f});
  const auto a = group_advantages(score, 4, true);
  const double scaled = 0.5 / (std::sqrt(1.0 / 3.0) + 1e-4);
  const std::vector<double> want = {scaled, -scaled, -scaled, scaled, 0, 0, 0, 0};
  for (int64_t i = 0; i < 8; ++i) EXPECT_NEAR(a[i].item<double>(), want[static_cast<size_t>(i)], 1e-6) << i;
  EXPECT_TRUE(torch::equal(a.slice(0, 4), torch::zeros({4})));
  const auto c = group_advantages(score, 4, false);
  for (int64_t i = 0; i < 4; ++i) EXPECT_NEAR(c[i].item<double>(), i == 0 || i == 3 ? 0.5 : -0.5, 1e-7);
  EXPECT_THROW(group_advantages(score, 3, true), Error);
}

// k3 at p = 0.5, p_ref = 0.25: exp(ln 0.5) - ln 0.5 - 1 = ln 2 - 0.5; zero where the two agree;
// d/dlogp = 1 - p_ref / p = 0.5.
TEST(RlhfMath, K3KlValueAndGradient) {
  auto logp = torch::tensor({std::log(0.5f), std::log(0.3f)}).requires_grad_(true);
  const auto ref = torch::tensor({std::log(0.25f), std::log(0.3f)});
  const auto k3 = k3_kl(logp, ref);
  EXPECT_NEAR(k3[0].item<double>(), std::log(2.0) - 0.5, 1e-6);
  EXPECT_NEAR(k3[1].item<double>(), 0.0, 1e-7);
  k3.sum().backward();
  EXPECT_NEAR(logp.grad()[0].item<double>(), 0.5, 1e-6);
  EXPECT_NEAR(logp.grad()[1].item<double>(), 0.0, 1e-6);
}

// Token averaging weighs long responses more; sequence averaging weighs each response once.
TEST(RlhfMath, SequenceMeanAveragesEachRowFirst) {
  const auto x = torch::tensor({1.f, 2.f, 3.f, 4.f, 9.f, 9.f, 5.f, 5.f, 5.f}).view({3, 3});
  const auto m = torch::tensor({1.f, 1.f, 1.f, 1.f, 0.f, 0.f, 0.f, 0.f, 0.f}).view({3, 3});
  EXPECT_NEAR(masked_sequence_mean(x, m).item<double>(), (2.0 + 4.0) / 2, 1e-6);  // the empty row counts not
  EXPECT_NEAR(masked_mean(x, m).item<double>(), 10.0 / 4, 1e-6);
  // policy_loss with advantages 1 and ratio 1 is -1 either way; with advantage 1 on row 0 and 0 on
  // row 1 it is -3/4 per token and -1/2 per sequence.
  const auto logp = torch::zeros({3, 3});
  auto adv = torch::zeros({3, 3});
  adv[0].fill_(1.f);
  EXPECT_NEAR(policy_loss(logp, logp, adv, m, 0.2).loss.item<double>(), -0.75, 1e-6);
  EXPECT_NEAR(policy_loss(logp, logp, adv, m, 0.2, true).loss.item<double>(), -0.5, 1e-6);
}

}  // namespace test_rlhf_math
}  // namespace infini
