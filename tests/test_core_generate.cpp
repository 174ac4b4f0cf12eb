// Tests of core/generate: greedy / top-k / top-p / temperature against hand-computed distributions,
// seeded reproducibility, streaming generation == recomputing the whole prefix every step, and
// PPO rollouts decoding equal-length prompts as one batch == generating each prompt alone.
#include <algorithm>
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/generate.h"
#include "train/rlhf/rollout.h"

// Everything of this file in its own namespace: the suite also builds as one unity translation unit.
namespace test_core_generate {

using namespace infini;

namespace {

// One row with probabilities (0.5, 0.3, 0.15, 0.05) after softmax.
torch::Tensor four_way_logits() { return torch::tensor({0.5, 0.3, 0.15, 0.05}).log().view({1, 4}).to(torch::kFloat); }

void expect_probs(const torch::Tensor& got, std::vector<double> want) {
  ASSERT_EQ(got.size(1), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[0][i].item<double>(), want[i], 1e-6) << "index " << i;
}

ModelConfig small_config(MemoryUpdate rule) {
  ModelConfig c;
  c.vocab_size = 48;
  c.d_model = 32;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.ffn_hidden = 48;
  c.segment_len = 4;
  c.memory.enabled = true;
  c.memory.update = rule;
  c.init_std = 0.3;  // spread-out logits: no near-ties that rounding could flip
  return c;
}

}  // namespace

TEST(Sampling, GreedyAndTopK1AreArgmax) {
  torch::manual_seed(0);
  torch::Tensor logits = torch::randn({6, 50});
  torch::Tensor argmax = logits.argmax(1);
  at::Generator gen = make_generator(3);
  EXPECT_TRUE(torch::equal(sample_next(logits, {0.0, 0, 1.0}, gen), argmax));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(torch::equal(sample_next(logits, {1.5, 1, 1.0}, gen), argmax));
  // A tiny top-p keeps only the most likely token as well.
  EXPECT_TRUE(torch::equal(sample_next(logits, {1.0, 0, 1e-6}, gen), argmax));
}

TEST(Sampling, HandComputedDistributions) {
  torch::Tensor l = four_way_logits();
  expect_probs(sampling_probs(l, {1.0, 0, 1.0}), {0.5, 0.3, 0.15, 0.05});
  // top-p: smallest prefix (by probability) whose mass reaches p, renormalised.
  expect_probs(sampling_probs(l, {1.0, 0, 0.75}), {0.5 / 0.8, 0.3 / 0.8, 0, 0});
  expect_probs(sampling_probs(l, {1.0, 0, 0.85}), {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0});
  expect_probs(sampling_probs(l, {1.0, 0, 0.4}), {1, 0, 0, 0});
  expect_probs(sampling_probs(l, {1.0, 0, 0.96}), {0.5, 0.3, 0.15, 0.05});
  // top-k = 2: the two most likely, renormalised.
  expect_probs(sampling_probs(l, {1.0, 2, 1.0}), {0.625, 0.375, 0, 0});
  // temperature 2: p^(1/2) renormalised.
  const double s = std::sqrt(0.5) + std::sqrt(0.3) + std::sqrt(0.15) + std::sqrt(0.05);
  expect_probs(sampling_probs(l, {2.0, 0, 1.0}),
               {std::sqrt(0.5) / s, std::sqrt(0.3) / s, std::sqrt(0.15) / s, std::sqrt(0.05) / s});
  // Order of the vocabulary does not matter: the same filter on a permuted row.
  torch::Tensor perm = torch::tensor({0.15, 0.05, 0.5, 0.3}).log().view({1, 4}).to(torch::kFloat);
  expect_probs(sampling_probs(perm, {1.0, 0, 0.75}), {0, 0, 0.625, 0.375});
  expect_probs(sampling_probs(l, {0.0, 0, 1.0}), {1, 0, 0, 0});

  EXPECT_THROW(sampling_probs(l, {-1.0, 0, 1.0}), Error);
  EXPECT_THROW(sampling_probs(l, {1.0, -2, 1.0}), Error);
  EXPECT_THROW(sampling_probs(l, {1.0, 0, 0.0}), Error);
  EXPECT_THROW(sampling_probs(l, {1.0, 0, 1.5}), Error);
}

TEST(Sampling, DrawsFollowTheFilteredDistribution) {
  const int64_t n = 40000;
  torch::Tensor l = four_way_logits().expand({n, 4}).contiguous();
  at::Generator gen = make_generator(11);
  torch::Tensor draws = sample_next(l, {1.0, 0, 0.85}, gen);  // (n,)
  torch::Tensor freq = torch::bincount(draws, {}, 4).to(torch::kDouble) / n;
  EXPECT_NEAR(freq[0].item<double>(), 0.5 / 0.95, 0.01);
  EXPECT_NEAR(freq[1].item<double>(), 0.3 / 0.95, 0.01);
  EXPECT_NEAR(freq[2].item<double>(), 0.15 / 0.95, 0.01);
  EXPECT_EQ(freq[3].item<double>(), 0.0);  // filtered out: never drawn
}

TEST(Sampling, SameSeedSameTokens) {
  torch::manual_seed(0);
  torch::Tensor logits = torch::randn({4, 100});
  at::Generator a = make_generator(42), b = make_generator(42), c = make_generator(43);
  std::vector<torch::Tensor> ta, tb, tc;
  for (int i = 0; i < 10; ++i) {
    ta.push_back(sample_next(logits, {1.0, 20, 0.9}, a));
    tb.push_back(sample_next(logits, {1.0, 20, 0.9}, b));
    tc.push_back(sample_next(logits, {1.0, 20, 0.9}, c));
  }
  EXPECT_TRUE(torch::equal(torch::stack(ta), torch::stack(tb)));
  EXPECT_FALSE(torch::equal(torch::stack(ta), torch::stack(tc)));
}

// Streaming generation (prompt once, then one token at a time, memory folded at segment ends) gives
// the tokens of recomputing forward() over the whole prefix at every step: memory on, both rules,
// a prompt of 10 tokens over segments of 4, 14 new tokens (6 segments in all).
TEST(Generate, StreamingEqualsRecompute) {
  for (MemoryUpdate rule : {MemoryUpdate::linear, MemoryUpdate::delta}) {
    torch::manual_seed(5);
    Decoder model(small_config(rule));
    model->eval();
    const std::vector<int64_t> prompt = {1, 7, 3, 30, 12, 9, 44, 2, 18, 5};
    GenerateOptions opts;
    opts.sampling.temperature = 0;
    opts.max_new_tokens = 14;
    opts.eos_id = -1;
    std::vector<int64_t> seen;
    const std::vector<int64_t> streamed = generate(model, prompt, opts, [&](int64_t t) { seen.push_back(t); });
    ASSERT_EQ(streamed.size(), prompt.size() + 14);
    EXPECT_EQ(std::vector<int64_t>(streamed.begin() + prompt.size(), streamed.end()), seen);

    torch::NoGradGuard g;
    std::vector<int64_t> seq = prompt;
    double max_gap = 1e9;
    for (int i = 0; i < 14; ++i) {
      torch::Tensor logits = model->forward(torch::tensor(seq).view({1, -1})).select(1, -1);  // (1, V)
      auto top2 = std::get<0>(logits.topk(2, 1));
      max_gap = std::min(max_gap, (top2[0][0] - top2[0][1]).item<double>());
      seq.push_back(logits.argmax(1).item<int64_t>());
    }
    EXPECT_EQ(streamed, seq) << "rule " << to_string(rule);
    EXPECT_GT(max_gap, 1e-4) << "test model has near-ties; the comparison would be fragile";

    // Sampled generation is reproducible from the seed.
    opts.sampling = {0.8, 10, 0.95};
    opts.seed = 9;
    EXPECT_EQ(generate(model, prompt, opts), generate(model, prompt, opts));
  }
}

TEST(Generate, StopsAtEosAndChecksPrompt) {
  torch::manual_seed(6);
  Decoder model(small_config(MemoryUpdate::delta));
  GenerateOptions opts;
  opts.sampling.temperature = 0;
  opts.max_new_tokens = 8;
  opts.eos_id = -1;
  std::vector<int64_t> full = generate(model, {1, 2, 3}, opts);
  ASSERT_EQ(full.size(), 11u);
  opts.eos_id = full[5];  // the third new token
  std::vector<int64_t> cut = generate(model, {1, 2, 3}, opts);
  const size_t first = std::find(full.begin() + 3, full.end(), full[5]) - full.begin();
  EXPECT_EQ(cut, std::vector<int64_t>(full.begin(), full.begin() + first + 1));
  opts.max_new_tokens = 0;
  EXPECT_EQ(generate(model, {1, 2, 3}, opts), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_THROW(generate(model, {}, opts), Error);
  EXPECT_THROW(generate(model, {1, 48}, opts), Error);
}
TEST(PpoRollout, BatchedGreedyEqualsEachPromptAlone) {
  // Eight prompts of four lengths (groups share a length, one is alone; two span 5.6 segments of 8,
  // so they are read in a chunk of 4 whole segments, a whole segment, then streamed): greedy
  // rollouts decoded group by group give exactly the tokens of generate() on each prompt alone.
  torch::manual_seed(5);
  Decoder model(small_config(MemoryUpdate::delta));
  std::vector<std::vector<int64_t>> prompts = {{1, 5, 9}, {1, 7, 3, 11, 20, 4}, {1, 8, 8},
                                               {1, 30}, {1, 2, 38, 6, 6, 9}, {1, 12, 13}, {1}, {1}};
  for (int64_t t = 0; t < 44; ++t) {
    prompts[6].push_back(4 + (t * 7) % 35);
    prompts[7].push_back(4 + (t * 11 + 3) % 35);
  }
  const int64_t B = static_cast<int64_t>(prompts.size()), P = 45, pad = 0, eos = 3, max_new = 9;
  Batch b;
  b.tokens = torch::full({B, P}, pad, torch::kLong);
  b.lengths = torch::empty({B}, torch::kLong);
  for (int64_t i = 0; i < B; ++i) {
    const auto& p = prompts[static_cast<size_t>(i)];
    b.tokens[i].slice(0, 0, static_cast<int64_t>(p.size())).copy_(torch::tensor(p, torch::kLong));
    b.lengths[i] = static_cast<int64_t>(p.size());
  }
  std::vector<at::Generator> none;  // greedy: nothing drawn
  Rollout r = sample_rollout(model, b, {0.0, 0, 1.0}, max_new, eos, pad, none);
  for (int64_t i = 0; i < B; ++i) {
    GenerateOptions o;
    o.sampling.temperature = 0;
    o.max_new_tokens = max_new;
    o.eos_id = eos;
    const std::vector<int64_t> want = generate(model, prompts[static_cast<size_t>(i)], o);
    const int64_t L = r.lengths[i].item<int64_t>();
    ASSERT_EQ(L, static_cast<int64_t>(want.size())) << "prompt " << i;
    for (int64_t t = 0; t < L; ++t) EXPECT_EQ(r.tokens[i][t].item<int64_t>(), want[static_cast<size_t>(t)]) << i << "," << t;
    EXPECT_EQ(r.ended_eos[i].item<float>() == 1.f, want.back() == eos) << "prompt " << i;
  }
}

// Two prompts of lengths 3 and 4 with answers "a" and "b".
Batch two_prompts() {
  Batch b;
  b.tokens = torch::tensor({1, 5, 9, 0, 1, 7, 3, 11}, torch::kLong).view({2, 4});
  b.lengths = torch::tensor({3, 4}, torch::kLong);
  b.answers = {"a", "b"};
  return b;
}

// n generators seeded first, first + 1, ...
std::vector<at::Generator> generators(uint64_t first, int n) {
  std::vector<at::Generator> g;
  for (int i = 0; i < n; ++i) g.push_back(make_generator(first + static_cast<uint64_t>(i)));
  return g;
}

TEST(PpoRollout, RepeatedPromptsStayTogetherWithTheirAnswers) {
  // Two prompts, three samples each: rows 0-2 are prompt 0 with answer "a", rows 3-5 prompt 1 with "b";
  // sampled rollouts keep each copy's prompt tokens and answer.
  const Batch b = two_prompts();
  Batch r = repeat_prompts(b, 3);
  ASSERT_EQ(r.size(), 6);
  EXPECT_EQ(r.answers, (std::vector<std::string>{"a", "a", "a", "b", "b", "b"}));
  for (int64_t i = 0; i < 6; ++i) {
    EXPECT_TRUE(torch::equal(r.tokens[i], b.tokens[i / 3])) << i;
    EXPECT_EQ(r.lengths[i].item<int64_t>(), b.lengths[i / 3].item<int64_t>()) << i;
  }
  EXPECT_EQ(repeat_prompts(b, 1).size(), 2);
  torch::manual_seed(5);
  Decoder model(small_config(MemoryUpdate::delta));
  auto gens = generators(3, 6);
  Rollout ro = sample_rollout(model, r, {1.0, 0, 1.0}, 5, 3, 0, gens);
  EXPECT_EQ(ro.answers, r.answers);
  for (int64_t i = 0; i < 6; ++i) {
    const int64_t P = b.lengths[i / 3].item<int64_t>();
    EXPECT_EQ(ro.prompt_lengths[i].item<int64_t>(), P);
    EXPECT_TRUE(torch::equal(ro.tokens[i].slice(0, 0, P), b.tokens[i / 3].slice(0, 0, P))) << i;
  }
  std::vector<at::Generator> too_few(2, make_generator(0));
  EXPECT_THROW(sample_rollout(model, r, {1.0, 0, 1.0}, 5, 3, 0, too_few), Error);
}

// Each row samples from its own generator: the rows of prompt 1 (rows 3-5) get the same responses
// whether they are sampled alone or after prompt 0's rows, which a batch-wide generator would not
// give (the earlier rows would have drawn first). This is what lets N ranks sample what one does.
TEST(PpoRollout, ARowsSamplesDoNotDependOnTheOtherRows) {
  Batch all = repeat_prompts(two_prompts(), 3);
  Batch second = all;
  second.tokens = all.tokens.slice(0, 3);
  second.lengths = all.lengths.slice(0, 3);
  second.answers.assign(all.answers.begin() + 3, all.answers.end());
  torch::manual_seed(5);
  Decoder model(small_config(MemoryUpdate::delta));
  auto g_all = generators(100, 6), g_second = generators(103, 3);
  const SamplingOptions hot{1.5, 0, 1.0};  // a flat distribution: many different responses
  Rollout ra = sample_rollout(model, all, hot, 12, 3, 0, g_all);
  Rollout rs = sample_rollout(model, second, hot, 12, 3, 0, g_second);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(ra.responses[3 + i], rs.responses[i]) << i;
  // The rows' streams differ from each other (so the check above is not of identical rows).
  EXPECT_NE(ra.responses[3], ra.responses[4]);
}

}  // namespace test_core_generate
