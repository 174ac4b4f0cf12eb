// Passkey evaluation (train/eval/passkey.h, `infini eval passkey`): exact prompt lengths and key
// depths, the streaming prompt path against the parallel forward, and the CLI's JSON on a tiny model.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>
#include <random>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/generate.h"
#include "core/model_io.h"
#include "support/run_util.h"
#include "train/eval/passkey.h"
#include "train/eval/ppl.h"


namespace infini {
// Named, not anonymous: the suite also builds as one unity translation unit.
namespace test_eval_passkey {

struct TinyEval {
  std::string dir, tokenizer, model_file, corpus;
};

// A tiny tokenizer (vocab 300) trained on passkey-like text, and a random model saved beside it
// (built once per scratch dir; ctest runs the tests of this file as parallel processes).
TinyEval tiny_eval() {
  TinyEval t;
  t.dir = test::scratch_dir("eval_passkey", /*fresh=*/false);
  t.tokenizer = t.dir + "/tok.model";
  t.model_file = t.dir + "/step/model.safetensors";
  t.corpus = t.dir + "/corpus.txt";
  const int lock = ::open((t.dir + "/.lock").c_str(), O_CREAT | O_RDWR, 0644);
  ::flock(lock, LOCK_EX);
  if (!std::filesystem::exists(t.dir + "/.done")) {
    std::mt19937 rng(3);
    {
      std::ofstream out(t.corpus);
      for (int i = 0; i < 3000; ++i) {
        const int key = 10000 + static_cast<int>(rng() % 90000);
        out << "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
            << "The pass key is " << key << ". Remember it. " << key << " is the pass key. "
            << "What is the pass key? There is an important info hidden inside a lot of irrelevant text.\n";
      }
    }
    TokenizerTrainOptions o;
    o.inputs = {t.corpus};
    o.vocab_size = 300;
    o.model_prefix = t.dir + "/tok";
    o.threads = 1;
    train_tokenizer(o);
    ModelConfig c;
    c.vocab_size = 300;
    c.d_model = 32;
    c.n_layers = 2;
    c.n_heads = 4;
    c.segment_len = 16;
    torch::manual_seed(0);
    Decoder m(c);
    std::filesystem::create_directories(t.dir + "/step");
    save_model(t.model_file, m, {{"tokenizer_path", t.tokenizer}});
    std::ofstream(t.dir + "/.done") << "ok\n";
  }
  ::flock(lock, LOCK_UN);
  ::close(lock);
  return t;
}

TEST(EvalPasskey, PromptHasExactLengthAndKeyAtDepth) {
  TinyEval t = tiny_eval();
  Tokenizer tok = Tokenizer::load(t.tokenizer);
  PasskeyBuilder build = passkey_builder(tok);
  for (int64_t len : {600, 1000, 4097}) {
    std::map<double, int64_t> pos;
    for (double depth : {0.0, 0.25, 0.5, 1.0}) {
      PasskeyPrompt p = build(len, depth, 5, 42);
      ASSERT_EQ(static_cast<int64_t>(p.ids.size()), len);
      EXPECT_EQ(p.ids[0], tok.bos_id());
      ASSERT_EQ(p.key.size(), 5u);
      // The key's first token sits at key_position, inside the needle sentence.
      std::vector<int> at(p.ids.begin() + p.key_position, p.ids.begin() + p.key_position + 8);
      EXPECT_TRUE(passkey_correct(tok.decode(at), p.key)) << tok.decode(at);
      std::vector<int> before(p.ids.begin() + p.key_position - 16, p.ids.begin() + p.key_position);
      EXPECT_NE(tok.decode(before).find("pass key is"), std::string::npos) << tok.decode(before);
      // The prompt ends with the question.
      std::vector<int> end(p.ids.end() - 12, p.ids.end());
      EXPECT_NE(tok.decode(end).find("pass key is"), std::string::npos) << tok.decode(end);
      pos[depth] = p.key_position;
    }
    // Depth 0 = right after the task sentence, 1 = right before the question; in between
    // proportionally, to within one filler sentence.
    EXPECT_LT(pos[0.0], 250);
    EXPECT_GT(pos[1.0], len - 250);
    for (double d : {0.25, 0.5}) {
      EXPECT_NEAR(static_cast<double>(pos[d]), pos[0.0] + d * static_cast<double>(pos[1.0] - pos[0.0]), 60.0)
          << "len " << len << " depth " << d;
    }
  }
  // Wrapped in the chat template (as SFT records are): still exact, the key still where it says.
  ChatTemplate chat;
  PasskeyPrompt w = passkey_builder(tok, &chat)(1000, 0.5, 5, 42);
  ASSERT_EQ(w.ids.size(), 1000u);
  EXPECT_EQ(w.ids[0], tok.bos_id());
  std::vector<int> at(w.ids.begin() + w.key_position, w.ids.begin() + w.key_position + 8);
  EXPECT_TRUE(passkey_correct(tok.decode(at), w.key)) << tok.decode(at);
  const std::string text = tok.decode(std::vector<int>(w.ids.begin() + 1, w.ids.end()));
  EXPECT_LT(text.find(chat.user_prefix), 2u) << text.substr(0, 40);
  EXPECT_EQ(text.substr(text.size() - chat.assistant_prefix.size()), chat.assistant_prefix);
  EXPECT_NE(text.find("What is the pass key? The pass key is" + chat.turn_end), std::string::npos);
  // Another seed, another key; the same seed, the same prompt.
  EXPECT_NE(build(500, 0.5, 5, 1).key, build(500, 0.5, 5, 2).key);
  EXPECT_EQ(build(500, 0.5, 5, 1).ids, build(500, 0.5, 5, 1).ids);
  EXPECT_THROW(build(20, 0.5, 5, 1), Error);
}

// The hot path (whole segments, trunk only, head at the last position, started mid-segment) gives the
// parallel forward's last logits, and greedy decoding through the state equals core's generate().
TEST(EvalPasskey, StreamPromptEqualsParallelForward) {
  TinyEval t = tiny_eval();
  Decoder model = load_model(t.model_file);
  torch::manual_seed(9);
  torch::Tensor x = torch::randint(300, {1, 77}, torch::kLong);
  std::vector<int64_t> ids(x.data_ptr<int64_t>(), x.data_ptr<int64_t>() + 77);
  torch::InferenceMode im;
  torch::Tensor want = model->forward(x).select(1, 76);  // (1, V)
  StreamState st = model->new_state(1);
  torch::Tensor got = stream_prompt(model, st, ids, false);
  EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-5)) << (got - want).abs().max();
  EXPECT_EQ(st.tokens_seen, 77);

