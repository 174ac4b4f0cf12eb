// stage: ppo - per rollout: sample responses (streaming), score them (reward model and/or rule),
// per-token KL penalty toward the frozen reference, GAE (or the critic-free leave-one-out baseline),
// then ppo_epochs of clipped actor/critic updates.
#include "train/ppo_stage.h"

#include <fcntl.h>
#include <unistd.h>

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
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/checkpoint_dir.h"
#include "train/metrics_log.h"
#include "train/ppo_math.h"
#include "train/ppo_rollout.h"
#include "train/rewards.h"
#include "train/runtime.h"
#include "train/signals.h"
#include "train/stopwatch.h"

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
};

// Log-probs of the actual next tokens (B, A) under logits (B, T, V) scaled by the sampling temperature.
torch::Tensor sequence_logprobs(const torch::Tensor& logits, const torch::Tensor& tokens, double temperature) {
  auto l = logits.slice(1, 0, -1);  // (B, A, V)
  if (temperature != 1.0) l = l / temperature;
  return token_logprobs(l, tokens.slice(1, 1));
}

// commit_checkpoint fsyncs the files at the top of the step directory; the models live one level down.
void fsync_tree(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    const int fd = ::open(e.path().c_str(), O_RDONLY);
    if (fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
  }
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

std::string decode_ids(const Tokenizer& tok, const std::vector<int64_t>& ids) {
  return tok.decode(std::vector<int>(ids.begin(), ids.end()));
}

}  // namespace

