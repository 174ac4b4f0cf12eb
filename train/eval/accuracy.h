// Greedy true accuracy on held-out verifiable prompts: each prompt answered greedily (temperature 0,
// through the rollout path) and the decoded response matched with the record's answer by a rule
// (train/rlhf/rule_rewards.h), per file and overall; optionally a reward model's mean score of the
// same responses. The one loop behind stage ppo's held-out evaluation and `infini eval accuracy`.
// Under a launcher, each rank answers its shard and the counts are summed.
// Not sampling for training (train/rlhf/rollout.h), not the rules themselves, not the CLI.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "core/decoder.h"
#include "data/batch.h"
#include "data/data_config.h"
#include "data/tokenizer.h"
#include "train/config/choices.h"
#include "train/dist/comm.h"

namespace infini {

// One file's prompts, batched on the host.
struct AccuracySet {
  std::string name;            // the file's stem: its key among the per-file results
  std::string path;
  std::vector<Batch> batches;  // prompts format, answers filled in ("" where a record has none)
};

// Up to max_prompts (<= 0: all) prompts of each file, in file order, in batches of batch_size;
// rendered as `data` says (seq_len, truncate, chat; its train/val/format are not used). Throws
// infini::Error for an unreadable or empty file (the loader's messages name it).
std::vector<AccuracySet> load_accuracy_sets(const DataConfig& data, const std::vector<std::string>& files,
                                            const Tokenizer& tok, int64_t max_prompts, int64_t batch_size);

struct AccuracyOptions {
  RuleMatch rule = RuleMatch::exact;
  int64_t max_new_tokens = 16;
  Decoder* reward_model = nullptr;          // when set: its mean score of prompt + response
  std::function<void(int64_t)> on_prompts;  // after each batch: the number of prompts it held
};

struct FileAccuracy {
  std::string name, path;
  int64_t prompts = 0;
  double correct = 0;  // sum of the rule's scores (exact: the prompts answered right)
  double accuracy() const { return prompts > 0 ? correct / static_cast<double>(prompts) : 0.0; }
};

struct AccuracyResult {
  std::vector<FileAccuracy> files;  // in the order of the sets
  int64_t prompts = 0;
  double correct = 0;
  double response_tokens = 0;  // response tokens generated (EOS included), all prompts
  double rm_score_sum = 0;     // reward model's scores summed over the prompts (0 without one)
  double accuracy() const { return prompts > 0 ? correct / static_cast<double>(prompts) : 0.0; }
  double response_length() const { return prompts > 0 ? response_tokens / static_cast<double>(prompts) : 0.0; }
  double rm_score() const { return prompts > 0 ? rm_score_sum / static_cast<double>(prompts) : 0.0; }
};

// Greedy responses of `policy` (on `device`) to every prompt of `sets`, at most max_new_tokens each
// (stopping at EOS), scored by the rule against the answer; a prompt without an answer scores 0.
AccuracyResult greedy_accuracy(Decoder& policy, const std::vector<AccuracySet>& sets, const Tokenizer& tok,
                               const AccuracyOptions& opt, const torch::Device& device);

// Data parallel: the share of `sets` that rank `rank` of `world` answers, batches rank, rank + world,
// ... of each set (every set stays, possibly with no batches, so per-file results line up).
std::vector<AccuracySet> accuracy_shard(const std::vector<AccuracySet>& sets, int rank, int world);

// Sums the ranks' results of their shards in place (per file: prompts and right answers; response
// tokens and reward-model scores), one all-reduce; every rank ends with the whole.
void sum_accuracy_across(AccuracyResult& res, Comm& comm);

}  // namespace infini
