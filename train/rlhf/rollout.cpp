// Rollout generation for PPO (see train/rlhf/rollout.h): incremental sampling, then packing into a batch.
// Runs under NoGradGuard: nothing here feeds a gradient (log-probs are recomputed in train/stages/ppo.cpp).
#include "train/rlhf/rollout.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/decode.h"
#include "core/error.h"

namespace infini {

Rollout sample_rollout(Decoder& actor, const Batch& prompts, const SamplingOptions& sampling, int64_t max_new_tokens,
                       int64_t eos_id, int64_t pad_id, std::vector<at::Generator>& row_gens, int64_t vocab_limit) {
  torch::NoGradGuard ng;
  const int64_t B = prompts.size();
  if (sampling.temperature != 0 && static_cast<int64_t>(row_gens.size()) != B)
    throw Error(fmt::format("sample_rollout: {} prompts need as many generators, found {}", B, row_gens.size()));
  const bool was_training = actor->is_training();
  actor->eval();
  const auto device = prompts.tokens.device();
  auto plen = prompts.lengths.to(torch::kCPU);
  std::vector<std::vector<int64_t>> seqs(static_cast<size_t>(B));
  Rollout r;
  r.responses.resize(static_cast<size_t>(B));
  std::vector<float> eos(static_cast<size_t>(B), 0.f);
  // Prompts of equal length share one streaming state and decode as one batch (in the order of
  // their first appearance); a row that has ended keeps being fed but takes no more tokens.
  std::vector<int64_t> group_len;               // prompt length of each group
  std::vector<std::vector<int64_t>> group_rows;  // the batch rows of each group
  for (int64_t b = 0; b < B; ++b) {
    const int64_t P = plen[b].item<int64_t>();
    if (P < 1) throw Error(fmt::format("ppo: prompt {} of the batch is empty", b));
    const auto it = std::find(group_len.begin(), group_len.end(), P);
    if (it != group_len.end()) {
      group_rows[static_cast<size_t>(it - group_len.begin())].push_back(b);
    } else {
      group_len.push_back(P);
      group_rows.push_back({b});
    }
  }
  for (size_t k = 0; k < group_len.size(); ++k) {
    const std::vector<int64_t>& rows = group_rows[k];
    const int64_t P = group_len[k], g = static_cast<int64_t>(rows.size());
    auto index = torch::tensor(rows, torch::kLong).to(device);
    auto prompt = prompts.tokens.index_select(0, index).slice(1, 0, P);  // (g, P)
    StreamState st = actor->new_state(g);
    // The prompt in chunks of whole segments (Decoder::read_prompt), as generate() reads one: the
    // activations and logits of one chunk at a time, not of the whole prompt.
    auto logits = actor->head(actor->read_prompt(st, prompt)).select(1, 0);  // (g, V)
    auto pc = prompt.to(torch::kCPU).contiguous();
    std::vector<at::Generator*> gens;  // the group's rows' generators (none for greedy)
    if (sampling.temperature != 0)
      for (int64_t b : rows) gens.push_back(&row_gens[static_cast<size_t>(b)]);
    else
      gens.assign(static_cast<size_t>(g), nullptr);
    std::vector<bool> done(static_cast<size_t>(g), false);
    int64_t live = g;
    for (int64_t j = 0; j < g; ++j) {
      const int64_t* row = pc.data_ptr<int64_t>() + j * P;
      seqs[static_cast<size_t>(rows[static_cast<size_t>(j)])].assign(row, row + P);
    }
    decode_loop(
        actor, st, logits, max_new_tokens,
        [&](const torch::Tensor& l) {
          const auto usable = vocab_limit > 0 ? l.slice(-1, 0, vocab_limit) : l;  // (g, V')
          return sample_next_rows(usable, sampling, gens).to(torch::kCPU);          // (g)
        },
        [&](const torch::Tensor& next) {
          for (int64_t j = 0; j < g; ++j) {
            if (done[static_cast<size_t>(j)]) continue;
            const int64_t b = rows[static_cast<size_t>(j)], t = next[j].item<int64_t>();
            seqs[static_cast<size_t>(b)].push_back(t);
            if (t == eos_id) {
              eos[static_cast<size_t>(b)] = 1.f;
              done[static_cast<size_t>(j)] = true;
              --live;
            } else {
              r.responses[static_cast<size_t>(b)].push_back(t);
            }
          }
          return live > 0;
        });
  }
  if (was_training) actor->train();

  int64_t T = 0;
  for (const auto& s : seqs) T = std::max<int64_t>(T, static_cast<int64_t>(s.size()));
  r.tokens = torch::full({B, T}, pad_id, torch::kLong);
  r.lengths = torch::zeros({B}, torch::kLong);
  r.prompt_lengths = plen.clone();
  r.action_mask = torch::zeros({B, T - 1}, torch::kFloat);
  for (int64_t b = 0; b < B; ++b) {
    const auto& s = seqs[static_cast<size_t>(b)];
    const int64_t L = static_cast<int64_t>(s.size()), P = plen[b].item<int64_t>();
    r.tokens[b].slice(0, 0, L).copy_(torch::tensor(s, torch::kLong));
    r.lengths[b] = L;
    if (L > P) r.action_mask[b].slice(0, P - 1, L - 1).fill_(1.f);  // positions predicting tokens P..L-1
  }
  r.ended_eos = torch::tensor(eos, torch::kFloat);
  r.answers = prompts.answers;
  r.answers.resize(static_cast<size_t>(B));
  r.tokens = r.tokens.to(device);
  r.lengths = r.lengths.to(device);
  r.action_mask = r.action_mask.to(device);
  return r;
}

Batch repeat_prompts(const Batch& b, int64_t times) {
  if (times == 1) return b;
  Batch r = b;
  r.tokens = b.tokens.repeat_interleave(times, 0);
  if (b.loss_mask.defined()) r.loss_mask = b.loss_mask.repeat_interleave(times, 0);
  r.lengths = b.lengths.repeat_interleave(times, 0);
  r.answers.clear();
  for (const std::string& a : b.answers)
    for (int64_t k = 0; k < times; ++k) r.answers.push_back(a);
  return r;
}

}  // namespace infini
