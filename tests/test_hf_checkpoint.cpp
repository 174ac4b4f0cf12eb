// Tests of the Hugging Face import/export against transformers itself: tests/reference/hf_oracle.py
// (run with the Python that INFINI_ORACLE_PYTHON names) saves random LlamaForCausalLM /
// MistralForCausalLM models and their logits; we convert and compare, export and let
// from_pretrained compare. Without that Python the oracle tests skip (fail with
// INFINI_REQUIRE_ORACLE=1). Also: the RoPE row permutation, config refusals and the CLI's errors.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/generate.h"
#include "core/hf_checkpoint.h"
#include "core/hf_config.h"
#include "core/model_io.h"
#include "core/rope.h"
#include "core/safetensors.h"
#include "data/tokenizer.h"
#include "support/oracle.h"
#include "support/run_util.h"
#include "support/tiny_data.h"
#include "train/run/checkpoint.h"
#include "train/run/checkpoint_dir.h"

// Everything of this file in its own namespace: the suite also builds as one unity translation unit.
namespace test_hf_checkpoint {

namespace fs = std::filesystem;
using namespace infini;
using infini::test::oracle_python;
using infini::test::read_text;
using infini::test::run_cmd;
using infini::test::run_infini;
using infini::test::scratch_dir;
using infini::test::source_path;
using json = nlohmann::json;

namespace {

// The oracle's models and logits, made once per script version and shared by the test processes.
std::string oracle_dir() {
  const std::string script = source_path("tests/reference/hf_oracle.py");
  const std::string key = std::to_string(std::hash<std::string>{}(read_text(script)));
  const std::string base = scratch_dir("hf_oracle", /*fresh=*/false);
  const std::string dir = base + "/" + key;
  const int lock = ::open((base + "/.lock").c_str(), O_CREAT | O_RDWR, 0644);
  ::flock(lock, LOCK_EX);
  if (!fs::exists(dir + "/.done")) {
    fs::remove_all(dir);
    auto r = run_cmd("OMP_NUM_THREADS=1 " + oracle_python() + " " + script + " make --out " + dir);
    if (r.code == 0) std::ofstream(dir + "/.done") << "ok\n";
    else ADD_FAILURE() << "the oracle failed (" << oracle_python() << "): " << r.output;
  }
  ::flock(lock, LOCK_UN);
  ::close(lock);
  return dir;
}

struct Oracle {
  torch::Tensor input_ids, logits, greedy;
};
Oracle read_oracle(const std::string& path) {
  SafeTensors st = load_safetensors(path);
  return {st.tensors.at("input_ids"), st.tensors.at("logits"), st.tensors.at("greedy")};
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

torch::Tensor logits_of(Decoder& m, const torch::Tensor& ids) {
  torch::NoGradGuard g;
  return m->forward(ids);
}

// Greedy continuation of the oracle's prompt through our streaming generation loop.
std::vector<int64_t> greedy_of(Decoder& m, const torch::Tensor& greedy, int64_t prompt_len) {
  std::vector<int64_t> prompt(greedy.data_ptr<int64_t>(), greedy.data_ptr<int64_t>() + prompt_len);
  GenerateOptions o;
  o.sampling.temperature = 0;
  o.max_new_tokens = greedy.numel() - prompt_len;
  o.eos_id = -1;
  return generate(m, prompt, o);
}

std::vector<int64_t> to_vec(const torch::Tensor& t) {
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

void copy_folder(const std::string& from, const std::string& to) {
  fs::remove_all(to);
  fs::copy(from, to, fs::copy_options::recursive);
}

json read_json(const std::string& path) { return json::parse(read_text(path)); }
void write_json(const std::string& path, const json& j) { std::ofstream(path, std::ios::trunc) << j.dump(2); }

// HF's rotary embedding (transformers' apply_rotary_pos_emb with rotate_half), for one head x (P, Dh).
torch::Tensor hf_rope(const torch::Tensor& x, double theta) {
  const int64_t P = x.size(0), dh = x.size(1);
  torch::Tensor inv = 1.0 / torch::pow(theta, torch::arange(0, dh, 2, torch::kFloat) / dh);
  torch::Tensor freqs = torch::arange(P, torch::kFloat).unsqueeze(1) * inv.unsqueeze(0);  // (P, Dh/2)
  torch::Tensor emb = torch::cat({freqs, freqs}, -1);
  torch::Tensor rot = torch::cat({-x.narrow(1, dh / 2, dh / 2), x.narrow(1, 0, dh / 2)}, -1);
  return x * emb.cos() + rot * emb.sin();
}

}  // namespace

// Our row 2i + j is HF's row j * Dh/2 + i, per head; and the two RoPE codes then give the same scores.
TEST(HfPermutation, RowsMoveAsDerivedAndScoresAgree) {
  // 2 heads of Dh 4: HF rows (a0 a1 | b0 b1) per head, ours (a0 b0 a1 b1).
  torch::Tensor w = torch::arange(8, torch::kFloat).unsqueeze(1);  // row r holds r
  torch::Tensor ours = hf_rows_to_interleaved(w, 2).squeeze(1);
  EXPECT_TRUE(torch::equal(ours, torch::tensor({0.f, 2.f, 1.f, 3.f, 4.f, 6.f, 5.f, 7.f})));
  torch::Tensor r = torch::randn({6 * 8, 5});
  EXPECT_TRUE(torch::equal(interleaved_rows_to_hf(hf_rows_to_interleaved(r, 6), 6), r));
  EXPECT_FALSE(torch::equal(hf_rows_to_interleaved(r, 6), r));

  // q, k in HF's layout at 12 positions: HF rotates them its way, we ours after the permutation.
  torch::manual_seed(3);
  const int64_t P = 12, dh = 16;
  const double theta = 10000.0;
  torch::Tensor q = torch::randn({P, dh}), k = torch::randn({P, dh});
  torch::Tensor s_hf = torch::matmul(hf_rope(q, theta), hf_rope(k, theta).t());
  auto perm = [&](const torch::Tensor& x) { return hf_rows_to_interleaved(x.t().contiguous(), 1).t(); };
  RopeTables t = rope_tables(0, P, dh, theta);
  torch::Tensor s_ours = torch::matmul(apply_rope(perm(q), t), apply_rope(perm(k), t).t());
  EXPECT_LT(max_diff(s_hf, s_ours), 1e-4);
  // Without the permutation the scores differ: the test can fail.
  torch::Tensor s_wrong = torch::matmul(apply_rope(q, t), apply_rope(k, t).t());
  EXPECT_GT(max_diff(s_hf, s_wrong), 1e-2);
}

TEST(HfConfig, ReadsKeysAndRefusesWhatItCannotRun) {
  const json good = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", 48},
                     {"intermediate_size", 80}, {"num_hidden_layers", 2}, {"num_attention_heads", 3},
                     {"num_key_value_heads", 1}, {"vocab_size", 96}, {"rms_norm_eps", 1e-5},
                     {"rope_parameters", {{"rope_type", "default"}, {"rope_theta", 500000.0}}},
                     {"tie_word_embeddings", true}, {"max_position_embeddings", 4096}, {"head_dim", 16}};
  HfConfig c = parse_hf_config(good, "c.json");
  EXPECT_EQ(c.model.d_model, 48);
  EXPECT_EQ(c.model.kv_heads(), 1);
  EXPECT_EQ(c.model.ffn_dim(), 80);
  EXPECT_DOUBLE_EQ(c.model.rope_theta, 500000.0);
  EXPECT_DOUBLE_EQ(c.model.norm_eps, 1e-5);
  EXPECT_TRUE(c.model.tie_embeddings);
  EXPECT_FALSE(c.model.memory.enabled);
  EXPECT_EQ(c.model.segment_len, 2048);  // min(max_position_embeddings, 2048)
  json legacy = good;                    // transformers 4.x: rope_theta at the top
  legacy.erase("rope_parameters");
  legacy["rope_theta"] = 1e6;
  legacy["rope_scaling"] = nullptr;
  EXPECT_DOUBLE_EQ(parse_hf_config(legacy, "c.json").model.rope_theta, 1e6);

  auto error = [&](const std::function<void(json&)>& edit) {
    json j = good;
    edit(j);
    try {
      parse_hf_config(j, "c.json");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_EQ(error([](json& j) { j["architectures"] = {"Qwen2ForCausalLM"}; }),
            "c.json: key architectures: expected [\"LlamaForCausalLM\"] or [\"MistralForCausalLM\"], found "
            "[\"Qwen2ForCausalLM\"] (its q/k/v biases are not supported)");
  EXPECT_EQ(error([](json& j) { j["architectures"] = {"GPT2LMHeadModel"}; }),
            "c.json: key architectures: expected [\"LlamaForCausalLM\"] or [\"MistralForCausalLM\"], found "
            "[\"GPT2LMHeadModel\"]");
  EXPECT_EQ(error([](json& j) { j["attention_bias"] = true; }),
            "c.json: key attention_bias: expected false (projections without bias), found true");
  EXPECT_EQ(error([](json& j) { j["mlp_bias"] = true; }),
            "c.json: key mlp_bias: expected false (projections without bias), found true");
  EXPECT_EQ(error([](json& j) { j["head_dim"] = 32; }),
            "c.json: key head_dim: expected hidden_size / num_attention_heads = 16, found 32");
  EXPECT_EQ(error([](json& j) { j["rope_parameters"]["rope_type"] = "llama3"; }),
            "c.json: key rope_parameters.rope_type: expected \"default\" (plain RoPE; scaled variants are not "
            "implemented), found \"llama3\"");
  EXPECT_EQ(error([](json& j) { j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}}; }),
            "c.json: key rope_scaling.rope_type: expected \"default\" (plain RoPE; scaled variants are not "
            "implemented), found \"linear\"");
  EXPECT_EQ(error([](json& j) { j["hidden_act"] = "gelu"; }),
            "c.json: key hidden_act: expected \"silu\" (SwiGLU), found \"gelu\"");
  EXPECT_EQ(error([](json& j) { j.erase("hidden_size"); }),
            "c.json: key hidden_size: expected an integer >= 2, found no such key");
  EXPECT_EQ(error([](json& j) { j["num_key_value_heads"] = 2; }),
            "c.json: key num_key_value_heads: expected a divisor of num_attention_heads (3), found 2");
  EXPECT_EQ(error([](json& j) {
              j["architectures"] = {"MistralForCausalLM"};
              j["model_type"] = "mistral";
              j["sliding_window"] = 4096;
            }),
            "c.json: key sliding_window: expected null (sliding-window attention is not supported), found 4096");
  EXPECT_EQ(error([](json& j) {
              j["architectures"] = {"MistralForCausalLM"};
              j["model_type"] = "mistral";
              j["sliding_window"] = nullptr;
            }),
            "(no error)");
}

// Logits within 1e-5 of transformers' (fp32, inputs inside one segment), memory off and on; memory
// on is bit-identical to memory off there (gates 0, wo doubled); greedy tokens equal.
TEST(HfConvert, LogitsAndGreedyMatchTransformers) {
  REQUIRE_ORACLE();
  const std::string dir = oracle_dir();
  for (const char* name : {"mha_tied", "gqa_untied", "mqa_untied", "mistral_gqa"}) {
    SCOPED_TRACE(name);
    const Oracle o = read_oracle(dir + "/" + name + ".oracle.safetensors");
    HfFolder f = read_hf_folder(dir + "/" + name);
    EXPECT_EQ(f.dtype, "float32");
    Decoder off = import_hf(f, {});
    ASSERT_EQ(off->config().segment_len, 64);  // max_position_embeddings of the oracle's models
    HfImportOptions on_opts;
    on_opts.memory = true;
    on_opts.segment_len = o.input_ids.size(1) + 8;  // 24 tokens inside one segment of 32
    Decoder on = import_hf(f, on_opts);
    ASSERT_TRUE(on->config().memory.enabled);
    HfImportOptions off_opts = on_opts;  // the same segments (padding) as `on`, without memory
    off_opts.memory = false;
    Decoder off32 = import_hf(f, off_opts);
    const torch::Tensor l_off = logits_of(off, o.input_ids), l_on = logits_of(on, o.input_ids);
    const double d_off = max_diff(l_off, o.logits), d_on = max_diff(l_on, o.logits);
    std::printf("%-12s max |logit - transformers|: memory off %.3g, memory on %.3g; |logit| up to %.3g\n", name,
                d_off, d_on, o.logits.abs().max().item<double>());
    EXPECT_LT(d_off, 1e-5);
    EXPECT_LT(d_on, 1e-5);
    EXPECT_GT(o.logits.abs().max().item<double>(), 1.0);  // not trivially small logits
    const torch::Tensor l_off32 = logits_of(off32, o.input_ids);
    EXPECT_TRUE(torch::equal(l_on, l_off32)) << "memory on differs from off by " << max_diff(l_on, l_off32);
    EXPECT_EQ(greedy_of(off, o.greedy, 4), to_vec(o.greedy));
    EXPECT_EQ(greedy_of(on, o.greedy, 4), to_vec(o.greedy));
    // Beyond the first segment the memory takes part: on and off then differ.
    HfImportOptions short_seg = on_opts;
    short_seg.segment_len = 8;
    Decoder on8 = import_hf(f, short_seg);
    EXPECT_GT(max_diff(logits_of(on8, o.input_ids).narrow(1, 8, 16), l_off.narrow(1, 8, 16)), 1e-3);
  }
}

TEST(HfConvert, ShardedAndHalfPrecisionSaves) {
  REQUIRE_ORACLE();
  const std::string dir = oracle_dir();
  HfFolder one = read_hf_folder(dir + "/gqa_untied");
  // Progress over the shards: one call per tensor, growing, out of every shard's bytes together.
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  HfFolder shards = read_hf_folder(dir + "/gqa_untied_sharded",
                                   [&](uint64_t done, uint64_t total) { calls.emplace_back(done, total); });
  ASSERT_TRUE(fs::exists(dir + "/gqa_untied_sharded/model.safetensors.index.json"));
  std::set<std::string> files;
  for (const auto& [n, file] : shards.file_of) files.insert(file);
  EXPECT_GT(files.size(), 2u);
  uint64_t all_bytes = 0;
  for (const auto& f : files) all_bytes += fs::file_size(f);
  ASSERT_EQ(calls.size(), shards.tensors.size());
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].second, all_bytes);
    if (i > 0) {
      EXPECT_GT(calls[i].first, calls[i - 1].first);
    }
  }
  EXPECT_EQ(calls.back().first, all_bytes);
  ASSERT_EQ(one.tensors.size(), shards.tensors.size());
  for (const auto& [n, t] : one.tensors) EXPECT_TRUE(torch::equal(t, shards.tensors.at(n))) << n;
  Decoder a = import_hf(one, {}), b = import_hf(shards, {});
  for (const auto& item : a->named_parameters(true))
    EXPECT_TRUE(torch::equal(item.value(), b->named_parameters(true)[item.key()])) << item.key();

  for (const char* tag : {"bf16", "fp16"}) {
    SCOPED_TRACE(tag);
    const std::string name = std::string("mha_tied_") + tag;
    HfFolder f = read_hf_folder(dir + "/" + name);
    EXPECT_EQ(f.dtype, std::string(tag) == "bf16" ? "bfloat16" : "float16");
    EXPECT_EQ(f.tensors.at("model.norm.weight").scalar_type(), std::string(tag) == "bf16" ? torch::kBFloat16 : torch::kHalf);
    const Oracle o = read_oracle(dir + "/" + name + ".oracle.safetensors");
    Decoder m = import_hf(f, {});
    const double d = max_diff(logits_of(m, o.input_ids), o.logits);
    std::printf("%s: max |logit - transformers (fp32 of the rounded weights)| %.3g\n", name.c_str(), d);
    EXPECT_LT(d, 1e-5);
  }
}

