// Tests of the config system: defaults, overrides, round trip through config.yaml, every error class.
// The CLI's exit code 2 for config errors is checked through the real binary.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "core/error.h"
#include "support/build_once.h"
#include "train/config/config.h"

// Everything of this file in its own namespace: the suite also builds as one unity translation unit.
namespace test_config {

using namespace infini;
using infini::test::config_error_of;
namespace fs = std::filesystem;

namespace {


std::string read_text_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string tmp_dir(const std::string& name) {
  const char* base = std::getenv("INFINI_TEST_TMP");
  fs::path p = fs::path(base ? base : "/tmp") / ("config_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

}  // namespace

TEST(Config, DefaultsWhenOnlyStageIsGiven) {
  Config c = parse_config("stage: pretrain\n", "cfg.yaml");
  EXPECT_EQ(c.stage, Stage::pretrain);
  EXPECT_EQ(c.run.precision, Precision::auto_);
  EXPECT_EQ(c.run.threads, 0);
  EXPECT_EQ(c.model.memory.update, MemoryUpdate::delta);
  EXPECT_EQ(c.model.memory.gradient, MemoryGradient::bptt);
  EXPECT_DOUBLE_EQ(c.optim.betas[1], 0.95);
  EXPECT_EQ(c.resume, Resume::auto_);
  // SwiGLU width: 8/3 * 64 = 170.67 -> 192 (next multiple of 64).
  EXPECT_EQ(c.model.ffn_dim(), 192);
}

TEST(Config, ReadsNestedValuesAndOverrides) {
  const std::string yaml =
      "stage: sft\n"
      "model: {d_model: 128, n_heads: 8, memory: {update: linear, gradient: detach}}\n"
      "optim: {lr: 1.0e-3, betas: [0.8, 0.99]}\n"
      "data: {train: [a.jsonl, b.jsonl], format: sft}\n";
  Config c = parse_config(yaml, "cfg.yaml",
                          {"model.n_layers=6", "optim.lr=2e-4", "data.train=[x.jsonl]",
                           "model.memory.enabled=false", "run.dir=runs/x"});
  EXPECT_EQ(c.model.d_model, 128);
  EXPECT_EQ(c.model.n_layers, 6);
  EXPECT_EQ(c.model.memory.update, MemoryUpdate::linear);
  EXPECT_EQ(c.model.memory.gradient, MemoryGradient::detach);
  EXPECT_FALSE(c.model.memory.enabled);
  EXPECT_FALSE(c.model.memory.write_gate);
  EXPECT_DOUBLE_EQ(c.optim.lr, 2e-4);
  Config g = parse_config(yaml, "cfg.yaml",
                          {"model.memory.update=unit_delta", "model.memory.write_gate=true",
                           "model.memory.write_gate_bias=-1.5"});
  EXPECT_EQ(g.model.memory.update, MemoryUpdate::unit_delta);
  EXPECT_TRUE(g.model.memory.write_gate);
  EXPECT_DOUBLE_EQ(g.model.memory.write_gate_bias, -1.5);
  EXPECT_DOUBLE_EQ(c.optim.betas[0], 0.8);
  ASSERT_EQ(c.data.train.size(), 1u);
  EXPECT_EQ(c.data.train[0], "x.jsonl");
  EXPECT_EQ(c.run.dir, "runs/x");
}

TEST(Config, RoundTripThroughYamlIsIdentical) {
  Config c = parse_config("stage: reward\ndata: {format: preference}\n", "cfg.yaml",
                          {"optim.lr=1.2345678901234e-4", "model.norm_eps=1e-6", "data.val=[v.jsonl]",
                           "init_from=runs/sft", "data.chat.turn_end=\"\\n\"", "tokenizer.model=''"});
  const std::string text = config_to_yaml(c);
  Config back = parse_config(text, "config.yaml");
  EXPECT_TRUE(configs_equal(c, back)) << text;
  EXPECT_EQ(back.data.chat.turn_end, "\n");
  EXPECT_DOUBLE_EQ(back.optim.lr, 1.2345678901234e-4);
  // And the text carries a comment per field.
  EXPECT_NE(text.find("# global seed"), std::string::npos);
  // A changed value is noticed by the comparison.
  back.model.n_heads = 1;
  EXPECT_FALSE(configs_equal(c, back));
}

TEST(Config, UnknownKeyNamesLineAndSuggests) {
  const std::string e = config_error_of("stage: pretrain\nmodel:\n  d_modle: 64\n");
  EXPECT_EQ(e, "cfg.yaml:3: unknown key model.d_modle (did you mean model.d_model?)");
  const std::string far = config_error_of("stage: pretrain\nbanana: 1\n");
  EXPECT_NE(far.find("cfg.yaml:2: unknown key banana (known keys: stage, run, model"), std::string::npos) << far;
}

// A key given twice used to parse silently with the first value winning.
TEST(Config, DuplicateKeyNamesBothLines) {
  EXPECT_EQ(config_error_of("stage: pretrain\noptim:\n  lr: 0.1\n  weight_decay: 0\n  lr: 0.2\n"),
            "cfg.yaml:5: duplicate key optim.lr (first at line 3; give each key once)");
  EXPECT_EQ(config_error_of("stage: pretrain\nstage: sft\n"), "cfg.yaml:2: duplicate key stage (first at line 1; give each key once)");
  EXPECT_EQ(config_error_of("stage: pretrain\nrun: {seed: 1, seed: 2}\n"),
            "cfg.yaml:2: duplicate key run.seed (first at line 2; give each key once)");
  EXPECT_EQ(config_error_of("stage: pretrain\noptim: {lr: 0.1}\nschedule: {warmup_steps: 3}\n"), "");  // same names apart
}

TEST(Config, UnknownOverrideKeyNamesTheOverride) {
  const std::string e = config_error_of("stage: pretrain\n", {"optim.lrr=0.1"});
  EXPECT_EQ(e, "override 'optim.lrr=0.1': unknown key optim.lrr (did you mean optim.lr?)");
  EXPECT_EQ(config_error_of("stage: pretrain\n", {"noequals"}), "override 'noequals': expected key.path=value");
}

TEST(Config, WrongTypeNamesLineKeyAndValue) {
  EXPECT_EQ(config_error_of("stage: pretrain\nmodel:\n  d_model: wide\n"),
            "cfg.yaml:3: key model.d_model: expected an integer, found 'wide'");
  EXPECT_EQ(config_error_of("stage: pretrain\nrun: {seed: 1.5}\n"),
            "cfg.yaml:2: key run.seed: expected an integer, found '1.5'");
  EXPECT_EQ(config_error_of("stage: pretrain\nmodel: {memory: {enabled: maybe}}\n"),
            "cfg.yaml:2: key model.memory.enabled: expected true or false, found 'maybe'");
  EXPECT_EQ(config_error_of("stage: pretrain\nmodel: {memory: {update: fancy}}\n"),
            "cfg.yaml:2: key model.memory.update: expected linear, delta or unit_delta, found 'fancy'");
  EXPECT_EQ(config_error_of("stage: pretrain\nmodel: 3\n"),
            "cfg.yaml:2: key model: expected a mapping of keys, found '3'");
  EXPECT_EQ(config_error_of("stage: pretrain\n", {"optim.lr=fast"}),
            "override 'optim.lr=fast': key optim.lr: expected a finite number, found 'fast'");
}

TEST(Config, OutOfRangeAndInconsistentValues) {
  EXPECT_EQ(config_error_of("stage: pretrain\nmodel:\n  d_model: 100\n  n_heads: 3\n"),
            "cfg.yaml:3: model.d_model (100) must be divisible by model.n_heads (3)");
  EXPECT_EQ(config_error_of("stage: pretrain\nmodel:\n  segment_len: 0\n"),
            "cfg.yaml:3: model.segment_len must be >= 1, found 0");
  EXPECT_EQ(config_error_of("stage: pretrain\noptim:\n  lr: -0.1\n"), "cfg.yaml:3: optim.lr: expected >= 0, found -0.1");
  EXPECT_EQ(config_error_of("stage: pretrain\n", {"optim.lr=-1"}), "override 'optim.lr=-1': optim.lr: expected >= 0, found -1");
  EXPECT_EQ(config_error_of("stage: finetune\n"), "cfg.yaml:1: stage: expected pretrain, sft, reward, ppo or dpo, found 'finetune'");
  EXPECT_EQ(config_error_of("stage: pretrain\nmodel: {n_heads: 4, n_kv_heads: 3}\n"),
            "cfg.yaml:2: model.n_heads (4) must be divisible by model.n_kv_heads (3)");
  EXPECT_EQ(config_error_of("stage: sft\ntrain: {prefix_gradient: all}\n"),
            "cfg.yaml:2: train.prefix_gradient: expected none or writes, found 'all'");
  EXPECT_EQ(config_error_of("stage: sft\ntrain: {prefix_gradient: writes}\n"),
            "cfg.yaml:2: train.prefix_gradient: writes needs model.memory with enabled: true and gradient: detach, "
            "found enabled: true, gradient: bptt");
  // PPO's log-probabilities are of the whole softmax: a truncated sampling distribution is refused.
  EXPECT_EQ(config_error_of("stage: ppo\nppo:\n  top_k: 40\n"),
            "cfg.yaml:3: ppo.top_k: expected 0 (PPO's ratios and KL are computed over the whole vocabulary; sampling "
            "from the top k would bias them), found 40");
  EXPECT_EQ(config_error_of("stage: ppo\n", {"ppo.top_p=0.9"}),
            "override 'ppo.top_p=0.9': ppo.top_p: expected 1 (PPO's ratios and KL are computed over the whole "
            "vocabulary; nucleus sampling would bias them), found 0.9");
  EXPECT_EQ(config_error_of("stage: sft\ndata: {max_record_bytes: 0}\n"),
            "cfg.yaml:2: data.max_record_bytes: expected >= 1, found 0");
}

TEST(Config, MissingRequiredKey) {
  EXPECT_EQ(config_error_of("run: {seed: 1}\n"), "cfg.yaml: missing required key stage (pretrain, sft, reward, ppo or dpo)");
}

TEST(Config, YamlSyntaxErrorHasPosition) {
  const std::string e = config_error_of("stage: pretrain\nmodel: {d_model: 64\n");
  EXPECT_EQ(e.rfind("cfg.yaml:", 0), 0u) << e;
  EXPECT_NE(e.find("YAML syntax error"), std::string::npos) << e;
}

TEST(Config, UnreadableFile) {
  try {
    load_config("/nonexistent/cfg.yaml");
    FAIL() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/cfg.yaml: cannot read the config file (missing or unreadable)");
  }
}

// Whether the file or one of its bases gives `stage:` (a file without is a shared base).
bool chain_gives_stage(fs::path path) {
  for (int depth = 0; depth < 16; ++depth) {
    const YAML::Node root = YAML::LoadFile(path.string());
    if (root["stage"].IsDefined()) return true;
    if (!root["base"].IsDefined()) return false;
    path = path.parent_path() / root["base"].as<std::string>();
  }
  return false;
}

// Every stage config under configs/ loads; a file whose chain gives no `stage:` is a shared base,
// and some shipped config must name it (a base nobody uses is a leftover).
TEST(Config, ShippedConfigsLoad) {
  int n = 0;
  std::set<std::string> bases, named;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(INFINI_SOURCE_DIR) / "configs"))
    if (e.path().extension() == ".yaml") {
      const YAML::Node root = YAML::LoadFile(e.path().string());
      if (root["base"].IsDefined())
        named.insert(fs::weakly_canonical(e.path().parent_path() / root["base"].as<std::string>()).string());
      if (!chain_gives_stage(e.path())) {
        bases.insert(fs::weakly_canonical(e.path()).string());
        continue;
      }
      ++n;
      try {
        load_config(e.path().string());
      } catch (const ConfigError& err) {
        ADD_FAILURE() << err.what();
      }
    }
  EXPECT_GE(n, 30);
  for (const auto& b : bases) EXPECT_TRUE(named.count(b)) << b << " is named as base by no shipped config";
}

// ---- base: FILE ------------------------------------------------------------------------------

// Writes `text` to dir/name (folders made) and returns the path.
std::string put(const std::string& dir, const std::string& name, const std::string& text) {
  const fs::path p = fs::path(dir) / name;
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
  return p.string();
}

std::string load_error(const std::string& path, const std::vector<std::string>& overrides = {}) {
  try {
    load_config(path, overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, BaseChainMergesMapsKeyByKeyAndReplacesLists) {
  const std::string dir = tmp_dir("base_chain");
  put(dir, "shared/model.yaml",
      "model: {d_model: 128, n_heads: 8, memory: {update: linear}}\n"
      "data: {train: [a.jsonl, b.jsonl], seq_len: 64}\n"
      "optim: {betas: [0.8, 0.9]}\n");
  put(dir, "stages/sft_common.yaml", "base: ../shared/model.yaml\nstage: sft\ndata: {format: sft}\noptim: {lr: 1.0e-3}\n");
  const std::string top = put(dir, "stages/sft.yaml",
                              "base: sft_common.yaml\nmodel: {n_heads: 4, memory: {gradient: detach}}\n"
                              "data: {train: [c.jsonl]}\noptim: {lr: 2.0e-3}\n");
  const Config c = load_config(top, {"model.n_layers=3"});
  EXPECT_EQ(c.stage, Stage::sft);                               // from the middle file
  EXPECT_EQ(c.model.d_model, 128);                              // from the deepest base
  EXPECT_EQ(c.model.n_heads, 4);                                // the file overrides its bases
  EXPECT_EQ(c.model.n_layers, 3);                               // and the command line everything
  EXPECT_EQ(c.model.memory.update, MemoryUpdate::linear);       // nested maps merged key by key
  EXPECT_EQ(c.model.memory.gradient, MemoryGradient::detach);
  ASSERT_EQ(c.data.train.size(), 1u);                           // lists replaced whole
  EXPECT_EQ(c.data.train[0], "c.jsonl");
  EXPECT_EQ(c.data.seq_len, 64);
  EXPECT_EQ(c.data.format, "sft");
  EXPECT_DOUBLE_EQ(c.optim.lr, 2e-3);
  EXPECT_DOUBLE_EQ(c.optim.betas[0], 0.8);
  // The resolved config carries no base: config.yaml reads back alone to the same Config.
  const std::string text = config_to_yaml(c);
  EXPECT_EQ(text.find("\nbase:"), std::string::npos) << text;
  EXPECT_TRUE(configs_equal(c, parse_config(text, "config.yaml")));
}

TEST(Config, BaseCycleIsRefusedNamingTheFiles) {
  const std::string dir = tmp_dir("base_cycle");
  const std::string a = put(dir, "a.yaml", "stage: pretrain\nbase: b.yaml\n");
  const std::string b = put(dir, "b.yaml", "base: a.yaml\n");
  EXPECT_EQ(load_error(a), b + ":1: base a.yaml: the bases form a cycle (" + a + " -> " + b + " -> " + a +
                               "); a file cannot be its own base");
  const std::string self = put(dir, "self.yaml", "stage: pretrain\nbase: ./self.yaml\n");
  EXPECT_NE(load_error(self).find("cycle"), std::string::npos) << load_error(self);
}

TEST(Config, BaseErrorsNameTheFileAndLineTheyAreIn) {
  const std::string dir = tmp_dir("base_errors");
  const std::string top = put(dir, "top.yaml", "stage: pretrain\nbase: sub/base.yaml\n");
  const std::string base = dir + "/sub/base.yaml";
  put(dir, "sub/base.yaml", "model:\n  d_modle: 64\n");
  EXPECT_EQ(load_error(top), base + ":2: unknown key model.d_modle (did you mean model.d_model?)");
  put(dir, "sub/base.yaml", "optim:\n  lr: 0.1\n  lr: 0.2\n");
  EXPECT_EQ(load_error(top), base + ":3: duplicate key optim.lr (first at line 2; give each key once)");
  put(dir, "sub/base.yaml", "run:\n  seed: many\n");
  EXPECT_EQ(load_error(top), base + ":2: key run.seed: expected an integer, found 'many'");
  put(dir, "sub/base.yaml", "train:\n  on_nonfinite: halt\n");
  EXPECT_EQ(load_error(top), base + ":2: train.on_nonfinite: expected stop or skip, found 'halt'");
  // A bad value set in the base is reported there; the same key in the file wins, and is reported there.
  put(dir, "sub/base.yaml", "\noptim: {lr: -1}\n");
  EXPECT_EQ(load_error(top), base + ":2: optim.lr: expected >= 0, found -1");
  const std::string fixed = put(dir, "fixed.yaml", "stage: pretrain\nbase: sub/base.yaml\noptim: {lr: 0.1}\n");
  EXPECT_EQ(load_error(fixed), "");
  const std::string worse = put(dir, "worse.yaml", "stage: pretrain\nbase: sub/base.yaml\noptim: {lr: -2}\n");
  EXPECT_EQ(load_error(worse), worse + ":3: optim.lr: expected >= 0, found -2");
  EXPECT_EQ(load_error(top, {"optim.lr=-3"}), "override 'optim.lr=-3': optim.lr: expected >= 0, found -3");
  // A missing base, a base that is not a file name, and base given as an override.
  const std::string missing = put(dir, "missing.yaml", "stage: pretrain\n\nbase: nope.yaml\n");
  EXPECT_EQ(load_error(missing), missing + ":3: base nope.yaml: cannot read " + dir +
                                     "/nope.yaml (missing or unreadable; bases are relative to the file that names them)");
  const std::string list = put(dir, "list.yaml", "stage: pretrain\nbase: [a.yaml]\n");
  EXPECT_EQ(load_error(list), list + ":2: key base: expected a config file name, found a list");
  EXPECT_EQ(load_error(fixed, {"base=other.yaml"}), "override 'base=other.yaml': base can only be given in a config file");
  // stage may come from a base; given nowhere, it is still required.
  const std::string nostage = put(dir, "nostage.yaml", "base: fixed_base.yaml\n");
  put(dir, "fixed_base.yaml", "run: {seed: 1}\n");
  EXPECT_EQ(load_error(nostage), nostage + ": missing required key stage (pretrain, sft, reward, ppo or dpo)");
}

TEST(Config, EnumKeysRefuseOtherSpellingsWithFileLineAndKey) {
  EXPECT_EQ(config_error_of("stage: pretrain\nrun:\n  precision: fp16\n"),
            "cfg.yaml:3: run.precision: expected fp32, bf16 or auto, found 'fp16'");
  EXPECT_EQ(config_error_of("stage: pretrain\nschedule: {decay: step}\n"),
            "cfg.yaml:2: schedule.decay: expected cosine, linear or constant, found 'step'");
  EXPECT_EQ(config_error_of("stage: pretrain\nrun: {log_level: loud}\n"),
            "cfg.yaml:2: run.log_level: expected trace, debug, info, warn or error, found 'loud'");
  EXPECT_EQ(config_error_of("stage: ppo\nppo: {reward_source: [model]}\n"),
            "cfg.yaml:2: ppo.reward_source: expected model, rule or sum, found a list");
  EXPECT_EQ(config_error_of("stage: pretrain\nresume: always\n"), "cfg.yaml:2: resume: expected auto or never, found 'always'");
  EXPECT_EQ(config_error_of("stage: pretrain\n", {"ppo.advantage=ppo"}),
            "override 'ppo.advantage=ppo': ppo.advantage: expected gae, rloo or grpo, found 'ppo'");
  EXPECT_EQ(config_error_of("stage: pretrain\n", {"ppo.rule=fuzzy"}),
            "override 'ppo.rule=fuzzy': ppo.rule: expected exact or numeric, found 'fuzzy'");
  EXPECT_EQ(config_error_of("stage: pretrain\n", {"run.device=tpu"}),
            "override 'run.device=tpu': run.device: expected cpu or cuda, found 'tpu'");
  const Config c = parse_config("stage: ppo\nppo: {reward_source: rule, advantage: rloo, samples_per_prompt: 2}\n"
                                "data: {format: prompts}\nschedule: {decay: linear}\nresume: never\n", "cfg.yaml",
                                {"train.on_nonfinite=skip", "run.precision=fp32"});
  EXPECT_EQ(c.ppo.reward_source, RewardSource::rule);
  EXPECT_EQ(c.ppo.advantage, Advantage::rloo);
  EXPECT_EQ(c.schedule.decay, Decay::linear);
  EXPECT_EQ(c.resume, Resume::never);
  EXPECT_EQ(c.train.on_nonfinite, OnNonfinite::skip);
  EXPECT_EQ(c.run.precision, Precision::fp32);
  // Written by name, and read back to the same values.
  const std::string text = config_to_yaml(c);
  EXPECT_NE(text.find("resume: never"), std::string::npos) << text;
  EXPECT_NE(text.find("advantage: rloo"), std::string::npos) << text;
  EXPECT_TRUE(configs_equal(c, parse_config(text, "config.yaml")));
}

// Shipped configs written with `base:` resolve to exactly the Config their flat versions gave
// (tests/golden/configs/: the resolved YAML of those files before they were split into bases, as
// `infini train CONFIG --print-config` prints it; a changed field comment in config.h changes them too).
TEST(Config, ShippedConfigsWithBasesResolveAsTheirFlatVersions) {
  const fs::path src = INFINI_SOURCE_DIR;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"configs/demo/ppo.yaml", "demo_ppo.yaml"},
      {"configs/passkey/retrieval.yaml", "passkey_retrieval.yaml"},
      {"configs/passkey/sft_16k_d1b.yaml", "passkey_sft_16k_d1b.yaml"},
      {"configs/passkey/sft_256k_detach.yaml", "passkey_sft_256k_detach.yaml"},
      {"configs/rlhf/reward_deep.yaml", "rlhf_reward_deep.yaml"},
      {"configs/rlhf/ppo_rloo.yaml", "rlhf_ppo_rloo.yaml"},
      {"configs/experiments/passkey/sft_1m_detach.yaml", "experiments_passkey_sft_1m_detach.yaml"},
      {"configs/experiments/passkey/sft_128k_detach.yaml", "experiments_passkey_sft_128k_detach.yaml"}};
  for (const auto& [config, golden] : cases) {
    const std::string flat = read_text_file((src / "tests/golden/configs" / golden).string());
    ASSERT_FALSE(flat.empty()) << golden;
    const Config got = load_config((src / config).string());
    EXPECT_TRUE(configs_equal(got, parse_config(flat, golden))) << config;
    EXPECT_EQ(config_to_yaml(got), flat) << config;  // config.yaml byte for byte
  }
}

// The tiny configs run as shipped: scripts/tiny_data.sh makes the data they name, and the
// stages chain through their relative paths (run here from a scratch folder as the working directory).
TEST(Config, TinyConfigsRunAsShippedOnTheirScriptData) {
  const std::string dir = tmp_dir("tiny_as_shipped");
  const std::string src = INFINI_SOURCE_DIR, bin = INFINI_BINARY;
  auto sh = [&](const std::string& cmd) {
    const int rc = std::system(("cd " + dir + " && " + cmd + " >>" + dir + "/log.txt 2>&1").c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
  };
  ASSERT_EQ(sh("OUT=" + dir + "/data/work/tiny INFINI=" + bin + " bash " + src + "/scripts/tiny_data.sh"), 0)
      << read_text_file(dir + "/log.txt");
  for (const char* stage : {"pretrain", "sft", "reward", "ppo", "dpo", "passkey"}) {
    ASSERT_EQ(sh(bin + " train " + src + "/configs/tiny/" + stage + ".yaml run.threads=1"), 0)
        << stage << "\n" << read_text_file(dir + "/log.txt");
    EXPECT_TRUE(fs::exists(dir + "/runs/tiny-" + stage + "/checkpoints/latest")) << stage;
  }
  // Again: the script keeps what is there, and finished runs are skipped.
  ASSERT_EQ(sh("OUT=" + dir + "/data/work/tiny INFINI=" + bin + " bash " + src + "/scripts/tiny_data.sh"), 0);
  EXPECT_NE(read_text_file(dir + "/log.txt").find("tiny data: present in"), std::string::npos);

  // The main job's summary (scripts/demo_summary.py, as scripts/run.sh calls it) over these runs
  // prints the figures they hold: perplexity with and without memory, reward accuracy, true
  // accuracy before and after PPO, passkey retrieval with and without memory, the stage times.
  ASSERT_EQ(sh(bin + " eval ppl --checkpoint runs/tiny-pretrain --text data/work/tiny/corpus.txt --max-tokens 3000 "
                     "--compare --threads 1 --out runs/tiny-pretrain/eval_ppl.json"), 0);
  ASSERT_EQ(sh(bin + " eval reward --checkpoint runs/tiny-reward --data data/work/tiny/pref_val.jsonl --threads 1 "
                     "--out runs/tiny-reward/eval_reward_tasks.json"), 0);
  ASSERT_EQ(sh(bin + " eval accuracy --checkpoint runs/tiny-sft --data data/work/tiny/prompts_val.jsonl --max-prompts 16 "
                     "--seq-len 64 --threads 1 --out runs/tiny-sft/eval_accuracy.json"), 0);
  for (const std::string mode : {"", " --no-memory"})
    ASSERT_EQ(sh(bin + " eval passkey --checkpoint runs/tiny-passkey --chat --digits 1 --lengths 256,512 --depths 0,1 "
                       "--trials 1 --threads 1" + mode + " --out runs/tiny-passkey/passkey" +
                 (mode.empty() ? "" : "_no_memory") + ".json"),
              0);
  { std::ofstream(dir + "/times.tsv") << "pretrain\t75\nPPO\t9\n"; }
  ASSERT_EQ(std::system(("cd " + dir + " && python3 " + src + "/scripts/demo_summary.py --runs runs/tiny- times.tsv > " +
                         dir + "/summary.txt 2>&1").c_str()), 0) << read_text_file(dir + "/summary.txt");
  const std::string summary = read_text_file(dir + "/summary.txt");
  auto has = [&](const std::string& line) {
    EXPECT_NE(summary.find(line), std::string::npos) << "missing: '" << line << "' in\n" << summary;
  };
  const YAML::Node ppl = YAML::LoadFile(dir + "/runs/tiny-pretrain/eval_ppl.json");  // JSON is YAML
  char buf[256];
  std::snprintf(buf, sizeof buf, "  all        %12.1f %13.1f", ppl["with_memory"]["ppl"].as<double>(),
                ppl["no_memory"]["ppl"].as<double>());
  has(buf);
  std::snprintf(buf, sizeof buf, "  both       %.3f (50 pairs",
                YAML::LoadFile(dir + "/runs/tiny-reward/eval_reward_tasks.json")["accuracy"].as<double>());
  has(buf);
  std::vector<double> acc;  // the PPO run's evaluations: before the first rollout ... after the last
  std::ifstream metrics(dir + "/runs/tiny-ppo/metrics.jsonl");
  for (std::string line; std::getline(metrics, line);) {
    const YAML::Node r = YAML::Load(line);
    if (r["kind"].as<std::string>() == "eval") acc.push_back(r["true_accuracy"].as<double>());
  }
  ASSERT_GE(acc.size(), 2u);
  std::snprintf(buf, sizeof buf, "  both       %.3f -> %.3f", acc.front(), acc.back());
  has(buf);
  // The finished SFT model's accuracy beside PPO's start (here the same model: tiny PPO starts
  // from the last SFT step), and where PPO started.
  const double sft_acc = YAML::LoadFile(dir + "/runs/tiny-sft/eval_accuracy.json")["accuracy"].as<double>();
  std::snprintf(buf, sizeof buf, "  all        %.3f (+- ", acc.front());
  has(buf);
  std::snprintf(buf, sizeof buf, "%15.3f\n", sft_acc);
  has(buf);
  has("(PPO starts from runs/tiny-sft)");
  // Passkey: accuracy and mean log p(key) per length and over all, with the memory and reset.
  auto passkey_row = [&](const std::string& name, const std::string& segments, int64_t length) {
    double v[4];
    int k = 0;
    for (const char* file : {"passkey.json", "passkey_no_memory.json"}) {
      double right = 0, logp = 0, n = 0;
      for (const auto& c : YAML::LoadFile(dir + "/runs/tiny-passkey/" + file)["cases"]) {
        if (length && c["length"].as<int64_t>() != length) continue;
        right += c["correct"].as<bool>() ? 1 : 0;
        logp += c["key_logprob"].as<double>();
        n += 1;
      }
      v[k++] = right / n;
      v[k++] = logp / n;
    }
    std::snprintf(buf, sizeof buf, "  %8s %9s %12.3f %11.2f %13.3f %11.2f\n", name.c_str(), segments.c_str(), v[0], v[1],
                  v[2], v[3]);
    has(buf);
  };
  passkey_row("256", "8", 256);  // segments of 32
  passkey_row("512", "16", 512);
  passkey_row("all", "", 0);
  has("pretrain                                       1 min 15 s");
  has("total                                          1 min 24 s");
}

// Usage errors exit 2 (CLI11's own codes were 105-109), as configuration errors do; no command at
// all is a usage error too; --help is not.
TEST(Config, CliUsageErrorsExitWithCode2) {
  const std::string bin = INFINI_BINARY;
  auto code = [&](const std::string& args) {
    const int rc = std::system((bin + " " + args + " >/dev/null 2>&1").c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
  };
  EXPECT_EQ(code(""), 2);
  EXPECT_EQ(code("train"), 2);                              // missing CONFIG
  EXPECT_EQ(code("eval ppl --checkpoint x --bogus 1"), 2);  // unknown flag
  EXPECT_EQ(code("eval passkey --checkpoint x --lengths 1k --trials 0"), 2);  // out of range
  EXPECT_EQ(code("frobnicate"), 2);
  EXPECT_EQ(code("--help"), 0);
  EXPECT_EQ(code("eval ppl --help"), 0);
}

TEST(Config, CliExitsWithCode2OnConfigError) {
  const std::string dir = tmp_dir("cli");
  const std::string path = dir + "/bad.yaml";
  std::ofstream(path) << "stage: pretrain\nmodel:\n  d_modle: 64\n";
  const std::string cmd = std::string(INFINI_BINARY) + " train " + path + " 2>" + dir + "/err.txt";
  int rc = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(rc));
  EXPECT_EQ(WEXITSTATUS(rc), 2);
  std::ifstream err(dir + "/err.txt");
  std::string line;
  std::getline(err, line);
  EXPECT_EQ(line, "error: " + path + ":3: unknown key model.d_modle (did you mean model.d_model?)");
}
}  // namespace test_config
