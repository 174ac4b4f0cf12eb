// Run-directory safety through the CLI: the run lock, config.yaml written only for an accepted run,
// resume refusing another model or a bad trainer_state.json, a missing or broken `latest`, failed
// and interrupted checkpoint writes (fault injection at every I/O point), and that each case still
// resumes to the losses of a run that was never disturbed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "support/run_util.h"
#include "support/tiny_data.h"
#include "train/run/checkpoint_dir.h"
#include "train/run/metrics_log.h"

namespace fs = std::filesystem;
using namespace infini::test;

namespace {

std::string args(const TinyData& d, const std::string& run_dir, const std::string& extra = "") {
  return "train " + source_path("configs/tiny/pretrain.yaml") + " run.dir=" + run_dir + " tokenizer.model=" +
         d.tokenizer + " data.train=[" + d.shards + "] train.eval_every=0 train.log_every=1 " + extra;
}

std::map<int64_t, double> losses(const std::string& run_dir) {
  std::map<int64_t, double> out;
  for (const auto& r : infini::read_metrics(run_dir + "/metrics.jsonl"))
    if (r.value("kind", "") == "train") out[r["step"].get<int64_t>()] = r["loss"].get<double>();
  return out;
}

int64_t state_step(const std::string& step_dir) {
  return nlohmann::json::parse(read_text(step_dir + "/trainer_state.json"))["step"].get<int64_t>();
}

std::vector<std::string> temporaries(const std::string& run_dir) {
  std::vector<std::string> out;
  if (!fs::exists(run_dir + "/checkpoints")) return out;
  for (const auto& e : fs::directory_iterator(run_dir + "/checkpoints")) {
    const std::string n = e.path().filename().string();
    if (n.rfind(".tmp", 0) == 0 || n.rfind(".old", 0) == 0) out.push_back(n);
  }
  return out;
}

// The losses of an undisturbed run of max_steps (the schedule depends on it), the reference every
// disturbed run must end at.
std::map<int64_t, double> straight_losses(const TinyData& d, int64_t max_steps) {
  const std::string run = scratch_dir("run_dir_straight_" + std::to_string(max_steps));
  const auto r = run_infini(args(d, run, "train.max_steps=" + std::to_string(max_steps) + " checkpoint.every=0"));
  EXPECT_EQ(r.code, 0) << r.output;
  return losses(run);
}

}  // namespace