// convert hf through the CLI: the checkpoint, its tokenizer, `info`, and the refusals.
TEST(HfCli, ConvertWritesACheckpointWithTokenizer) {
  REQUIRE_ORACLE();
  const std::string dir = oracle_dir();
  const std::string work = scratch_dir("hf_cli_convert");
  const std::string model = work + "/tok320";
  copy_folder(dir + "/tok320", model);
  const auto tiny = infini::test::tiny_data();
  fs::copy_file(tiny.tokenizer, model + "/tokenizer.model");
  const std::string ck = work + "/ck";
  auto r = run_infini("convert hf --model " + model + " --out " + ck + " --memory on --update linear --segment-len 32");
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string step = ck + "/checkpoints/step_00000000";
  const std::string mf = step + "/model.safetensors";
  ModelConfig c = read_model_config(mf);
  EXPECT_TRUE(c.memory.enabled);
  EXPECT_EQ(c.memory.update, MemoryUpdate::linear);
  EXPECT_EQ(c.segment_len, 32);
  auto meta = read_safetensors_metadata(mf);
  EXPECT_EQ(meta.at("source"), "hf:" + fs::absolute(model).lexically_normal().string());
  EXPECT_EQ(meta.at("tokenizer_path"), fs::absolute(step).lexically_normal().string() + "/tokenizer.model");
  EXPECT_TRUE(fs::exists(step + "/tokenizer.model"));
  EXPECT_EQ(meta.at("tokenizer_hash"), Tokenizer::load(tiny.tokenizer).content_hash());
  EXPECT_EQ(load_trainer_state(step).at("step"), 0);
  Decoder m = load_model(mf);
  EXPECT_TRUE(torch::equal(m->blocks[0]->attention->gate, torch::zeros({2})));

  r = run_infini("info " + ck);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("origin: hf " + fs::absolute(model).lexically_normal().string() + " (LlamaForCausalLM, float32)"),
            std::string::npos)
      << r.output;
  r = run_infini("generate --checkpoint " + ck + " --prompt-ids \"1 5 9\" --max-new-tokens 3 --temperature 0");
  EXPECT_EQ(r.code, 0) << r.output;
  // export hf takes the tokenizer along.
  r = run_infini("export hf --checkpoint " + ck + " --out " + work + "/exported");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_text(work + "/exported/tokenizer.model"), read_text(tiny.tokenizer));
  EXPECT_EQ(read_json(work + "/exported/config.json").at("infini").at("model_config").at("segment_len"), 32);

  // A second convert into the same folder needs --force.
  r = run_infini("convert hf --model " + model + " --out " + ck);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(lines_of(r.output).size(), 1u) << r.output;
  EXPECT_NE(r.output.find("--force"), std::string::npos) << r.output;

  // tokenizer.json alone: refused unless --no-tokenizer.
  fs::remove(model + "/tokenizer.model");
  std::ofstream(model + "/tokenizer.json") << "{}";
  r = run_infini("convert hf --model " + model + " --out " + work + "/ck2");
  EXPECT_EQ(r.code, 2) << r.output;
  ASSERT_EQ(lines_of(r.output).size(), 1u) << r.output;
  EXPECT_EQ(lines_of(r.output)[0], "error: " + model + ": has tokenizer.json but no tokenizer.model; infini reads "
                                   "sentencepiece tokenizers (tokenizer.model) only: add --no-tokenizer to convert "
                                   "the weights alone");
  r = run_infini("convert hf --model " + model + " --out " + work + "/ck2 --no-tokenizer");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_safetensors_metadata(work + "/ck2/checkpoints/step_00000000/model.safetensors").count("tokenizer_path"), 0u);
}

