// stage: ppo - the RLHF recipe, one rollout per step: make experience (sample responses through the
// streaming path, score them with the reward model and/or the rule, per-token KL penalty toward
// the frozen reference, GAE or the critic-free leave-one-out baseline), then update (ppo_epochs of
// clipped actor/critic updates), log, and now and then evaluate on held-out prompts. The run around
// it (set-up, resume, checkpoints, signals) is RunSession's; the arithmetic is train/rlhf/.
// Data parallel: each rank samples and scores its slice of the rollout batch (whole prompt groups),
// every row from a generator of its own (run.seed, rollout, global row), so N ranks sample what one
// process would; whitening, the KL controller, the logged figures and every mini-batch's loss are
// those of the global batch (sums over the ranks), and gradients are summed as in the trainer.
#include "train/stages/ppo.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "core/generate.h"
#include "core/model_io.h"
#include "data/loader.h"
#include "data/tokenizer.h"
#include "train/eval/accuracy.h"
#include "train/rlhf/ppo_math.h"
#include "train/rlhf/rollout.h"
#include "train/rlhf/rule_rewards.h"
#include "train/run/adamw.h"
#include "train/run/checkpoint.h"
#include "train/run/checkpoint_dir.h"
#include "train/run/progress.h"
#include "train/dist/comm.h"
#include "train/dist/grad_sync.h"
#include "train/dist/replicas.h"
#include "train/run/session.h"
#include "train/run/signals.h"
#include "train/run/stopwatch.h"
#include "train/run/trainable.h"
#include "train/stages/packed_sequences.h"

namespace fs = std::filesystem;

namespace infini {
namespace {

// What one rollout batch carries into the updates; A = T - 1 action positions.
struct Experience {
  Rollout rollout;
  torch::Tensor logp_old;    // (B, A) actor log-probs at sampling time (temperature-scaled logits)
  torch::Tensor logp_ref;    // (B, A) reference log-probs
  torch::Tensor values_old;  // (B, A) critic values
  torch::Tensor raw_score;   // (B) sequence score before clipping / penalty
  torch::Tensor rm, rule;    // (B) the reward model's scores (undefined without one) and the rule's
  int64_t with_answer = 0;   // rows whose prompt has an answer (the rule's mean is over them)
  torch::Tensor score;       // (B) sequence score after clipping / penalty
  torch::Tensor advantages;  // (B, A)
  torch::Tensor returns;     // (B, A)
  torch::Tensor row_tokens;  // (global B) fp64 CPU: every global row's response tokens, this rank's and the others'
  double generate_s = 0, score_s = 0;
};

// The rollout's figures for the log and the KL controller, over the global batch.
struct RolloutFigures {
  double reward_mean = 0, reward_std = 0, rm_mean = 0, rule_mean = 0, kl_mean = 0, mixed_groups = 0;
  double response_length = 0, eos_fraction = 0, distinct = 0, explained_variance = 0;
  double generate_tokens_per_s = 0, update_tokens_per_s = 0;  // summed over the ranks
  int64_t sequences = 0;
};

// Means over the update's mini-batches, for the log.
struct UpdateStats {
  double policy_loss = 0, value_loss = 0, clip = 0, value_clip = 0, approx_kl = 0, entropy = 0, n = 0;
  double kl_loss = 0;  // grpo: the k3 KL term (before its coefficient)
  double seconds = 0;
  bool finite = true;
  double mean(double sum) const { return sum / n; }
};

// Log-probs of the actual next tokens (B, A) under logits (B, T, V) scaled by the sampling temperature.
torch::Tensor sequence_logprobs(const torch::Tensor& logits, const torch::Tensor& tokens, double temperature) {
  auto l = logits.slice(1, 0, -1);  // (B, A, V)
  if (temperature != 1.0) l = l / temperature;
  return token_logprobs(l, tokens.slice(1, 1));
}

std::string decode_ids(const Tokenizer& tok, const std::vector<int64_t>& ids) {
  return tok.decode(std::vector<int>(ids.begin(), ids.end()));
}

Tokenizer ppo_tokenizer(const RunSession& s) {
  if (!s.tokenizer()) throw ConfigError("tokenizer.model: stage ppo needs a tokenizer, found none");
  return *s.tokenizer();
}

// The reward model's shape: the one it was trained with, which may be deeper than the policy
// (init_extra_layers); it reads the policy's tokens, so the vocabulary must match.
ModelConfig reward_model_config(const Config& cfg) {
  if (cfg.ppo.reward_model.empty()) return cfg.model;
  const std::string path = (fs::path(resolve_checkpoint(cfg.ppo.reward_model)) / kModelFileName).string();
  ModelConfig rm = read_model_config(path);
  if (rm.vocab_size != cfg.model.vocab_size)
    throw ConfigError(fmt::format("ppo.reward_model: {} has vocab_size {}, the policy (model.vocab_size) {}", path,
                                  rm.vocab_size, cfg.model.vocab_size));
  return rm;
}

// The sampling generator of global rollout row `row` at rollout `step`: a function of run.seed,
// the step and the row alone (splitmix64's finaliser mixes them), so one process and N ranks
// sample the same responses, and a resumed run samples what the straight run would without any
// generator state in the checkpoint.
at::Generator row_generator(uint64_t seed, int64_t step, int64_t row) {
  auto mix = [](uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  };
  return make_generator(mix(mix(mix(seed + 7919) ^ static_cast<uint64_t>(step)) ^ static_cast<uint64_t>(row)));
}

AdamW make_optimizer(Decoder& m, const OptimConfig& o) {
  return AdamW(make_param_groups(*m, o.weight_decay, o.gate_lr_mult), o.betas[0], o.betas[1], o.eps);
}

void freeze(Decoder& m) {
  m->eval();
  for (auto& p : m->parameters()) p.set_requires_grad(false);
}

class PpoRun {
 public:
  explicit PpoRun(const Config& cfg);
  int run();

