// Tests of the config system: defaults, overrides, round trip through config.yaml, every error class.
// The CLI's exit code 2 for config errors is checked through the real binary.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "train/config/config.h"

// Everything of this file in its own namespace: the suite also builds as one unity translation unit.
namespace test_config {

using namespace infini;
namespace fs = std::filesystem;

namespace {

std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    parse_config(yaml, "cfg.yaml", overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

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
  EXPECT_EQ(c.stage, "pretrain");
  EXPECT_EQ(c.run.precision, "bf16");
  EXPECT_EQ(c.run.threads, 0);
  EXPECT_EQ(c.model.memory.update, MemoryUpdate::delta);
  EXPECT_EQ(c.model.memory.gradient, MemoryGradient::bptt);
  EXPECT_DOUBLE_EQ(c.optim.betas[1], 0.95);
  EXPECT_EQ(c.resume, "auto");
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
  EXPECT_DOUBLE_EQ(c.optim.lr, 2e-4);
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
  const std::string e = error_of("stage: pretrain\nmodel:\n  d_modle: 64\n");
  EXPECT_EQ(e, "cfg.yaml:3: unknown key model.d_modle (did you mean model.d_model?)");
  const std::string far = error_of("stage: pretrain\nbanana: 1\n");
  EXPECT_NE(far.find("cfg.yaml:2: unknown key banana (known keys: stage, run, model"), std::string::npos) << far;
}

// A key given twice used to parse silently with the first value winning.
TEST(Config, DuplicateKeyNamesBothLines) {
  EXPECT_EQ(error_of("stage: pretrain\noptim:\n  lr: 0.1\n  weight_decay: 0\n  lr: 0.2\n"),
            "cfg.yaml:5: duplicate key optim.lr (first at line 3; give each key once)");
  EXPECT_EQ(error_of("stage: pretrain\nstage: sft\n"), "cfg.yaml:2: duplicate key stage (first at line 1; give each key once)");
  EXPECT_EQ(error_of("stage: pretrain\nrun: {seed: 1, seed: 2}\n"),
            "cfg.yaml:2: duplicate key run.seed (first at line 2; give each key once)");
  EXPECT_EQ(error_of("stage: pretrain\noptim: {lr: 0.1}\nschedule: {warmup_steps: 3}\n"), "");  // same names apart
}

TEST(Config, UnknownOverrideKeyNamesTheOverride) {
  const std::string e = error_of("stage: pretrain\n", {"optim.lrr=0.1"});
  EXPECT_EQ(e, "override 'optim.lrr=0.1': unknown key optim.lrr (did you mean optim.lr?)");
  EXPECT_EQ(error_of("stage: pretrain\n", {"noequals"}), "override 'noequals': expected key.path=value");
}

TEST(Config, WrongTypeNamesLineKeyAndValue) {
  EXPECT_EQ(error_of("stage: pretrain\nmodel:\n  d_model: wide\n"),
            "cfg.yaml:3: key model.d_model: expected an integer, found 'wide'");
  EXPECT_EQ(error_of("stage: pretrain\nrun: {seed: 1.5}\n"),
            "cfg.yaml:2: key run.seed: expected an integer, found '1.5'");
  EXPECT_EQ(error_of("stage: pretrain\nmodel: {memory: {enabled: maybe}}\n"),
            "cfg.yaml:2: key model.memory.enabled: expected true or false, found 'maybe'");
  EXPECT_EQ(error_of("stage: pretrain\nmodel: {memory: {update: fancy}}\n"),
            "cfg.yaml:2: key model.memory.update: expected linear or delta, found 'fancy'");
  EXPECT_EQ(error_of("stage: pretrain\nmodel: 3\n"),
            "cfg.yaml:2: key model: expected a mapping of keys, found '3'");
  EXPECT_EQ(error_of("stage: pretrain\n", {"optim.lr=fast"}),
            "override 'optim.lr=fast': key optim.lr: expected a finite number, found 'fast'");
}

TEST(Config, OutOfRangeAndInconsistentValues) {
  EXPECT_EQ(error_of("stage: pretrain\nmodel:\n  d_model: 100\n  n_heads: 3\n"),
            "cfg.yaml:3: model.d_model (100) must be divisible by model.n_heads (3)");
  EXPECT_EQ(error_of("stage: pretrain\nmodel:\n  segment_len: 0\n"),
            "cfg.yaml:3: model.segment_len must be >= 1, found 0");
  EXPECT_EQ(error_of("stage: pretrain\noptim:\n  lr: -0.1\n"), "cfg.yaml:3: optim.lr: expected >= 0, found -0.1");
  EXPECT_EQ(error_of("stage: pretrain\n", {"optim.lr=-1"}), "override 'optim.lr=-1': optim.lr: expected >= 0, found -1");
  EXPECT_EQ(error_of("stage: finetune\n"), "cfg.yaml:1: stage: expected pretrain, sft, reward or ppo, found 'finetune'");
  EXPECT_EQ(error_of("stage: pretrain\nmodel: {n_heads: 4, n_kv_heads: 3}\n"),
            "cfg.yaml:2: model.n_heads (4) must be divisible by model.n_kv_heads (3)");
  EXPECT_EQ(error_of("stage: sft\ntrain: {prefix_gradient: all}\n"),
            "cfg.yaml:2: train.prefix_gradient: expected none or writes, found 'all'");
  EXPECT_EQ(error_of("stage: sft\ntrain: {prefix_gradient: writes}\n"),
            "cfg.yaml:2: train.prefix_gradient: writes needs model.memory with enabled: true and gradient: detach, "
            "found enabled: true, gradient: bptt");
}

TEST(Config, MissingRequiredKey) {
  EXPECT_EQ(error_of("run: {seed: 1}\n"), "cfg.yaml: missing required key stage (pretrain, sft, reward or ppo)");
}

TEST(Config, YamlSyntaxErrorHasPosition) {
  const std::string e = error_of("stage: pretrain\nmodel: {d_model: 64\n");
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

TEST(Config, ShippedConfigsLoad) {
  int n = 0;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(INFINI_SOURCE_DIR) / "configs"))
    if (e.path().extension() == ".yaml") {
      ++n;
      try {
        load_config(e.path().string());
      } catch (const ConfigError& err) {
        ADD_FAILURE() << err.what();
      }
    }
  EXPECT_GE(n, 30);
}

// The tiny configs run as shipped: scripts/tiny_data.sh makes the data they name, and the four
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
  for (const char* stage : {"pretrain", "sft", "reward", "ppo"}) {
    ASSERT_EQ(sh(bin + " train " + src + "/configs/tiny/" + stage + ".yaml run.threads=1"), 0)
        << stage << "\n" << read_text_file(dir + "/log.txt");
    EXPECT_TRUE(fs::exists(dir + "/runs/tiny-" + stage + "/checkpoints/latest")) << stage;
  }
  // Again: the script keeps what is there, and finished runs are skipped.
  ASSERT_EQ(sh("OUT=" + dir + "/data/work/tiny INFINI=" + bin + " bash " + src + "/scripts/tiny_data.sh"), 0);
  EXPECT_NE(read_text_file(dir + "/log.txt").find("tiny data: present in"), std::string::npos);
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
