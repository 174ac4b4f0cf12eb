// `infini eval reward --checkpoint CK --data FILE [--out FILE.json]`: pairwise accuracy and mean margin
// of a reward model over any preference file the loader reads. Not training (train/stages/reward.cpp).
#include <cstdio>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "core/compat.h"
#include "core/error.h"
#include "core/model_io.h"
#include "core/safetensors.h"
#include "data/loader.h"
#include "data/tokenizer.h"
#include "train/cli/open_checkpoint.h"
#include "train/run/checkpoint_dir.h"
#include "train/cli/commands.h"
#include "train/run/device.h"
#include "train/rlhf/ppo_math.h"
#include "train/run/runtime.h"

namespace infini {
namespace {

struct EvalRewardArgs {
  std::string checkpoint, data, out, tokenizer, truncate = "left", device = "cpu";
  int64_t seq_len = 512, batch = 8, max_pairs = 0;
  int threads = 0;
};

int eval_reward(const EvalRewardArgs& a) {
  const torch::Device device = parse_device("--device", a.device);
  // Under a launcher each rank scores batches rank, rank + N, ...; rank 0 prints and writes the sums.
  const std::shared_ptr<Comm> comm = process_comm(kEvalDistTimeoutS);
  compat::set_threads(resolve_threads(a.threads, "--threads", comm->env().local_world_size));
  const OpenedModel m = open_model(a.checkpoint, Head::scalar, "eval reward", device);
  Decoder model = m.model;
  const Tokenizer tok = *open_tokenizer(a.tokenizer, m, /*required=*/true);

  DataConfig dc;
  dc.train = {a.data};
  dc.format = "preference";
  dc.seq_len = a.seq_len;
  dc.truncate = a.truncate;  // left keeps the end of a transcript, where the two sides differ
  dc.shuffle = false;
  dc.prefetch = 0;
  Loader loader(dc, Split::train, &tok, a.batch, 0);

  torch::NoGradGuard ng;
  int64_t pairs = 0;
  double correct = 0, margin_sum = 0, loss_sum = 0;
  const int64_t max_batches = a.max_pairs > 0 ? (a.max_pairs + a.batch - 1) / a.batch : -1;
  const std::vector<Batch> batches = loader.all_batches(max_batches);
  for (size_t i = static_cast<size_t>(comm->rank()); i < batches.size(); i += static_cast<size_t>(comm->world_size())) {
    const Batch& b = batches[i];
    // The loader's batches are on the host; scores and lengths meet on the model's device.
    auto rc = last_token_scores(model->forward(b.tokens.to(device)), b.lengths.to(device));  // (B)
    auto rr = last_token_scores(model->forward(b.rejected_tokens.to(device)), b.rejected_lengths.to(device));  // (B)
    const PairwiseLoss p = pairwise_loss(rc, rr);
    const double n = static_cast<double>(b.size());
    correct += p.accuracy * n;
    margin_sum += p.margin * n;
    loss_sum += p.loss.item<double>() * n;
    pairs += b.size();
  }
  if (comm->distributed()) {
    auto t = torch::tensor({static_cast<double>(pairs), correct, margin_sum, loss_sum}, torch::kFloat64);
    comm->all_reduce_sum(t, "the reward evaluation's all-reduce");
    pairs = static_cast<int64_t>(std::llround(t[0].item<double>()));
    correct = t[1].item<double>();
    margin_sum = t[2].item<double>();
    loss_sum = t[3].item<double>();
  }
  if (pairs == 0) throw Error(fmt::format("{}: no preference pairs to evaluate", a.data));
  if (!comm->is_main()) return 0;
  const double acc = correct / static_cast<double>(pairs), margin = margin_sum / static_cast<double>(pairs);
  std::printf("reward model %s on %s: %lld pairs, accuracy %.4f, mean margin %.4f, loss %.4f\n", m.path.c_str(),
              a.data.c_str(), static_cast<long long>(pairs), acc, margin, loss_sum / static_cast<double>(pairs));
  if (!a.out.empty()) {
    nlohmann::json j{{"checkpoint", m.path}, {"data", a.data},          {"pairs", pairs},
                     {"accuracy", acc},   {"mean_margin", margin}, {"loss", loss_sum / static_cast<double>(pairs)},
                     {"seq_len", a.seq_len}};
    std::ofstream out(a.out);
    out << j.dump(2) << "\n";
    if (!out) throw Error(fmt::format("--out {}: cannot write", a.out));
  }
  return 0;
}

}  // namespace

void add_eval_reward_subcommand(CLI::App& eval) {
  auto args = std::make_shared<EvalRewardArgs>();
  auto* cmd = eval.add_subcommand("reward", "pairwise accuracy and mean margin of a reward model on preference pairs");
  cmd->add_option("--checkpoint", args->checkpoint, "reward model: a run directory, step directory or model.safetensors")
      ->required();
  cmd->add_option("--data", args->data, "preference file: JSONL/JSON (.gz) of {prompt, chosen, rejected} or "
                                        "HH-RLHF {chosen, rejected} transcripts")->required();
  cmd->add_option("--out", args->out, "write the results as JSON to this file");
  cmd->add_option("--tokenizer", args->tokenizer, "sentencepiece model (default: the one the checkpoint records)");
  cmd->add_option("--seq-len", args->seq_len, "tokens per side (longer sides are truncated)")->check(integer_at_least(1));
  cmd->add_option("--truncate", args->truncate, "left | right | drop: what a longer side loses")
      ->check(CLI::IsMember({"left", "right", "drop"}));
  cmd->add_option("--batch", args->batch, "pairs per forward")->check(integer_at_least(1));
  cmd->add_option("--max-pairs", args->max_pairs, "evaluate at most this many pairs (0 = all)")
      ->check(integer_at_least(0));
  cmd->add_option("--threads", args->threads, "intra-op threads (0 = all cores)")->check(integer_at_least(0));
  cmd->add_option("--device", args->device, "cpu | cuda | cuda:N: where the model runs (default cpu)");
  cmd->callback([args] { set_command([args] { return eval_reward(*args); }); });
}

}  // namespace infini
