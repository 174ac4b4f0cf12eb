// Test fixture of the post-training suites (reward, ppo, dpo, lora): a tiny SFT run on 1-digit
// addition, a tiny reward model on it, their preference pairs and prompts, built once per scratch
// dir; plus what those suites read back (a run's model file, its metrics by kind).
// Header-only, like the other helpers here.
#pragma once
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

}  // namespace infini::test