  // Split in two calls: the second starts mid-segment (77 % 16 != 0).
  StreamState st2 = model->new_state(1);
  std::vector<int64_t> a(ids.begin(), ids.begin() + 37), b(ids.begin() + 37, ids.end());
  stream_prompt(model, st2, a, false);
  EXPECT_TRUE(torch::allclose(stream_prompt(model, st2, b, false), want, 1e-5, 1e-5));

  // Teacher-forced scoring of a continuation on a clone: the parallel forward's log-probabilities of
  // the same tokens, and the original state is left where it was (greedy below still equals generate).
  const std::vector<int64_t> cont = {5, 17, 250, 3};
  std::vector<int64_t> all = ids;
  all.insert(all.end(), cont.begin(), cont.end() - 1);
  torch::Tensor lp = model->forward(torch::tensor(all).view({1, -1})).to(torch::kDouble).log_softmax(-1);  // (1, T, V)
  double want_lp = 0;
  for (size_t i = 0; i < cont.size(); ++i) want_lp += lp[0][76 + static_cast<int64_t>(i)][cont[i]].item<double>();
  StreamState scored = st.clone();
  EXPECT_NEAR(continuation_logprob(model, scored, got, cont, false), want_lp, 1e-4);
  EXPECT_EQ(scored.tokens_seen, 77 + 3);
  EXPECT_EQ(st.tokens_seen, 77);

  std::vector<int64_t> greedy = greedy_tokens(model, st, got, 12, false);
  GenerateOptions g;
  g.sampling.temperature = 0;
  g.max_new_tokens = 12;
  g.eos_id = -1;
  std::vector<int64_t> ref = generate(model, ids, g);
  EXPECT_EQ(std::vector<int64_t>(ref.begin() + 77, ref.end()), greedy);
}