int run_ppo(const Config& cfg) {
  const PPOConfig& pc = cfg.ppo;
  const std::string run_dir = cfg.run.dir;
  fs::create_directories(run_dir);
  setup_logging(cfg.run.log_level, (fs::path(run_dir) / "train.log").string());
  const Runtime rt = setup_runtime(cfg.run);
  install_stop_handlers();
  if (rt.bf16) spdlog::info("ppo runs in fp32 (run.precision bf16 is not used by this stage)");

  const std::string resume_dir = cfg.resume == "auto" ? latest_checkpoint(run_dir) : "";
  const std::string config_path = (fs::path(run_dir) / "config.yaml").string();
  write_file_atomic(config_path, config_to_yaml(cfg));
  if (cfg.tokenizer.model.empty())
    throw ConfigError("tokenizer.model: stage ppo decodes responses and needs a tokenizer, found none");
  const Tokenizer tok = Tokenizer::load(cfg.tokenizer.model);
  if (tok.vocab_size() > cfg.model.vocab_size)
    throw ConfigError(fmt::format("model.vocab_size ({}) is smaller than the tokenizer's vocabulary ({} in {})",
                                  cfg.model.vocab_size, tok.vocab_size(), cfg.tokenizer.model));
  const bool use_rm = pc.reward_source != "rule";
  const bool use_rule = pc.reward_source != "model";
  const bool rloo = pc.advantage == "rloo";  // critic-free advantages from the other samples of each prompt
  spdlog::info("stage ppo -> {} ({} threads, {}, reward: {})", run_dir, rt.threads, rt.device.is_cpu() ? "cpu" : "cuda",
               pc.reward_source);

  // Four models: actor and reference from the SFT model, critic and reward model from the reward model.
  // The reward model (and the critic started from it) keep the shape it was trained with, which may
  // be deeper than the policy (init_extra_layers); they read the policy's tokens, so the vocabulary
  // must match.
  ModelConfig rm_cfg = cfg.model;
  if (!pc.reward_model.empty()) {
    const std::string path = (fs::path(resolve_checkpoint(pc.reward_model)) / "model.safetensors").string();
    rm_cfg = read_model_config(path);
    if (rm_cfg.vocab_size != cfg.model.vocab_size)
      throw ConfigError(fmt::format("ppo.reward_model: {} has vocab_size {}, the policy (model.vocab_size) {}", path,
                                    rm_cfg.vocab_size, cfg.model.vocab_size));
  }
  Decoder actor(cfg.model, Head::lm), reference(cfg.model, Head::lm);
  Decoder critic(rm_cfg, Head::scalar);
  std::optional<Decoder> reward_model;
  if (!cfg.init_from.empty()) init_weights_from(cfg.init_from, reference);
  else spdlog::warn("init_from is empty: actor and reference start from random weights");
  if (!pc.reward_model.empty()) {
    reward_model.emplace(rm_cfg, Head::scalar);
    init_weights_from(pc.reward_model, *reward_model);
  }
  if (use_rm && !reward_model)
    throw ConfigError(fmt::format("ppo.reward_model: reward_source {} needs a reward model, found none", pc.reward_source));
  for (auto* m : {&reference, &critic, &actor}) (*m)->to(rt.device);
  if (reward_model) (*reward_model)->to(rt.device);
  reference->eval();
  for (auto& p : reference->parameters()) p.set_requires_grad(false);
  if (reward_model) {
    (*reward_model)->eval();
    for (auto& p : (*reward_model)->parameters()) p.set_requires_grad(false);
  }

  AdamW actor_opt(make_param_groups(*actor, cfg.optim.weight_decay, cfg.optim.gate_lr_mult), cfg.optim.betas[0],
                  cfg.optim.betas[1], cfg.optim.eps);
  AdamW critic_opt(make_param_groups(*critic, cfg.optim.weight_decay, cfg.optim.gate_lr_mult), cfg.optim.betas[0],
                   cfg.optim.betas[1], cfg.optim.eps);

  Loader prompts(cfg.data, Split::train, &tok, cfg.train.batch_size, static_cast<uint64_t>(cfg.run.seed));
  // Held-out prompts: up to eval_prompts from each data.val file, kept per file so that the true
  // accuracy is reported per file (e.g. one file per task) as well as overall.
  std::vector<std::pair<std::string, std::vector<Batch>>> held_out;
  if (pc.eval_prompts > 0) {
    for (const std::string& file : cfg.data.val) {
      DataConfig one = cfg.data;
      one.val = {file};
      Loader val(one, Split::val, &tok, std::min<int64_t>(pc.eval_prompts, 64), static_cast<uint64_t>(cfg.run.seed));
      std::vector<Batch> batches;
      int64_t n = 0;
      for (Batch& b : val.all_batches()) {
        if (n >= pc.eval_prompts) break;
        const int64_t keep = std::min<int64_t>(b.size(), pc.eval_prompts - n);
        Batch k = b;
        k.tokens = b.tokens.slice(0, 0, keep);
        k.lengths = b.lengths.slice(0, 0, keep);
        k.answers.resize(static_cast<size_t>(keep));
        batches.push_back(k);
        n += keep;
      }
      held_out.emplace_back(std::filesystem::path(file).stem().string(), std::move(batches));
    }
  }

  KLController kl;
  kl.value = pc.kl_coef;
  kl.adaptive = pc.kl_adaptive;
  kl.target = pc.kl_target;
  kl.horizon = pc.kl_horizon;
  at::Generator gen = make_generator(static_cast<uint64_t>(cfg.run.seed) + 7919);
  SamplingOptions sampling;
  sampling.temperature = pc.temperature;
  sampling.top_k = pc.top_k;
  sampling.top_p = pc.top_p;

  int64_t step = 0;
  if (!resume_dir.empty()) {
    load_model_and_optimizer((fs::path(resume_dir) / "actor").string(), actor, &actor_opt);
    load_model_and_optimizer((fs::path(resume_dir) / "critic").string(), critic, &critic_opt);
    const std::string src = (fs::path(resume_dir) / "trainer_state.json").string();
    nlohmann::json st = load_trainer_state(resume_dir);
    if (st.value("stage", "") != "ppo")
      throw Error(fmt::format("{}: stage is '{}', expected ppo (a PPO run directory must not be shared)", src,
                              st.value("stage", "")));
    step = st.at("step").get<int64_t>();
    prompts.load_state(st.at("loader"));
    kl.load_state(st.at("kl_controller"), src);
    if (!st.contains("rng_cpu")) throw Error(fmt::format("{}: rng_cpu is missing", src));
    restore_rng_states(st, src, rt.device);
    set_generator_state_hex(gen, st.at("sampling_rng").get<std::string>(), src, "sampling_rng");
    spdlog::info("resumed from {} (rollout {})", resume_dir, step);
  } else {
    // The actor starts as the reference; the critic as the reward model (or the SFT trunk).
    {
      torch::NoGradGuard ng;
      auto src = reference->named_parameters();
      for (auto& p : actor->named_parameters()) p.value().copy_(src[p.key()]);
    }
    if (!pc.reward_model.empty()) init_weights_from(pc.reward_model, critic);
    else if (!cfg.init_from.empty()) init_weights_from(cfg.init_from, critic, {"output.weight"}, {"score.weight"});
  }

  std::map<std::string, std::string> meta{{"stage", "ppo"},
                                          {"tokenizer_path", fs::absolute(tok.path()).string()},
                                          {"tokenizer_hash", tok.content_hash()}};
  MetricsLog metrics((fs::path(run_dir) / "metrics.jsonl").string(), step);
  std::string last_checkpoint = resume_dir;
  auto save = [&](int64_t at) {
    last_checkpoint = commit_checkpoint(
        run_dir, at,
        [&](const std::string& dir) {
          fs::create_directories(fs::path(dir) / "actor");
          fs::create_directories(fs::path(dir) / "critic");
          save_model_and_optimizer((fs::path(dir) / "actor").string(), actor, &actor_opt, meta);
          save_model_and_optimizer((fs::path(dir) / "critic").string(), critic, &critic_opt, meta);
          fsync_tree(fs::path(dir) / "actor");
          fsync_tree(fs::path(dir) / "critic");
          nlohmann::json state{{"step", at},
                               {"stage", "ppo"},
                               {"loader", prompts.state()},
                               {"kl_controller", kl.state()},
                               {"sampling_rng", generator_state_hex(gen)}};
          state.update(rng_states(rt.device));
          save_trainer_state(dir, state);
        },
        static_cast<int>(cfg.checkpoint.keep_last));
    spdlog::info("checkpoint {}", last_checkpoint);
  };

  // Sequence scores (B): reward model at the last token and/or the rule reward of the decoded response.
  auto score_rollout = [&](const Rollout& r, double* rm_mean, double* rule_mean) {
    torch::NoGradGuard ng;
    const int64_t B = r.tokens.size(0);
    auto score = torch::zeros({B}, torch::kFloat).to(rt.device);
    *rm_mean = 0;
    *rule_mean = 0;
    if (reward_model) {
      auto rm = last_token_scores((*reward_model)->forward(r.tokens), r.lengths);  // (B)
      *rm_mean = rm.mean().item<double>();
      if (use_rm) score = score + rm;
    }
    int64_t with_answer = 0;
    std::vector<float> rule(static_cast<size_t>(B), 0.f);
    for (int64_t b = 0; b < B; ++b) {
      const std::string& ans = r.answers[static_cast<size_t>(b)];
      if (ans.empty()) continue;
      ++with_answer;
      rule[static_cast<size_t>(b)] =
          static_cast<float>(rule_reward(decode_ids(tok, r.responses[static_cast<size_t>(b)]), ans, pc.rule));
    }
    auto rule_t = torch::tensor(rule, torch::kFloat).to(rt.device);
    *rule_mean = with_answer > 0 ? rule_t.sum().item<double>() / static_cast<double>(with_answer) : 0.0;
    if (use_rule) {
      if (with_answer < B)
        throw Error(fmt::format("ppo.reward_source {}: {} of {} prompts have no answer (data.train needs "
                                "{{prompt, answer}} records)", pc.reward_source, B - with_answer, B));
      score = score + rule_t;
    }
    return score;
  };

  // Greedy true accuracy (rule) and the reward model's mean score on held-out prompts.
  auto evaluate = [&](int64_t at) {
    if (held_out.empty()) return;
    SamplingOptions greedy;
    greedy.temperature = 0.0;
    at::Generator unused = make_generator(0);
    double acc = 0, rm = 0, n = 0, len = 0;
    nlohmann::json per_file = nlohmann::json::object();
    std::string per_file_text;
    for (const auto& [name, batches] : held_out) {
      double file_acc = 0, file_n = 0;
      for (const Batch& b : batches) {
        Batch d = b;
        d.tokens = b.tokens.to(rt.device);
        Rollout r = sample_rollout(actor, d, greedy, pc.max_new_tokens, tok.eos_id(), tok.pad_id(), unused,
                                   tok.vocab_size());
        double rm_mean = 0, rule_mean = 0;
        bool has_answers =
            std::all_of(r.answers.begin(), r.answers.end(), [](const std::string& a) { return !a.empty(); });
        {
          torch::NoGradGuard ng;
          if (reward_model) rm_mean = last_token_scores((*reward_model)->forward(r.tokens), r.lengths).mean().item<double>();
        }
        if (has_answers) {
          for (size_t i = 0; i < r.answers.size(); ++i)
            rule_mean += rule_reward(decode_ids(tok, r.responses[i]), r.answers[i], pc.rule);
          rule_mean /= static_cast<double>(r.answers.size());
        }
        const double w = static_cast<double>(d.size());
        file_acc += rule_mean * w;
        file_n += w;
        rm += rm_mean * w;
        len += (r.action_mask.sum().item<double>());
      }
      acc += file_acc;
      n += file_n;
      if (file_n > 0) {
        per_file[name] = file_acc / file_n;
        per_file_text += fmt::format(" {} {:.3f}", name, file_acc / file_n);
      }
    }
    if (n == 0) return;
    nlohmann::json rec{{"kind", "eval"}, {"step", at}, {"true_accuracy", acc / n}, {"response_length", len / n}};
    if (held_out.size() > 1) rec["true_accuracy_per_file"] = per_file;
    if (reward_model) rec["rm_score"] = rm / n;
    metrics.write(rec);
    spdlog::info("eval rollout {}: true accuracy {:.3f} (greedy, {} held-out prompts){}{} response length {:.1f}", at,
                 acc / n, static_cast<int64_t>(n), held_out.size() > 1 ? " by file:" + per_file_text + ";" : "",
                 reward_model ? fmt::format(" rm score {:.3f}", rm / n) : "", len / n);
  };

  if (step >= cfg.train.max_steps) {
    spdlog::info("already finished: {} is at rollout {} of {}", run_dir, step, cfg.train.max_steps);
    return 0;
  }
  if (step == 0) evaluate(0);
  const int64_t first_step = step;
  actor->train();
  critic->train();

  while (step < cfg.train.max_steps) {
    const int64_t this_step = step + 1;
    // 1. Rollout.
    Batch pb = repeat_prompts(prompts.next(), pc.samples_per_prompt);
    pb.tokens = pb.tokens.to(rt.device);
    Experience ex;
    const auto t_gen = std::chrono::steady_clock::now();
    ex.rollout = sample_rollout(actor, pb, sampling, pc.max_new_tokens, tok.eos_id(), tok.pad_id(), gen, tok.vocab_size());
    const double gen_s = seconds_since(t_gen);
    const auto t_score = std::chrono::steady_clock::now();
    const Rollout& r = ex.rollout;
    const auto& mask = r.action_mask;  // (B, A)
    const int64_t B = r.tokens.size(0);

    // 2. Score and 3. per-token rewards, 4. GAE - all without gradients.
    double rm_mean = 0, rule_mean = 0, kl_mean = 0, raw_score_mean = 0, raw_score_std = 0, mixed_groups = 0;
    torch::Tensor rewards;
    {
      torch::NoGradGuard ng;
      ex.logp_old = sequence_logprobs(actor->forward(r.tokens), r.tokens, pc.temperature);       // (B, A)
      ex.logp_ref = sequence_logprobs(reference->forward(r.tokens), r.tokens, pc.temperature);   // (B, A)
      ex.values_old = rloo ? torch::zeros_like(ex.logp_old)
                           : critic->forward(r.tokens).slice(1, 0, -1) * mask;                   // (B, A)
      auto score = score_rollout(r, &rm_mean, &rule_mean);                                       // (B)
      raw_score_mean = score.mean().item<double>();
      raw_score_std = B > 1 ? score.std().item<double>() : 0.0;
      if (pc.samples_per_prompt > 1) mixed_groups = mixed_group_fraction(score, pc.samples_per_prompt);
      if (pc.reward_clip > 0) score = score.clamp(-pc.reward_clip, pc.reward_clip);
      if (pc.missing_eos_penalty > 0) score = score - pc.missing_eos_penalty * (1 - r.ended_eos.to(rt.device));
      ex.score = score;
      kl_mean = ((ex.logp_old - ex.logp_ref) * mask).sum(1).mean().item<double>();  // per sequence
      // rloo: the score relative to the prompt's other samples, then the (discounted) return-to-go
      // of the per-token rewards as the advantage: GAE with V = 0 and lambda = 1.
      if (rloo) score = score - leave_one_out_baseline(score, pc.samples_per_prompt);
      rewards = per_token_rewards(ex.logp_old, ex.logp_ref, mask, score, kl.value);
      Advantages g = gae(rewards, ex.values_old, mask, pc.gamma, rloo ? 1.0 : pc.lambda);
      ex.advantages = pc.whiten_advantages ? masked_whiten(g.advantages, mask) : g.advantages;
      ex.returns = g.returns;
    }

    const double score_s = seconds_since(t_score);

    // 5. ppo_epochs over shuffled mini-batches.
    const auto t_update = std::chrono::steady_clock::now();
    double pl_sum = 0, vl_sum = 0, clip_sum = 0, vclip_sum = 0, akl_sum = 0, ent_sum = 0, n_mb = 0;
    bool finite = true;
    for (int64_t epoch = 0; epoch < pc.ppo_epochs && finite; ++epoch) {
      auto perm = torch::randperm(B, torch::TensorOptions().dtype(torch::kLong));  // default CPU generator
      for (int64_t start = 0; start < B; start += pc.mini_batch_size) {
        auto idx = perm.slice(0, start, std::min(B, start + pc.mini_batch_size)).to(rt.device);
        auto tokens = r.tokens.index_select(0, idx);  // (b, T)
        auto m = mask.index_select(0, idx);           // (b, A)

        auto logits = actor->forward(tokens);  // (b, T, V)
        auto logp = sequence_logprobs(logits, tokens, pc.temperature);
        PolicyLoss pl = policy_loss(logp, ex.logp_old.index_select(0, idx), ex.advantages.index_select(0, idx), m,
                                    pc.clip_eps);
        {
          torch::NoGradGuard ng;
          auto l = logits.slice(1, 0, -1) / pc.temperature;
          ent_sum += masked_mean(token_entropy(l), m).item<double>();
        }
        ValueLoss vl;  // rloo: no critic
        if (!rloo) {
          auto values = critic->forward(tokens).slice(1, 0, -1);  // (b, A)
          vl = value_loss(values, ex.values_old.index_select(0, idx), ex.returns.index_select(0, idx), m,
                          pc.value_clip);
        }
        const double plv = pl.loss.item<double>(), vlv = rloo ? 0.0 : vl.loss.item<double>();
        if (!std::isfinite(plv) || !std::isfinite(vlv)) {
          finite = false;
          break;
        }
        if (this_step > pc.critic_warmup) {  // during the warm-up only the critic learns
          actor_opt.zero_grad();
          pl.loss.backward();
          clip_grad_norm(actor_opt.groups(), cfg.optim.grad_clip);
          actor_opt.step(pc.actor_lr);
        }
        if (!rloo) {
          critic_opt.zero_grad();
          vl.loss.backward();
          clip_grad_norm(critic_opt.groups(), cfg.optim.grad_clip);
          critic_opt.step(pc.critic_lr);
        }
        pl_sum += plv;
        vl_sum += vlv;
        clip_sum += pl.clip_fraction;
        vclip_sum += vl.clip_fraction;
        akl_sum += pl.approx_kl;
        n_mb += 1;
      }
    }
    actor_opt.zero_grad();
    critic_opt.zero_grad();
    const double update_s = seconds_since(t_update);
    if (!finite) {
      spdlog::error("rollout {}: non-finite PPO loss; stopping. The last good checkpoint is {}", this_step,
                    last_checkpoint.empty() ? "none" : last_checkpoint);
      metrics.write({{"kind", "nonfinite"}, {"step", this_step}});
      return kExitNonFinite;
    }
    const double kl_coef_used = kl.value;
    kl.update(kl_mean, B);
    step = this_step;

    const double resp_len = mask.sum().item<double>() / static_cast<double>(B);
    const double eos_frac = r.ended_eos.mean().item<double>();
    const double ev = rloo ? 0.0 : explained_variance(ex.values_old, ex.returns, mask);
    std::set<std::vector<int64_t>> distinct(r.responses.begin(), r.responses.end());
    nlohmann::json rec{{"kind", "ppo"},
                       {"step", step},
                       {"reward_mean", raw_score_mean},
                       {"reward_std", raw_score_std},
                       {"rm_score", rm_mean},
                       {"rule_reward", rule_mean},
                       {"kl", kl_mean},
                       {"kl_coef", kl_coef_used},
                       {"policy_loss", pl_sum / n_mb},
                       {"value_loss", vl_sum / n_mb},
                       {"clip_fraction", clip_sum / n_mb},
                       {"value_clip_fraction", vclip_sum / n_mb},
                       {"approx_kl", akl_sum / n_mb},
                       {"entropy", ent_sum / n_mb},
                       {"response_length", resp_len},
                       {"eos_fraction", eos_frac},
                       {"distinct_responses", static_cast<double>(distinct.size()) / static_cast<double>(B)},
                       // where the time goes: sampling, scoring (4 forward passes), PPO epochs
                       {"generate_s", gen_s},
                       {"score_s", score_s},
                       {"update_s", update_s},
                       {"generate_tokens_per_s", mask.sum().item<double>() / std::max(gen_s, 1e-9)},
                       {"update_tokens_per_s",
                        static_cast<double>(r.tokens.numel() * pc.ppo_epochs) / std::max(update_s, 1e-9)}};
    if (pc.samples_per_prompt > 1) rec["mixed_groups"] = mixed_groups;
    if (!rloo) rec["explained_variance"] = ev;
    metrics.write(rec);
    spdlog::info("rollout {}/{} reward {:.3f}±{:.3f} kl {:.3f} (coef {:.3g}) pl {:.4f} vl {:.4f} clip {:.3f} "
                 "approx_kl {:.4f} entropy {:.3f} ev {:.3f} len {:.1f} eos {:.2f} distinct {:.2f} | time: generate {:.1f}s "
                 "score {:.1f}s update {:.1f}s",
                 step, cfg.train.max_steps, raw_score_mean, raw_score_std, kl_mean, kl_coef_used, pl_sum / n_mb,
                 vl_sum / n_mb, clip_sum / n_mb, akl_sum / n_mb, ent_sum / n_mb, ev, resp_len, eos_frac,
                 static_cast<double>(distinct.size()) / static_cast<double>(B), gen_s, score_s, update_s);
    if (kl_mean < -1.0) spdlog::warn("rollout {}: KL to the reference is negative ({:.3f}); sampling and scoring "
                                     "disagree (temperature, top-k/top-p?)", step, kl_mean);

    if (pc.eval_every > 0 && step % pc.eval_every == 0 && step != cfg.train.max_steps) evaluate(step);
    if (stop_requested()) {
      save(step);
      spdlog::warn("interrupted by signal {} at rollout {}; checkpoint {} written. Resume with: infini train {}",
                   stop_signal(), step, last_checkpoint, config_path);
      return kExitInterrupted;
    }
    if (cfg.train.stop_after > 0 && step - first_step >= cfg.train.stop_after && step != cfg.train.max_steps) {
      save(step);
      spdlog::info("stopping after {} rollouts as train.stop_after asks; resume continues at rollout {}",
                   cfg.train.stop_after, step + 1);
      return 0;
    }
    if (cfg.checkpoint.every > 0 && step % cfg.checkpoint.every == 0 && step != cfg.train.max_steps) save(step);
  }
  evaluate(step);
  save(step);
  spdlog::info("done: {} rollouts; final checkpoint {}", step, last_checkpoint);
  return 0;
}

}  // namespace infini
