// End-to-end tests of stage reward, stage ppo and `infini eval reward` through the CLI on tiny models:
// the reward model learns, PPO runs with a separate reference, resumes exactly, and raises reward.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/safetensors.h"
#include "support/oracle.h"
#include "support/run_util.h"
#include "support/tiny_rlhf.h"
#include "train/run/checkpoint_dir.h"
#include "train/run/metrics_log.h"
#include "train/run/tensorboard_log.h"


namespace infini::test {
// Named, not anonymous: the suite also builds as one unity translation unit.
namespace test_rlhf_stages {

namespace fs = std::filesystem;

// Sum over the tensors of safetensors file a of |a - b| (b must hold each of them): 0 = same weights.
double weight_distance(const std::string& file_a, const std::string& file_b) {
  auto a = load_safetensors(file_a), b = load_safetensors(file_b);
  double d = 0;
  for (auto& [name, t] : a.tensors) d += (t - b.tensors.at(name)).abs().sum().item<double>();
  return d;
}

std::string ppo_args(const TinyRlhf& p, const std::string& run_dir, const std::string& extra = "") {
  return "train " + source_path("configs/tiny/ppo.yaml") + " " + tiny_overrides(p) + " run.dir=" + run_dir +
         " data.train=[" + p.prompts + "] data.val=[" + p.prompts_val + "] init_from=" + p.sft_run +
         " ppo.reward_model=" + p.reward_run + " " + extra;
}


TEST(RlhfStages, RewardModelLearnsPairs) {
  const TinyRlhf& p = tiny_rlhf();
  auto train = records_of(p.reward_run, "train");
  ASSERT_GE(train.size(), 40u);
  // Loss starts near log 2 (a fresh head scores both sides alike) and must fall: 16 training pairs
  // seen 20 times each are memorised even where the tiny model cannot yet add.
  double first = 0, last = 0;
  for (size_t i = 0; i < 5; ++i) first += train[i]["loss"].get<double>() / 5;
  for (size_t i = train.size() - 5; i < train.size(); ++i) last += train[i]["loss"].get<double>() / 5;
  EXPECT_NEAR(train[0]["loss"].get<double>(), std::log(2.0), 0.1);
  EXPECT_LT(last, first - 0.1) << "first " << first << " last " << last;
  // Accuracy and margin are logged and consistent with the loss falling.
  EXPECT_GT(train.back()["accuracy"].get<double>(), 0.5);
  EXPECT_GT(train.back()["margin"].get<double>(), 0.0);
  auto eval = records_of(p.reward_run, "eval");
  ASSERT_FALSE(eval.empty());
  EXPECT_TRUE(eval.back().contains("val_accuracy"));

  // `infini eval reward` over the held-out pairs agrees with the format and writes JSON.
  const std::string out = scratch_dir("rlhf_eval_reward") + "/r.json";
  auto r = run_infini("eval reward --checkpoint " + p.reward_run + " --data " + p.pref_val + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  auto j = nlohmann::json::parse(read_text(out));
  EXPECT_EQ(j["pairs"].get<int64_t>(), 64);
  EXPECT_GE(j["accuracy"].get<double>(), 0.0);
  EXPECT_LE(j["accuracy"].get<double>(), 1.0);
  // Two ranks under a launcher, batches of 6 (10 of 6 pairs and one of 4: rank 0 scores 34 pairs,
  // rank 1 30): rank 0 writes the same sums, rank 1 nothing.
  {
    const std::string dir = scratch_dir("rlhf_eval_reward_ranks");
    const std::string args = std::string(INFINI_BINARY) + " eval reward --checkpoint " + p.reward_run + " --data " +
                             p.pref_val + " --batch 6 --threads 1 --out ";
    auto one = run_cmd("timeout 300 " + args + dir + "/one.json");
    ASSERT_EQ(one.code, 0) << one.output;
    auto two = two_ranks(args, dir);
    ASSERT_EQ(two.code, 0) << two.output << read_text(dir + "/rank1.out");
    EXPECT_FALSE(std::filesystem::exists(dir + "/rank1.json")) << "only rank 0 writes --out";
    auto a = nlohmann::json::parse(read_text(dir + "/one.json"));
    auto b = nlohmann::json::parse(read_text(dir + "/two.json"));
    EXPECT_EQ(b["pairs"].get<int64_t>(), 64);
    for (const char* k : {"accuracy", "mean_margin", "loss"})
      EXPECT_NEAR(a[k].get<double>(), b[k].get<double>(), 1e-9) << k;
    // Batches of 6 against 8: the same pairs, the same figures.
    EXPECT_NEAR(a["mean_margin"].get<double>(), j["mean_margin"].get<double>(), 1e-5);
  }
  // An LM checkpoint is refused with one clear line.
  auto bad = run_infini("eval reward --checkpoint " + p.sft_run + " --data " + p.pref_val);
  EXPECT_EQ(bad.code, 1) << bad.output;
  EXPECT_NE(bad.output.find("reward model"), std::string::npos) << bad.output;
}

TEST(RlhfStages, RewardInitFromARewardModelKeepsItsHead) {
  // init_from an SFT model starts the score head fresh (loss ~log 2, see above); init_from a reward
  // model must keep its trained head: the first step's loss on the memorised pairs is the source's.
  const TinyRlhf& p = tiny_rlhf();
  const std::string run = scratch_dir("rlhf_reward_from_reward") + "/r";
  auto r = run_infini("train " + source_path("configs/tiny/reward.yaml") + " " + tiny_overrides(p) + " run.dir=" +
                      run + " data.train=[" + p.pref + "] data.val=[" + p.pref_val + "] init_from=" + p.reward_run +
                      " train.max_steps=1 train.log_every=1");
  ASSERT_EQ(r.code, 0) << r.output;
  auto train = records_of(run, "train");
  ASSERT_EQ(train.size(), 1u);
  const double source_last = records_of(p.reward_run, "train").back()["loss"].get<double>();
  EXPECT_LT(train[0]["loss"].get<double>(), std::log(2.0) - 0.1);
  EXPECT_LT(train[0]["loss"].get<double>(), source_last + 0.2) << "source's last loss " << source_last;
}

TEST(RlhfStages, PpoRunsWithSeparateFrozenReference) {
  const TinyRlhf& p = tiny_rlhf();
  const std::string run = scratch_dir("rlhf_ppo_frozen");
  auto sft_hash = read_text(model_file(p.sft_run));
  auto rm_hash = read_text(model_file(p.reward_run));
  auto r = run_infini(ppo_args(p, run, "train.max_steps=3"));
  ASSERT_EQ(r.code, 0) << r.output;
  auto ppo = records_of(run, "ppo");
  ASSERT_EQ(ppo.size(), 3u);
  for (const char* k : {"reward_mean", "reward_std", "kl", "policy_loss", "value_loss", "clip_fraction", "approx_kl",
                        "entropy", "explained_variance", "response_length", "eos_fraction"})
    EXPECT_TRUE(ppo.back().contains(k)) << k;
  // Rollout 1 samples from the actor = reference: KL exactly 0. After updates the actor moved but the
  // reference did not, so the KL of later rollouts is not 0 (it would stay 0 if they were one model).
  EXPECT_NEAR(ppo[0]["kl"].get<double>(), 0.0, 1e-5);
  EXPECT_GT(std::fabs(ppo[2]["kl"].get<double>()), 1e-6);
  // The frozen models' files are untouched; the checkpoint holds actor/ and critic/ and one state.
  EXPECT_EQ(read_text(model_file(p.sft_run)), sft_hash);
  EXPECT_EQ(read_text(model_file(p.reward_run)), rm_hash);
  const std::string ck = resolve_checkpoint(run);
  EXPECT_TRUE(fs::exists(ck + "/actor/model.safetensors"));
  EXPECT_TRUE(fs::exists(ck + "/actor/optimizer.safetensors"));
  EXPECT_TRUE(fs::exists(ck + "/critic/model.safetensors"));
  EXPECT_TRUE(fs::exists(ck + "/critic/optimizer.safetensors"));
  auto st = nlohmann::json::parse(read_text(ck + "/trainer_state.json"));
  EXPECT_EQ(st["step"].get<int64_t>(), 3);
  EXPECT_TRUE(st.contains("kl_controller"));
  // No sampling generator state: a row's generator is made from run.seed, the rollout and the row.
  EXPECT_FALSE(st.contains("sampling_rng"));
  EXPECT_TRUE(st.contains("loader"));
  // The actor's weights moved away from the SFT weights.
  EXPECT_GT(weight_distance(ck + "/actor/model.safetensors", model_file(p.sft_run)), 0.0);
}

// PPO's records reach the TensorBoard event files: ppo/ per rollout, eval/ for the held-out accuracy
// (read back with TensorBoard's own reader; skipped without it, see tests/support/oracle.h).
TEST(RlhfStages, PpoScalarsReachTensorBoard) {
  REQUIRE_ORACLE_MODULE("tensorboard");
  const TinyRlhf& p = tiny_rlhf();
  const std::string run = scratch_dir("rlhf_ppo_tensorboard");
  auto r = run_infini(ppo_args(p, run, "train.max_steps=2"));
  ASSERT_EQ(r.code, 0) << r.output;
  const nlohmann::json got = tensorboard_read(run);
  size_t n = 0;
  for (const auto& rec : read_metrics(run + "/metrics.jsonl"))
    for (const auto& [tag, v] : record_scalars(rec)) {
      SCOPED_TRACE(tag);
      ASSERT_TRUE(got["scalars"].contains(tag));
      bool found = false;
      for (const auto& e : got["scalars"][tag])
        if (e[0].get<int64_t>() == rec["step"].get<int64_t>()) found = e[1].get<float>() == v;
      EXPECT_TRUE(found) << "step " << rec["step"];
      ++n;
    }
  EXPECT_GT(n, 40u);
  EXPECT_EQ(got["scalars"]["ppo/kl"].size(), 2u);
  EXPECT_EQ(got["scalars"]["eval/true_accuracy"].size(), 2u);  // before the first rollout and at the end
}

TEST(RlhfStages, PpoResumeIsExact) {
  const TinyRlhf& p = tiny_rlhf();
  const std::string straight = scratch_dir("rlhf_ppo_straight"), split = scratch_dir("rlhf_ppo_split");
  auto a = run_infini(ppo_args(p, straight, "train.max_steps=4 checkpoint.every=0"));
  ASSERT_EQ(a.code, 0) << a.output;
  auto b1 = run_infini(ppo_args(p, split, "train.max_steps=4 checkpoint.every=0 train.stop_after=2"));
  ASSERT_EQ(b1.code, 0) << b1.output;
  ASSERT_EQ(records_of(split, "ppo").size(), 2u);
  auto b2 = run_infini(ppo_args(p, split, "train.max_steps=4 checkpoint.every=0"));
  ASSERT_EQ(b2.code, 0) << b2.output;
  auto ra = records_of(straight, "ppo"), rb = records_of(split, "ppo");
  ASSERT_EQ(ra.size(), 4u);
  ASSERT_EQ(rb.size(), 4u);
  for (size_t i = 0; i < 4; ++i)
    for (const char* k : {"reward_mean", "kl", "policy_loss", "value_loss", "response_length", "entropy"})
      EXPECT_EQ(ra[i][k].get<double>(), rb[i][k].get<double>()) << "rollout " << i + 1 << " " << k;
  for (const char* m : {"actor", "critic"}) {
    auto x = load_safetensors(straight + "/checkpoints/step_00000004/" + m + "/model.safetensors");
    auto y = load_safetensors(split + "/checkpoints/step_00000004/" + m + "/model.safetensors");
    for (auto& [name, t] : x.tensors) EXPECT_TRUE(torch::equal(t, y.tensors.at(name))) << m << " " << name;
  }
}

TEST(RlhfStages, PpoRaisesMeanReward) {
  // The reward model's score is what PPO climbs: after a dozen rollouts the mean score of sampled
  // responses is above that of the first rollouts, while the KL to the reference stays bounded.
  const TinyRlhf& p = tiny_rlhf();
  const std::string run = scratch_dir("rlhf_ppo_learns");
  auto r = run_infini(ppo_args(p, run, "train.max_steps=12 train.batch_size=16 ppo.reward_source=model "
                                   "ppo.actor_lr=1e-3 ppo.kl_coef=0.01 ppo.eval_every=0 checkpoint.every=0"));
  ASSERT_EQ(r.code, 0) << r.output;
  auto ppo = records_of(run, "ppo");
  ASSERT_EQ(ppo.size(), 12u);
  double first = 0, last = 0;
  for (size_t i = 0; i < 3; ++i) first += ppo[i]["reward_mean"].get<double>() / 3;
  for (size_t i = 9; i < 12; ++i) last += ppo[i]["reward_mean"].get<double>() / 3;
  EXPECT_GT(last, first + 0.1) << r.output;
  for (auto& rec : ppo) EXPECT_LT(std::fabs(rec["kl"].get<double>()), 50.0);
}

TEST(RlhfStages, PpoReportsTrueAccuracyPerValFile) {
  // Two held-out files (say, two tasks): the accuracy of each is logged, and the overall accuracy is
  // their prompt-weighted mean.
  const TinyRlhf& p = tiny_rlhf();
  const std::string run = scratch_dir("rlhf_ppo_per_file");
  std::vector<std::string> lines;
  {
    std::ifstream in(p.prompts_val);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  ASSERT_EQ(lines.size(), 32u);
  const std::string a = run + "_part_a.jsonl", b = run + "_part_b.jsonl";
  {
    std::ofstream fa(a), fb(b);
    for (size_t i = 0; i < lines.size(); ++i) (i < 10 ? fa : fb) << lines[i] << "\n";
  }
  auto r = run_infini(ppo_args(p, run, "train.max_steps=1 ppo.eval_prompts=32 ppo.eval_every=0 checkpoint.every=0 "
                                   "data.val=[" + a + "," + b + "]"));
  ASSERT_EQ(r.code, 0) << r.output;
  auto ev = records_of(run, "eval");
  ASSERT_FALSE(ev.empty());
  const auto& per = ev.front()["true_accuracy_per_file"];
  const std::string stem_a = fs::path(a).stem().string(), stem_b = fs::path(b).stem().string();
  ASSERT_TRUE(per.contains(stem_a) && per.contains(stem_b)) << ev.front().dump();
  const double acc_a = per[stem_a].get<double>(), acc_b = per[stem_b].get<double>();
  EXPECT_NEAR(ev.front()["true_accuracy"].get<double>(), (10 * acc_a + 22 * acc_b) / 32, 1e-12);
  // Each is a fraction of that file's prompts answered exactly.
  EXPECT_NEAR(acc_a * 10, std::round(acc_a * 10), 1e-9);
  EXPECT_NEAR(acc_b * 22, std::round(acc_b * 22), 1e-9);
}

TEST(RlhfStages, PpoSamplesSeveralResponsesPerPrompt) {
  // ppo.samples_per_prompt = 4 with 4 prompts: a rollout of 16 responses, and the share of prompts whose
  // four responses scored differently is logged as a multiple of 1/4.
  const TinyRlhf& p = tiny_rlhf();
  const std::string run = scratch_dir("rlhf_ppo_group");
  auto r = run_infini(ppo_args(p, run, "train.max_steps=2 train.batch_size=4 ppo.samples_per_prompt=4 "
                                   "ppo.reward_source=rule ppo.eval_every=0 checkpoint.every=0"));
  ASSERT_EQ(r.code, 0) << r.output;
  auto ppo = records_of(run, "ppo");
  ASSERT_EQ(ppo.size(), 2u);
  for (auto& rec : ppo) {
    ASSERT_TRUE(rec.contains("mixed_groups")) << rec.dump();
    const double m = rec["mixed_groups"].get<double>();
    EXPECT_NEAR(m * 4, std::round(m * 4), 1e-9);
    // 16 responses: distinct_responses is a multiple of 1/16.
    const double d = rec["distinct_responses"].get<double>();
    EXPECT_NEAR(d * 16, std::round(d * 16), 1e-9) << d;
  }
  auto bad = run_infini(ppo_args(p, run + "_bad", "ppo.samples_per_prompt=0"));
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_NE(bad.output.find("ppo.samples_per_prompt"), std::string::npos) << bad.output;
}

TEST(RlhfStages, PpoCriticWarmupLeavesTheActorUnchanged) {
  // ppo.critic_warmup = K: for the first K rollouts only the critic learns, so after K rollouts the
  // actor's weights are still exactly the SFT weights while the critic's have moved.
  const TinyRlhf& p = tiny_rlhf();
  const std::string run = scratch_dir("rlhf_ppo_warmup");
  auto r = run_infini(ppo_args(p, run, "train.max_steps=2 ppo.critic_warmup=2 ppo.eval_every=0 checkpoint.every=0"));
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string ck = resolve_checkpoint(run);
  EXPECT_EQ(weight_distance(ck + "/actor/model.safetensors", model_file(p.sft_run)), 0.0);
  EXPECT_GT(weight_distance(ck + "/critic/model.safetensors", model_file(p.reward_run)), 0.0);
}

TEST(RlhfStages, PpoRlooUpdatesTheActorWithoutACritic) {
  // ppo.advantage = rloo: the actor learns from each response's score against the prompt's other
  // samples; the critic is not used, so it is still exactly the reward model it started from.
  const TinyRlhf& p = tiny_rlhf();
  const std::string run = scratch_dir("rlhf_ppo_rloo");
  auto r = run_infini(ppo_args(p, run, "train.max_steps=2 train.batch_size=4 ppo.samples_per_prompt=4 "
                                   "ppo.advantage=rloo ppo.reward_source=model ppo.eval_every=0 checkpoint.every=0"));
  ASSERT_EQ(r.code, 0) << r.output;
  auto ppo = records_of(run, "ppo");
  ASSERT_EQ(ppo.size(), 2u);
  EXPECT_FALSE(ppo[0].contains("explained_variance"));
  EXPECT_EQ(ppo[0]["value_loss"].get<double>(), 0.0);
  const std::string ck = resolve_checkpoint(run);
  EXPECT_EQ(weight_distance(ck + "/critic/model.safetensors", model_file(p.reward_run)), 0.0);
  EXPECT_GT(weight_distance(ck + "/actor/model.safetensors", model_file(p.sft_run)), 0.0);
  // rloo without several samples per prompt is refused with the key named.
  auto bad = run_infini(ppo_args(p, run + "_bad", "ppo.advantage=rloo"));
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_NE(bad.output.find("ppo.advantage"), std::string::npos) << bad.output;
}

// ppo.advantage = grpo: group-normalised scores, the k3 KL as a loss term (logged as kl_loss), no
// critic (still the reward model it started from); a run stopped after 2 rollouts and resumed ends
// where the straight run ends, to the bit.
TEST(RlhfStages, PpoGrpoLearnsWithoutACriticAndResumesExactly) {
  const TinyRlhf& p = tiny_rlhf();
  const std::string straight = scratch_dir("rlhf_grpo_straight"), split = scratch_dir("rlhf_grpo_split");
  const std::string args = "train.max_steps=4 train.batch_size=4 ppo.samples_per_prompt=4 ppo.advantage=grpo "
                           "ppo.loss_average=sequence ppo.reward_source=model ppo.eval_every=0 checkpoint.every=0 "
                           "ppo.ppo_epochs=1 ppo.mini_batch_size=16";  // one update per rollout
  expect_exact_resume([&](const std::string& dir, const std::string& extra) { return ppo_args(p, dir, args + extra); },
                      straight, split, 2, "ppo", 4,
                      {"reward_mean", "kl", "kl_loss", "policy_loss", "response_length", "entropy"},
                      {"actor/model.safetensors", "critic/model.safetensors"});
  auto ra = records_of(straight, "ppo");
  ASSERT_EQ(ra.size(), 4u);
  EXPECT_FALSE(ra[0].contains("explained_variance"));
  EXPECT_EQ(ra[0]["value_loss"].get<double>(), 0.0);
  EXPECT_EQ(ra[0]["kl_loss"].get<double>(), 0.0);  // the one update of rollout 1 starts from the reference
  EXPECT_GT(ra[3]["kl_loss"].get<double>(), 0.0);
  const std::string ck = resolve_checkpoint(straight);
  EXPECT_EQ(weight_distance(ck + "/critic/model.safetensors", model_file(p.reward_run)), 0.0);
  EXPECT_GT(weight_distance(ck + "/actor/model.safetensors", model_file(p.sft_run)), 0.0);
}

TEST(RlhfStages, DeeperRewardModelGrownFromTheSftTrunk) {
  // init_extra_layers: a 3-block reward model from the 2-block SFT model. At lr 0 its checkpoint
  // holds the SFT blocks unchanged and a third block equal to a fresh model's (same seed); without
  // the flag the depth mismatch is an error naming the key. With optim.freeze_layers only the new
  // block and the head learn. PPO then builds the reward model and the
  // critic with the reward model's own depth.
  const TinyRlhf& p = tiny_rlhf();
  const std::string dir = scratch_dir("rlhf_reward_deeper");
  auto reward = [&](const std::string& run, const std::string& extra) {
    return run_infini("train " + source_path("configs/tiny/reward.yaml") + " " + tiny_overrides(p) + " run.dir=" +
                      dir + "/" + run + " data.train=[" + p.pref + "] data.val=[" + p.pref_val +
                      "] model.n_layers=3 train.max_steps=1 " + extra);
  };
  auto grown = reward("grown", "init_from=" + p.sft_run + " init_extra_layers=true optim.lr=0 schedule.min_lr=0");
  ASSERT_EQ(grown.code, 0) << grown.output;
  auto fresh = reward("fresh", "init_from= optim.lr=0 schedule.min_lr=0");
  ASSERT_EQ(fresh.code, 0) << fresh.output;
  auto g = load_safetensors(model_file(dir + "/grown")), f = load_safetensors(model_file(dir + "/fresh"));
  auto sft = load_safetensors(model_file(p.sft_run));
  int64_t from_sft = 0, from_fresh = 0;
  for (auto& [name, t] : g.tensors) {
    if (name.rfind("layers.2.", 0) == 0) {
      EXPECT_TRUE(torch::equal(t, f.tensors.at(name))) << name;
      ++from_fresh;
    } else if (sft.tensors.count(name)) {
      EXPECT_TRUE(torch::equal(t, sft.tensors.at(name))) << name;
      ++from_sft;
    }
  }
  EXPECT_GT(from_fresh, 5);
  EXPECT_GT(from_sft, 10);
  auto refused = reward("refused", "init_from=" + p.sft_run);
  EXPECT_NE(refused.code, 0);
  EXPECT_NE(refused.output.find("init_extra_layers"), std::string::npos) << refused.output;

  // optim.freeze_layers=2 trains only the new block and the head: the SFT part stays bit-identical.
  auto trained =
      reward("trained", "init_from=" + p.sft_run + " init_extra_layers=true optim.freeze_layers=2 train.max_steps=5");
  ASSERT_EQ(trained.code, 0) << trained.output;
  auto t = load_safetensors(model_file(dir + "/trained"));
  for (auto& [name, w] : t.tensors) {
    if (name.rfind("layers.2.", 0) == 0 || name == "score.weight" || name == "norm.weight")
      EXPECT_FALSE(torch::equal(w, g.tensors.at(name))) << name << " did not train";
    else
      EXPECT_TRUE(torch::equal(w, sft.tensors.at(name))) << name << " is frozen but moved";
  }
  auto bad = reward("bad", "init_from=" + p.sft_run + " init_extra_layers=true optim.freeze_layers=3");
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_NE(bad.output.find("optim.freeze_layers"), std::string::npos) << bad.output;
  const std::string run = dir + "/ppo";
  auto r = run_infini(ppo_args(p, run, "train.max_steps=2 ppo.reward_model=" + dir + "/trained"));
  ASSERT_EQ(r.code, 0) << r.output;
  ASSERT_EQ(records_of(run, "ppo").size(), 2u);
  auto critic = load_safetensors(resolve_checkpoint(run) + "/critic/model.safetensors");
  EXPECT_TRUE(critic.tensors.count("layers.2.attention.wq.weight"));
}

}  // namespace test_rlhf_stages
}  // namespace infini::test
