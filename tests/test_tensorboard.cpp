// TensorBoard event files against TensorBoard's own reader (tests/reference/tb_read.py runs
// EventAccumulator with the Python INFINI_ORACLE_PYTHON names; without one those tests skip, or
// fail with INFINI_REQUIRE_ORACLE=1): every scalar back with its step and value, the config text,
// a file cut mid-record read up to the cut, and a killed and resumed run holding each step once
// with the resumed run's values. Also CRC32C and the tag mapping, which need no Python.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/oracle.h"
#include "support/run_util.h"
#include "support/tiny_data.h"
#include "train/run/checkpoint_dir.h"
#include "train/run/event_file.h"
#include "train/run/metrics_log.h"
#include "train/run/tensorboard_log.h"

namespace test_tensorboard {

namespace fs = std::filesystem;
using namespace infini;
using namespace infini::test;
using json = nlohmann::json;

json tb_read(const std::string& path, bool purge = true) { return tensorboard_read(path, purge); }

std::vector<std::string> event_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// The scalars of metrics.jsonl as the reader should see them: tag -> step -> value (as float).
std::map<std::string, std::map<int64_t, float>> expected_scalars(const std::string& run) {
  std::map<std::string, std::map<int64_t, float>> out;
  for (const json& rec : read_metrics(run + "/metrics.jsonl"))
    for (const auto& [tag, v] : record_scalars(rec)) {
      EXPECT_EQ(out[tag].count(rec["step"].get<int64_t>()), 0u) << "metrics.jsonl repeats " << tag;
      out[tag][rec["step"].get<int64_t>()] = v;
    }
  return out;
}

// Every scalar of metrics.jsonl read back once per step with its value, and nothing else.
void expect_same_scalars(const json& got, const std::map<std::string, std::map<int64_t, float>>& want) {
  ASSERT_EQ(got.at("scalars").size(), want.size()) << got.at("scalars").dump().substr(0, 400);
  for (const auto& [tag, steps] : want) {
    SCOPED_TRACE(tag);
    ASSERT_TRUE(got["scalars"].contains(tag));
    const json& events = got["scalars"][tag];
    ASSERT_EQ(events.size(), steps.size()) << events.dump();
    size_t i = 0;
    for (const auto& [step, v] : steps) {
      const json& e = events[i++];
      EXPECT_EQ(e[0].get<int64_t>(), step);
      if (std::isfinite(v)) {
        EXPECT_EQ(e[1].get<float>(), v) << "step " << step;
      }
    }
  }
}


TEST(TensorBoard, Crc32cAndFraming) {
  EXPECT_EQ(crc32c("123456789", 9), 0xe3069283u);  // the CRC-32C check value
  EXPECT_EQ(crc32c("", 0), 0u);
  const std::string rec = tfrecord_frame("abc");
  ASSERT_EQ(rec.size(), 8u + 4 + 3 + 4);
  EXPECT_EQ(rec.substr(12, 3), "abc");
  uint64_t len = 0;
  std::memcpy(&len, rec.data(), 8);
  EXPECT_EQ(len, 3u);
}

TEST(TensorBoard, RecordsBecomeTaggedScalars) {
  const json rec = {{"kind", "eval"},    {"step", 7},        {"val_loss", 1.5},
                    {"name", "x"},       {"ok", true},       {"list", {1, 2}},
                    {"per_file", {{"a.jsonl", 0.25}, {"b.jsonl", 0.75}}}};
  const auto s = record_scalars(rec);
  std::map<std::string, float> m(s.begin(), s.end());
  EXPECT_EQ(m, (std::map<std::string, float>{{"eval/val_loss", 1.5f},
                                              {"eval/ok", 1.0f},
                                              {"eval/per_file/a.jsonl", 0.25f},
                                              {"eval/per_file/b.jsonl", 0.75f}}));
  EXPECT_EQ(record_scalars({{"step", 1}, {"loss", 2.0}}).at(0).first, "metrics/loss");
}

TEST(TensorBoard, TheReaderReadsEveryScalarAndTheConfig) {
  REQUIRE_ORACLE_MODULE("tensorboard");
  const std::string dir = scratch_dir("tb_writer");
  {
    TensorBoardLog tb(dir, 0, "stage: pretrain\nrun:\n  dir: x  # <b>\n");
    for (int64_t step = 1; step <= 20; ++step) {
      tb.write({{"kind", "train"}, {"step", step}, {"loss", 10.0 / static_cast<double>(step)}, {"lr", 1e-4 * step}});
      if (step % 5 == 0) tb.write({{"kind", "eval"}, {"step", step}, {"val_loss", 0.1 * step}, {"note", "text"}});
    }
    tb.write({{"kind", "ppo"}, {"step", 21}, {"kl", -0.5}, {"big", 123456789.0}});
  }
  const json got = tb_read(dir);
  ASSERT_EQ(got["scalars"]["train/loss"].size(), 20u);
  for (int64_t step = 1; step <= 20; ++step) {
    const json& e = got["scalars"]["train/loss"][step - 1];
    EXPECT_EQ(e[0].get<int64_t>(), step);
    EXPECT_EQ(e[1].get<float>(), static_cast<float>(10.0 / static_cast<double>(step)));
    EXPECT_GT(e[2].get<double>(), 1.7e9);  // a Unix wall time
    EXPECT_EQ(got["scalars"]["train/lr"][step - 1][1].get<float>(), static_cast<float>(1e-4 * step));
  }
  ASSERT_EQ(got["scalars"]["eval/val_loss"].size(), 4u);
  EXPECT_EQ(got["scalars"]["eval/val_loss"][3][0].get<int64_t>(), 20);
  EXPECT_EQ(got["scalars"]["ppo/kl"][0][1].get<float>(), -0.5f);
  EXPECT_EQ(got["scalars"]["ppo/big"][0][1].get<float>(), 123456789.0f);
  EXPECT_FALSE(got["scalars"].contains("eval/note"));
  ASSERT_EQ(got["text"]["config"].size(), 1u);
  EXPECT_EQ(got["text"]["config"][0][1].get<std::string>(), "    stage: pretrain\n    run:\n      dir: x  # <b>\n");
}

TEST(TensorBoard, AFileCutMidRecordReadsUpToTheCut) {
  REQUIRE_ORACLE_MODULE("tensorboard");
  const std::string dir = scratch_dir("tb_cut");
  std::vector<uintmax_t> sizes;  // the file's size after each record
  std::string path;
  {
    EventFileWriter w(dir);
    path = w.path();
    for (int64_t step = 1; step <= 6; ++step) {
      w.add_scalars(step, unix_wall_time(), {{"train/loss", static_cast<float>(step)}});
      sizes.push_back(fs::file_size(path));
    }
  }
  const std::string whole = read_text(path);
  // Cut inside record k+1 (its length, its length's CRC, its data, its data's CRC): k records read.
  for (size_t k = 0; k < 6; ++k) {
    const uintmax_t start = k == 0 ? sizes[0] - (sizes[1] - sizes[0]) : sizes[k - 1];
    for (uintmax_t cut : {start + 3, start + 10, start + 20, sizes[k] - 1}) {
      const std::string cut_dir = scratch_dir("tb_cut_" + std::to_string(k) + "_" + std::to_string(cut));
      std::ofstream(cut_dir + "/" + fs::path(path).filename().string(), std::ios::binary) << whole.substr(0, cut);
      const json got = tb_read(cut_dir);
      const json& loss = got["scalars"].value("train/loss", json::array());
      ASSERT_EQ(loss.size(), k) << "cut at byte " << cut << " of " << whole.size();
      for (size_t i = 0; i < k; ++i) EXPECT_EQ(loss[i][1].get<float>(), static_cast<float>(i + 1));
    }
  }
}

// A run killed at checkpoint I/O points and run again: killed in its first checkpoint it starts
// over (nothing to resume), killed in its second (after the records of steps 4-6 were written) it
// resumes from step 3. Either way the reader sees each step once, with the values of metrics.jsonl
// (the last session's), and without the purge the interrupted session's records would be there too.
TEST(TensorBoard, AKilledAndResumedRunHoldsEachStepOnce) {
  REQUIRE_ORACLE_MODULE("tensorboard");
  TinyData d = tiny_data("trainer_data");
  const std::string common = " train " + source_path("configs/tiny/pretrain.yaml") + " tokenizer.model=" +
                             d.tokenizer + " data.train=[" + d.shards + "] train.max_steps=6 train.log_every=1 " +
                             "train.eval_every=2 train.eval_batches=1 checkpoint.every=3";
  int fresh_cases = 0, resumed_cases = 0;
  for (int n = 1; n < 80 && resumed_cases < 2; ++n) {
    const std::string run = scratch_dir("tb_resume");
    auto r = run_cmd("INFINI_FAULT=kill:" + std::to_string(n) + " " + INFINI_BINARY + " " + common + " run.dir=" + run);
    if (r.code == 0) break;  // past the run's last I/O point
    if (!fs::exists(run + "/metrics.jsonl")) continue;  // killed before the run started
    const std::string latest = latest_checkpoint(run);
    const bool fresh = latest.empty();
    if (fresh ? fresh_cases > 0 : latest.find("step_00000003") == std::string::npos) continue;
    const size_t logged = read_metrics(run + "/metrics.jsonl").size();
    if (logged == 0 || (!fresh && logged <= 5)) continue;  // nothing past the checkpoint to drop
    SCOPED_TRACE("kill:" + std::to_string(n) + (fresh ? " (no checkpoint yet)" : " (resumes from step 3)"));
    ++(fresh ? fresh_cases : resumed_cases);
    r = run_cmd(std::string(INFINI_BINARY) + " " + common + " run.dir=" + run);
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_EQ(event_files(run).size(), 2u);
    const auto want = expected_scalars(run);
    EXPECT_EQ(want.at("train/loss").size(), 6u);
    EXPECT_EQ(want.at("eval/val_loss").size(), 3u);
    expect_same_scalars(tb_read(run), want);
    EXPECT_GT(tb_read(run, /*purge=*/false)["scalars"]["train/loss"].size(), 6u);
  }
  EXPECT_EQ(fresh_cases, 1);
  EXPECT_EQ(resumed_cases, 2);
}

// Every stage's records reach the event files (PPO's ppo/ and eval/ tags, the held-out accuracy),
// and run.tensorboard=false writes none.
TEST(TensorBoard, EveryStageWritesItsScalarsAndTheSwitchTurnsThemOff) {
  REQUIRE_ORACLE_MODULE("tensorboard");
  TinyData d = tiny_data("trainer_data");
  const std::string run = scratch_dir("tb_stage");
  auto r = run_infini("train " + source_path("configs/tiny/pretrain.yaml") + " run.dir=" + run + " tokenizer.model=" +
                      d.tokenizer + " data.train=[" + d.shards + "] train.max_steps=3 train.log_every=1");
  ASSERT_EQ(r.code, 0) << r.output;
  ASSERT_EQ(event_files(run).size(), 1u);
  const json got = tb_read(run);
  expect_same_scalars(got, expected_scalars(run));
  EXPECT_TRUE(got["scalars"].contains("train/data_s"));
  EXPECT_NE(got["text"]["config"][0][1].get<std::string>().find("    stage: pretrain"), std::string::npos);

  const std::string off = scratch_dir("tb_off");
  r = run_infini("train " + source_path("configs/tiny/pretrain.yaml") + " run.dir=" + off + " tokenizer.model=" +
                 d.tokenizer + " data.train=[" + d.shards + "] train.max_steps=2 run.tensorboard=false");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(event_files(off).empty());
  EXPECT_TRUE(fs::exists(off + "/metrics.jsonl"));
}

}  // namespace test_tensorboard