TEST(EvalPasskey, CliWritesEveryCase) {
  TinyEval t = tiny_eval();
  const std::string out = test::scratch_dir("eval_passkey_cli") + "/passkey.json";
  auto r = test::run_infini("eval passkey --checkpoint " + t.dir + "/step --lengths 400,1k --depths 0,0.5,1 --trials 2 "
                        "--digits 4 --seed 5 --threads 1 --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("passkey accuracy"), std::string::npos) << r.output;
  nlohmann::json j = nlohmann::json::parse(test::read_text(out));
  ASSERT_EQ(j["cases"].size(), 2u * 3u * 2u);
  std::map<std::pair<int64_t, double>, int> seen;
  for (const auto& c : j["cases"]) {
    const int64_t len = c["length"];
    EXPECT_TRUE(len == 400 || len == 1024) << len;
    seen[{len, c["depth"].get<double>()}] += 1;
    EXPECT_EQ(c["key"].get<std::string>().size(), 4u);
    EXPECT_EQ(c["correct"].get<bool>(), passkey_correct(c["answer"].get<std::string>(), c["key"].get<std::string>()));
    const double lp = c["key_logprob"].get<double>();
    EXPECT_LT(lp, 0.0);
    EXPECT_GT(lp, -100.0);
    EXPECT_GT(c["tokens_per_s"].get<double>(), 0.0);
    EXPECT_GT(c["peak_rss_kb"].get<int64_t>(), 1000);
    EXPECT_GE(c["seconds"].get<double>(), 0.0);
  }
  EXPECT_EQ(seen.size(), 6u);
  for (const auto& [k, n] : seen) EXPECT_EQ(n, 2);
  EXPECT_GT(j["peak_rss_kb"].get<int64_t>(), 1000);
  EXPECT_EQ(j["workers"].get<int>(), 1);
  EXPECT_FALSE(j["no_memory"].get<bool>());

  // --no-memory: the same prompts and keys, each case read with the memory reset per segment.
  const std::string out0 = test::scratch_dir("eval_passkey_cli0") + "/passkey.json";
  r = test::run_infini("eval passkey --checkpoint " + t.dir + "/step --lengths 400,1k --depths 0,0.5,1 --trials 2 "
                       "--digits 4 --seed 5 --threads 1 --no-memory --out " + out0);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("memory reset per segment"), std::string::npos) << r.output;
  nlohmann::json j0 = nlohmann::json::parse(test::read_text(out0));
  EXPECT_TRUE(j0["no_memory"].get<bool>());
  ASSERT_EQ(j0["cases"].size(), j["cases"].size());
  int differ = 0;
  for (size_t i = 0; i < j["cases"].size(); ++i) {
    EXPECT_EQ(j0["cases"][i]["key"], j["cases"][i]["key"]) << "case " << i;
    differ += j0["cases"][i]["key_logprob"].get<double>() != j["cases"][i]["key_logprob"].get<double>();
  }
  EXPECT_EQ(differ, static_cast<int>(j["cases"].size())) << "every prompt spans several segments";

  // Three cases at once: the same cases, in the same order, with the same answers.
  const std::string out3 = test::scratch_dir("eval_passkey_cli3") + "/passkey.json";
  r = test::run_infini("eval passkey --checkpoint " + t.dir + "/step --lengths 400,1k --depths 0,0.5,1 --trials 2 "
                       "--digits 4 --seed 5 --threads 3 --out " + out3);
  ASSERT_EQ(r.code, 0) << r.output;
  nlohmann::json j3 = nlohmann::json::parse(test::read_text(out3));
  // --threads above the machine's cores is capped there (train/run/runtime.h resolve_threads).
  EXPECT_EQ(j3["workers"].get<int>(), std::min(3, static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))));
  ASSERT_EQ(j3["cases"].size(), j["cases"].size());
  for (size_t i = 0; i < j["cases"].size(); ++i) {
    for (const char* k : {"length", "depth", "trial", "key", "answer", "correct", "key_position"})
      EXPECT_EQ(j3["cases"][i][k], j["cases"][i][k]) << "case " << i << " " << k;
    // The same log-probability up to the last bits: a BLAS may round differently on another thread.
    const double lp = j["cases"][i]["key_logprob"].get<double>();
    EXPECT_NEAR(j3["cases"][i]["key_logprob"].get<double>(), lp, 1e-6 * std::abs(lp)) << "case " << i;
  }
}

TEST(EvalPasskey, AFailingCaseStopsTheWorkersAndIsRethrown) {
  TinyEval t = tiny_eval();
  Decoder m = load_model(t.model_file);
  Tokenizer tok = Tokenizer::load(t.tokenizer);
  const PasskeyBuilder good = passkey_builder(tok);
  PasskeyBuilder bad = [&](int64_t length, double depth, int digits, uint64_t seed) {
    if (length == 500 && depth == 0.5) throw Error("no prompt for this case");
    return good(length, depth, digits, seed);
  };
  PasskeyOptions opt;
  opt.lengths = {400, 500};
  opt.digits = 4;
  opt.trials = 2;
  for (int workers : {1, 2, 4}) {
    opt.workers = workers;
    int seen = 0;
    try {
      run_passkey_eval(m, tok, bad, opt, [&](const PasskeyCaseResult&) { ++seen; });
      ADD_FAILURE() << "expected the builder's error, workers " << workers;
    } catch (const Error& e) {
      EXPECT_STREQ(e.what(), "no prompt for this case");
    }
    EXPECT_LT(seen, 12) << "workers " << workers;
  }
}

