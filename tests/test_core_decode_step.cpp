// The fast one-token step (core/decode_step.h) against the general streaming path and the parallel
// forward, for every memory variant, GQA, several rows, across segment boundaries, and with the
// memory off or reset per segment; where it must stand aside for the general path; and its
// few-rows product (core/few_rows_matmul.h) against torch::mm.
#include <gtest/gtest.h>

#include "core/compat.h"
#include "core/decode_step.h"
#include "core/decoder.h"
#include "core/few_rows_matmul.h"
#include "support/small_model.h"

// Everything of this file in its own namespace: the suite also builds as one unity translation unit.
namespace test_core_decode_step {

namespace {

using infini::Decoder;
using infini::MemoryUpdate;
using infini::StreamState;
using infini::test::MemoryVariant;

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

// Sets the process-wide switch for one scope.
struct FastStep {
  explicit FastStep(bool on) : was(infini::decode_step_enabled()) { infini::set_decode_step_enabled(on); }
  ~FastStep() { infini::set_decode_step_enabled(was); }
  bool was;
};

// Logits (B, T - prompt, V) of tokens[prompt:], fed one token a call after a `prompt`-token chunk.
torch::Tensor one_at_a_time(Decoder& m, StreamState& st, const torch::Tensor& tokens, int64_t prompt, bool fast) {
  FastStep f(fast);
  std::vector<torch::Tensor> out;
  m->forward_stream(st, tokens.narrow(1, 0, prompt));
  for (int64_t t = prompt; t < tokens.size(1); ++t) {
    const torch::Tensor one = tokens.narrow(1, t, 1);
    EXPECT_EQ(infini::decode_step_applies(*m, one), fast);
    out.push_back(m->forward_stream(st, one));
  }
  return torch::cat(out, 1);
}

void expect_same_state(const StreamState& a, const StreamState& b) {
  ASSERT_EQ(a.tokens_seen, b.tokens_seen);
  for (size_t i = 0; i < a.layers.size(); ++i) {
    const auto &x = a.layers[i], &y = b.layers[i];
    for (auto [p, q] : {std::pair{x.k_cache, y.k_cache}, {x.kr_cache, y.kr_cache}, {x.v_cache, y.v_cache},
                        {x.M, y.M}, {x.z, y.z}, {x.w_cache, y.w_cache}}) {
      ASSERT_EQ(p.defined(), q.defined());
      if (p.defined()) {
        EXPECT_LE(max_diff(p, q), 1e-5 * (1 + q.abs().max().item<double>())) << "layer " << i;
      }
    }
  }
}

class DecodeStepRules : public ::testing::TestWithParam<MemoryVariant> {};

// 3 rows x 29 tokens at segments of 8: a 5-token prompt, then 24 single tokens through three
// segment boundaries (three memory writes), the last segment unfinished.
TEST_P(DecodeStepRules, EqualsTheGeneralPathAndTheParallelForward) {
  Decoder m = infini::test::small_model(GetParam(), 31);
  torch::NoGradGuard ng;
  const torch::Tensor tok = torch::randint(0, 40, {3, 29}, torch::kLong);
  const torch::Tensor whole = m->forward(tok).narrow(1, 5, 24);
  StreamState fast = m->new_state(3), general = m->new_state(3);
  const torch::Tensor a = one_at_a_time(m, fast, tok, 5, true);
  const torch::Tensor b = one_at_a_time(m, general, tok, 5, false);
  const double scale = 1 + whole.abs().max().item<double>();
  EXPECT_LE(max_diff(a, b), 2e-6 * scale);
  EXPECT_LE(max_diff(a, whole), 2e-5 * scale);
  EXPECT_GT(max_diff(a.narrow(1, 0, 1), a.narrow(1, 1, 1)), 1e-2);  // the logits do move token by token
  expect_same_state(fast, general);
}

// Memory reset per segment (--no-memory): the reads are 0 and nothing is written, on both paths.
TEST_P(DecodeStepRules, NoMemoryStateEqualsTheGeneralPath) {
  Decoder m = infini::test::small_model(GetParam(), 32);
  torch::NoGradGuard ng;
  const torch::Tensor tok = torch::randint(0, 40, {2, 21}, torch::kLong);
  StreamState fast = m->new_state(2), general = m->new_state(2);
  fast.no_memory = general.no_memory = true;
  const torch::Tensor a = one_at_a_time(m, fast, tok, 3, true);
  const torch::Tensor b = one_at_a_time(m, general, tok, 3, false);
  EXPECT_LE(max_diff(a, b), 2e-6 * (1 + b.abs().max().item<double>()));
  EXPECT_EQ(fast.layers[0].M.abs().max().item<float>(), 0.0f);
  expect_same_state(fast, general);
}

INSTANTIATE_TEST_SUITE_P(Rules, DecodeStepRules, infini::test::all_memory_variants(),
                         infini::test::variant_param_name);

TEST(DecodeStep, MemoryOffEqualsTheGeneralPath) {
  infini::ModelConfig c = infini::test::small_config(MemoryVariant{});
  c.memory.enabled = false;
  torch::manual_seed(33);
  Decoder m(c);
  torch::NoGradGuard ng;
  const torch::Tensor tok = torch::randint(0, 40, {2, 19}, torch::kLong);
  StreamState fast = m->new_state(2), general = m->new_state(2);
  const torch::Tensor a = one_at_a_time(m, fast, tok, 1, true);
  const torch::Tensor b = one_at_a_time(m, general, tok, 1, false);
  EXPECT_LE(max_diff(a, b), 2e-6 * (1 + b.abs().max().item<double>()));
  EXPECT_LE(max_diff(a, m->forward(tok).narrow(1, 1, 18)), 2e-5 * (1 + b.abs().max().item<double>()));
  expect_same_state(fast, general);
}

// More rows than kFewRows: the projections and the head go through torch's product instead.
TEST(DecodeStep, ManyRowsEqualTheGeneralPath) {
  Decoder m = infini::test::small_model(MemoryVariant{MemoryUpdate::delta, true}, 36);
  torch::NoGradGuard ng;
  const int64_t B = infini::kFewRows + 1;
  const torch::Tensor tok = torch::randint(0, 40, {B, 13}, torch::kLong);
  StreamState fast = m->new_state(B), general = m->new_state(B);
  const torch::Tensor a = one_at_a_time(m, fast, tok, 2, true);
  const torch::Tensor b = one_at_a_time(m, general, tok, 2, false);
  EXPECT_LE(max_diff(a, b), 2e-6 * (1 + b.abs().max().item<double>()));
  expect_same_state(fast, general);
}

TEST(DecodeStep, StandsAsideWhereItDoesNotApply) {
  Decoder m = infini::test::small_model(MemoryVariant{}, 34);
  const torch::Tensor one = torch::randint(0, 40, {2, 1}, torch::kLong);
  FastStep on(true);
  EXPECT_FALSE(infini::decode_step_applies(*m, one));  // gradient recorded: training, never the fast step
  torch::NoGradGuard ng;
  EXPECT_TRUE(infini::decode_step_applies(*m, one));
  EXPECT_FALSE(infini::decode_step_applies(*m, torch::randint(0, 40, {2, 2}, torch::kLong)));  // two tokens
  {
    infini::compat::AutocastGuard ac(true, torch::kCPU);
    EXPECT_FALSE(infini::decode_step_applies(*m, one));  // bf16 autocast
  }
  {
    FastStep off(false);
    EXPECT_FALSE(infini::decode_step_applies(*m, one));
  }
  m->blocks[1]->feed_forward->w3->add_adapter(2, 1.0, 0.0);  // a LoRA adapter anywhere
  EXPECT_FALSE(infini::decode_step_applies(*m, one));
}

// Every row count up to three groups of 6 and past the threshold, an inner size that is not a multiple
// of 8 (the scalar tail) and output sizes that split unevenly over threads and blocks of 32.
TEST(FewRowsMatmul, EqualsTorchMm) {
  torch::manual_seed(35);
  for (int64_t in : {8, 29, 256}) {
    for (int64_t out : {1, 37, 300}) {
      const torch::Tensor W = torch::randn({out, in});
      for (int64_t B = 1; B <= 18; ++B) {
        const torch::Tensor x = torch::randn({B, in});
        const torch::Tensor want = torch::mm(x, W.t());
        const double tol = 1e-5 * (1 + want.abs().max().item<double>());
        EXPECT_LE(max_diff(infini::few_rows_matmul(x, W), want), tol) << B << " x " << in << " -> " << out;
        const torch::Tensor base = torch::randn({B, out});
        torch::Tensor into = base.clone();
        infini::few_rows_matmul(x, W, into);
        EXPECT_LE(max_diff(into, base + want), tol) << "accumulate " << B << " x " << in << " -> " << out;
        // The raw forms: x W^T, and x A with A = W^T laid out (in, out).
        torch::Tensor raw = torch::empty({B, out});
        infini::few_rows_times_transposed(x.data_ptr<float>(), B, W.data_ptr<float>(), out, in, raw.data_ptr<float>());
        EXPECT_LE(max_diff(raw, want), tol) << "raw x W^T " << B << " x " << in << " -> " << out;
        const torch::Tensor A = W.t().contiguous();
        raw.fill_(7.0f);  // overwritten, not added to
        infini::few_rows_times(x.data_ptr<float>(), B, A.data_ptr<float>(), in, out, raw.data_ptr<float>());
        EXPECT_LE(max_diff(raw, want), tol) << "raw x A " << B << " x " << in << " -> " << out;
      }
    }
  }
}

}  // namespace

}  // namespace test_core_decode_step
