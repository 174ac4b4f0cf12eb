// LoRA: the adapter's arithmetic by hand, fresh adapters leave the model unchanged, merged
// weights give the adapted model's logits, the base fingerprint, the config checks, and tiny runs
// through the CLI (SFT, reward, DPO, PPO with adapters): only adapters, gates and a scalar head
// train and are saved, the base stays bit for bit, resume is exact, merge-lora, and the errors
// of a missing or changed base.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/lora.h"
#include "core/model_io.h"
#include "core/safetensors.h"
#include "support/build_once.h"
#include "support/run_util.h"
#include "support/small_model.h"
#include "support/tiny_rlhf.h"
#include "train/run/checkpoint_dir.h"

namespace infini::test {
// Named, not anonymous: the suite also builds as one unity translation unit.
namespace test_lora {

namespace fs = std::filesystem;

LoraConfig lora_cfg(int64_t rank, std::vector<std::string> targets = lora_target_names(), bool bf16 = false) {
  LoraConfig c;
  c.rank = rank;
  c.alpha = 8.0;
  c.targets = std::move(targets);
  c.base_bf16 = bf16;
  return c;
}

std::map<std::string, torch::Tensor> weights_of(Decoder& m) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : m->named_parameters(true)) out[item.key()] = item.value().detach().clone();
  return out;
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

TEST(LoraLinear, AdapterAddsScaledLowRankProductByHand) {
  // x = (1, 2), W = [[1, 0], [0, 1]], A = (3, -1) (rank 1), B = (0.5, 2)^T, scale 4:
  // x W^T = (1, 2); A x = 3 - 2 = 1; B (A x) = (0.5, 2); y = (1, 2) + 4 (0.5, 2) = (3, 10).
  Linear lin(2, 2);
  lin->add_adapter(1, 4.0, 0.0);
  {
    torch::NoGradGuard ng;
    lin->weight.copy_(torch::eye(2));
    lin->lora_a.copy_(torch::tensor({{3.0f, -1.0f}}));
    lin->lora_b.copy_(torch::tensor({{0.5f}, {2.0f}}));
  }
  const torch::Tensor y = lin(torch::tensor({{1.0f, 2.0f}}));
  EXPECT_FLOAT_EQ(y[0][0].item<float>(), 3.0f);
  EXPECT_FLOAT_EQ(y[0][1].item<float>(), 10.0f);
  // Initialised as LoRA prescribes: B = 0, A uniform in +-1/sqrt(in).
  Linear fresh(64, 16);
  fresh->add_adapter(8, 2.0, 0.0);
  EXPECT_EQ(fresh->lora_a.sizes(), (std::vector<int64_t>{8, 64}));
  EXPECT_EQ(fresh->lora_b.sizes(), (std::vector<int64_t>{16, 8}));
  EXPECT_EQ(fresh->lora_b.abs().max().item<float>(), 0.0f);
  EXPECT_LE(fresh->lora_a.abs().max().item<float>(), 1.0f / 8.0f);
  EXPECT_GT(fresh->lora_a.abs().max().item<float>(), 0.1f);  // 512 draws: the bound is nearly reached
}

TEST(LoraModel, FreshAdaptersLeaveTheOutputUnchanged) {
  for (const bool bf16 : {false, true}) {
    Decoder m = small_model(MemoryUpdate::delta, 5);
    m->eval();
    const torch::Tensor tokens = torch::randint(0, 40, {2, 29}, torch::kLong);  // 4 segments, the last partial
    torch::NoGradGuard ng;
    torch::Tensor before = m->forward(tokens);
    if (bf16) {  // compare with the rounded base: what base_bf16 stores
      for (auto& item : m->named_parameters(true))
        if (item.key().find(".attention.w") != std::string::npos || item.key().find(".feed_forward.w") != std::string::npos)
          item.value().copy_(item.value().to(torch::kBFloat16));
      before = m->forward(tokens);
    }
    add_lora_adapters(m, lora_cfg(4, lora_target_names(), bf16));
    EXPECT_TRUE(torch::equal(m->forward(tokens), before)) << "bf16 " << bf16;
    // The streaming path too, token by token.
    StreamState st = m->new_state(2);
    std::vector<torch::Tensor> steps;
    for (int64_t t = 0; t < tokens.size(1); ++t) steps.push_back(m->forward_stream(st, tokens.narrow(1, t, 1)));
    EXPECT_LT(max_diff(torch::cat(steps, 1), before), 1e-5) << "bf16 " << bf16;
    if (bf16) {
      EXPECT_EQ(m->blocks[0]->feed_forward->w2->weight.scalar_type(), torch::kBFloat16);
    }
  }
}

TEST(LoraModel, MergedWeightsGiveTheAdaptedLogits) {
  for (const bool bf16 : {false, true}) {
    Decoder m = small_model(MemoryUpdate::delta, 6);
    m->eval();
    const torch::Tensor tokens = torch::randint(0, 40, {2, 24}, torch::kLong);
    torch::Tensor before;
    {
      torch::NoGradGuard ng;
      before = m->forward(tokens);
    }
    add_lora_adapters(m, lora_cfg(3, {"wq", "wv", "wo", "w2"}, bf16));
    {
      torch::NoGradGuard ng;
      for (auto& item : m->named_parameters(true))
        if (item.key().find(".lora_b") != std::string::npos) item.value().normal_(0, 0.3);
    }
    torch::NoGradGuard ng;
    const torch::Tensor adapted = m->forward(tokens);
    std::map<std::string, torch::Tensor> merged = merge_lora(weights_of(m), m->lora);
    for (const auto& [name, t] : merged) EXPECT_EQ(name.find(".lora_"), std::string::npos) << name;
    Decoder plain(m->config());
    SafeTensors st;
    st.tensors = merged;
    load_weights(plain, st, "merged");
    plain->eval();
    const torch::Tensor logits = plain->forward(tokens);
    EXPECT_GT(max_diff(adapted, before), 1e-2) << "the adapters change the output";
    EXPECT_LT(max_diff(logits, adapted), 1e-5) << "bf16 " << bf16;
  }
}

TEST(LoraModel, FingerprintFollowsTheContent) {
  const std::string dir = scratch_dir("lora_fingerprint");
  auto write = [](const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; };
  write(dir + "/a.safetensors", std::string(1000, 'x') + "tail");
  write(dir + "/b.safetensors", std::string(1000, 'x') + "tail");
  const std::string a = model_fingerprint(dir + "/a.safetensors");
  EXPECT_EQ(a.size(), 16u);
  EXPECT_EQ(model_fingerprint(dir + "/b.safetensors"), a);
  write(dir + "/b.safetensors", std::string(1000, 'x') + "tall");  // one byte in the tail
  EXPECT_NE(model_fingerprint(dir + "/b.safetensors"), a);
  write(dir + "/b.safetensors", "y" + std::string(999, 'x') + "tail");  // one byte in a word
  EXPECT_NE(model_fingerprint(dir + "/b.safetensors"), a);
  write(dir + "/b.safetensors", std::string(1000, 'x') + "tail" + std::string(1, '\0'));  // a zero appended
  EXPECT_NE(model_fingerprint(dir + "/b.safetensors"), a);
  // A folder: its config.json and weight files, by name.
  fs::create_directories(dir + "/hf");
  write(dir + "/hf/config.json", "{}");
  write(dir + "/hf/model.safetensors", "w");
  const std::string f = model_fingerprint(dir + "/hf");
  write(dir + "/hf/notes.txt", "ignored");
  EXPECT_EQ(model_fingerprint(dir + "/hf"), f);
  write(dir + "/hf/config.json", "{ }");
  EXPECT_NE(model_fingerprint(dir + "/hf"), f);
}

TEST(LoraConfig, DefaultsChecksAndRoundTrip) {
  const std::string base = "stage: sft\ninit_from: runs/base\n";
  const Config c = parse_config(base, "cfg.yaml");
  EXPECT_EQ(c.lora.rank, 0);
  EXPECT_FALSE(c.lora.enabled());
  EXPECT_EQ(c.lora.targets, lora_target_names());
  EXPECT_NE(config_error_of(base + "lora: {rank: -1}\n").find("cfg.yaml:3: key lora.rank: expected"), std::string::npos);
  EXPECT_EQ(config_error_of(base + "lora: {rank: 4, targets: [wq, wx]}\n"),
            "cfg.yaml:3: lora.targets: expected names among wq, wk, wv, wo, w1, w2, w3, found 'wx'");
  EXPECT_EQ(config_error_of(base + "lora: {rank: 4, targets: [wq, wq]}\n"),
            "cfg.yaml:3: lora.targets: 'wq' is listed twice");
  EXPECT_EQ(config_error_of(base + "lora: {rank: 4, targets: []}\n"),
            "cfg.yaml:3: lora.targets: expected at least one of wq, wk, wv, wo, w1, w2, w3, found none");
  EXPECT_EQ(config_error_of(base + "lora: {rank: 4, alpha: 0}\n"), "cfg.yaml:3: lora.alpha: expected > 0, found 0");
  EXPECT_EQ(config_error_of(base + "lora: {rank: 4, dropout: 1}\n"),
            "cfg.yaml:3: lora.dropout: expected in [0, 1), found 1");
  EXPECT_NE(config_error_of("stage: sft\nlora: {rank: 4}\n").find("lora.rank: adapters (4) train on the frozen weights"),
            std::string::npos);
  EXPECT_NE(config_error_of(base + "lora: {rank: 4}\noptim: {freeze_layers: 1}\n").find("optim.freeze_layers: with lora"),
            std::string::npos);
  const Config d = parse_config(base + "lora: {rank: 8, alpha: 32, dropout: 0.1, targets: [wq, w3], base_bf16: true}\n",
                                "cfg.yaml");
  const Config back = parse_config(config_to_yaml(d), "dump.yaml");
  EXPECT_EQ(back.lora.rank, 8);
  EXPECT_EQ(back.lora.alpha, 32.0);
  EXPECT_EQ(back.lora.dropout, 0.1);
  EXPECT_EQ(back.lora.targets, (std::vector<std::string>{"wq", "w3"}));
  EXPECT_TRUE(back.lora.base_bf16);
  EXPECT_DOUBLE_EQ(back.lora.scale(), 4.0);
}

// ---- end to end ----

const std::string kLora = " lora.rank=4 lora.alpha=8";

std::string sft_args(const TinyRlhf& p, const std::string& run_dir, const std::string& extra) {
  return "train " + source_path("configs/tiny/sft.yaml") + " " + tiny_overrides(p) + " run.dir=" + run_dir +
         " data.train=[" + p.dir + "/sft.jsonl] init_from=" + p.sft_run + " optim.lr=1e-2 train.log_every=1 " + extra;
}

// Elements of the adapters, gates and head a LoRA file of the tiny model must hold.
int64_t expected_lora_elements(const ModelConfig& c, int64_t r, bool scalar_head) {
  const int64_t D = c.d_model, Dh = c.head_dim(), H = c.n_heads, Hkv = c.kv_heads(), F = c.ffn_dim();
  const int64_t per_block = r * ((D + H * Dh) + (D + Hkv * Dh) * 2 + (H * Dh + D)) +  // wq, wk, wv, wo
                            r * ((D + F) * 3) + H;                                    // w1, w2, w3; gates
  return c.n_layers * per_block + (scalar_head ? D : 0);
}

TEST(LoraStage, SftTrainsOnlyTheAdaptersAndResumesExactly) {
  const TinyRlhf& p = tiny_rlhf();
  const std::string straight = scratch_dir("lora_sft_straight") + "/r", split = scratch_dir("lora_sft_split") + "/r";
  const std::string common = kLora + " lora.dropout=0.1 train.max_steps=6 checkpoint.every=0";
  expect_exact_resume([&](const std::string& dir, const std::string& extra) { return sft_args(p, dir, common + extra); },
                      straight, split, 3, "train", 6, {"loss", "grad_norm"});
  EXPECT_NE(read_text(straight + "/train.log").find("lora: rank 4 (alpha 8) on wq wk wv wo w1 w2 w3"), std::string::npos);

  // The file: adapters and gates only, of the expected size; the optimizer's moments the same set.
  const std::string file = model_file(straight), split_file = model_file(split);
  SafeTensors x = load_safetensors(file), y = load_safetensors(split_file);
  const ModelConfig mc = read_model_config(file);
  int64_t elements = 0;
  for (auto& [name, t] : x.tensors) {
    EXPECT_TRUE(is_lora_tensor(name)) << name;
    EXPECT_TRUE(torch::equal(t, y.tensors.at(name))) << name;
    elements += t.numel();
  }
  EXPECT_EQ(elements, expected_lora_elements(mc, 4, false));
  EXPECT_EQ(x.tensors.size(), static_cast<size_t>(mc.n_layers * 15));  // 7 x (a, b) + gate per block
  const auto bytes = static_cast<int64_t>(fs::file_size(file));
  EXPECT_GT(bytes, 4 * elements);
  EXPECT_LT(bytes, 4 * elements + 8192) << "header only beside the fp32 data";
  SafeTensors opt = load_safetensors(resolve_checkpoint(straight) + "/optimizer.safetensors");
  EXPECT_EQ(opt.tensors.size(), 2 * x.tensors.size() + 1);  // exp_avg, exp_avg_sq per tensor, step
  EXPECT_EQ(x.metadata.at("lora_base"), fs::canonical(model_file(p.sft_run)).string());
  EXPECT_GT(x.tensors.at("layers.1.feed_forward.w2.lora_b").abs().max().item<float>(), 0.0f);

  // Base + adapters: every base tensor unchanged, and the merged model's logits equal the adapted one's.
  SafeTensors base = load_safetensors(model_file(p.sft_run));
  SafeTensors full = read_model_weights(file, /*keep_adapters=*/true);
  for (auto& [name, t] : base.tensors)
    if (!is_lora_tensor(name)) {
      EXPECT_TRUE(torch::equal(full.tensors.at(name), t)) << name;
    }
  Decoder adapted(mc);
  LoraConfig lc = *lora_of(x.metadata, file);
  lc.dropout = 0.0;  // training only; eval() turns it off in any case
  add_lora_adapters(adapted, lc);
  load_weights(adapted, full, file);
  adapted->eval();
  const std::string merged_run = scratch_dir("lora_sft_merged") + "/m";
  auto mr = run_infini("merge-lora --checkpoint " + straight + " --out " + merged_run);
  ASSERT_EQ(mr.code, 0) << mr.output;
  Decoder merged = load_model(model_file(merged_run));
  EXPECT_FALSE(lora_of(read_safetensors_metadata(model_file(merged_run)), "m").has_value());
  merged->eval();
  torch::NoGradGuard ng;
  const torch::Tensor tokens = torch::randint(0, mc.vocab_size, {2, 3 * mc.segment_len + 5}, torch::kLong);
  EXPECT_LT(max_diff(merged->forward(tokens), adapted->forward(tokens)), 1e-5);
  Decoder plain_base = load_model(model_file(p.sft_run));
  plain_base->eval();
  EXPECT_GT(max_diff(plain_base->forward(tokens), adapted->forward(tokens)), 1e-3) << "the adapters trained";
  // Every command reads the LoRA checkpoint directly (merged on load).
  auto ppl = run_infini("eval ppl --checkpoint " + straight + " --text " + p.data.dir + "/corpus.txt --max-tokens 64" +
                        " --tokenizer " + p.data.tokenizer + " --threads 1");
  EXPECT_EQ(ppl.code, 0) << ppl.output;
  // export hf of the LoRA checkpoint writes what the merged checkpoint's export writes.
  const std::string hf = scratch_dir("lora_sft_hf");
  ASSERT_EQ(run_infini("export hf --checkpoint " + straight + " --out " + hf + "/lora").code, 0);
  ASSERT_EQ(run_infini("export hf --checkpoint " + merged_run + " --out " + hf + "/merged").code, 0);
  SafeTensors e1 = load_safetensors(hf + "/lora/model.safetensors"), e2 = load_safetensors(hf + "/merged/model.safetensors");
  ASSERT_EQ(e1.tensors.size(), e2.tensors.size());
  for (auto& [name, t] : e1.tensors) EXPECT_TRUE(torch::equal(t, e2.tensors.at(name))) << name;
  auto again = run_infini("merge-lora --checkpoint " + straight + " --out " + merged_run);
  EXPECT_NE(again.code, 0);
  EXPECT_NE(again.output.find("exists and is not an empty folder"), std::string::npos) << again.output;
  auto plain = run_infini("merge-lora --checkpoint " + p.sft_run + " --out " + scratch_dir("lora_sft_merged2") + "/m");
  EXPECT_NE(plain.code, 0);
  EXPECT_NE(plain.output.find("holds full weights, not LoRA adapters; nothing to merge"), std::string::npos)
      << plain.output;
}

TEST(LoraStage, ABaseThatChangedOrVanishedIsAnError) {
  const TinyRlhf& p = tiny_rlhf();
  const std::string dir = scratch_dir("lora_base_changed");
  // A base of our own (a copy of the SFT run's step 60) that the test can then change.
  fs::create_directories(dir + "/base");
  fs::copy_file(model_file(p.sft_run), dir + "/base/model.safetensors");
  std::ofstream(dir + "/base/trainer_state.json") << R"({"step": 60, "format_version": 1})";
  const std::string run = dir + "/r";
  auto r = run_infini(sft_args(p, run, kLora + " train.max_steps=2 checkpoint.every=0 init_from=" + dir + "/base"));
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string info = "info " + run;
  auto ok = run_infini(info);
  ASSERT_EQ(ok.code, 0) << ok.output;
  EXPECT_NE(ok.output.find("origin: LoRA adapters (stage sft) on " + fs::canonical(dir + "/base/model.safetensors").string()),
            std::string::npos) << ok.output;
  // Changed: other weights (the step-45 checkpoint) under the same name.
  fs::copy_file(p.sft_run + "/checkpoints/step_00000045/model.safetensors", dir + "/base/model.safetensors",
                fs::copy_options::overwrite_existing);
  auto changed = run_infini(info);
  EXPECT_NE(changed.code, 0);
  EXPECT_NE(changed.output.find("has changed since the adapters were trained"), std::string::npos) << changed.output;
  // The resumed run refuses too, before training anything.
  auto resumed = run_infini(sft_args(p, run, kLora + " train.max_steps=4 checkpoint.every=0 init_from=" + dir + "/base"));
  EXPECT_NE(resumed.code, 0);
  EXPECT_NE(resumed.output.find("has changed since the adapters were trained"), std::string::npos) << resumed.output;
  fs::remove_all(dir + "/base");
  auto gone = run_infini(info);
  EXPECT_NE(gone.code, 0);
  EXPECT_NE(gone.output.find("is missing (LoRA adapters need the model they were trained on)"), std::string::npos)
      << gone.output;
}

TEST(LoraStage, AHuggingFaceFolderIsABaseLikeItsCheckpoint) {
  // The SFT model exported (a lossless round trip), then the same LoRA steps on the folder and on
  // the checkpoint: the same adapters; the folder's run names the folder and reads back through it.
  const TinyRlhf& p = tiny_rlhf();
  const std::string dir = scratch_dir("lora_hf_base");
  ASSERT_EQ(run_infini("export hf --checkpoint " + p.sft_run + " --out " + dir + "/hf").code, 0);
  const std::string steps = kLora + " train.max_steps=2 checkpoint.every=0";
  auto a = run_infini(sft_args(p, dir + "/from_ck", steps));
  ASSERT_EQ(a.code, 0) << a.output;
  auto b = run_infini(sft_args(p, dir + "/from_hf", steps + " init_from=" + dir + "/hf"));
  ASSERT_EQ(b.code, 0) << b.output;
  SafeTensors x = load_safetensors(model_file(dir + "/from_ck")), y = load_safetensors(model_file(dir + "/from_hf"));
  ASSERT_EQ(x.tensors.size(), y.tensors.size());
  for (auto& [name, t] : x.tensors) EXPECT_LT(max_diff(t, y.tensors.at(name)), 1e-6) << name;
  EXPECT_EQ(y.metadata.at("lora_base"), fs::canonical(dir + "/hf").string());
  EXPECT_EQ(y.metadata.at("lora_base_fingerprint"), model_fingerprint(dir + "/hf"));
  Decoder m1 = load_model(model_file(dir + "/from_ck")), m2 = load_model(model_file(dir + "/from_hf"));
  m1->eval();
  m2->eval();
  torch::NoGradGuard ng;
  const torch::Tensor tokens = torch::randint(0, m1->config().vocab_size, {1, 40}, torch::kLong);
  EXPECT_LT(max_diff(m1->forward(tokens), m2->forward(tokens)), 1e-5);
}

TEST(LoraStage, AResumedRunKeepsItsAdapters) {
  const TinyRlhf& p = tiny_rlhf();
  const std::string run = scratch_dir("lora_resume_rank") + "/r";
  ASSERT_EQ(run_infini(sft_args(p, run, kLora + " train.max_steps=4 train.stop_after=2")).code, 0);
  auto other = run_infini(sft_args(p, run, " lora.rank=2 train.max_steps=4"));
  EXPECT_NE(other.code, 0);
  EXPECT_NE(other.output.find("a resumed run keeps its adapters"), std::string::npos) << other.output;
  auto off = run_infini(sft_args(p, run, " train.max_steps=4"));
  EXPECT_NE(off.code, 0);
  EXPECT_NE(off.output.find("holds LoRA adapters (rank 4), this run has lora.rank 0"), std::string::npos)
      << off.output;
}

TEST(LoraStage, RewardDpoAndPpoTrainAdapters) {
  const TinyRlhf& p = tiny_rlhf();
  const std::string dir = scratch_dir("lora_stages");
  // Reward model: adapters plus the new score head, on the SFT model.
  auto rw = run_infini("train " + source_path("configs/tiny/reward.yaml") + " " + tiny_overrides(p) + " run.dir=" +
                       dir + "/reward data.train=[" + p.pref + "] data.val=[" + p.pref_val + "] init_from=" +
                       p.sft_run + " train.max_steps=4 checkpoint.every=0" + kLora);
  ASSERT_EQ(rw.code, 0) << rw.output;
  SafeTensors rm = load_safetensors(model_file(dir + "/reward"));
  ASSERT_TRUE(rm.tensors.count("score.weight"));
  EXPECT_EQ(rm.tensors.size(), 2u * 15 + 1);
  // DPO: the policy starts as the reference (B = 0), so the first loss is ln 2 exactly as without LoRA.
  auto dpo = run_infini("train " + source_path("configs/tiny/dpo.yaml") + " " + tiny_overrides(p) + " run.dir=" + dir +
                        "/dpo data.train=[" + p.pref + "] data.val=[" + p.pref_val + "] init_from=" + p.sft_run +
                        " train.max_steps=3 checkpoint.every=0 optim.lr=1e-2" + kLora);
  ASSERT_EQ(dpo.code, 0) << dpo.output;
  auto train = records_of(dir + "/dpo", "train");
  ASSERT_EQ(train.size(), 3u);
  EXPECT_NEAR(train[0]["loss"].get<double>(), std::log(2.0), 1e-6);
  EXPECT_GT(std::abs(train[2]["loss"].get<double>() - std::log(2.0)), 1e-4);
  // PPO (rule reward, RLOO): actor adapters; the actor's first eval is the SFT model's.
  auto ppo = run_infini("train " + source_path("configs/tiny/ppo.yaml") + " " + tiny_overrides(p) + " run.dir=" + dir +
                        "/ppo data.train=[" + p.prompts + "] data.val=[" + p.prompts_val + "] init_from=" + p.sft_run +
                        " ppo.reward_model= ppo.reward_source=rule ppo.advantage=rloo ppo.samples_per_prompt=2 train.max_steps=2" +
                        " checkpoint.every=0" + kLora);
  ASSERT_EQ(ppo.code, 0) << ppo.output;
  SafeTensors actor = load_safetensors(resolve_checkpoint(dir + "/ppo") + "/actor/model.safetensors");
  EXPECT_EQ(actor.tensors.size(), 2u * 15);
  for (auto& [name, t] : actor.tensors) EXPECT_TRUE(is_lora_tensor(name)) << name;
  EXPECT_EQ(actor.metadata.at("lora_base"), fs::canonical(model_file(p.sft_run)).string());
}

}  // namespace test_lora
}  // namespace infini::test