 private:
  void build_models();
  void load_held_out();
  void register_checkpoint_parts();
  void init_fresh();
  torch::Tensor score_rollout(const Rollout& r, torch::Tensor* rm, torch::Tensor* rule, int64_t* with_answer);
  // m's forward over rollout rows tokens (B, T) of real lengths (B): with data.pack the rows share
  // packed rows (train/stages/packed_sequences.h) and the result comes back per row, unchanged.
  torch::Tensor forward_rows(Decoder& m, const torch::Tensor& tokens, const torch::Tensor& lengths);
  bool pack_logged_ = false;
  Experience make_experience();
  UpdateStats update(const Experience& ex, int64_t this_step);
  RolloutFigures figures(const Experience& ex, const UpdateStats& u);
  void log(const RolloutFigures& f, const UpdateStats& u, double kl_coef_used, const Experience& ex);
  void evaluate_held_out();
  void sum_over_ranks(torch::Tensor t, const char* what) {
    if (comm_->distributed()) comm_->all_reduce_sum(t, what);
  }

  const Config& cfg_;
  const PPOConfig& pc_;
  RunSession session_;
  const Runtime rt_;
  const Tokenizer tok_;
  const std::shared_ptr<Comm> comm_;
  const bool use_rm_, use_rule_;
  const bool grpo_, critic_free_;  // grpo: group-normalised scores, KL as a loss term; rloo/grpo: no critic
  // Four models: actor and reference from the SFT model, critic and reward model from the reward model.
  ModelConfig rm_cfg_;
  Decoder actor_{nullptr}, reference_{nullptr}, critic_{nullptr};
  std::optional<Decoder> reward_model_;
  std::optional<AdamW> actor_opt_, critic_opt_;
  std::optional<GradSync> actor_sync_, critic_sync_;  // data parallel only
  Loader prompts_;  // this rank's slice of each global batch of prompts
  // Held-out prompts: up to eval_prompts from each data.val file, kept per file so that the true
  // accuracy is reported per file (e.g. one file per task) as well as overall.
  std::vector<AccuracySet> held_out_;
  KLController kl_;
  SamplingOptions sampling_;
  int64_t step_ = 0;
  std::optional<Progress> progress_;  // rollouts done of max_steps, and the phase; cleared before log lines
  void phase(const std::string& what) {
    if (progress_) progress_->note(fmt::format("rollout {}: {}", step_ + 1, what));
  }
};

PpoRun::PpoRun(const Config& cfg)
    : cfg_(cfg), pc_(cfg.ppo), session_(cfg, "ppo", true, "rollout"), rt_(session_.runtime()),
      tok_(ppo_tokenizer(session_)), comm_(session_.comm()), use_rm_(pc_.reward_source != RewardSource::rule),
      use_rule_(pc_.reward_source != RewardSource::model),
      grpo_(pc_.advantage == Advantage::grpo), critic_free_(pc_.advantage != Advantage::gae),
      rm_cfg_(reward_model_config(cfg)),
      prompts_(cfg.data, Split::train, &tok_, cfg.train.batch_size, static_cast<uint64_t>(cfg.run.seed), comm_->rank(),
               comm_->world_size()) {
  if (rt_.bf16) spdlog::info("ppo runs in fp32 (run.precision bf16 is not used by this stage)");
  spdlog::info("ppo: reward from {}, advantages from {}", choice_name(pc_.reward_source),
               choice_name(pc_.advantage));
  build_models();
  load_held_out();
  kl_.value = pc_.kl_coef;
  kl_.adaptive = pc_.kl_adaptive;
  kl_.target = pc_.kl_target;
  kl_.horizon = pc_.kl_horizon;
  sampling_.temperature = pc_.temperature;
  sampling_.top_k = pc_.top_k;
  sampling_.top_p = pc_.top_p;
  if (comm_->distributed()) {
    auto trainable = [](Decoder& m) {
      std::vector<torch::Tensor> params;
      for (const auto& p : m->parameters())
        if (p.requires_grad()) params.push_back(p);
      return params;
    };
    const auto bucket_bytes = static_cast<int64_t>(cfg.run.dist_bucket_mb * 1e6);
    actor_sync_.emplace(comm_, trainable(actor_), bucket_bytes);
    if (!critic_free_) critic_sync_.emplace(comm_, trainable(critic_), bucket_bytes);
    spdlog::info("data parallel: {} ranks, {} prompts each of a global batch of {} ({} samples each)",
                 comm_->world_size(), cfg.train.batch_size / comm_->world_size(), cfg.train.batch_size,
                 pc_.samples_per_prompt);
  }
  register_checkpoint_parts();
}

void PpoRun::build_models() {
  actor_ = Decoder(cfg_.model, Head::lm);
  reference_ = Decoder(cfg_.model, Head::lm);
  critic_ = Decoder(rm_cfg_, Head::scalar);
  prepare_trainable(actor_, cfg_, "actor");
  prepare_trainable(critic_, cfg_, "critic");
  if (!cfg_.init_from.empty()) init_weights_from(cfg_.init_from, reference_);
  else spdlog::warn("init_from is empty: actor and reference start from random weights");
  if (!pc_.reward_model.empty()) {
    reward_model_.emplace(rm_cfg_, Head::scalar);
    init_weights_from(pc_.reward_model, *reward_model_);
  }
  if (use_rm_ && !reward_model_)
    throw ConfigError(fmt::format("ppo.reward_model: reward_source {} needs a reward model, found none",
                                  choice_name(pc_.reward_source)));
  for (auto* m : {&reference_, &critic_, &actor_}) (*m)->to(rt_.device);
  if (reward_model_) (*reward_model_)->to(rt_.device);
  freeze(reference_);
  if (reward_model_) freeze(*reward_model_);
  actor_opt_.emplace(make_optimizer(actor_, cfg_.optim));
  critic_opt_.emplace(make_optimizer(critic_, cfg_.optim));
}

void PpoRun::load_held_out() {
  if (pc_.eval_prompts <= 0) return;
  held_out_ = load_accuracy_sets(cfg_.data, cfg_.data.val, tok_, pc_.eval_prompts, 64);
}

void PpoRun::register_checkpoint_parts() {
  const auto meta = session_.model_metadata();
  session_.add(model_part("actor", actor_, &*actor_opt_, meta));
  session_.add(model_part("critic", critic_, &*critic_opt_, meta));
  session_.add(loader_part("loader", prompts_));
  session_.add(json_part(
      "kl_controller", [this] { return kl_.state(); },
      [this](const nlohmann::json& j, const std::string& source) { kl_.load_state(j, source); }));
  session_.add(rng_part(rt_.device));
  // No sampling generator state: each row's is made from the step (row_generator). A
  // sampling_rng entry of an older checkpoint is ignored.
}

// The actor starts as the reference (read from init_from like the critic, so LoRA adapters name
// their base); the critic as the reward model (or the SFT trunk).
void PpoRun::init_fresh() {
  if (!cfg_.init_from.empty()) {
    init_weights_from(cfg_.init_from, actor_);
  } else {
    torch::NoGradGuard ng;
    auto src = reference_->named_parameters();
    for (auto& p : actor_->named_parameters()) p.value().copy_(src[p.key()]);
  }
  if (!pc_.reward_model.empty()) init_weights_from(pc_.reward_model, critic_);
  else if (!cfg_.init_from.empty()) init_weights_from(cfg_.init_from, critic_, {"output.weight"}, {"score.weight"});
}

torch::Tensor PpoRun::forward_rows(Decoder& m, const torch::Tensor& tokens, const torch::Tensor& lengths) {
  if (!cfg_.data.pack) return m->forward(tokens);
  return packed_forward(m, tokens, lengths, cfg_.data.seq_len, /*head=*/true, pack_logged_);
}

// Sequence scores (B): reward model at the last token and/or the rule reward of the decoded response.
// Also the reward model's scores (*rm, when there is one) and the rule's (*rule, 0 where a prompt
// has no answer), for the log.
torch::Tensor PpoRun::score_rollout(const Rollout& r, torch::Tensor* rm, torch::Tensor* rule, int64_t* with_answer) {
  torch::NoGradGuard ng;
  const int64_t B = r.tokens.size(0);
  auto score = torch::zeros({B}, torch::kFloat).to(rt_.device);
  if (reward_model_) {
    *rm = last_token_scores(forward_rows(*reward_model_, r.tokens, r.lengths), r.lengths);  // (B)
    if (use_rm_) score = score + *rm;
  }
  *with_answer = 0;
  std::vector<float> rule_v(static_cast<size_t>(B), 0.f);
  for (int64_t b = 0; b < B; ++b) {
    const std::string& ans = r.answers[static_cast<size_t>(b)];
    if (ans.empty()) continue;
    ++*with_answer;
    rule_v[static_cast<size_t>(b)] =
        static_cast<float>(rule_reward(decode_ids(tok_, r.responses[static_cast<size_t>(b)]), ans, pc_.rule));
  }
  *rule = torch::tensor(rule_v, torch::kFloat).to(rt_.device);
  if (use_rule_) {
    if (*with_answer < B)
      throw Error(fmt::format("ppo.reward_source {}: {} of {} prompts have no answer (data.train needs "
                              "{{prompt, answer}} records)", choice_name(pc_.reward_source), B - *with_answer, B));
    score = score + *rule;
  }
  return score;
}

// Rollout, then (without gradients) scores, per-token rewards with the KL penalty, and advantages.
Experience PpoRun::make_experience() {
  Batch pb = repeat_prompts(prompts_.next(), pc_.samples_per_prompt);
  pb.tokens = pb.tokens.to(rt_.device);
  Experience ex;
  const auto t_gen = std::chrono::steady_clock::now();
  std::vector<at::Generator> gens;  // global rows rank x B ... rank x B + B - 1
  for (int64_t b = 0; b < pb.size(); ++b)
    gens.push_back(row_generator(static_cast<uint64_t>(cfg_.run.seed), step_ + 1, comm_->rank() * pb.size() + b));
  ex.rollout = sample_rollout(actor_, pb, sampling_, pc_.max_new_tokens, tok_.eos_id(), tok_.pad_id(), gens,
                              tok_.vocab_size());
  ex.generate_s = seconds_since(t_gen);
  const auto t_score = std::chrono::steady_clock::now();
  const Rollout& r = ex.rollout;
  const auto& mask = r.action_mask;  // (B, A)
  const int64_t B = r.tokens.size(0);
  torch::NoGradGuard ng;
  ex.logp_old = sequence_logprobs(forward_rows(actor_, r.tokens, r.lengths), r.tokens, pc_.temperature);  // (B, A)
  ex.logp_ref = sequence_logprobs(forward_rows(reference_, r.tokens, r.lengths), r.tokens, pc_.temperature);
  ex.values_old = critic_free_ ? torch::zeros_like(ex.logp_old)
                               : forward_rows(critic_, r.tokens, r.lengths).slice(1, 0, -1) * mask;
  torch::Tensor rm, rule;
  int64_t with_answer = 0;
  ex.raw_score = score_rollout(r, &rm, &rule, &with_answer);  // (B)
  ex.rm = rm;
  ex.rule = rule;
  ex.with_answer = with_answer;
  auto score = ex.raw_score;
  if (pc_.reward_clip > 0) score = score.clamp(-pc_.reward_clip, pc_.reward_clip);
  if (pc_.missing_eos_penalty > 0) score = score - pc_.missing_eos_penalty * (1 - r.ended_eos.to(rt_.device));
  ex.score = score;
  // Every global row's response tokens: the mini-batches' loss denominators on every rank.
  ex.row_tokens = torch::zeros({B * comm_->world_size()}, torch::kFloat64);
  ex.row_tokens.narrow(0, B * comm_->rank(), B).copy_(mask.sum(1).to(torch::kCPU, torch::kFloat64));
  sum_over_ranks(ex.row_tokens, "the response lengths' all-reduce");
  if (grpo_) {
    // grpo: the score normalised within the prompt's group is every response token's advantage;
    // the KL to the reference is a term of the update's loss, not a reward.
    ex.advantages = group_advantages(score, pc_.samples_per_prompt, pc_.grpo_scale_rewards).unsqueeze(1) * mask;
    ex.returns = torch::zeros_like(ex.logp_old);
  } else {
    // rloo: the score relative to the prompt's other samples, then the (discounted) return-to-go
    // of the per-token rewards as the advantage: GAE with V = 0 and lambda = 1.
    const bool rloo = pc_.advantage == Advantage::rloo;
    if (rloo) score = score - leave_one_out_baseline(score, pc_.samples_per_prompt);
    torch::Tensor rewards = per_token_rewards(ex.logp_old, ex.logp_ref, mask, score, kl_.value);
    Advantages g = gae(rewards, ex.values_old, mask, pc_.gamma, rloo ? 1.0 : pc_.lambda);
    if (!pc_.whiten_advantages) ex.advantages = g.advantages;
    else if (!comm_->distributed()) ex.advantages = masked_whiten(g.advantages, mask);
    else
      ex.advantages = masked_whiten_across(g.advantages, mask, [this](torch::Tensor& sums) {
        comm_->all_reduce_sum(sums, "the advantage whitening's all-reduce");
      });
    ex.returns = g.returns;
  }
  ex.score_s = seconds_since(t_score);
  return ex;
}

// ppo_epochs over shuffled mini-batches; during the critic warm-up only the critic learns. A
// mini-batch is a slice of one permutation of the global batch (the same on every rank: one CPU
// generator state); each rank computes the rows it holds, its losses weighted by its share of the
// mini-batch's tokens (or sequences), so the gradients summed over the ranks are the mini-batch's.
UpdateStats PpoRun::update(const Experience& ex, int64_t this_step) {
  const auto t0 = std::chrono::steady_clock::now();
  const Rollout& r = ex.rollout;
  const int64_t B = r.tokens.size(0), global_b = ex.row_tokens.size(0), first = B * comm_->rank();
  const double* row_tokens = ex.row_tokens.data_ptr<double>();
  const bool per_sequence = pc_.loss_average == LossAverage::sequence;
  const bool update_actor = this_step > pc_.critic_warmup;
  UpdateStats u;
  for (int64_t epoch = 0; epoch < pc_.ppo_epochs && u.finite; ++epoch) {
    const auto perm = torch::randperm(global_b, torch::TensorOptions().dtype(torch::kLong));  // default CPU generator
    const int64_t* order = perm.data_ptr<int64_t>();
    for (int64_t start = 0; start < global_b; start += pc_.mini_batch_size) {
      const int64_t end = std::min(global_b, start + pc_.mini_batch_size);
      std::vector<int64_t> mine;  // this rank's rows of the mini-batch, in permutation order
      double tokens = 0, sequences = 0, my_tokens = 0, my_sequences = 0;
      for (int64_t i = start; i < end; ++i) {
        const int64_t g = order[i];
        tokens += row_tokens[g];
        sequences += row_tokens[g] > 0 ? 1 : 0;
        if (g < first || g >= first + B) continue;
        mine.push_back(g - first);
        my_tokens += row_tokens[g];
        my_sequences += row_tokens[g] > 0 ? 1 : 0;
      }
      // Each loss is a mean over the mini-batch; this rank's share of it (1 on one process).
      const double share = comm_->distributed() ? (per_sequence ? my_sequences / std::max(1.0, sequences)
                                                                : my_tokens / std::max(1.0, tokens))
                                                : 1.0;
      const double token_share = comm_->distributed() ? my_tokens / std::max(1.0, tokens) : 1.0;
      torch::Tensor actor_loss, critic_loss;
      // Summed over the ranks: non-finite losses, policy loss, value loss, KL term, clip fraction,
      // value clip fraction, approx KL, entropy (each already weighted by the rank's share).
      auto stats = torch::zeros({8}, torch::kFloat64);
      if (!mine.empty()) {
        auto idx = torch::tensor(mine, torch::kLong).to(rt_.device);
        auto tokens_b = r.tokens.index_select(0, idx);  // (b, T)
        auto m = r.action_mask.index_select(0, idx);    // (b, A)
        auto lengths_b = r.lengths.index_select(0, idx.to(r.lengths.device()));
        auto logits = forward_rows(actor_, tokens_b, lengths_b);  // (b, T, V)
        auto logp = sequence_logprobs(logits, tokens_b, pc_.temperature);
        PolicyLoss pl = policy_loss(logp, ex.logp_old.index_select(0, idx), ex.advantages.index_select(0, idx), m,
                                    pc_.clip_eps, per_sequence);
        actor_loss = pl.loss;
        double klv = 0;
        if (grpo_) {  // + kl_coef x the k3 estimate of KL(actor || reference), averaged as the policy loss is
          const auto k3 = k3_kl(logp, ex.logp_ref.index_select(0, idx));
          const auto kl_term = per_sequence ? masked_sequence_mean(k3, m) : masked_mean(k3, m);
          klv = kl_term.item<double>();
          actor_loss = actor_loss + kl_.value * kl_term;
        }
        double entropy = 0;
        {
          torch::NoGradGuard ng;
          entropy = masked_mean(token_entropy(logits.slice(1, 0, -1) / pc_.temperature), m).item<double>();
        }
        ValueLoss vl;  // rloo: no critic
        if (!critic_free_) {
          auto values = forward_rows(critic_, tokens_b, lengths_b).slice(1, 0, -1);  // (b, A)
          vl = value_loss(values, ex.values_old.index_select(0, idx), ex.returns.index_select(0, idx), m,
                          pc_.value_clip);
          critic_loss = vl.loss;
        }
        const double plv = pl.loss.item<double>(), vlv = critic_free_ ? 0.0 : vl.loss.item<double>();
        const bool finite = std::isfinite(plv) && std::isfinite(vlv) && std::isfinite(klv);
        auto* s = stats.data_ptr<double>();
        s[0] = finite ? 0 : 1;
        s[1] = plv * share;
        s[2] = vlv * token_share;
        s[3] = klv * share;
        s[4] = pl.clip_fraction * token_share;
        s[5] = vl.clip_fraction * token_share;
        s[6] = pl.approx_kl * token_share;
        s[7] = entropy * token_share;
      }
      sum_over_ranks(stats, "the mini-batch figures' all-reduce");
      const auto* s = stats.data_ptr<double>();
      if (s[0] > 0) {  // a non-finite loss on any rank: no rank steps
        u.finite = false;
        break;
      }
      if (update_actor) {
        actor_opt_->zero_grad();
        if (actor_sync_) actor_sync_->arm();
        if (actor_loss.defined()) (comm_->distributed() ? actor_loss * share : actor_loss).backward();
        if (actor_sync_) actor_sync_->reduce(torch::zeros({0}, torch::kFloat64));
        clip_grad_norm(actor_opt_->groups(), cfg_.optim.grad_clip);
        actor_opt_->step(pc_.actor_lr);
      }
      if (!critic_free_) {
        critic_opt_->zero_grad();
        if (critic_sync_) critic_sync_->arm();
        if (critic_loss.defined()) (comm_->distributed() ? critic_loss * token_share : critic_loss).backward();
        if (critic_sync_) critic_sync_->reduce(torch::zeros({0}, torch::kFloat64));
        clip_grad_norm(critic_opt_->groups(), cfg_.optim.grad_clip);
        critic_opt_->step(pc_.critic_lr);
      }
      u.policy_loss += s[1];
      u.value_loss += s[2];
      u.kl_loss += s[3];
      u.clip += s[4];
      u.value_clip += s[5];
      u.approx_kl += s[6];
      u.entropy += s[7];
      u.n += 1;
    }
  }
  actor_opt_->zero_grad();
  critic_opt_->zero_grad();
  u.seconds = seconds_since(t0);
  return u;
}

// The rollout's figures over the global batch: sums over this rank's rows, added over the ranks.
RolloutFigures PpoRun::figures(const Experience& ex, const UpdateStats& u) {
  torch::NoGradGuard ng;
  const Rollout& r = ex.rollout;
  const auto m = r.action_mask.to(torch::kFloat64);
  auto sum = [](const torch::Tensor& t) { return t.to(torch::kFloat64).sum().item<double>(); };
  const auto raw = ex.raw_score.to(torch::kFloat64);
  const std::set<std::vector<int64_t>> distinct(r.responses.begin(), r.responses.end());
  const int64_t groups = r.tokens.size(0) / pc_.samples_per_prompt;
  std::vector<double> v(16, 0.0);
  v[0] = sum(raw);
  v[1] = sum(raw * raw);
  v[2] = ex.rm.defined() ? sum(ex.rm) : 0.0;
  v[3] = sum(ex.rule);
  v[4] = static_cast<double>(ex.with_answer);
  v[5] = sum((ex.logp_old.to(torch::kFloat64) - ex.logp_ref.to(torch::kFloat64)) * m);  // per-sequence KL, summed
  v[6] = sum(r.ended_eos);
  v[7] = static_cast<double>(distinct.size());  // distinct within each rank's rows
  v[8] = pc_.samples_per_prompt > 1 ? mixed_group_fraction(ex.raw_score, pc_.samples_per_prompt) * groups : 0.0;
  v[9] = static_cast<double>(groups);
  if (!critic_free_) {  // explained variance: masked sums of the returns and of the residuals
    const auto R = ex.returns.to(torch::kFloat64), resid = R - ex.values_old.to(torch::kFloat64);
    v[10] = sum(R * m);
    v[11] = sum(R * R * m);
    v[12] = sum(resid * m);
    v[13] = sum(resid * resid * m);
  }
  v[14] = m.sum().item<double>() / std::max(ex.generate_s, 1e-9);
  v[15] = static_cast<double>(r.tokens.numel() * pc_.ppo_epochs) / std::max(u.seconds, 1e-9);
  auto t = torch::tensor(v, torch::kFloat64);
  sum_over_ranks(t, "the rollout figures' all-reduce");
  const double* s = t.data_ptr<double>();
  RolloutFigures f;
  const double n = static_cast<double>(ex.row_tokens.size(0));  // sequences of the global batch
  const double tokens = ex.row_tokens.sum().item<double>();
  f.sequences = ex.row_tokens.size(0);
  f.reward_mean = s[0] / n;
  f.reward_std = n > 1 ? std::sqrt(std::max(0.0, (s[1] - s[0] * s[0] / n) / (n - 1))) : 0.0;
  f.rm_mean = s[2] / n;
  f.rule_mean = s[4] > 0 ? s[3] / s[4] : 0.0;
  f.kl_mean = s[5] / n;
  f.eos_fraction = s[6] / n;
  f.distinct = s[7] / n;
  f.mixed_groups = s[9] > 0 ? s[8] / s[9] : 0.0;
  f.response_length = tokens / n;
  if (!critic_free_ && tokens > 0) {
    auto var = [&](double a, double b) { return b / tokens - (a / tokens) * (a / tokens); };
    const double vr = var(s[10], s[11]);
    f.explained_variance = vr > 0 ? 1.0 - var(s[12], s[13]) / vr : 0.0;
  }
  f.generate_tokens_per_s = s[14];
  f.update_tokens_per_s = s[15];
  return f;
}

void PpoRun::log(const RolloutFigures& f, const UpdateStats& u, double kl_coef_used, const Experience& ex) {
  nlohmann::json rec{{"kind", "ppo"},
                     {"step", step_},
                     {"reward_mean", f.reward_mean},
                     {"reward_std", f.reward_std},
                     {"rm_score", f.rm_mean},
                     {"rule_reward", f.rule_mean},
                     {"kl", f.kl_mean},
                     {"kl_coef", kl_coef_used},
                     {"policy_loss", u.mean(u.policy_loss)},
                     {"value_loss", u.mean(u.value_loss)},
                     {"clip_fraction", u.mean(u.clip)},
                     {"value_clip_fraction", u.mean(u.value_clip)},
                     {"approx_kl", u.mean(u.approx_kl)},
                     {"entropy", u.mean(u.entropy)},
                     {"response_length", f.response_length},
                     {"eos_fraction", f.eos_fraction},
                     {"distinct_responses", f.distinct},
                     // where the time goes (this rank's): sampling, scoring (4 forward passes), PPO epochs
                     {"generate_s", ex.generate_s},
                     {"score_s", ex.score_s},
                     {"update_s", u.seconds},
                     {"generate_tokens_per_s", f.generate_tokens_per_s},
                     {"update_tokens_per_s", f.update_tokens_per_s}};
  if (pc_.samples_per_prompt > 1) rec["mixed_groups"] = f.mixed_groups;
  if (!critic_free_) rec["explained_variance"] = f.explained_variance;
  if (grpo_) rec["kl_loss"] = u.mean(u.kl_loss);
  session_.metrics().write(rec);
  if (progress_) progress_->clear();
  spdlog::info("rollout {}/{} reward {:.3f}±{:.3f} kl {:.3f} (coef {:.3g}) pl {:.4f} vl {:.4f} clip {:.3f} "
               "approx_kl {:.4f} entropy {:.3f} ev {:.3f} len {:.1f} eos {:.2f} distinct {:.2f} | time: generate "
               "{:.1f}s score {:.1f}s update {:.1f}s",
               step_, cfg_.train.max_steps, f.reward_mean, f.reward_std, f.kl_mean, kl_coef_used,
               u.mean(u.policy_loss), u.mean(u.value_loss), u.mean(u.clip), u.mean(u.approx_kl), u.mean(u.entropy),
               f.explained_variance, f.response_length, f.eos_fraction, f.distinct, ex.generate_s, ex.score_s,
               u.seconds);
  if (f.kl_mean < -1.0)
    spdlog::warn("rollout {}: KL to the reference is negative ({:.3f}); sampling and scoring disagree "
                 "(temperature, top-k/top-p?)", step_, f.kl_mean);
}

// Greedy true accuracy (rule) and the reward model's mean score on held-out prompts; data parallel,
// rank r answers the batches r, r + world, ... and the counts are summed.
void PpoRun::evaluate_held_out() {
  if (held_out_.empty()) return;
  AccuracyOptions opt;
  opt.rule = pc_.rule;
  opt.max_new_tokens = pc_.max_new_tokens;
  if (reward_model_) opt.reward_model = &*reward_model_;
  AccuracyResult res = greedy_accuracy(actor_, accuracy_shard(held_out_, comm_->rank(), comm_->world_size()), tok_,
                                       opt, rt_.device);
  sum_accuracy_across(res, *comm_);
  if (res.prompts == 0) return;
  nlohmann::json per_file = nlohmann::json::object();
  std::string per_file_text;
  for (const FileAccuracy& f : res.files) {
    if (f.prompts == 0) continue;
    per_file[f.name] = f.accuracy();
    per_file_text += fmt::format(" {} {:.3f}", f.name, f.accuracy());
  }
  nlohmann::json rec{{"kind", "eval"},
                     {"step", step_},
                     {"true_accuracy", res.accuracy()},
                     {"response_length", res.response_length()}};
  if (held_out_.size() > 1) rec["true_accuracy_per_file"] = per_file;
  if (reward_model_) rec["rm_score"] = res.rm_score();
  session_.metrics().write(rec);
  if (progress_) progress_->clear();
  spdlog::info("eval rollout {}: true accuracy {:.3f} (greedy, {} held-out prompts){}{} response length {:.1f}", step_,
               res.accuracy(), res.prompts, held_out_.size() > 1 ? " by file:" + per_file_text + ";" : "",
               reward_model_ ? fmt::format(" rm score {:.3f}", res.rm_score()) : "", res.response_length());
}

int PpoRun::run() {
  step_ = session_.resume();
  if (!session_.resuming()) init_fresh();
  if (comm_->distributed()) {
    for (Decoder* m : {&actor_, &critic_}) {
      if (session_.resuming()) check_replicas_equal(*comm_, **m, "after resuming from " + session_.last_checkpoint());
      broadcast_from_rank0(*comm_, **m);
    }
  }
  if (session_.already_finished(step_)) return 0;
  if (session_.interrupted_before_start()) return kExitInterrupted;
  if (step_ == 0) evaluate_held_out();
  const int64_t first_step = step_;
  actor_->train();
  critic_->train();
  progress_.emplace("ppo", static_cast<double>(cfg_.train.max_steps), "rollouts");
  progress_->update(static_cast<double>(step_));
  while (step_ < cfg_.train.max_steps) {
    const int64_t this_step = step_ + 1;
    phase("sampling and scoring");
    const Experience ex = make_experience();
    phase("updating");
    const UpdateStats u = update(ex, this_step);
    if (!u.finite) {
      progress_->finish();
      const std::string& last = session_.last_checkpoint();
      spdlog::error("rollout {}: non-finite PPO loss; stopping. The last good checkpoint is {}", this_step,
                    last.empty() ? "none" : last);
      session_.metrics().write({{"kind", "nonfinite"}, {"step", this_step}});
      return kExitNonFinite;
    }
    const double kl_coef_used = kl_.value;
    const RolloutFigures f = figures(ex, u);
    kl_.update(f.kl_mean, f.sequences);
    step_ = this_step;
    log(f, u, kl_coef_used, ex);
    progress_->update(static_cast<double>(step_));
    if (pc_.eval_every > 0 && step_ % pc_.eval_every == 0 && step_ != cfg_.train.max_steps) evaluate_held_out();
    progress_->clear();  // end_step may log a checkpoint
    switch (session_.end_step(step_, first_step)) {
      case StepEnd::interrupted: return kExitInterrupted;
      case StepEnd::stopped: return 0;
      case StepEnd::next: break;
    }
  }
  progress_->finish();
  evaluate_held_out();
  session_.finish(step_, fmt::format("{} rollouts", step_));
  return 0;
}

}  // namespace

int run_ppo(const Config& cfg) { return PpoRun(cfg).run(); }

}  // namespace infini