// Each defect of a folder: exit code 2 and exactly one line, "error: ..." naming what is wrong.
TEST(HfCli, MalformedFoldersGiveOneErrorLine) {
  REQUIRE_ORACLE();
  const std::string dir = oracle_dir();
  const std::string work = scratch_dir("hf_cli_bad");
  struct Case {
    std::string name, expect;
    std::function<void(const std::string&)> spoil;
    std::string from = "mha_tied";
  };
  std::vector<Case> cases = {
      {"no_config", "config.json: no such file",
       [](const std::string& d) { fs::remove(d + "/config.json"); }},
      {"unknown_arch", "config.json: key architectures: expected",
       [](const std::string& d) {
         json j = read_json(d + "/config.json");
         j["architectures"] = {"FalconForCausalLM"};
         write_json(d + "/config.json", j);
       }},
      {"wrong_shape", "tensor model.layers.1.self_attn.k_proj.weight has shape [40, 48], expected [48, 48]",
       [](const std::string& d) {
         SafeTensors st = load_safetensors(d + "/model.safetensors");
         auto& t = st.tensors["model.layers.1.self_attn.k_proj.weight"];
         t = t.narrow(0, 0, 40).contiguous();
         save_safetensors(d + "/model.safetensors", st.tensors, st.metadata);
       }},
      {"truncated", "model.safetensors", [](const std::string& d) {
         fs::resize_file(d + "/model.safetensors", fs::file_size(d + "/model.safetensors") - 100);
       }},
      {"missing_tensor", "missing tensor model.layers.0.mlp.up_proj.weight",
       [](const std::string& d) {
         SafeTensors st = load_safetensors(d + "/model.safetensors");
         st.tensors.erase("model.layers.0.mlp.up_proj.weight");
         save_safetensors(d + "/model.safetensors", st.tensors, st.metadata);
       }},
      {"missing_shard", "does not exist",
       [](const std::string& d) { fs::remove(d + "/model-00003-of-00012.safetensors"); }, "gqa_untied_sharded"},
      {"no_weights", "no model.safetensors or model.safetensors.index.json",
       [](const std::string& d) { fs::remove(d + "/model.safetensors"); }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string d = work + "/" + c.name;
    copy_folder(dir + "/" + c.from, d);
    c.spoil(d);
    auto r = run_infini("convert hf --model " + d + " --out " + work + "/out_" + c.name);
    EXPECT_EQ(r.code, 2) << r.output;
    const auto lines = lines_of(r.output);
    ASSERT_EQ(lines.size(), 1u) << r.output;
    EXPECT_EQ(lines[0].rfind("error: ", 0), 0u) << lines[0];
    EXPECT_NE(lines[0].find(c.expect), std::string::npos) << lines[0];
    EXPECT_FALSE(fs::exists(work + "/out_" + c.name + "/checkpoints/latest"));
  }
}

// export hf -> transformers' from_pretrained gives our logits; HF -> infini -> HF is tensor-identical;
// export -> convert rebuilds the same infini model (trained-looking gates included).
TEST(HfExport, FromPretrainedAndRoundTrips) {
  REQUIRE_ORACLE();
  const std::string dir = oracle_dir();
  const std::string work = scratch_dir("hf_export");

  // (1) mha_tied, memory off; (2) gqa_untied, memory on (gates 0); (3) mistral_gqa, memory on with
  // random gates and wo: a model like a trained one; (4) gqa_untied with the unit_delta rule and a
  // write gate, all gates random. The oracle of (3) and (4) is our own model.
  struct Case { std::string name, src; bool memory; bool random_gates; std::string options; };
  const std::vector<Case> cases = {{"off", "mha_tied", false, false, ""},
                                   {"on", "gqa_untied", true, false, ""},
                                   {"gated", "mistral_gqa", true, true, ""},
                                   {"written", "gqa_untied", true, true, " --update unit_delta --write-gate"}};
  std::vector<std::string> pairs;
  std::map<std::string, Decoder> models;
  for (const auto& c : cases) {
    const std::string ck = work + "/" + c.name + "_ck";
    std::string args = "convert hf --model " + dir + "/" + c.src + " --out " + ck;
    if (c.memory) args += " --memory on --segment-len 32" + c.options;
    auto r = run_infini(args);
    ASSERT_EQ(r.code, 0) << r.output;
    std::string oracle = dir + "/" + c.src + ".oracle.safetensors";
    if (c.random_gates) {
      const std::string mf = ck + "/checkpoints/step_00000000/model.safetensors";
      auto meta = read_safetensors_metadata(mf);
      Decoder m = load_model(mf);
      torch::manual_seed(11);
      {
        torch::NoGradGuard g;
        for (auto& b : m->blocks) {
          b->attention->gate.copy_(torch::randn_like(b->attention->gate) * 2);
          b->attention->wo->weight.add_(torch::randn_like(b->attention->wo->weight) * 0.01);
          if (b->attention->write_gate.defined()) {
            b->attention->write_gate.normal_(0, 0.1);
            b->attention->write_gate_bias.normal_(0, 1);
          }
        }
      }
      save_model(mf, m, meta);
      const Oracle o = read_oracle(oracle);
      oracle = work + "/" + c.name + ".oracle.safetensors";
      const torch::Tensor greedy = torch::tensor(greedy_of(m, o.greedy, 4), torch::kLong);
      save_safetensors(oracle, {{"input_ids", o.input_ids}, {"logits", logits_of(m, o.input_ids)}, {"greedy", greedy}});
    }
    models.emplace(c.name, load_model(ck + "/checkpoints/step_00000000/model.safetensors"));
    r = run_infini("export hf --checkpoint " + ck + " --out " + work + "/" + c.name + "_hf");
    ASSERT_EQ(r.code, 0) << r.output;
    pairs.push_back(work + "/" + c.name + "_hf=" + oracle);
  }
  // A non-empty --out is refused.
  auto r = run_infini("export hf --checkpoint " + work + "/off_ck --out " + work + "/off_hf");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(lines_of(r.output).size(), 1u) << r.output;

  const std::string verdict_file = work + "/verdict.json";
  std::string cmd = "OMP_NUM_THREADS=1 " + oracle_python() + " " + source_path("tests/reference/hf_oracle.py") +
                    " check --out " + verdict_file;
  for (const auto& p : pairs) cmd += " " + p;
  r = run_cmd(cmd);
  ASSERT_EQ(r.code, 0) << r.output;
  const json verdict = read_json(verdict_file);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const json& v = verdict.at(work + "/" + c.name + "_hf");
    std::printf("export %-6s: from_pretrained max |logit diff| %.3g, greedy equal %s\n", c.name.c_str(),
                v.at("max_abs_diff").get<double>(), v.at("greedy_equal").dump().c_str());
    EXPECT_LT(v.at("max_abs_diff").get<double>(), 1e-5);
    EXPECT_TRUE(v.at("greedy_equal").get<bool>());
    EXPECT_TRUE(v.at("missing_keys").empty()) << v.dump();
    for (const auto& k : v.at("unexpected_keys")) EXPECT_EQ(k.get<std::string>().rfind("infini.", 0), 0u) << k;
  }

  // HF -> infini -> HF: the HF tensors are identical (memory off: nothing else either).
  for (const auto& c : cases) {
    if (c.random_gates) continue;
    SCOPED_TRACE(c.name);
    SafeTensors a = load_safetensors(dir + "/" + c.src + "/model.safetensors");
    SafeTensors b = load_safetensors(work + "/" + c.name + "_hf/model.safetensors");
    size_t extra = 0;
    for (const auto& [n, t] : b.tensors) {
      if (n.rfind("infini.", 0) == 0) {
        ++extra;
        EXPECT_NE(n.find(".attention.gate"), std::string::npos) << n;  // gate 0 folds exactly: no wo kept
        continue;
      }
      ASSERT_TRUE(a.tensors.count(n)) << n;
      EXPECT_TRUE(torch::equal(t, a.tensors.at(n))) << n;
    }
    EXPECT_EQ(b.tensors.size() - extra, a.tensors.size());
    EXPECT_EQ(extra, c.memory ? 2u : 0u);
  }

  // export -> convert: the same infini model, config and every parameter bit for bit.
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    HfFolder f = read_hf_folder(work + "/" + c.name + "_hf");
    Decoder back = import_hf(f, {});
    Decoder& orig = models.at(c.name);
    EXPECT_EQ(model_config_to_json(back->config()), model_config_to_json(orig->config()));
    EXPECT_EQ(back->config().memory.write_gate, !c.options.empty());
    auto pb = back->named_parameters(true);
    ASSERT_EQ(pb.size(), orig->named_parameters(true).size());
    for (const auto& item : orig->named_parameters(true))
      EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
  }
}

