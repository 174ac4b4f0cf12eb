// Streaming perplexity (train/eval/ppl.h) against the parallel forward: with memory it must give the
// parallel loss; with no_memory it must give each segment evaluated alone (a fresh memory each).
#include <gtest/gtest.h>

#include <cmath>

#include "core/decoder.h"
#include "core/error.h"
#include "train/cli/token_counts.h"
#include "train/eval/passkey.h"
#include "train/eval/ppl.h"
#include "train/run/trainer.h"
#include "train/stages/lm_loss.h"


namespace infini {
// Named, not anonymous: the suite also builds as one unity translation unit.
namespace test_eval_ppl {

ModelConfig tiny_config(int64_t segment_len = 8) {
  ModelConfig c;
  c.vocab_size = 64;
  c.d_model = 32;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.segment_len = segment_len;
  c.gate_init = 0.7;  // not 0: so (1 - sigmoid(beta)) != sigmoid(beta) and a gate mix-up shows
  c.init_std = 0.2;   // large weights: sharp, position-dependent predictions
  return c;
}

std::vector<int64_t> random_tokens(int64_t T, int64_t vocab, uint64_t seed) {
  torch::manual_seed(seed);
  torch::Tensor t = torch::randint(vocab, {T}, torch::kLong);
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + T);
}

torch::Tensor as_tensor(const std::vector<int64_t>& ids) {
  return torch::tensor(ids, torch::kLong).unsqueeze(0);  // (1, T)
}

// Per-target NLL (T-1,) of the parallel forward over the whole sequence.
torch::Tensor parallel_nll(Decoder& model, const std::vector<int64_t>& ids) {
  torch::NoGradGuard ng;
  torch::Tensor x = as_tensor(ids);
  torch::Tensor logits = model->forward(x);  // (1, T, V)
  const int64_t T = x.size(1);
  return -torch::log_softmax(logits.narrow(1, 0, T - 1), -1)
              .gather(-1, x.narrow(1, 1, T - 1).unsqueeze(-1))
              .squeeze(-1)
              .squeeze(0)
              .to(torch::kDouble);
}

TEST(EvalPpl, StreamingEqualsParallelLoss) {
  torch::manual_seed(1);
  Decoder model(tiny_config());
  for (int64_t T : {2, 8, 9, 53}) {  // one token, one segment, one past, many and ragged
    auto ids = random_tokens(T, 64, 10 + T);
    torch::Tensor x = as_tensor(ids);
    torch::Tensor hidden;
    {
      torch::NoGradGuard ng;
      hidden = model->trunk(x);
    }
    auto [loss, n] = masked_lm_loss(hidden, model->lm_head_weight(), x, torch::ones_like(x, torch::kFloat));
    ASSERT_EQ(n, T - 1);
    // The parallel path in chunks of 1, 2 and 4 segments (53 tokens: 6 whole segments, so chunks
    // hand the memory on, and a ragged end), and the streaming path in pieces smaller and larger
    // than a segment.
    for (auto [chunk, segments] : {std::pair<int64_t, int64_t>{0, 4}, {0, 1}, {0, 2}, {3, 4}, {13, 4}}) {
      PplOptions opt;
      opt.chunk = chunk;
      opt.chunk_segments = segments;
      PplResult r = stream_perplexity(model, ids, opt);
      EXPECT_EQ(r.overall.count, T - 1);
      EXPECT_EQ(r.tokens, T);
      EXPECT_NEAR(r.overall.mean_nll(), loss.item<double>(), 1e-5)
          << "T " << T << " chunk " << chunk << " segments " << segments;
      EXPECT_NEAR(r.overall.ppl(), std::exp(loss.item<double>()), 1e-4 * std::exp(loss.item<double>()));
    }
  }
}

TEST(EvalPpl, BucketsSplitTargetsByPosition) {
  torch::manual_seed(2);
  ModelConfig c = tiny_config(64);
  c.n_layers = 1;
  Decoder model(c);
  const int64_t T = 2048 + 300;
  auto ids = random_tokens(T, 64, 3);
  PplResult r = stream_perplexity(model, ids, PplOptions{});
  torch::Tensor nll = parallel_nll(model, ids);  // target of row i sits at position i + 1
  ASSERT_EQ(r.buckets.size(), 5u);
  EXPECT_EQ(r.buckets[0].label(), "0-2K");
  EXPECT_EQ(r.buckets[1].label(), "2K-8K");
  EXPECT_EQ(r.buckets[4].label(), "128K+");
  // Targets at positions 1..2047 -> first bucket; 2048..T-1 -> second.
  EXPECT_EQ(r.buckets[0].count, 2047);
  EXPECT_EQ(r.buckets[1].count, T - 2048);
  EXPECT_EQ(r.buckets[2].count, 0);
  EXPECT_NEAR(r.buckets[0].mean_nll(), nll.narrow(0, 0, 2047).mean().item<double>(), 1e-5);
  EXPECT_NEAR(r.buckets[1].mean_nll(), nll.narrow(0, 2047, T - 2048).mean().item<double>(), 1e-5);
  EXPECT_TRUE(std::isnan(r.buckets[2].mean_nll()));
  auto j = ppl_result_json(r);
  EXPECT_EQ(j["buckets"][0]["targets"], 2047);
  EXPECT_TRUE(j["buckets"][2]["ppl"].is_null());
}

// --no-memory means: no segment is ever written into memory, so every segment is computed exactly as
// the first segment of a fresh sequence. The independent value: the parallel forward run on each
// segment alone (a batch of segments, each starting from the zero memory).
TEST(EvalPpl, NoMemoryEqualsEachSegmentAlone) {
  torch::manual_seed(4);
  const int64_t N = 8, T = 45;  // 5 full segments and a ragged one
  Decoder model(tiny_config(N));
  auto ids = random_tokens(T, 64, 5);
  torch::Tensor x = as_tensor(ids);

  double nll_sum = 0;
  int64_t count = 0;
  {
    torch::NoGradGuard ng;
    const int64_t S = T / N;
    torch::Tensor full = model->forward(x.narrow(1, 0, S * N).view({S, N})).view({1, S * N, -1});  // (1, S*N, V)
    torch::Tensor rest = model->forward(x.narrow(1, S * N, T - S * N));                            // (1, T-S*N, V)
    torch::Tensor logits = torch::cat({full, rest}, 1);                                            // (1, T, V)
    torch::Tensor nll = -torch::log_softmax(logits.narrow(1, 0, T - 1), -1)
                             .gather(-1, x.narrow(1, 1, T - 1).unsqueeze(-1));
    nll_sum = nll.sum().item<double>();
    count = T - 1;
  }
  for (int64_t chunk : {int64_t{0}, N, int64_t{5}}) {  // the parallel path (a batch of segments), streaming
    PplOptions opt;
    opt.no_memory = true;
    opt.chunk = chunk;
    opt.chunk_segments = 2;
    PplResult r = stream_perplexity(model, ids, opt);
    EXPECT_EQ(r.overall.count, count);
    EXPECT_NEAR(r.overall.mean_nll(), nll_sum / static_cast<double>(count), 1e-5) << "chunk " << chunk;
  }
  PplOptions opt;
  opt.no_memory = true;
  PplResult r = stream_perplexity(model, ids, opt);

  // And it is not what the memory gives: the comparison measures something.
  PplResult with = stream_perplexity(model, ids, PplOptions{});
  EXPECT_GT(std::abs(with.overall.mean_nll() - r.overall.mean_nll()), 1e-4);
  // The first segment never reads memory, so its targets agree in both modes.
  PplOptions first;
  first.no_memory = true;
  std::vector<int64_t> head(ids.begin(), ids.begin() + N);
  EXPECT_NEAR(stream_perplexity(model, head, first).overall.mean_nll(),
              stream_perplexity(model, head, PplOptions{}).overall.mean_nll(), 1e-7);
}

TEST(EvalPpl, Bf16StaysClose) {
  torch::manual_seed(6);
  Decoder model(tiny_config());
  auto ids = random_tokens(40, 64, 7);
  PplOptions bf;
  bf.bf16 = true;
  const double a = stream_perplexity(model, ids, PplOptions{}).overall.mean_nll();
  const double b = stream_perplexity(model, ids, bf).overall.mean_nll();
  EXPECT_NEAR(a, b, 0.05 * a);
}

TEST(EvalPpl, ParseTokenCounts) {
  EXPECT_EQ(parse_token_count("8k", "--lengths"), 8192);
  EXPECT_EQ(parse_token_count("1m", "--lengths"), 1048576);
  EXPECT_EQ(parse_token_count("128K", "--lengths"), 131072);
  EXPECT_EQ(parse_token_count("5000", "--lengths"), 5000);
  EXPECT_EQ(parse_token_counts("8k, 32k,1m", "--lengths"), (std::vector<int64_t>{8192, 32768, 1048576}));
  for (const char* bad : {"", "k", "8x", "-1", "0", "1.5k", "8kk"}) {
    try {
      parse_token_count(bad, "--lengths");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--lengths"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(parse_depths("0,0.5,1"), (std::vector<double>{0, 0.5, 1}));
  EXPECT_THROW(parse_depths("0,1.5"), Error);
  EXPECT_THROW(parse_depths("a"), Error);
  EXPECT_TRUE(passkey_correct(" 12345 is", "12345"));
  EXPECT_FALSE(passkey_correct(" 1234", "12345"));
  EXPECT_FALSE(passkey_correct(" 02345", "12345"));
  // A longer number is a wrong answer, not a right one with extra text.
  EXPECT_FALSE(passkey_correct(" 55", "5"));
  EXPECT_FALSE(passkey_correct(" 123456", "12345"));
  EXPECT_TRUE(passkey_correct(" 5.", "5"));
  EXPECT_TRUE(passkey_correct("5", "5"));
  EXPECT_FALSE(passkey_correct("", "5"));
}

}  // namespace test_eval_ppl
}  // namespace infini
