// stage: ppo - the RLHF recipe, one rollout per step: make experience (sample responses through the
// streaming path, score them with the reward model and/or the rule, per-token KL penalty toward
// the frozen reference, GAE or the critic-free leave-one-out baseline), then update (ppo_epochs of
// clipped actor/critic updates), log, and now and then evaluate on held-out prompts. The run around
// it (set-up, resume, checkpoints, signals) is RunSession's; the arithmetic is train/rlhf/.
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
#include "train/run/session.h"
#include "train/run/signals.h"
#include "train/run/stopwatch.h"
#include "train/run/trainable.h"

namespace fs = std::filesystem;

namespace infini {
namespace {

// What one rollout batch carries into the updates; A = T - 1 action positions.
struct Experience {
  Rollout rollout;
  torch::Tensor logp_old;    // (B, A) actor log-probs at sampling time (temperature-scaled logits)
  torch::Tensor logp_ref;    // (B, A) reference log-probs
  torch::Tensor values_old;  // (B, A) critic values
  torch::Tensor score;       // (B) sequence score after clipping / penalty
  torch::Tensor advantages;  // (B, A)
  torch::Tensor returns;     // (B, A)
  // Figures for the log.
  double rm_mean = 0, rule_mean = 0, kl_mean = 0, raw_score_mean = 0, raw_score_std = 0, mixed_groups = 0;
  double generate_s = 0, score_s = 0;
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
  torch::Tensor score_rollout(const Rollout& r, double* rm_mean, double* rule_mean);
  Experience make_experience();
  UpdateStats update(const Experience& ex, int64_t this_step);
  void log(const Experience& ex, const UpdateStats& u, double kl_coef_used);
  void evaluate_held_out();

