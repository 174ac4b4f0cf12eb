// Data parallel (train/dist/): 2 ranks x a global batch train exactly what 1 rank x the same batch
// trains (pretrain, SFT with accumulation and uneven lengths, reward), checkpoints resume across
// world sizes, and faults end the job: a killed rank is named within the timeout, a signal to one
// rank stops all with rank 0's checkpoint, different configs are refused. Launchers: infini's own
// --nproc, torchrun (Debian's python3-torch), and plain environment variables as srun would set.
// Every command runs under `timeout`, so no test can hang.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include <fmt/format.h>
#include <torch/version.h>

#include "core/safetensors.h"
#include "support/tiny_rlhf.h"

namespace infini::test {
namespace {

// Relative closeness of two runs: every `kind` record's `keys`, and every tensor of the final model
// (max |a - b| over max |a|). fp32 sums in another order differ by a few ulp per step.
void expect_same_training(const std::string& a, const std::string& b, const std::string& kind,
                          const std::vector<std::string>& keys, size_t records, double tol = 1e-5,
                          const std::string& model = "") {
  auto ra = records_of(a, kind), rb = records_of(b, kind);
  ASSERT_EQ(ra.size(), records) << a;
  ASSERT_EQ(rb.size(), records) << b;
  for (size_t i = 0; i < records; ++i)
    for (const std::string& k : keys) {
      const double x = ra[i][k].get<double>(), y = rb[i][k].get<double>();
      EXPECT_NEAR(x, y, tol * std::max(1.0, std::abs(x))) << kind << " record " << i << " " << k;
    }
  auto file = [&](const std::string& run) {  // the run's model, or one of its models (PPO's actor, critic)
    return model.empty() ? model_file(run) : resolve_checkpoint(run) + "/" + model + "/model.safetensors";
  };
  auto x = load_safetensors(file(a)), y = load_safetensors(file(b));
  ASSERT_FALSE(x.tensors.empty());
  double worst = 0;
  for (auto& [name, t] : x.tensors) {
    const torch::Tensor u = y.tensors.at(name);
    const double scale = std::max(1e-12, t.abs().max().item<double>());
    const double rel = (t - u).abs().max().item<double>() / scale;
    worst = std::max(worst, rel);
    EXPECT_LE(rel, tol) << name;
  }
  std::printf("%s vs %s: weights differ by at most %.3g of a tensor's largest\n", a.c_str(), b.c_str(), worst);
}

std::string nproc(int n, const std::string& train_args);
RunResult run_timed(const std::string& args, int seconds = 300);

// `args(run_dir)` run as 1 process into dir/one and as 2 ranks (--nproc 2) into dir/two; then
// expect_same_training on the train records' `keys`.
void expect_two_ranks_equal_one(const std::string& dir, const std::function<std::string(const std::string&)>& args,
                                const std::vector<std::string>& keys, size_t records) {
  auto one = run_timed(args(dir + "/one"));
  ASSERT_EQ(one.code, 0) << one.output;
  auto two = run_timed(nproc(2, args(dir + "/two")));
  ASSERT_EQ(two.code, 0) << two.output;
  expect_same_training(dir + "/one", dir + "/two", "train", keys, records);
}

// optim.eps=1e-5 here and in the SFT test, for the reason RewardTwoRanksEqualOne gives: with the
// default 1e-8, on one machine (AVX2, no AVX-512) the final weights of 1 and 2 ranks differed by up
// to 2.3e-5 (pretrain) and 1.1e-5 (SFT) of a tensor's largest, every loss still equal to 1e-5;
// with 1e-5, 7.6e-7 and 8.4e-7 there (measured).
std::string pretrain_args(const std::string& dir, int64_t steps = 8) {
  const TinyData d = tiny_data();
  return "train " + source_path("configs/tiny/pretrain.yaml") + " tokenizer.model=" + d.tokenizer + " data.train=[" +
         d.shards + "] run.threads=1 run.tensorboard=false optim.eps=1e-5 train.max_steps=" + std::to_string(steps) +
         " train.eval_every=4 checkpoint.every=4 run.dist_timeout_s=60 run.dir=" + dir;
}

// `train ARGS` as `train --nproc N ARGS`.
std::string nproc(int n, const std::string& train_args) { return "train --nproc " + std::to_string(n) + train_args.substr(5); }

RunResult run_timed(const std::string& args, int seconds) {
  return run_cmd("timeout " + std::to_string(seconds) + " " + std::string(INFINI_BINARY) + " " + args);
}

// One rank started by hand with the variables a launcher sets (as srun + MASTER_ADDR would); the
// pid is the rank's own (no `timeout` between), so the tests wait with deadlines and kill leftovers.
pid_t start_rank(int rank, int world, int port, const std::string& args, const std::string& log) {
  const std::string cmd = "exec env RANK=" + std::to_string(rank) + " WORLD_SIZE=" + std::to_string(world) +
                          " LOCAL_RANK=" + std::to_string(rank) + " LOCAL_WORLD_SIZE=" + std::to_string(world) +
                          " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " " + INFINI_BINARY + " " + args + " >" + log + " 2>&1";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

// The exit code of `pid` (128 + signal when killed), or -1 when it is still running after `seconds`.
int wait_for(pid_t pid, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return -1;
}

// Waits until the run has logged `n` train records (false after 120 s).
bool wait_for_steps(const std::string& run, size_t n) {
  for (int i = 0; i < 2400; ++i) {
    if (std::filesystem::exists(run + "/metrics.jsonl") && records_of(run, "train").size() >= n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

}  // namespace

TEST(DataParallel, PretrainTwoRanksEqualOne) {
  const std::string dir = scratch_dir("dp_pretrain");
  auto one = run_timed(pretrain_args(dir + "/one"));
  ASSERT_EQ(one.code, 0) << one.output;
  auto two = run_timed(nproc(2, pretrain_args(dir + "/two")));
  ASSERT_EQ(two.code, 0) << two.output;
  expect_same_training(dir + "/one", dir + "/two", "train", {"loss", "grad_norm", "tokens_seen"}, 8);
  expect_same_training(dir + "/one", dir + "/two", "eval", {"val_loss"}, 2);
  // Only rank 0 writes the run's files; rank 1 logs to its own file.
  EXPECT_TRUE(std::filesystem::exists(dir + "/two/train.rank1.log"));
  EXPECT_NE(read_text(dir + "/two/train.rank1.log").find("rank 1 of 2"), std::string::npos);
  EXPECT_EQ(read_text(dir + "/two/train.log").find("rank 1 of 2"), std::string::npos);
}

// Small buckets (20 KB: dozens for the tiny model) and 2 micro-batches: in the last backward every
// bucket's all-reduce starts from the gradient hooks, before the backward ends, each holding the
// first micro-batch's gradient plus the second's, and the run still equals one rank's.
TEST(DataParallel, GradientBucketsStartDuringTheBackward) {
  const std::string dir = scratch_dir("dp_overlap");
  auto args = [](const std::string& run) { return pretrain_args(run, 6) + " train.batch_size=4 train.grad_accum=2 " +
                                                  "run.dist_bucket_mb=0.02"; };
  expect_two_ranks_equal_one(dir, args, {"loss", "grad_norm"}, 6);
  auto rec = records_of(dir + "/two", "train");
  ASSERT_FALSE(rec.empty());
  const int64_t buckets = rec.back()["buckets"].get<int64_t>();
  EXPECT_GT(buckets, 10);
  EXPECT_EQ(rec.back()["buckets_started_in_backward"].get<int64_t>(), buckets);
}

// SFT records differ in length and in counted tokens, so each rank's share of the loss is its
// share of the counted tokens of the whole step (2 micro-batches x 2 ranks): a per-rank mean
// averaged over ranks would differ from one rank's step by far more than the tolerance.
TEST(DataParallel, SftWithAccumulationTwoRanksEqualOne) {
  const TinyData d = tiny_data();
  const std::string dir = scratch_dir("dp_sft");
  auto args = [&](const std::string& run) {
    return "train " + source_path("configs/tiny/sft.yaml") + " tokenizer.model=" + d.tokenizer + " data.train=[" +
           d.sft + "] init_from= run.threads=1 run.tensorboard=false optim.eps=1e-5 train.max_steps=6 train.batch_size=4 "
           "train.grad_accum=2 train.log_every=1 train.eval_every=0 run.dist_timeout_s=60 run.dir=" + run;
  };
  expect_two_ranks_equal_one(dir, args, {"loss", "grad_norm", "tokens_seen"}, 6);
}

// From the SFT model many gradient components are near zero, and AdamW's first steps move each
// weight by about lr x sign(g) where |g| >> eps: rounding-level differences in such a g (another
// summation order) flip signs and move a weight by 2 lr (7.7e-4 of a tensor's largest weight with
// eps 1e-8, measured). eps 1e-4 keeps the update proportional to g there, so the weights compare.
TEST(DataParallel, RewardTwoRanksEqualOne) {
  const TinyRlhf& p = tiny_rlhf();
  const std::string dir = scratch_dir("dp_reward");
  auto args = [&](const std::string& run) {
    return "train " + source_path("configs/tiny/reward.yaml") + " " + tiny_overrides(p) + " data.train=[" + p.pref +
           "] data.val=[" + p.pref_val + "] init_from=" + p.sft_run +
           " optim.eps=1e-4 run.tensorboard=false train.max_steps=6 train.log_every=1 run.dist_timeout_s=60 run.dir=" +
           run;
  };
  expect_two_ranks_equal_one(dir, args, {"loss", "accuracy", "grad_norm"}, 6);
}

// PPO, GRPO and RLOO: 4 prompts x 2 samples a rollout, mini-batches of 3 rows (so the ranks hold
// unequal shares of each), 2 epochs, the adaptive KL controller, held-out evaluation split over the
// ranks. Each global row samples from its own generator, advantages are whitened over the global
// batch and each rank's loss is weighted by its share of the mini-batch: 2 ranks train what 1 does.
std::string ppo_dp_args(const std::string& advantage, const std::string& run) {
  const TinyRlhf& p = tiny_rlhf();
  return "train " + source_path("configs/tiny/ppo.yaml") + " " + tiny_overrides(p) + " data.train=[" + p.prompts +
         "] data.val=[" + p.prompts_val + "] init_from=" + p.sft_run + " ppo.reward_model=" + p.reward_run +
         " ppo.advantage=" + advantage + " ppo.samples_per_prompt=2 train.batch_size=4 ppo.mini_batch_size=3 "
         "ppo.kl_adaptive=true ppo.kl_horizon=100 ppo.eval_every=2 optim.eps=1e-5 run.tensorboard=false "
         "train.max_steps=4 checkpoint.every=0 run.dist_timeout_s=60 run.dir=" + run;
}

std::vector<std::string> ppo_keys(const std::string& advantage) {
  std::vector<std::string> k{"reward_mean", "reward_std", "kl", "kl_coef", "policy_loss", "entropy", "approx_kl",
                             "response_length", "mixed_groups"};
  if (advantage == "gae") k.insert(k.end(), {"value_loss", "explained_variance"});
  if (advantage == "grpo") k.push_back("kl_loss");
  return k;
}

class DataParallelPpo : public ::testing::TestWithParam<const char*> {};

TEST_P(DataParallelPpo, TwoRanksEqualOne) {
  const std::string adv = GetParam(), dir = scratch_dir("dp_ppo_" + adv);
  auto one = run_timed(ppo_dp_args(adv, dir + "/one"));
  ASSERT_EQ(one.code, 0) << one.output;
  auto two = run_timed(nproc(2, ppo_dp_args(adv, dir + "/two")));
  ASSERT_EQ(two.code, 0) << two.output;
  expect_same_training(dir + "/one", dir + "/two", "ppo", ppo_keys(adv), 4, 1e-5, "actor");
  expect_same_training(dir + "/one", dir + "/two", "eval", {"true_accuracy", "response_length", "rm_score"}, 3, 1e-5,
                       "actor");
  if (adv == "gae") expect_same_training(dir + "/one", dir + "/two", "ppo", {"value_loss"}, 4, 1e-5, "critic");
  // The rollouts did vary (else equal runs would prove little): rewards differ within the batch.
  EXPECT_GT(records_of(dir + "/one", "ppo")[0]["reward_std"].get<double>(), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Advantages, DataParallelPpo, ::testing::Values("gae", "grpo", "rloo"),
                         [](const ::testing::TestParamInfo<const char*>& i) { return std::string(i.param); });

// A PPO checkpoint needs no sampling state: 2 ranks stopped after 2 rollouts and resumed on 1 go on
// as the straight 2-rank run.
TEST(DataParallel, PpoResumesOnAnotherWorldSize) {
  const std::string dir = scratch_dir("dp_ppo_resume");
  auto straight = run_timed(nproc(2, ppo_dp_args("gae", dir + "/straight")));
  ASSERT_EQ(straight.code, 0) << straight.output;
  auto a = run_timed(nproc(2, ppo_dp_args("gae", dir + "/split") + " train.stop_after=2"));
  ASSERT_EQ(a.code, 0) << a.output;
  auto b = run_timed(ppo_dp_args("gae", dir + "/split"));
  ASSERT_EQ(b.code, 0) << b.output;
  EXPECT_NE(b.output.find("written by 2 rank(s); this run has 1"), std::string::npos) << b.output;
  expect_same_training(dir + "/straight", dir + "/split", "ppo", ppo_keys("gae"), 4, 1e-5, "actor");
}

// A checkpoint holds a global position: 2 ranks -> 1 and 1 -> 2 go on as the straight run would.
TEST(DataParallel, ResumeAcrossWorldSizes) {
  const std::string dir = scratch_dir("dp_resume");
  for (const auto& [first, second] : {std::pair<int, int>{2, 1}, {1, 2}}) {
    const std::string tag = std::to_string(first) + "to" + std::to_string(second);
    auto launch = [](int n, const std::string& args) { return n > 1 ? nproc(n, args) : args; };
    auto straight = run_timed(launch(first, pretrain_args(dir + "/straight" + tag)));
    ASSERT_EQ(straight.code, 0) << straight.output;
    auto a = run_timed(launch(first, pretrain_args(dir + "/split" + tag) + " train.stop_after=3"));
    ASSERT_EQ(a.code, 0) << a.output;
    auto b = run_timed(launch(second, pretrain_args(dir + "/split" + tag)));
    ASSERT_EQ(b.code, 0) << b.output;
    EXPECT_NE(b.output.find("written by " + std::to_string(first) + " rank(s); this run has " + std::to_string(second)),
              std::string::npos) << b.output;
    expect_same_training(dir + "/straight" + tag, dir + "/split" + tag, "train", {"loss", "grad_norm"}, 8);
  }
}

// Ranks started by hand (the variables srun + MASTER_ADDR give); rank 1 killed with SIGKILL:
// rank 0 stops within the timeout with exit code 5, naming rank 1.
TEST(DataParallel, KilledRankIsNamedAndTheOtherStops) {
  const std::string dir = scratch_dir("dp_kill");
  const std::string args = pretrain_args(dir + "/run", 100000) + " run.dist_timeout_s=20 train.log_every=1";
  const int port = free_port();
  const pid_t r0 = start_rank(0, 2, port, args, dir + "/rank0.out");
  const pid_t r1 = start_rank(1, 2, port, args, dir + "/rank1.out");
  ASSERT_TRUE(wait_for_steps(dir + "/run", 3)) << read_text(dir + "/rank0.out");
  ::kill(r1, SIGKILL);
  const auto t0 = std::chrono::steady_clock::now();
  const int code = wait_for(r0, 40);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (code < 0) ::kill(r0, SIGKILL);
  wait_for(r0, 5);
  wait_for(r1, 5);
  const std::string out = read_text(dir + "/rank0.out");
  EXPECT_EQ(code, 5) << out;
  EXPECT_LT(took, 25.0);
  EXPECT_NE(out.find("rank 1 is lost"), std::string::npos) << out;
}

// --nproc: a rank killed is named by the launcher, which stops the others and fails.
TEST(DataParallel, NprocNamesAKilledRank) {
  const std::string dir = scratch_dir("dp_nproc_kill");
  const std::string cmd = "timeout 120 " + std::string(INFINI_BINARY) + " train --nproc 2 " +
                          pretrain_args(dir + "/run", 100000).substr(6) + " run.dist_timeout_s=20 >" + dir +
                          "/out 2>&1";
  const pid_t launcher = ::fork();
  if (launcher == 0) {
    ::execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ASSERT_TRUE(wait_for_steps(dir + "/run", 2)) << read_text(dir + "/out");
  // The ranks are the children of the launcher (the child of `timeout`, our child).
  std::string grand = read_text("/proc/" + std::to_string(launcher) + "/task/" + std::to_string(launcher) + "/children");
  const pid_t infini_parent = std::stoi(grand);
  std::istringstream ranks(read_text("/proc/" + std::to_string(infini_parent) + "/task/" +
                                     std::to_string(infini_parent) + "/children"));
  pid_t rank0 = 0, rank1 = 0;
  ranks >> rank0 >> rank1;
  ASSERT_GT(rank1, 0);
  ::kill(rank1, SIGKILL);
  const int code = wait_for(launcher, 40);
  const std::string out = read_text(dir + "/out");
  EXPECT_EQ(code, 128 + SIGKILL) << out;
  EXPECT_NE(out.find("rank 1 (pid " + std::to_string(rank1) + ") was killed by signal 9"), std::string::npos) << out;
}

// SIGTERM to one rank stops every rank at the same step; rank 0 writes that step's checkpoint.
TEST(DataParallel, SignalToOneRankStopsAllWithACheckpoint) {
  const std::string dir = scratch_dir("dp_sigterm");
  const std::string args = pretrain_args(dir + "/run", 100000) + " checkpoint.every=0";
  const int port = free_port();
  const pid_t r0 = start_rank(0, 2, port, args, dir + "/rank0.out");
  const pid_t r1 = start_rank(1, 2, port, args, dir + "/rank1.out");
  ASSERT_TRUE(wait_for_steps(dir + "/run", 2)) << read_text(dir + "/rank0.out");
  ::kill(r1, SIGTERM);
  const int c0 = wait_for(r0, 60), c1 = wait_for(r1, 60);
  for (pid_t p : {r0, r1}) ::kill(p, SIGKILL);  // none left if they stopped as they should
  EXPECT_EQ(c0, 3) << read_text(dir + "/rank0.out");
  EXPECT_EQ(c1, 3) << read_text(dir + "/rank1.out");
  const auto train = records_of(dir + "/run", "train");
  ASSERT_FALSE(train.empty());
  const int64_t last = train.back()["step"].get<int64_t>();
  EXPECT_EQ(resolve_checkpoint(dir + "/run"), dir + "/run/checkpoints/" + fmt::format("step_{:08d}", last));
}

TEST(DataParallel, DifferentConfigsAreRefused) {
  const std::string dir = scratch_dir("dp_mismatch");
  const int port = free_port();
  const pid_t r0 = start_rank(0, 2, port, pretrain_args(dir + "/run") + " optim.lr=0.001", dir + "/rank0.out");
  const pid_t r1 = start_rank(1, 2, port, pretrain_args(dir + "/run") + " optim.lr=0.002", dir + "/rank1.out");
  EXPECT_EQ(wait_for(r0, 60), 2);
  EXPECT_EQ(wait_for(r1, 60), 2);
  for (pid_t p : {r0, r1}) ::kill(p, SIGKILL);
  const std::string out = read_text(dir + "/rank0.out");
  EXPECT_NE(out.find("rank 1's config differs from rank 0's (optim.lr: 0.001 -> 0.002"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir + "/run/checkpoints")) << "nothing may be trained";
}

// torchrun launches the same job as --nproc. Its store must speak this LibTorch's protocol (a 2.x
// TCPStore client cannot join 1.13's agent store), so the launcher comes from the same torch: for
// the 1.13 build Debian's python3-torch (`python3 -m torch.distributed.run`; its Python 3.11 needs
// --redirects/--tee given explicitly), for a 2.x build the test oracles' venv (INFINI_ORACLE_PYTHON).
TEST(DataParallel, TorchrunLaunch) {
#if TORCH_VERSION_MAJOR >= 2
  const char* venv = std::getenv("INFINI_ORACLE_PYTHON");
  const std::string python = venv ? venv : "";
#else
  const std::string python = "/usr/bin/python3";
#endif
  if (python.empty() || run_cmd(python + " -c 'import torch.distributed.run'").code != 0)
    GTEST_SKIP() << "no Python with this build's torch major version (" << TORCH_VERSION_MAJOR
                 << ".x) to run torchrun from (INFINI_ORACLE_PYTHON for a 2.x build)";
  const std::string dir = scratch_dir("dp_torchrun");
  auto one = run_timed(pretrain_args(dir + "/one"));
  ASSERT_EQ(one.code, 0) << one.output;
  auto tr = run_cmd("timeout 300 " + python + " -m torch.distributed.run --nproc_per_node=2 --redirects 1 --tee 1 "
                    "--master_port " + std::to_string(free_port()) + " --no_python " + std::string(INFINI_BINARY) +
                    " " + pretrain_args(dir + "/tr"));
  ASSERT_EQ(tr.code, 0) << tr.output;
  EXPECT_NE(read_text(dir + "/tr/train.rank1.log").find("launched by torchrun"), std::string::npos);
  expect_same_training(dir + "/one", dir + "/tr", "train", {"loss", "grad_norm"}, 8);
}

TEST(DataParallel, LauncherVariablesAreChecked) {
  const std::string dir = scratch_dir("dp_env");
  auto r = run_cmd("env RANK=0 WORLD_SIZE=2 timeout 60 " + std::string(INFINI_BINARY) + " " + pretrain_args(dir + "/a"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("MASTER_ADDR is not set"), std::string::npos) << r.output;
  r = run_cmd("env RANK=2 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=1 timeout 60 " + std::string(INFINI_BINARY) +
              " " + pretrain_args(dir + "/b"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("rank 2 is not below the world size 2"), std::string::npos) << r.output;
  r = run_cmd("env WORLD_SIZE=two RANK=0 timeout 60 " + std::string(INFINI_BINARY) + " " + pretrain_args(dir + "/c"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("WORLD_SIZE: expected an integer >= 1, found 'two'"), std::string::npos) << r.output;
  // A global batch the ranks cannot share equally.
  r = run_timed(nproc(3, pretrain_args(dir + "/d")), 120);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("batch size 8 is not a multiple of the world size 3"), std::string::npos) << r.output;
}

}  // namespace infini::test
