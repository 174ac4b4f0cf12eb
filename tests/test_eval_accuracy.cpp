// `infini eval accuracy` through the CLI on a tiny SFT model: it gives stage ppo's own held-out
// figure (the eval record before the first rollout) for the same policy and prompts, an exact 0.5
// on a file built so that half its answers are the model's greedy response (from `infini generate`),
// the same sums from two ranks under a launcher, and one clear error line for bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "data/tokenizer.h"
#include "support/run_util.h"
#include "support/tiny_rlhf.h"
#include "train/run/metrics_log.h"

namespace infini::test {
// Named, not anonymous: the suite also builds as one unity translation unit.
namespace test_eval_accuracy {

namespace fs = std::filesystem;

std::vector<nlohmann::json> jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(nlohmann::json::parse(l));
  return out;
}

void write_jsonl(const std::string& path, const std::vector<nlohmann::json>& records) {
  std::ofstream out(path);
  for (const auto& r : records) out << r.dump() << "\n";
}

std::string accuracy_args(const TinyRlhf& f, const std::string& data_flags, const std::string& out) {
  return "eval accuracy --checkpoint " + f.sft_run + " " + data_flags +
         " --max-new-tokens 8 --seq-len 64 --batch-size 32 --threads 1 --out " + out;
}

// The model's greedy response to `prompt` through `infini generate` (the same chat rendering as
// the prompts format: BOS, "### User:\n", the prompt, "\n\n### Assistant:\n"), decoded without EOS.
std::string greedy_response(const TinyRlhf& f, const Tokenizer& tok, const std::string& prompt) {
  std::vector<int> ids = {tok.bos_id()};
  for (int id : tok.encode("### User:\n" + prompt + "\n\n### Assistant:\n")) ids.push_back(id);
  std::string id_text;
  for (int id : ids) id_text += (id_text.empty() ? "" : " ") + std::to_string(id);
  auto r = run_infini("generate --checkpoint " + f.sft_run + " --prompt-ids \"" + id_text +
                      "\" --temperature 0 --max-new-tokens 8 --eos " + std::to_string(tok.eos_id()) +
                      " --print-ids --threads 1");
  EXPECT_EQ(r.code, 0) << r.output;
  // The last line: the prompt's ids, then the generated ones (EOS included when produced).
  std::string last;
  std::istringstream lines(r.output);
  for (std::string l; std::getline(lines, l);)
    if (!l.empty()) last = l;
  std::istringstream in(last);
  std::vector<int> all;
  for (long long v; in >> v;) all.push_back(static_cast<int>(v));
  EXPECT_GT(all.size(), ids.size()) << r.output;
  std::vector<int> response;
  for (size_t i = ids.size(); i < all.size() && all[i] != tok.eos_id(); ++i) response.push_back(all[i]);
  return tok.decode(response);
}

TEST(EvalAccuracy, EqualsThePpoStagesFirstEvaluation) {
  const TinyRlhf& f = tiny_rlhf();
  const std::string dir = scratch_dir("eval_accuracy_vs_ppo");
  // Two files, as two tasks: the held-out prompts, and the same prompts with their answers
  // replaced by the model's own greedy responses where it gets them from generate (so that file's
  // accuracy is not 0 by chance of a tiny model); both figures must agree per file and overall.
  const Tokenizer tok = Tokenizer::load(f.data.tokenizer);
  std::vector<nlohmann::json> own = jsonl(f.prompts_val);
  ASSERT_EQ(own.size(), 32u);
  for (size_t i = 0; i < 6; ++i) {
    const std::string resp = greedy_response(f, tok, own[i]["prompt"].get<std::string>());
    if (!resp.empty()) own[i]["answer"] = resp;
  }
  const std::string own_file = dir + "/own_answers.jsonl";
  write_jsonl(own_file, own);
  const std::string run = dir + "/ppo";
  auto r = run_infini("train " + source_path("configs/tiny/ppo.yaml") + " tokenizer.model=" + f.data.tokenizer +
                      " run.threads=1 run.dir=" + run + " data.train=[" + f.prompts + "] data.val=[" + f.prompts_val +
                      "," + own_file + "] init_from=" + f.sft_run +
                      " ppo.reward_source=rule ppo.reward_model= train.max_steps=1 ppo.eval_prompts=32 "
                      "ppo.eval_every=0 checkpoint.every=0");
  ASSERT_EQ(r.code, 0) << r.output;
  nlohmann::json first;
  for (auto& rec : read_metrics(run + "/metrics.jsonl"))
    if (rec.value("kind", "") == "eval") {
      first = rec;
      break;
    }
  ASSERT_FALSE(first.is_null()) << r.output;
  ASSERT_EQ(first["step"].get<int64_t>(), 0);

  const std::string out = dir + "/accuracy.json";
  r = run_infini(accuracy_args(f, "--data " + f.prompts_val + " --data " + own_file, out));
  ASSERT_EQ(r.code, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(read_text(out));
  EXPECT_EQ(j["prompts"].get<int64_t>(), 64);
  EXPECT_DOUBLE_EQ(j["accuracy"].get<double>(), first["true_accuracy"].get<double>()) << r.output;
  ASSERT_EQ(j["files"].size(), 2u);
  for (const auto& file : j["files"]) {
    const std::string name = file["name"].get<std::string>();
    ASSERT_TRUE(first["true_accuracy_per_file"].contains(name)) << first.dump();
    EXPECT_DOUBLE_EQ(file["accuracy"].get<double>(), first["true_accuracy_per_file"][name].get<double>()) << name;
    EXPECT_EQ(file["prompts"].get<int64_t>(), 32);
  }
  // The printed table carries the same figure.
  char overall[64];
  std::snprintf(overall, sizeof overall, "accuracy %.4f", j["accuracy"].get<double>());
  EXPECT_NE(r.output.find(overall), std::string::npos) << r.output;
}

TEST(EvalAccuracy, HalfOfTheAnswersAreTheModelsOwnResponse) {
  // Each of 6 prompts twice: once with the model's greedy response (from `infini generate`) as its
  // answer, once with that response and one more word. Whatever the model says, exactly half are right.
  const TinyRlhf& f = tiny_rlhf();
  const std::string dir = scratch_dir("eval_accuracy_half");
  const Tokenizer tok = Tokenizer::load(f.data.tokenizer);
  std::vector<nlohmann::json> val = jsonl(f.prompts_val), half;
  for (size_t i = 0; i < 6; ++i) {
    const std::string prompt = val[i]["prompt"].get<std::string>();
    const std::string resp = greedy_response(f, tok, prompt);
    ASSERT_FALSE(resp.empty()) << "the tiny model answers '" << prompt << "' with nothing; the case needs a response";
    half.push_back({{"prompt", prompt}, {"answer", resp}});
    half.push_back({{"prompt", prompt}, {"answer", resp + " wrong"}});
  }
  const std::string file = dir + "/half.jsonl";
  write_jsonl(file, half);
  const std::string out = dir + "/accuracy.json";
  auto r = run_infini(accuracy_args(f, "--data " + file, out));
  ASSERT_EQ(r.code, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(read_text(out));
  EXPECT_EQ(j["prompts"].get<int64_t>(), 12);
  EXPECT_DOUBLE_EQ(j["correct"].get<double>(), 6.0) << r.output;
  EXPECT_DOUBLE_EQ(j["accuracy"].get<double>(), 0.5) << r.output;
  ASSERT_EQ(j["files"].size(), 1u);
  EXPECT_EQ(j["files"][0]["name"].get<std::string>(), "half");
  // --max-prompts 2: the first two records only, one right and one wrong.
  r = run_infini(accuracy_args(f, "--data " + file + " --max-prompts 2", out));
  ASSERT_EQ(r.code, 0) << r.output;
  const nlohmann::json two = nlohmann::json::parse(read_text(out));
  EXPECT_EQ(two["prompts"].get<int64_t>(), 2);
  EXPECT_DOUBLE_EQ(two["accuracy"].get<double>(), 0.5);

  // Under a launcher, batches of 5 (5, 5, 2 prompts) go to rank 0 (the first and the last, 7
  // prompts) and rank 1 (5); rank 0 reports and writes the sums, rank 1 writes nothing.
  const std::string args = std::string(INFINI_BINARY) + " eval accuracy --checkpoint " + f.sft_run + " --data " +
                           file + " --max-new-tokens 8 --seq-len 64 --batch-size 5 --threads 1 --out ";
  r = two_ranks(args, dir);
  ASSERT_EQ(r.code, 0) << r.output << read_text(dir + "/rank1.out");
  EXPECT_NE(r.output.find(", 2 ranks)"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir + "/rank1.json")) << "only rank 0 writes --out";
  const nlohmann::json ranks = nlohmann::json::parse(read_text(dir + "/two.json"));
  EXPECT_EQ(ranks["prompts"].get<int64_t>(), 12);
  EXPECT_DOUBLE_EQ(ranks["correct"].get<double>(), 6.0) << r.output;
  EXPECT_DOUBLE_EQ(ranks["files"][0]["accuracy"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(ranks["response_length"].get<double>(), j["response_length"].get<double>());
}

TEST(EvalAccuracy, BadInputIsOneClearLine) {
  const TinyRlhf& f = tiny_rlhf();
  const std::string dir = scratch_dir("eval_accuracy_errors");
  const std::string out = dir + "/never.json";
  // A missing file: named, exit 1, nothing written.
  auto r = run_infini(accuracy_args(f, "--data " + dir + "/missing.jsonl", out));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("error: " + dir + "/missing.jsonl: cannot open for reading"), std::string::npos) << r.output;
  // A record without an answer: its file and line.
  const std::string no_answer = dir + "/no_answer.jsonl";
  std::ofstream(no_answer) << "{\"prompt\": \"What is 1 + 2?\", \"answer\": \"3\"}\n{\"prompt\": \"What is 2 + 2?\"}\n";
  r = run_infini(accuracy_args(f, "--data " + f.prompts_val + " --data " + no_answer, out));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("error: " + no_answer + ":2: no \"answer\""), std::string::npos) << r.output;
  // A record that is not a prompt.
  const std::string not_prompt = dir + "/not_prompt.jsonl";
  std::ofstream(not_prompt) << "{\"question\": \"What is 1 + 2?\", \"answer\": \"3\"}\n";
  r = run_infini(accuracy_args(f, "--data " + not_prompt, out));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find(not_prompt + ":1: missing field \"prompt\""), std::string::npos) << r.output;
  // An empty file.
  const std::string empty = dir + "/empty.jsonl";
  std::ofstream(empty).close();
  r = run_infini(accuracy_args(f, "--data " + empty, out));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find(empty + ": no records"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
  // Usage: no --data, a rule that does not exist (exit 2).
  r = run_infini("eval accuracy --checkpoint " + f.sft_run);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--data"), std::string::npos) << r.output;
  r = run_infini(accuracy_args(f, "--data " + f.prompts_val + " --rule fuzzy", out));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--rule"), std::string::npos) << r.output;
  // Each error is one line.
  r = run_infini(accuracy_args(f, "--data " + no_answer, out));
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

}  // namespace test_eval_accuracy
}  // namespace infini::test
