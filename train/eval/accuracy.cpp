// Greedy true accuracy on held-out prompts (train/eval/accuracy.h).
#include "train/eval/accuracy.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/generate.h"
#include "data/loader.h"
#include "train/rlhf/ppo_math.h"
#include "train/rlhf/rollout.h"
#include "train/rlhf/rule_rewards.h"

namespace infini {

std::vector<AccuracySet> load_accuracy_sets(const DataConfig& data, const std::vector<std::string>& files,
                                            const Tokenizer& tok, int64_t max_prompts, int64_t batch_size) {
  std::vector<AccuracySet> sets;
  for (const std::string& file : files) {
    DataConfig one = data;
    one.val = {file};
    one.format = "prompts";
    one.prefetch = 0;
    const int64_t per_batch = max_prompts > 0 ? std::min(max_prompts, batch_size) : batch_size;
    Loader loader(one, Split::val, &tok, per_batch, 0);
    AccuracySet set{std::filesystem::path(file).stem().string(), file, {}};
    int64_t n = 0;
    for (Batch& b : loader.all_batches()) {
      if (max_prompts > 0 && n >= max_prompts) break;
      const int64_t keep = max_prompts > 0 ? std::min<int64_t>(b.size(), max_prompts - n) : b.size();
      Batch k = b;
      k.tokens = b.tokens.slice(0, 0, keep);
      k.lengths = b.lengths.slice(0, 0, keep);
      k.answers.resize(static_cast<size_t>(keep));
      set.batches.push_back(k);
      n += keep;
    }
    sets.push_back(std::move(set));
  }
  return sets;
}

AccuracyResult greedy_accuracy(Decoder& policy, const std::vector<AccuracySet>& sets, const Tokenizer& tok,
                               const AccuracyOptions& opt, const torch::Device& device) {
  SamplingOptions greedy;
  greedy.temperature = 0.0;
  std::vector<at::Generator> none;  // greedy decoding draws nothing
  AccuracyResult res;
  for (const AccuracySet& set : sets) {
    FileAccuracy f{set.name, set.path, 0, 0.0};
    for (const Batch& b : set.batches) {
      Batch d = b;
      d.tokens = b.tokens.to(device);
      Rollout r = sample_rollout(policy, d, greedy, opt.max_new_tokens, tok.eos_id(), tok.pad_id(), none,
                                 tok.vocab_size());
      for (size_t i = 0; i < r.answers.size(); ++i) {
        if (r.answers[i].empty()) continue;
        const std::vector<int64_t>& ids = r.responses[i];
        f.correct += rule_reward(tok.decode(std::vector<int>(ids.begin(), ids.end())), r.answers[i], opt.rule);
      }
      if (opt.reward_model) {
        torch::NoGradGuard ng;
        res.rm_score_sum += last_token_scores((*opt.reward_model)->forward(r.tokens), r.lengths).sum().item<double>();
      }
      f.prompts += d.size();
      res.response_tokens += r.action_mask.sum().item<double>();
      if (opt.on_prompts) opt.on_prompts(d.size());
    }
    res.prompts += f.prompts;
    res.correct += f.correct;
    res.files.push_back(std::move(f));
  }
  return res;
}

std::vector<AccuracySet> accuracy_shard(const std::vector<AccuracySet>& sets, int rank, int world) {
  std::vector<AccuracySet> mine;
  for (const AccuracySet& set : sets) {
    AccuracySet s{set.name, set.path, {}};
    for (size_t b = static_cast<size_t>(rank); b < set.batches.size(); b += static_cast<size_t>(world))
      s.batches.push_back(set.batches[b]);
    mine.push_back(std::move(s));
  }
  return mine;
}

void sum_accuracy_across(AccuracyResult& res, Comm& comm) {
  if (!comm.distributed()) return;
  const size_t F = res.files.size();
  auto t = torch::zeros({static_cast<int64_t>(2 * F + 2)}, torch::kFloat64);
  auto* v = t.data_ptr<double>();
  for (size_t i = 0; i < F; ++i) {
    v[2 * i] = static_cast<double>(res.files[i].prompts);
    v[2 * i + 1] = res.files[i].correct;
  }
  v[2 * F] = res.response_tokens;
  v[2 * F + 1] = res.rm_score_sum;
  comm.all_reduce_sum(t, "the accuracy evaluation's all-reduce");
  res.prompts = 0;
  res.correct = 0;
  for (size_t i = 0; i < F; ++i) {
    res.files[i].prompts = static_cast<int64_t>(std::llround(v[2 * i]));
    res.files[i].correct = v[2 * i + 1];
    res.prompts += res.files[i].prompts;
    res.correct += res.files[i].correct;
  }
  res.response_tokens = v[2 * F];
  res.rm_score_sum = v[2 * F + 1];
}

}  // namespace infini
