// Test fixture of the post-training suites (reward, ppo, dpo, lora): a tiny SFT run on 1-digit
// addition, a tiny reward model on it, their preference pairs and prompts, built once per scratch
// dir; plus what those suites read back (a run's model file, its metrics by kind) and their check
// of exact resume.
// Header-only, like the other helpers here.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/safetensors.h"
#include "support/build_once.h"
#include "support/tiny_data.h"
#include "train/run/checkpoint_dir.h"
#include "train/run/metrics_log.h"

namespace infini::test {

struct TinyRlhf {
  TinyData data;
  std::string dir, pref, pref_val, prompts, prompts_val;
  std::string sft_run;     // 60 steps; checkpoints at 15, 30, 45, 60 all kept
  std::string reward_run;  // 40 steps from sft_run on `pref`
};

inline std::string tiny_overrides(const TinyRlhf& p) { return "tokenizer.model=" + p.data.tokenizer + " run.threads=1"; }

inline const TinyRlhf& tiny_rlhf() {
  static TinyRlhf p = [] {
    TinyRlhf q;
    q.data = tiny_data();
    q.dir = scratch_dir("rlhf_pipeline", /*fresh=*/false);
    q.pref = q.dir + "/pref.jsonl";
    q.pref_val = q.dir + "/pref_val.jsonl";
    q.prompts = q.dir + "/prompts.jsonl";
    q.prompts_val = q.dir + "/prompts_val.jsonl";
    q.sft_run = q.dir + "/sft";
    q.reward_run = q.dir + "/reward";
    build_once(q.dir, [&] {
      const std::string synth = "data synth --task add --digits 1 ";
      expect_infini_ok(synth + "--kind sft --count 400 --seed 11 --out " + q.dir + "/sft.jsonl");
      expect_infini_ok(synth + "--kind preference --count 16 --seed 12 --out " + q.pref);  // memorisable
      expect_infini_ok(synth + "--kind preference --count 64 --seed 13 --out " + q.pref_val);
      expect_infini_ok(synth + "--kind prompts --count 200 --seed 14 --out " + q.prompts);
      expect_infini_ok(synth + "--kind prompts --count 32 --seed 15 --out " + q.prompts_val);
      const std::string ov = tiny_overrides(q);
      expect_infini_ok("train " + source_path("configs/tiny/sft.yaml") + " " + ov + " run.dir=" + q.sft_run +
                       " data.train=[" + q.dir + "/sft.jsonl] init_from= train.max_steps=60 train.log_every=20" +
                       " checkpoint.every=15 checkpoint.keep_last=0");
      expect_infini_ok("train " + source_path("configs/tiny/reward.yaml") + " " + ov + " run.dir=" + q.reward_run +
                       " data.train=[" + q.pref + "] data.val=[" + q.pref_val + "] init_from=" + q.sft_run +
                       " train.max_steps=40 train.log_every=1");
    });
    return q;
  }();
  return p;
}

// model.safetensors of a run's latest checkpoint.
inline std::string model_file(const std::string& run) { return resolve_checkpoint(run) + "/model.safetensors"; }

// The records of a run's metrics.jsonl with this "kind" (train, eval, ...), in order.
inline std::vector<nlohmann::json> records_of(const std::string& run_dir, const std::string& kind) {
  std::vector<nlohmann::json> out;
  for (auto& r : read_metrics(run_dir + "/metrics.jsonl"))
    if (r.value("kind", "") == kind) out.push_back(r);
  return out;
}

// Exact resume: `args(dir, extra)` (an `infini train` command line) run straight into `straight`,
// and into `split` in two invocations, the first ending after `stop_after` steps (it must log that
// many `kind` records). Both must log `records` of them with the same `keys`, and hold the same
// tensors in every file of `files` (paths under the latest step directory) at the end.
inline void expect_exact_resume(const std::function<std::string(const std::string&, const std::string&)>& args,
                                const std::string& straight, const std::string& split, int64_t stop_after,
                                const std::string& kind, size_t records, const std::vector<std::string>& keys,
                                const std::vector<std::string>& files = {"model.safetensors"}) {
  auto a = run_infini(args(straight, ""));
  ASSERT_EQ(a.code, 0) << a.output;
  auto b1 = run_infini(args(split, " train.stop_after=" + std::to_string(stop_after)));
  ASSERT_EQ(b1.code, 0) << b1.output;
  ASSERT_EQ(records_of(split, kind).size(), static_cast<size_t>(stop_after));
  auto b2 = run_infini(args(split, ""));
  ASSERT_EQ(b2.code, 0) << b2.output;
  auto ra = records_of(straight, kind), rb = records_of(split, kind);
  ASSERT_EQ(ra.size(), records);
  ASSERT_EQ(rb.size(), records);
  for (size_t i = 0; i < records; ++i)
    for (const std::string& k : keys) EXPECT_EQ(ra[i][k].get<double>(), rb[i][k].get<double>()) << "step " << i + 1 << " " << k;
  for (const std::string& f : files) {
    auto x = load_safetensors(resolve_checkpoint(straight) + "/" + f);
    auto y = load_safetensors(resolve_checkpoint(split) + "/" + f);
    ASSERT_FALSE(x.tensors.empty()) << f;
    for (auto& [name, t] : x.tensors) EXPECT_TRUE(torch::equal(t, y.tensors.at(name))) << f << " " << name;
  }
}

}  // namespace infini::test