TEST(EvalPasskey, CliRejectsBadInput) {
  TinyEval t = tiny_eval();
  auto r = test::run_infini("eval passkey --checkpoint " + t.dir + "/step --lengths 8x");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("error: --lengths"), std::string::npos) << r.output;
  r = test::run_infini("eval passkey --checkpoint " + t.dir + "/step --lengths 10");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("too short"), std::string::npos) << r.output;
  r = test::run_infini("eval passkey --checkpoint " + t.dir + "/nowhere --lengths 1k");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("nowhere"), std::string::npos) << r.output;
  r = test::run_infini("eval ppl --checkpoint " + t.dir + "/step --text " + t.dir + "/missing.txt");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("missing.txt"), std::string::npos) << r.output;
}

TEST(EvalPpl, CliComparesMemoryOnTheSameText) {
  TinyEval t = tiny_eval();
  const std::string out = test::scratch_dir("eval_ppl_cli") + "/ppl.json";
  auto r = test::run_infini("eval ppl --checkpoint " + t.dir + "/step --text " + t.corpus +
                        " --max-tokens 700 --compare --threads 1 --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  nlohmann::json j = nlohmann::json::parse(test::read_text(out));
  EXPECT_EQ(j["with_memory"]["tokens"], 700);
  EXPECT_EQ(j["no_memory"]["tokens"], 700);
  EXPECT_EQ(j["with_memory"]["targets"], 699);
  EXPECT_NE(j["with_memory"]["nll"].get<double>(), j["no_memory"]["nll"].get<double>());

  // The same numbers from the library on the same tokens.
  Tokenizer tok = Tokenizer::load(t.tokenizer);
  std::vector<int64_t> ids = tokenize_text_file(tok, t.corpus, 700);
  ASSERT_EQ(ids.size(), 700u);
  EXPECT_EQ(ids[0], tok.bos_id());
  Decoder model = load_model(t.model_file);
  EXPECT_NEAR(stream_perplexity(model, ids, PplOptions{}).overall.mean_nll(), j["with_memory"]["nll"].get<double>(),
              1e-9);
}

TEST(EvalPpl, TokenizeFileMatchesWholeEncode) {
  TinyEval t = tiny_eval();
  Tokenizer tok = Tokenizer::load(t.tokenizer);
  const std::string path = test::scratch_dir("eval_tokenize") + "/doc.txt";
  const std::string text = "The sky is blue.\nThe pass key is 31415.\nHere we go.\n";
  std::ofstream(path) << text;
  std::vector<int64_t> ids = tokenize_text_file(tok, path);
  std::vector<int> want = tok.encode(text);
  ASSERT_EQ(ids.size(), want.size() + 1);
  EXPECT_EQ(ids[0], tok.bos_id());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(ids[i + 1], want[i]);
  EXPECT_EQ(tokenize_text_file(tok, path, 5).size(), 5u);
  const std::string empty = test::scratch_dir("eval_tokenize_empty") + "/empty.txt";
  std::ofstream(empty) << "";
  EXPECT_THROW(tokenize_text_file(tok, empty), Error);

}

// Under a launcher (here the variables srun + MASTER_ADDR set, two ranks started by a shell), the
// cases are split over the ranks and rank 0 writes them all, in case order: the same keys, answers
// and log-probabilities as one process.
TEST(EvalPasskey, TwoRanksSplitTheCasesAndRankZeroWritesThemAll) {
  TinyEval t = tiny_eval();
  const std::string dir = test::scratch_dir("eval_passkey_ranks");
  const std::string args = std::string(INFINI_BINARY) + " eval passkey --checkpoint " + t.dir +
                           "/step --lengths 400,1k --depths 0,1 --trials 2 --digits 4 --seed 5 --threads 1 --out ";
  auto one = test::run_cmd("timeout 300 " + args + dir + "/one.json");
  ASSERT_EQ(one.code, 0) << one.output;
  auto two = test::two_ranks(args, dir);
  ASSERT_EQ(two.code, 0) << two.output << test::read_text(dir + "/rank1.out");
  EXPECT_NE(two.output.find("8 cases from 2 ranks"), std::string::npos) << two.output;
  EXPECT_FALSE(std::filesystem::exists(dir + "/rank1.json")) << "only rank 0 writes --out";
  // Rank 1 ran half the cases: its per-case lines.
  const std::string r1 = test::read_text(dir + "/rank1.out");
  EXPECT_NE(r1.find(" trial "), std::string::npos) << r1;
  nlohmann::json a = nlohmann::json::parse(test::read_text(dir + "/one.json"));
  nlohmann::json b = nlohmann::json::parse(test::read_text(dir + "/two.json"));
  ASSERT_EQ(a["cases"].size(), 8u);
  ASSERT_EQ(b["cases"].size(), 8u);
  for (size_t i = 0; i < 8; ++i) {
    for (const char* k : {"length", "depth", "trial", "key", "answer", "correct", "key_position"})
      EXPECT_EQ(a["cases"][i][k], b["cases"][i][k]) << i << " " << k;
    EXPECT_NEAR(a["cases"][i]["key_logprob"].get<double>(), b["cases"][i]["key_logprob"].get<double>(), 1e-4) << i;
  }
  EXPECT_EQ(a["accuracy"], b["accuracy"]);
}

// Several documents: each is reported, and "all" is the token-weighted whole (its nll the targets'
// mean over both). Under a launcher the four passes (2 documents x with / without memory) are
// split over two ranks and rank 0 writes the same numbers as one process.
TEST(EvalPpl, SeveralDocumentsSplitOverRanks) {
  TinyEval t = tiny_eval();
  const std::string dir = test::scratch_dir("eval_ppl_ranks");
  const std::string second = dir + "/second.txt";
  {
    std::ofstream f(second);
    std::ifstream in(t.corpus);
    std::string line;
    for (int i = 0; i < 40 && std::getline(in, line); ++i) f << line << "\n";
  }
  const std::string args = std::string(INFINI_BINARY) + " eval ppl --checkpoint " + t.dir + "/step --text " +
                           t.corpus + " --text " + second + " --max-tokens 600 --compare --threads 1 --out ";
  auto one = test::run_cmd("timeout 300 " + args + dir + "/one.json");
  ASSERT_EQ(one.code, 0) << one.output;
  EXPECT_NE(one.output.find("all 2 documents"), std::string::npos) << one.output;
  nlohmann::json a = nlohmann::json::parse(test::read_text(dir + "/one.json"));
  ASSERT_EQ(a["documents"].size(), 2u);
  for (const char* mode : {"with_memory", "no_memory"}) {
    const auto& d0 = a["documents"][0][mode];
    const auto& d1 = a["documents"][1][mode];
    const double t0 = d0["targets"].get<double>(), t1 = d1["targets"].get<double>();
    EXPECT_EQ(a["all"][mode]["targets"].get<double>(), t0 + t1);
    EXPECT_NEAR(a["all"][mode]["nll"].get<double>(),
                (d0["nll"].get<double>() * t0 + d1["nll"].get<double>() * t1) / (t0 + t1), 1e-12);
  }
  EXPECT_EQ(a["documents"][0]["with_memory"]["tokens"], 600);
  EXPECT_EQ(a["documents"][1]["text"], second);

  auto two = test::two_ranks(args, dir);
  ASSERT_EQ(two.code, 0) << two.output << test::read_text(dir + "/rank1.out");
  EXPECT_NE(two.output.find("4 passes over 2 ranks"), std::string::npos) << two.output;
  EXPECT_FALSE(std::filesystem::exists(dir + "/rank1.json")) << "only rank 0 writes --out";
  nlohmann::json b = nlohmann::json::parse(test::read_text(dir + "/two.json"));
  for (size_t i = 0; i < 2; ++i)
    for (const char* mode : {"with_memory", "no_memory"}) {
      EXPECT_EQ(a["documents"][i][mode]["targets"], b["documents"][i][mode]["targets"]) << i << mode;
      EXPECT_NEAR(a["documents"][i][mode]["nll"].get<double>(), b["documents"][i][mode]["nll"].get<double>(), 1e-9)
          << i << mode;
    }
  EXPECT_NEAR(a["all"]["with_memory"]["nll"].get<double>(), b["all"]["with_memory"]["nll"].get<double>(), 1e-9);
}

}  // namespace test_eval_passkey
}  // namespace infini