  const Config& cfg_;
  const PPOConfig& pc_;
  RunSession session_;
  const Runtime rt_;
  const Tokenizer tok_;
  const bool use_rm_, use_rule_;
  const bool grpo_, critic_free_;  // grpo: group-normalised scores, KL as a loss term; rloo/grpo: no critic
  // Four models: actor and reference from the SFT model, critic and reward model from the reward model.
  ModelConfig rm_cfg_;
  Decoder actor_{nullptr}, reference_{nullptr}, critic_{nullptr};
  std::optional<Decoder> reward_model_;
  std::optional<AdamW> actor_opt_, critic_opt_;
  Loader prompts_;
  // Held-out prompts: up to eval_prompts from each data.val file, kept per file so that the true
  // accuracy is reported per file (e.g. one file per task) as well as overall.
  std::vector<AccuracySet> held_out_;
  KLController kl_;
  at::Generator gen_;
  SamplingOptions sampling_;
  int64_t step_ = 0;
  std::optional<Progress> progress_;  // rollouts done of max_steps, and the phase; cleared before log lines
  void phase(const std::string& what) {
    if (progress_) progress_->note(fmt::format("rollout {}: {}", step_ + 1, what));
  }
};

PpoRun::PpoRun(const Config& cfg)
    : cfg_(cfg), pc_(cfg.ppo), session_(cfg, "ppo", true, "rollout"), rt_(session_.runtime()),
      tok_(ppo_tokenizer(session_)), use_rm_(pc_.reward_source != RewardSource::rule),
      use_rule_(pc_.reward_source != RewardSource::model),
      grpo_(pc_.advantage == Advantage::grpo), critic_free_(pc_.advantage != Advantage::gae),
      rm_cfg_(reward_model_config(cfg)),
      prompts_(cfg.data, Split::train, &tok_, cfg.train.batch_size, static_cast<uint64_t>(cfg.run.seed)),
      gen_(make_generator(static_cast<uint64_t>(cfg.run.seed) + 7919)) {
  if (session_.comm()->distributed())
    throw ConfigError(fmt::format("stage ppo: data parallel is not supported for this stage yet ({} ranks were "
                                  "launched); run it as one process", session_.comm()->world_size()));
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
  session_.add(json_part(
      "sampling_rng", [this] { return nlohmann::json(generator_state_hex(gen_)); },
      [this](const nlohmann::json& j, const std::string& source) {
        set_generator_state_hex(gen_, j.get<std::string>(), source, "sampling_rng");
      }));
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

// Sequence scores (B): reward model at the last token and/or the rule reward of the decoded response.
torch::Tensor PpoRun::score_rollout(const Rollout& r, double* rm_mean, double* rule_mean) {
  torch::NoGradGuard ng;
  const int64_t B = r.tokens.size(0);
  auto score = torch::zeros({B}, torch::kFloat).to(rt_.device);
  *rm_mean = 0;
  *rule_mean = 0;
  if (reward_model_) {
    auto rm = last_token_scores((*reward_model_)->forward(r.tokens), r.lengths);  // (B)
    *rm_mean = rm.mean().item<double>();
    if (use_rm_) score = score + rm;
  }
  int64_t with_answer = 0;
  std::vector<float> rule(static_cast<size_t>(B), 0.f);
  for (int64_t b = 0; b < B; ++b) {
    const std::string& ans = r.answers[static_cast<size_t>(b)];
    if (ans.empty()) continue;
    ++with_answer;
    rule[static_cast<size_t>(b)] =
        static_cast<float>(rule_reward(decode_ids(tok_, r.responses[static_cast<size_t>(b)]), ans, pc_.rule));
  }
  auto rule_t = torch::tensor(rule, torch::kFloat).to(rt_.device);
  *rule_mean = with_answer > 0 ? rule_t.sum().item<double>() / static_cast<double>(with_answer) : 0.0;
  if (use_rule_) {
    if (with_answer < B)
      throw Error(fmt::format("ppo.reward_source {}: {} of {} prompts have no answer (data.train needs "
                              "{{prompt, answer}} records)", choice_name(pc_.reward_source), B - with_answer, B));
    score = score + rule_t;
  }
  return score;
}

// Rollout, then (without gradients) scores, per-token rewards with the KL penalty, and advantages.
Experience PpoRun::make_experience() {
  Batch pb = repeat_prompts(prompts_.next(), pc_.samples_per_prompt);
  pb.tokens = pb.tokens.to(rt_.device);
  Experience ex;
  const auto t_gen = std::chrono::steady_clock::now();
  ex.rollout = sample_rollout(actor_, pb, sampling_, pc_.max_new_tokens, tok_.eos_id(), tok_.pad_id(), gen_,
                              tok_.vocab_size());
  ex.generate_s = seconds_since(t_gen);
  const auto t_score = std::chrono::steady_clock::now();
  const Rollout& r = ex.rollout;
  const auto& mask = r.action_mask;  // (B, A)
  const int64_t B = r.tokens.size(0);
  torch::NoGradGuard ng;
  ex.logp_old = sequence_logprobs(actor_->forward(r.tokens), r.tokens, pc_.temperature);      // (B, A)
  ex.logp_ref = sequence_logprobs(reference_->forward(r.tokens), r.tokens, pc_.temperature);  // (B, A)
  ex.values_old = critic_free_ ? torch::zeros_like(ex.logp_old) : critic_->forward(r.tokens).slice(1, 0, -1) * mask;
  auto score = score_rollout(r, &ex.rm_mean, &ex.rule_mean);  // (B)
  ex.raw_score_mean = score.mean().item<double>();
  ex.raw_score_std = B > 1 ? score.std().item<double>() : 0.0;
  if (pc_.samples_per_prompt > 1) ex.mixed_groups = mixed_group_fraction(score, pc_.samples_per_prompt);
  if (pc_.reward_clip > 0) score = score.clamp(-pc_.reward_clip, pc_.reward_clip);
  if (pc_.missing_eos_penalty > 0) score = score - pc_.missing_eos_penalty * (1 - r.ended_eos.to(rt_.device));
  ex.score = score;
  ex.kl_mean = ((ex.logp_old - ex.logp_ref) * mask).sum(1).mean().item<double>();  // per sequence
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
    ex.advantages = pc_.whiten_advantages ? masked_whiten(g.advantages, mask) : g.advantages;
    ex.returns = g.returns;
  }
  ex.score_s = seconds_since(t_score);
  return ex;
}

// ppo_epochs over shuffled mini-batches; during the critic warm-up only the critic learns.
UpdateStats PpoRun::update(const Experience& ex, int64_t this_step) {
  const auto t0 = std::chrono::steady_clock::now();
  const Rollout& r = ex.rollout;
  const int64_t B = r.tokens.size(0);
  UpdateStats u;
  for (int64_t epoch = 0; epoch < pc_.ppo_epochs && u.finite; ++epoch) {
    auto perm = torch::randperm(B, torch::TensorOptions().dtype(torch::kLong));  // default CPU generator
    for (int64_t start = 0; start < B; start += pc_.mini_batch_size) {
      auto idx = perm.slice(0, start, std::min(B, start + pc_.mini_batch_size)).to(rt_.device);
      auto tokens = r.tokens.index_select(0, idx);  // (b, T)
      auto m = r.action_mask.index_select(0, idx);  // (b, A)
      auto logits = actor_->forward(tokens);        // (b, T, V)
      auto logp = sequence_logprobs(logits, tokens, pc_.temperature);
      const bool per_sequence = pc_.loss_average == LossAverage::sequence;
      PolicyLoss pl = policy_loss(logp, ex.logp_old.index_select(0, idx), ex.advantages.index_select(0, idx), m,
                                  pc_.clip_eps, per_sequence);
      torch::Tensor actor_loss = pl.loss;
      double klv = 0;
      if (grpo_) {  // + kl_coef x the k3 estimate of KL(actor || reference), averaged as the policy loss is
        const auto k3 = k3_kl(logp, ex.logp_ref.index_select(0, idx));
        const auto kl_term = per_sequence ? masked_sequence_mean(k3, m) : masked_mean(k3, m);
        klv = kl_term.item<double>();
        actor_loss = actor_loss + kl_.value * kl_term;
      }
      {
        torch::NoGradGuard ng;
        u.entropy += masked_mean(token_entropy(logits.slice(1, 0, -1) / pc_.temperature), m).item<double>();
      }
      ValueLoss vl;  // rloo: no critic
      if (!critic_free_) {
        auto values = critic_->forward(tokens).slice(1, 0, -1);  // (b, A)
        vl = value_loss(values, ex.values_old.index_select(0, idx), ex.returns.index_select(0, idx), m, pc_.value_clip);
      }
      const double plv = pl.loss.item<double>(), vlv = critic_free_ ? 0.0 : vl.loss.item<double>();
      if (!std::isfinite(plv) || !std::isfinite(vlv) || !std::isfinite(klv)) {
        u.finite = false;
        break;
      }
      if (this_step > pc_.critic_warmup) {
        actor_opt_->zero_grad();
        actor_loss.backward();
        clip_grad_norm(actor_opt_->groups(), cfg_.optim.grad_clip);
        actor_opt_->step(pc_.actor_lr);
      }
      if (!critic_free_) {
        critic_opt_->zero_grad();
        vl.loss.backward();
        clip_grad_norm(critic_opt_->groups(), cfg_.optim.grad_clip);
        critic_opt_->step(pc_.critic_lr);
      }
      u.policy_loss += plv;
      u.kl_loss += klv;
      u.value_loss += vlv;
      u.clip += pl.clip_fraction;
      u.value_clip += vl.clip_fraction;
      u.approx_kl += pl.approx_kl;
      u.n += 1;
    }
  }
  actor_opt_->zero_grad();
  critic_opt_->zero_grad();
  u.seconds = seconds_since(t0);
  return u;
}

void PpoRun::log(const Experience& ex, const UpdateStats& u, double kl_coef_used) {
  const Rollout& r = ex.rollout;
  const auto& mask = r.action_mask;
  const int64_t B = r.tokens.size(0);
  const double resp_len = mask.sum().item<double>() / static_cast<double>(B);
  const double eos_frac = r.ended_eos.mean().item<double>();
  const double ev = critic_free_ ? 0.0 : explained_variance(ex.values_old, ex.returns, mask);
  const std::set<std::vector<int64_t>> distinct(r.responses.begin(), r.responses.end());
  const double distinct_frac = static_cast<double>(distinct.size()) / static_cast<double>(B);
  nlohmann::json rec{{"kind", "ppo"},
                     {"step", step_},
                     {"reward_mean", ex.raw_score_mean},
                     {"reward_std", ex.raw_score_std},
                     {"rm_score", ex.rm_mean},
                     {"rule_reward", ex.rule_mean},
                     {"kl", ex.kl_mean},
                     {"kl_coef", kl_coef_used},
                     {"policy_loss", u.mean(u.policy_loss)},
                     {"value_loss", u.mean(u.value_loss)},
                     {"clip_fraction", u.mean(u.clip)},
                     {"value_clip_fraction", u.mean(u.value_clip)},
                     {"approx_kl", u.mean(u.approx_kl)},
                     {"entropy", u.mean(u.entropy)},
                     {"response_length", resp_len},
                     {"eos_fraction", eos_frac},
                     {"distinct_responses", distinct_frac},
                     // where the time goes: sampling, scoring (4 forward passes), PPO epochs
                     {"generate_s", ex.generate_s},
                     {"score_s", ex.score_s},
                     {"update_s", u.seconds},
                     {"generate_tokens_per_s", mask.sum().item<double>() / std::max(ex.generate_s, 1e-9)},
                     {"update_tokens_per_s",
                      static_cast<double>(r.tokens.numel() * pc_.ppo_epochs) / std::max(u.seconds, 1e-9)}};
  if (pc_.samples_per_prompt > 1) rec["mixed_groups"] = ex.mixed_groups;
  if (!critic_free_) rec["explained_variance"] = ev;
  if (grpo_) rec["kl_loss"] = u.mean(u.kl_loss);
  session_.metrics().write(rec);
  if (progress_) progress_->clear();
  spdlog::info("rollout {}/{} reward {:.3f}±{:.3f} kl {:.3f} (coef {:.3g}) pl {:.4f} vl {:.4f} clip {:.3f} "
               "approx_kl {:.4f} entropy {:.3f} ev {:.3f} len {:.1f} eos {:.2f} distinct {:.2f} | time: generate "
               "{:.1f}s score {:.1f}s update {:.1f}s",
               step_, cfg_.train.max_steps, ex.raw_score_mean, ex.raw_score_std, ex.kl_mean, kl_coef_used,
               u.mean(u.policy_loss), u.mean(u.value_loss), u.mean(u.clip), u.mean(u.approx_kl), u.mean(u.entropy), ev,
               resp_len, eos_frac, distinct_frac, ex.generate_s, ex.score_s, u.seconds);
  if (ex.kl_mean < -1.0)
    spdlog::warn("rollout {}: KL to the reference is negative ({:.3f}); sampling and scoring disagree "
                 "(temperature, top-k/top-p?)", step_, ex.kl_mean);
}

// Greedy true accuracy (rule) and the reward model's mean score on held-out prompts.
void PpoRun::evaluate_held_out() {
  if (held_out_.empty()) return;
  AccuracyOptions opt;
  opt.rule = pc_.rule;
  opt.max_new_tokens = pc_.max_new_tokens;
  if (reward_model_) opt.reward_model = &*reward_model_;
  const AccuracyResult res = greedy_accuracy(actor_, held_out_, tok_, opt, rt_.device);
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
    kl_.update(ex.kl_mean, ex.rollout.tokens.size(0));
    step_ = this_step;
    log(ex, u, kl_coef_used);
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