TEST(HfExport, RefusesAScalarHead) {
  const std::string work = scratch_dir("hf_export_scalar");
  ModelConfig c;
  c.vocab_size = 32;
  c.d_model = 16;
  c.n_heads = 2;
  c.n_layers = 1;
  Decoder m(c, Head::scalar);
  const std::string ck = commit_checkpoint(work + "/run", 0, [&](const std::string& tmp) {
    save_model(tmp + "/model.safetensors", m);
    save_trainer_state(tmp, {{"step", 0}});
  });
  auto r = run_infini("export hf --checkpoint " + ck + " --out " + work + "/hf");
  EXPECT_EQ(r.code, 2) << r.output;
  ASSERT_EQ(lines_of(r.output).size(), 1u) << r.output;
  EXPECT_NE(r.output.find("scalar (reward/value) head"), std::string::npos) << r.output;
}

// init_from accepts a Hugging Face folder: the same weights `convert hf` gives, for a model of that shape.
TEST(HfInitFrom, LoadsAFolderDirectly) {
  REQUIRE_ORACLE();
  const std::string dir = oracle_dir() + "/gqa_untied";
  HfFolder f = read_hf_folder(dir);
  ModelConfig c = f.config.model;
  c.memory.enabled = true;
  c.segment_len = 16;
  Decoder m(c, Head::lm);
  init_weights_from(dir, m);
  HfImportOptions o;
  o.memory = true;
  o.segment_len = 16;
  Decoder want = import_hf(f, o);
  for (const auto& item : want->named_parameters(true))
    EXPECT_TRUE(torch::equal(item.value(), m->named_parameters(true)[item.key()])) << item.key();
  ModelConfig wrong = c;
  wrong.rope_theta = 10000.0;
  Decoder w(wrong, Head::lm);
  try {
    init_weights_from(dir, w);
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("model.rope_theta is 10000, but the Hugging Face config.json says rope_theta: 500000"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace test_hf_checkpoint
