// `infini eval accuracy --checkpoint CK --data F.jsonl [--data G.jsonl ...] [--out FILE.json]`: the true
// accuracy of a policy on verifiable prompts ({prompt, answer} records): greedy responses matched
// with the answers by a rule, per file and overall; the same loop as stage ppo's held-out
// evaluation (train/eval/accuracy.h); under a launcher the batches are split over the ranks and
// rank 0 reports the sums. Not sampling, not a reward model's score (`eval reward`).
#include <chrono>
#include <cstdio>
#include <fstream>

#include <fmt/format.h>

#include "core/compat.h"
#include "core/error.h"
#include "data/records.h"
#include "train/cli/commands.h"
#include "train/cli/open_checkpoint.h"
#include "train/config/choices.h"
#include "train/dist/comm.h"
#include "train/eval/accuracy.h"
#include "train/run/device.h"
#include "train/run/progress.h"
#include "train/run/runtime.h"
#include "train/run/stopwatch.h"

namespace infini {
namespace {

struct EvalAccuracyArgs {
  std::string checkpoint, tokenizer, out, rule = "exact", truncate = "left", device = "cpu";
  std::vector<std::string> data;
  int64_t max_new_tokens = 16, batch = 32, max_prompts = 0, seq_len = 512;
  int threads = 0;
};

// Every record of every file is a prompt with an answer; the first that is not is the error, by
// file and line (the loader would take it as a prompt that can never be right).
void require_answers(const std::vector<std::string>& files) {
  for (const std::string& file : files) {
    const std::vector<RawRecord> records = read_record_file(file);
    if (records.empty()) throw Error(fmt::format("{}: no records (expected {{prompt, answer}} lines)", file));
    for (const RawRecord& r : records)
      if (parse_prompt_record(r.value, r.where).answer.empty())
        throw Error(fmt::format("{}: no \"answer\": eval accuracy needs {{prompt, answer}} records", r.where));
  }
}

int eval_accuracy(const EvalAccuracyArgs& a) {
  RuleMatch rule = RuleMatch::exact;
  if (!parse_choice(a.rule, &rule)) throw ConfigError(fmt::format("--rule: expected exact or numeric, found '{}'", a.rule));
  const torch::Device device = parse_device("--device", a.device);
  require_answers(a.data);
  // Under a launcher each rank answers batches rank, rank + N, ... of each file; rank 0 prints and
  // writes the sums.
  const std::shared_ptr<Comm> comm = process_comm(kEvalDistTimeoutS);
  compat::set_threads(resolve_threads(a.threads, "--threads", comm->env().local_world_size));
  const OpenedModel m = open_model(a.checkpoint, Head::lm, "eval accuracy", device);
  Decoder policy = m.model;
  const Tokenizer tok = *open_tokenizer(a.tokenizer, m, /*required=*/true);

  DataConfig dc;
  dc.format = "prompts";
  dc.seq_len = a.seq_len;
  dc.truncate = a.truncate;  // left keeps the end of a long prompt, where the question is
  const std::vector<AccuracySet> sets = load_accuracy_sets(dc, a.data, tok, a.max_prompts, a.batch);
  const std::vector<AccuracySet> mine = accuracy_shard(sets, comm->rank(), comm->world_size());
  int64_t total = 0;
  for (const AccuracySet& s : mine)
    for (const Batch& b : s.batches) total += b.size();

  AccuracyOptions opt;
  opt.rule = rule;
  opt.max_new_tokens = a.max_new_tokens;
  Progress progress("eval accuracy", static_cast<double>(total), "prompts");
  opt.on_prompts = [&progress](int64_t n) { progress.add(static_cast<double>(n)); };
  const auto t0 = std::chrono::steady_clock::now();
  AccuracyResult res = greedy_accuracy(policy, mine, tok, opt, device);
  progress.finish();
  sum_accuracy_across(res, *comm);
  const double seconds = seconds_since(t0);
  if (!comm->is_main()) return 0;

  std::printf("accuracy of %s (greedy, rule %s, at most %lld new tokens, %s%s):\n", m.path.c_str(), a.rule.c_str(),
              static_cast<long long>(a.max_new_tokens), device_name(device).c_str(),
              comm->distributed() ? fmt::format(", {} ranks", comm->world_size()).c_str() : "");
  nlohmann::json files = nlohmann::json::array();
  for (const FileAccuracy& f : res.files) {
    std::printf("  %-32s %6lld prompts  %8.1f right  accuracy %.4f\n", f.name.c_str(), static_cast<long long>(f.prompts),
                f.correct, f.accuracy());
    files.push_back({{"name", f.name}, {"data", f.path}, {"prompts", f.prompts}, {"correct", f.correct},
                     {"accuracy", f.accuracy()}});
  }
  std::printf("  %-32s %6lld prompts  %8.1f right  accuracy %.4f  (%.1f s, response length %.1f)\n", "overall",
              static_cast<long long>(res.prompts), res.correct, res.accuracy(), seconds, res.response_length());
  std::fflush(stdout);
  if (!a.out.empty()) {
    nlohmann::json j{{"checkpoint", m.path},
                     {"rule", a.rule},
                     {"decoding", "greedy"},
                     {"max_new_tokens", a.max_new_tokens},
                     {"files", files},
                     {"prompts", res.prompts},
                     {"correct", res.correct},
                     {"accuracy", res.accuracy()},
                     {"response_length", res.response_length()},
                     {"seconds", seconds}};
    std::ofstream out(a.out);
    out << j.dump(2) << "\n";
    if (!out) throw Error(fmt::format("--out {}: cannot write", a.out));
  }
  return 0;
}

}  // namespace

void add_eval_accuracy_subcommand(CLI::App& eval) {
  auto args = std::make_shared<EvalAccuracyArgs>();
  auto* cmd = eval.add_subcommand("accuracy", "true accuracy of a policy on verifiable prompts: greedy responses "
                                              "matched with the records' answers, per file and overall");
  cmd->add_option("--checkpoint", args->checkpoint, "policy: a run directory, step directory or model.safetensors")
      ->required();
  cmd->add_option("--data", args->data, "prompts file(s): JSONL/JSON (.gz) of {prompt, answer}; repeat for several "
                                        "(each reported on its own)")->required();
  cmd->add_option("--rule", args->rule, "exact | numeric: how a response is matched with its answer (ppo.rule)")
      ->check(CLI::IsMember({"exact", "numeric"}));
  cmd->add_option("--max-new-tokens", args->max_new_tokens, "tokens a response may have at most (default 16)")
      ->check(integer_at_least(1));
  cmd->add_option("--batch-size", args->batch, "prompts decoded together (default 32)")->check(integer_at_least(1));
  cmd->add_option("--max-prompts", args->max_prompts, "at most this many prompts of each file (0 = all)")
      ->check(integer_at_least(0));
  cmd->add_option("--seq-len", args->seq_len, "tokens a rendered prompt may have (longer ones are truncated)")
      ->check(integer_at_least(1));
  cmd->add_option("--truncate", args->truncate, "left | right | drop: what a longer prompt loses")
      ->check(CLI::IsMember({"left", "right", "drop"}));
  cmd->add_option("--out", args->out, "write the results as JSON to this file");
  cmd->add_option("--tokenizer", args->tokenizer, "sentencepiece model (default: the one the checkpoint records)");
  cmd->add_option("--threads", args->threads, "intra-op threads (0 = all cores)")->check(integer_at_least(0));
  cmd->add_option("--device", args->device, "cpu | cuda | cuda:N: where the model runs (default cpu)");
  cmd->callback([args] { set_command([args] { return eval_accuracy(*args); }); });
}

}  // namespace infini