TEST(RunDir, ASecondWriterIsRefusedNamingTheHolder) {
  TinyData d = tiny_data("trainer_data");
  const std::string run = scratch_dir("run_dir_lock");
  // This process holds the lock, as a training process would.
  const int fd = ::open((run + "/.lock").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  const std::string pid = std::to_string(::getpid()) + "\n";
  ASSERT_EQ(::pwrite(fd, pid.data(), pid.size(), 0), static_cast<ssize_t>(pid.size()));
  auto r = run_infini(args(d, run, "train.max_steps=2"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("in use by process " + std::to_string(::getpid())), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(run + "/config.yaml"));
  EXPECT_FALSE(fs::exists(run + "/checkpoints"));
  ::close(fd);  // released: the same command now runs
  r = run_infini(args(d, run, "train.max_steps=2"));
  EXPECT_EQ(r.code, 0) << r.output;
}

TEST(RunDir, ARefusedResumeWritesNothing) {
  TinyData d = tiny_data("trainer_data");
  const std::string run = scratch_dir("run_dir_refused");
  ASSERT_EQ(run_infini(args(d, run, "train.max_steps=2")).code, 0);
  const std::string config_before = read_text(run + "/config.yaml");
  const std::string metrics_before = read_text(run + "/metrics.jsonl");

  // A model the checkpoint was not trained with: key, old and new value named; exit 2.
  for (const auto& [override_, key] : std::vector<std::pair<std::string, std::string>>{
           {"model.segment_len=32", "model.segment_len: 16 -> 32"},
           {"model.memory.update=linear", "model.memory.update: \"delta\" -> \"linear\""},
           {"model.rope_theta=500000", "model.rope_theta: 10000.0 -> 500000.0"},
           {"model.vocab_size=1024", "model.vocab_size: 512 -> 1024"}}) {
    auto r = run_infini(args(d, run, "train.max_steps=4 " + override_));
    EXPECT_EQ(r.code, 2) << override_ << "\n" << r.output;
    EXPECT_NE(r.output.find(key), std::string::npos) << r.output;
  }
  // A vocabulary smaller than the tokenizer's is refused before anything is written, too.
  auto r = run_infini(args(d, run, "train.max_steps=4 model.vocab_size=100"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(read_text(run + "/config.yaml"), config_before);
  EXPECT_EQ(read_text(run + "/metrics.jsonl"), metrics_before);
  EXPECT_EQ(state_step(infini::latest_checkpoint(run)), 2);

  // Safe changes are taken and said.
  r = run_infini(args(d, run, "train.max_steps=3"));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("config changed since the last run: train.max_steps: 2 -> 3"), std::string::npos)
      << r.output;
}

TEST(RunDir, TrainerStateIsValidated) {
  TinyData d = tiny_data("trainer_data");
  const std::string run = scratch_dir("run_dir_state");
  ASSERT_EQ(run_infini(args(d, run, "train.max_steps=2 checkpoint.every=1")).code, 0);
  const std::string step2 = run + "/checkpoints/step_00000002";
  const std::string good = read_text(step2 + "/trainer_state.json");
  auto write_state = [&](const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json j = nlohmann::json::parse(good);
    edit(j);
    std::ofstream(step2 + "/trainer_state.json") << j.dump(2);
  };

  // Another stage: refused with the file named.
  write_state([](nlohmann::json& j) { j["stage"] = "ppo"; });
  auto r = run_infini(args(d, run, "train.max_steps=4"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find(step2 + "/trainer_state.json: stage is 'ppo', expected pretrain"), std::string::npos)
      << r.output;

  // A wrong type names the file and the key.
  write_state([](nlohmann::json& j) { j["tokens_seen"] = "many"; });
  r = run_infini(args(d, run, "train.max_steps=4"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("trainer_state.json: tokens_seen:"), std::string::npos) << r.output;

  // A step that disagrees with the directory's name: that checkpoint is not complete, the run
  // resumes from the one before (step 1), with a warning, and never from step -5.
  write_state([](nlohmann::json& j) { j["step"] = -5; });
  r = run_infini(args(d, run, "train.max_steps=3 checkpoint.every=0"));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("not a complete checkpoint"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resumed from " + run + "/checkpoints/step_00000001"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(run + "/checkpoints/step_-0000004"));
  EXPECT_EQ(state_step(run + "/checkpoints/step_00000003"), 3);
}

TEST(RunDir, MissingOrBrokenLatestResumesFromTheNewestGoodStep) {
  TinyData d = tiny_data("trainer_data");
  const auto ref = straight_losses(d, 8);
  const std::string run = scratch_dir("run_dir_latest");
  const std::string common = "train.max_steps=8 checkpoint.every=2 checkpoint.keep_last=0";
  ASSERT_EQ(run_infini(args(d, run, common + " train.stop_after=4")).code, 0);

  // No `latest`: the newest step directory (4), not a fresh start over it.
  fs::remove(run + "/checkpoints/latest");
  auto r = run_infini(args(d, run, common + " train.stop_after=2"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("checkpoints/latest is missing"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resumed from " + run + "/checkpoints/step_00000004"), std::string::npos) << r.output;

  // The newest is truncated: the one before it, with a warning.
  const std::string model6 = run + "/checkpoints/step_00000006/model.safetensors";
  fs::resize_file(model6, fs::file_size(model6) / 2);
  r = run_infini(args(d, run, common));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("resumed from " + run + "/checkpoints/step_00000004"), std::string::npos) << r.output;
  // Steps 5-8 were redone from step 4: the same losses as a run never disturbed.
  const auto got = losses(run);
  for (int64_t s = 1; s <= 8; ++s) EXPECT_EQ(got.at(s), ref.at(s)) << "step " << s;

  // Every step directory broken: refused, nothing overwritten.
  for (const auto& e : fs::directory_iterator(run + "/checkpoints"))
    if (e.path().filename().string().rfind("step_", 0) == 0) fs::resize_file(e.path() / "model.safetensors", 10);
  r = run_infini(args(d, run, "train.max_steps=10"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("refusing to start over"), std::string::npos) << r.output;
}

TEST(RunDir, AFailedCheckpointWriteLeavesNoTemporaryAndTheRunResumes) {
  TinyData d = tiny_data("trainer_data");
  const auto ref = straight_losses(d, 2);
  // Walk the checkpoint I/O points of a run that writes checkpoints 1 and 2: fail (as a full
  // disk does) or kill the process at each, then resume. Each time: no temporary is left behind,
  // the run resumes from a verified checkpoint and ends at the undisturbed losses.
  const std::string probe = scratch_dir("run_dir_fault_probe");
  const std::string common = "train.max_steps=2 checkpoint.every=1 checkpoint.keep_last=1";
  int points = 0;
  for (int n = 1; n < 200; ++n) {
    const std::string run = scratch_dir("run_dir_fault");
    const std::string mode = (n % 2 == 0) ? "kill" : "fail";
    auto r = run_cmd("INFINI_FAULT=" + mode + ":" + std::to_string(n) + " " + INFINI_BINARY + " " + args(d, run, common));
    if (r.code == 0) break;  // fewer than n points in the whole run: every one has been walked
    ++points;
    if (mode == "fail") {
      EXPECT_NE(r.output.find("injected fault"), std::string::npos) << r.output;
      EXPECT_TRUE(temporaries(run).empty()) << "fail:" << n << " left " << temporaries(run).front();
    }
    r = run_infini(args(d, run, common));
    ASSERT_EQ(r.code, 0) << mode << ":" << n << "\n" << r.output;
    EXPECT_TRUE(temporaries(run).empty()) << mode << ":" << n;
    const auto got = losses(run);
    for (int64_t s = 1; s <= 2; ++s) EXPECT_EQ(got.at(s), ref.at(s)) << mode << ":" << n << " step " << s;
    EXPECT_EQ(state_step(infini::latest_checkpoint(run)), 2);
  }
  std::printf("walked %d checkpoint I/O points\n", points);
  EXPECT_GT(points, 15);  // config.yaml; 2 checkpoints: their files, fsyncs, renames and `latest`
}
