// Properties of the Infini-Transformer that need no reference: causality, parallel == streaming,
// hand-derived memory arithmetic, finite-difference gradients, detach, bounded state, bf16.
// Not the comparison with the Python reference: that is test_core_model.cpp.
#include <gtest/gtest.h>

#include <cmath>

#include "core/compat.h"
#include "core/compressive_memory.h"
#include "core/decoder.h"
#include "core/error.h"
#include "support/small_model.h"

// Everything of this file in its own namespace: the suite also builds as one unity translation unit.
namespace test_core_model_props {

namespace {

using infini::Decoder;
using infini::MemoryUpdate;
using infini::ModelConfig;

using infini::test::small_config;
using infini::test::small_model;

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

using infini::test::MemoryVariant;

// Every property below holds for each update rule, with and without the write gate.
class MemoryRules : public ::testing::TestWithParam<MemoryVariant> {};

TEST_P(MemoryRules, CausalAcrossSegmentBoundaries) {
  Decoder m = small_model(GetParam(), 1);
  torch::NoGradGuard ng;
  torch::Tensor tok = torch::randint(0, 40, {2, 21}, torch::kLong);
  torch::Tensor base = m->forward(tok);
  for (int64_t t : {3, 8, 10, 16, 20}) {
    torch::Tensor p = tok.clone();
    p.index_put_({torch::indexing::Slice(), t}, (tok.index({0, t}).item<int64_t>() + 1) % 40);
    torch::Tensor out = m->forward(p);
    if (t > 0) {
      EXPECT_LE(max_diff(out.narrow(1, 0, t), base.narrow(1, 0, t)), 1e-6) << "t=" << t;
    }
    EXPECT_GT(max_diff(out.narrow(1, t, 1), base.narrow(1, t, 1)), 1e-4) << "t=" << t;
    // Later segments still see the change, through memory only.
    if (t < 8) {
      EXPECT_GT(max_diff(out.narrow(1, 16, 5), base.narrow(1, 16, 5)), 1e-5) << "t=" << t;
    }
  }
}

TEST_P(MemoryRules, StreamingEqualsParallel) {
  Decoder m = small_model(GetParam(), 2);
  torch::NoGradGuard ng;
  torch::Tensor tok = torch::randint(0, 40, {3, 37}, torch::kLong);  // 37 = 4 * 8 + 5
  torch::Tensor want = m->forward(tok);

  infini::StreamState st = m->new_state(3);
  std::vector<torch::Tensor> outs;
  int64_t at = 0;
  for (int64_t len : {5, 11, 2, 3, 16}) {
    outs.push_back(m->forward_stream(st, tok.narrow(1, at, len)));
    at += len;
  }
  EXPECT_LE(max_diff(torch::cat(outs, 1), want), 1e-5);

  infini::StreamState one = m->new_state(3);
  outs.clear();
  for (int64_t t = 0; t < 37; ++t) outs.push_back(m->forward_stream(one, tok.narrow(1, t, 1)));
  EXPECT_LE(max_diff(torch::cat(outs, 1), want), 1e-5);
  EXPECT_EQ(one.tokens_seen, 37);
  EXPECT_EQ(one.position(), 5);
  // Both feeds wrote the same 4 completed segments into memory (M sums 32 outer products; the
  // bound is fp32 rounding relative to its size).
  for (size_t l = 0; l < st.layers.size(); ++l) {
    const double scale = std::max(1.0, one.layers[l].M.abs().max().item<double>());
    EXPECT_LE(max_diff(st.layers[l].M, one.layers[l].M), 1e-5 * scale) << "layer " << l << ", max |M| " << scale;
  }
}

TEST_P(MemoryRules, ParallelContinuesAStreamedPrefix) {
  // Whole segments streamed, the rest in parallel from their memory == the parallel pass over all.
  Decoder m = small_model(GetParam(), 6);
  torch::NoGradGuard ng;
  torch::Tensor tok = torch::randint(0, 40, {2, 37}, torch::kLong);
  torch::Tensor want = m->trunk(tok);
  for (int64_t P : {8, 24, 32}) {
    infini::StreamState st = m->new_state(2);
    m->trunk_stream(st, tok.narrow(1, 0, P));
    torch::Tensor got = m->trunk(tok.narrow(1, P, 37 - P), st);
    EXPECT_LE(max_diff(got, want.narrow(1, P, 37 - P)), 1e-5) << "P=" << P;
  }
  // advance: the parallel path moves the state as streaming does (here 16 + 8 tokens: 3 segments).
  infini::StreamState streamed = m->new_state(2), advanced = m->new_state(2);
  m->trunk_stream(streamed, tok.narrow(1, 0, 24));
  m->advance(advanced, tok.narrow(1, 0, 16));
  m->advance(advanced, tok.narrow(1, 16, 8));
  EXPECT_EQ(advanced.tokens_seen, 24);
  for (size_t l = 0; l < streamed.layers.size(); ++l) {
    EXPECT_LE(max_diff(advanced.layers[l].M, streamed.layers[l].M), 1e-5) << l;
    EXPECT_LE(max_diff(advanced.layers[l].z, streamed.layers[l].z), 1e-4) << l;
  }
  EXPECT_LE(max_diff(m->trunk(tok.narrow(1, 24, 13), advanced), want.narrow(1, 24, 13)), 1e-5);
  EXPECT_LE(max_diff(m->forward_stream(advanced, tok.narrow(1, 24, 13)), m->forward(tok).narrow(1, 24, 13)), 1e-5);

  // read_prompt: from the start or mid-segment, any chunk size, the last position's hidden state.
  for (int64_t lead : {0, 3}) {
    for (int64_t chunk : {1, 2, 64}) {
      infini::StreamState st = m->new_state(2);
      if (lead > 0) m->trunk_stream(st, tok.narrow(1, 0, lead));
      torch::Tensor h = m->read_prompt(st, tok.narrow(1, lead, 37 - lead), chunk);
      EXPECT_EQ(st.tokens_seen, 37);
      EXPECT_LE(max_diff(h, want.narrow(1, 36, 1)), 1e-5) << "lead=" << lead << " chunk=" << chunk;
    }
  }

  // read_prompt with the memory reset per segment: skipping to the last token's segment gives what
  // that segment alone gives (a fresh sequence of its tokens), and what streaming every token gives.
  for (int64_t lead : {0, 3, 20}) {
    infini::StreamState st = m->new_state(2), every = m->new_state(2);
    st.no_memory = every.no_memory = true;
    if (lead > 0) {
      m->trunk_stream(st, tok.narrow(1, 0, lead));
      m->trunk_stream(every, tok.narrow(1, 0, lead));
    }
    torch::Tensor h = m->read_prompt(st, tok.narrow(1, lead, 37 - lead));
    EXPECT_EQ(st.tokens_seen, 37);
    torch::Tensor alone = m->trunk(tok.narrow(1, 32, 5)).narrow(1, 4, 1);  // segment 4 (tokens 32-36) alone
    EXPECT_LE(max_diff(h, alone), 1e-5) << "lead=" << lead;
    torch::Tensor streamed = m->trunk_stream(every, tok.narrow(1, lead, 37 - lead));
    EXPECT_LE(max_diff(h, streamed.narrow(1, 36 - lead, 1)), 1e-5) << "lead=" << lead;
    EXPECT_GT(max_diff(h, want.narrow(1, 36, 1)), 1e-4) << "the memory matters here, lead=" << lead;
  }

  infini::StreamState mid = m->new_state(2);
  m->trunk_stream(mid, tok.narrow(1, 0, 5));
  EXPECT_THROW(m->trunk(tok.narrow(1, 5, 8), mid), c10::Error);  // not on a segment boundary
  EXPECT_THROW(m->advance(advanced, tok.narrow(1, 0, 5)), c10::Error);  // not whole segments
}

TEST_P(MemoryRules, FiniteDifferenceGradientFloat64) {
  ModelConfig c = small_config(GetParam());
  c.d_model = 8;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.segment_len = 3;
  c.init_std = 0.5;
  torch::manual_seed(3);
  infini::InfiniAttention att(c);
  {
    torch::NoGradGuard ng;
    for (auto& p : att->parameters()) p.normal_(0, 0.5);
  }
  att->to(torch::kDouble);
  torch::Tensor x = torch::randn({1, 8, 8}, torch::kDouble).requires_grad_();  // 3 segments, last partial
  torch::Tensor w = torch::randn({1, 8, 8}, torch::kDouble);
  auto loss = [&]() { return (att(x) * w).sum(); };
  loss().backward();

  const double h = 1e-6;
  auto check = [&](torch::Tensor p, torch::Tensor grad, const char* what) {
    torch::NoGradGuard ng;
    torch::Tensor flat = p.view({-1});
    for (int64_t i = 0; i < flat.numel(); i += std::max<int64_t>(1, flat.numel() / 24)) {
      double old = flat[i].item<double>();
      flat[i] = old + h;
      double up = loss().item<double>();
      flat[i] = old - h;
      double down = loss().item<double>();
      flat[i] = old;
      double fd = (up - down) / (2 * h);
      double an = grad.view({-1})[i].item<double>();
      EXPECT_NEAR(an, fd, 1e-6 * std::max(1.0, std::abs(fd))) << what << "[" << i << "]";
    }
  };
  check(x.detach(), x.grad(), "x");
  check(att->wq->weight.detach(), att->wq->weight.grad(), "wq");
  check(att->wk->weight.detach(), att->wk->weight.grad(), "wk");
  check(att->wv->weight.detach(), att->wv->weight.grad(), "wv");
  check(att->gate.detach(), att->gate.grad(), "gate");
  if (GetParam().write_gate) {
    check(att->write_gate.detach(), att->write_gate.grad(), "write_gate");
    check(att->write_gate_bias.detach(), att->write_gate_bias.grad(), "write_gate_bias");
  }
}

TEST_P(MemoryRules, DetachStopsGradientThroughMemory) {
  for (auto mode : {infini::MemoryGradient::bptt, infini::MemoryGradient::detach}) {
    ModelConfig c = small_config(GetParam());
    c.memory.gradient = mode;
    torch::manual_seed(4);
    infini::InfiniAttention att(c);
    torch::Tensor x = torch::randn({2, 16, 24}).requires_grad_();
    att(x).narrow(1, 8, 8).pow(2).sum().backward();  // loss on segment 2 only
    // Local attention never leaves a segment, so segment 1 reaches segment 2 through memory only.
    double g1 = x.grad().narrow(1, 0, 8).abs().max().item<double>();
    if (mode == infini::MemoryGradient::detach) {
      EXPECT_EQ(g1, 0.0);
    } else {
      EXPECT_GT(g1, 1e-6);
    }
    EXPECT_GT(x.grad().narrow(1, 8, 8).abs().max().item<double>(), 1e-6);
  }
}

TEST_P(MemoryRules, PrefixStatesEqualSequentialUpdates) {
  const MemoryUpdate rule = GetParam().update;
  torch::manual_seed(5);
  torch::Tensor sk = infini::memory_features(torch::randn({2, 4, 3, 5, 6}), rule);  // (B, S, Hkv, N, Dk)
  torch::Tensor v = torch::randn({2, 4, 3, 5, 7});
  torch::Tensor w = GetParam().write_gate ? torch::rand({2, 4, 3, 5}) : torch::Tensor();
  infini::MemoryState all = infini::memory_prefix_states(sk, v, rule, infini::MemoryGradient::bptt, 1e-6, w);
  infini::MemoryState s{torch::zeros({2, 3, 6, 7}), torch::zeros({2, 3, 6})};
  for (int64_t i = 0; i < 4; ++i) {
    EXPECT_LE(max_diff(all.M.select(1, i), s.M), 1e-5) << i;
    EXPECT_LE(max_diff(all.z.select(1, i), s.z), 1e-5) << i;
    s = infini::memory_update(sk.select(1, i), v.select(1, i), s, rule, 1e-6, w.defined() ? w.select(1, i) : w);
  }
}

INSTANTIATE_TEST_SUITE_P(Rules, MemoryRules, infini::test::all_memory_variants(),
                         infini::test::variant_param_name);

// unit_delta's segment update (one triangular solve) against its definition written out token by
// token: u_n = w_n (v_n - k_n M_{n-1}), M_n = M_{n-1} + k_n^T u_n, in fp64 from a non-zero memory.
TEST(CompressiveMemory, UnitDeltaSegmentEqualsTokenByToken) {
  torch::manual_seed(11);
  auto f64 = torch::TensorOptions().dtype(torch::kDouble);
  const torch::Tensor k = infini::memory_features(torch::randn({3, 12, 5}, f64), MemoryUpdate::unit_delta);
  const torch::Tensor v = torch::randn({3, 12, 4}, f64), w = torch::rand({3, 12}, f64);
  EXPECT_LE(max_diff(k.norm(2, -1), torch::ones({3, 12}, f64)), 1e-12);
  const infini::MemoryState s0{torch::randn({3, 5, 4}, f64), torch::zeros({3, 5}, f64)};
  for (const bool gated : {false, true}) {
    torch::Tensor M = s0.M.clone();
    for (int64_t n = 0; n < 12; ++n) {
      const torch::Tensor kn = k.narrow(1, n, 1), vn = v.narrow(1, n, 1);  // (3, 1, 5), (3, 1, 4)
      torch::Tensor u = vn - kn.matmul(M);
      if (gated) u = u * w.narrow(1, n, 1).unsqueeze(-1);
      M = M + kn.transpose(1, 2).matmul(u);
    }
    const infini::MemoryState s =
        infini::memory_update(k, v, s0, MemoryUpdate::unit_delta, 1e-6, gated ? w : torch::Tensor());
    EXPECT_LE(max_diff(s.M, M), 1e-12) << "gated " << gated;
    EXPECT_EQ(s.z.abs().max().item<double>(), 0.0) << "unit_delta keeps z at 0";
  }
}

// One head, Dk = Dv = 2, eps negligible. sigma(1) = 2, sigma(0) = 1.
// Segment 1: keys (1,0),(0,0) -> sk (2,1),(1,1); values (1,2),(3,0).
//   read: M0 = 0 -> exactly 0.
//   update (both rules, since M0 = 0 retrieves 0): M1 = (2,1)^T(1,2) + (1,1)^T(3,0) = [[5,4],[4,2]],
//   z1 = (3,2).
// Segment 2: query (1,0) -> sq (2,1): read = (2*5+4, 2*4+2) / (2*3+2) = (14,10)/8 = (1.75, 1.25).
//   key (1,0) -> sk (2,1), value (0,4).
//   linear: M2 = M1 + (2,1)^T(0,4) = [[5,12],[4,6]]
//   delta:  retrieved = (1.75,1.25), written (0,4)-(1.75,1.25) = (-1.75,2.75),
//           M2 = M1 + (2,1)^T(-1.75,2.75) = [[1.5,9.5],[2.25,4.75]]
//   z2 = (5,3). Read with sq (1,1): linear (9,18)/8 = (1.125,2.25); delta (3.75,14.25)/8 = (0.46875,1.78125).
TEST(CompressiveMemory, HandComputedTwoSegments) {
  const double eps = 1e-12;
  auto T = [](std::vector<float> v, std::vector<int64_t> shape) { return torch::tensor(v).view(shape); };
  torch::Tensor sk1 = infini::memory_sigma(T({1, 0, 0, 0}, {2, 2}));
  EXPECT_TRUE(torch::equal(sk1, T({2, 1, 1, 1}, {2, 2})));
  torch::Tensor v1 = T({1, 2, 3, 0}, {2, 2});
  torch::Tensor sq2 = infini::memory_sigma(T({1, 0}, {1, 2}));
  torch::Tensor sk2 = sq2, v2 = T({0, 4}, {1, 2});
  for (auto rule : {MemoryUpdate::linear, MemoryUpdate::delta}) {
    infini::MemoryState s0{torch::zeros({2, 2}), torch::zeros({2})};
    EXPECT_TRUE(torch::equal(infini::memory_read(sq2, s0.M, s0.z, eps, rule), torch::zeros({1, 2})));
    infini::MemoryState s1 = infini::memory_update(sk1, v1, s0, rule, eps);
    EXPECT_LE(max_diff(s1.M, T({5, 4, 4, 2}, {2, 2})), 1e-6);
    EXPECT_LE(max_diff(s1.z, T({3, 2}, {2})), 1e-6);
    EXPECT_LE(max_diff(infini::memory_read(sq2, s1.M, s1.z, eps, rule), T({1.75, 1.25}, {1, 2})), 1e-6);
    infini::MemoryState s2 = infini::memory_update(sk2, v2, s1, rule, eps);
    bool lin = rule == MemoryUpdate::linear;
    EXPECT_LE(max_diff(s2.M, lin ? T({5, 12, 4, 6}, {2, 2}) : T({1.5, 9.5, 2.25, 4.75}, {2, 2})), 1e-6);
    EXPECT_LE(max_diff(s2.z, T({5, 3}, {2})), 1e-6);
    torch::Tensor r = infini::memory_read(T({1, 1}, {1, 2}), s2.M, s2.z, eps, rule);
    EXPECT_LE(max_diff(r, lin ? T({1.125, 2.25}, {1, 2}) : T({0.46875, 1.78125}, {1, 2})), 1e-6);
  }
}

// unit_delta by hand, Dk = Dv = 2: raw keys (2,0) and (3,4) become (1,0) and (0.6,0.8); values
// (1,2) and (3,4); write gates 1 and 0.5.
//   token 1: M1 = (1,0)^T ((1,2) - (1,0) 0) = [[1,2],[0,0]]
//   token 2: (0.6,0.8) M1 = (0.6,1.2); 0.5 ((3,4) - (0.6,1.2)) = (1.2,1.4);
//            M2 = M1 + (0.6,0.8)^T (1.2,1.4) = [[1.72,2.84],[0.96,1.12]]
//   read (no normaliser): query (0,5) -> (0,1) -> (0.96,1.12); query (1,0) -> (1.72,2.84). z stays 0.
TEST(CompressiveMemory, HandComputedUnitDeltaWithWriteGate) {
  auto T = [](std::vector<float> v, std::vector<int64_t> shape) { return torch::tensor(v).view(shape); };
  const MemoryUpdate rule = MemoryUpdate::unit_delta;
  torch::Tensor k = infini::memory_features(T({2, 0, 3, 4}, {2, 2}), rule);
  EXPECT_LE(max_diff(k, T({1, 0, 0.6f, 0.8f}, {2, 2})), 1e-7);
  infini::MemoryState s0{torch::zeros({2, 2}), torch::zeros({2})};
  infini::MemoryState s = infini::memory_update(k, T({1, 2, 3, 4}, {2, 2}), s0, rule, 1e-6, T({1, 0.5f}, {2}));
  EXPECT_LE(max_diff(s.M, T({1.72f, 2.84f, 0.96f, 1.12f}, {2, 2})), 1e-6);
  EXPECT_EQ(s.z.abs().max().item<float>(), 0.0f);
  torch::Tensor q = infini::memory_features(T({0, 5, 1, 0}, {2, 2}), rule);
  EXPECT_LE(max_diff(infini::memory_read(q, s.M, s.z, 1e-6, rule), T({0.96f, 1.12f, 1.72f, 2.84f}, {2, 2})), 1e-6);
  // The packed form reads and writes the same.
  torch::Tensor Mz = infini::memory_update_packed(k, T({1, 2, 3, 4}, {2, 2}), infini::memory_pack(s0.M, s0.z), rule,
                                                  1e-6, T({1, 0.5f}, {2}));
  EXPECT_LE(max_diff(infini::memory_read_packed(q, Mz, 1e-6, rule), T({0.96f, 1.12f, 1.72f, 2.84f}, {2, 2})), 1e-6);
}

TEST(InfiniAttention, FirstSegmentReadsExactlyZeroAndGateStartsAtHalf) {
  torch::manual_seed(6);
  Decoder m(small_config(MemoryUpdate::delta));
  for (auto& b : m->blocks) {
    EXPECT_EQ(b->attention->gate.scalar_type(), torch::kFloat);
    EXPECT_EQ(b->attention->gate.sizes(), (std::vector<int64_t>{4}));
    EXPECT_TRUE(torch::equal(torch::sigmoid(b->attention->gate), torch::full({4}, 0.5)));
  }
  torch::NoGradGuard ng;
  torch::Tensor x = torch::randn({2, 20, 24});
  infini::AttentionParts p = m->blocks[0]->attention->forward_parts(x, true);
  EXPECT_EQ(p.a_mem.narrow(1, 0, 8).abs().max().item<float>(), 0.0f);
  EXPECT_GT(p.a_mem.narrow(1, 8, 12).abs().min().item<float>(), 0.0f);
}

TEST(InfiniAttention, ClosedGateEqualsMemoryDisabledModel) {
  Decoder mem = small_model(MemoryUpdate::delta, 7);
  ModelConfig c = small_config(MemoryUpdate::delta);
  c.memory.enabled = false;
  Decoder plain(c);
  torch::NoGradGuard ng;
  auto dst = plain->named_parameters();
  size_t gates = 0;
  for (auto& p : mem->named_parameters()) {
    if (p.key().find(".gate") != std::string::npos) {
      p.value().fill_(-1e4);  // sigmoid(-1e4) == 0 in fp32
      ++gates;
      EXPECT_EQ(dst.find(p.key()), nullptr);
      continue;
    }
    dst[p.key()].copy_(p.value());
  }
  EXPECT_EQ(gates, 2u);
  EXPECT_EQ(dst.size() + gates, mem->named_parameters().size());
  torch::Tensor tok = torch::randint(0, 40, {2, 29}, torch::kLong);
  EXPECT_LE(max_diff(mem->forward(tok), plain->forward(tok)), 1e-6);
}

TEST(InfiniAttention, AClosedWriteGateWritesNothing) {
  // A write gate closed for every token (sigmoid(-1e4) == 0 in fp32) leaves M and z at zero, so
  // every read is exactly 0 under each rule, in parallel and streaming.
  for (MemoryUpdate rule : {MemoryUpdate::linear, MemoryUpdate::delta, MemoryUpdate::unit_delta}) {
    Decoder m = small_model(infini::test::MemoryVariant{rule, true}, 9);
    torch::NoGradGuard ng;
    for (auto& b : m->blocks) b->attention->write_gate_bias.fill_(-1e4);
    torch::Tensor x = torch::randn({2, 29, 24});
    infini::AttentionParts p = m->blocks[0]->attention->forward_parts(x, true);
    EXPECT_EQ(p.a_mem.abs().max().item<float>(), 0.0f) << infini::to_string(rule);
    infini::StreamState st = m->new_state(2);
    m->forward_stream(st, torch::randint(0, 40, {2, 29}, torch::kLong));
    for (const auto& l : st.layers) {
      EXPECT_EQ(l.M.abs().max().item<float>(), 0.0f) << infini::to_string(rule);
      EXPECT_EQ(l.z.abs().max().item<float>(), 0.0f) << infini::to_string(rule);
    }
  }
}

TEST(StreamState, BytesConstantFrom1KTo100KTokens) {
  ModelConfig c;
  c.vocab_size = 16;
  c.d_model = 8;
  c.n_layers = 1;
  c.n_heads = 2;
  c.ffn_hidden = 16;
  c.segment_len = 64;
  torch::manual_seed(8);
  Decoder m(c);
  torch::NoGradGuard ng;
  infini::StreamState st = m->new_state(1);
  const int64_t expect = 4 * (2 * 4 * 4 + 2 * 4 + 3 * 2 * 64 * 4);  // fp32: M, z, k, rotated k and v caches
  EXPECT_EQ(st.bytes(), expect);
  m->forward_stream(st, torch::randint(0, 16, {1, 1000}, torch::kLong));
  const int64_t at_1k = st.bytes();
  torch::Tensor last;
  while (st.tokens_seen < 100000) {
    int64_t n = std::min<int64_t>(4099, 100000 - st.tokens_seen);
    last = m->forward_stream(st, torch::randint(0, 16, {1, n}, torch::kLong));
  }
  EXPECT_EQ(st.tokens_seen, 100000);
  EXPECT_EQ(st.bytes(), at_1k);
  EXPECT_EQ(at_1k, expect);
  EXPECT_TRUE(torch::isfinite(last).all().item<bool>());
  EXPECT_GT(st.layers[0].z.min().item<float>(), 1000.0f);  // ~1560 segments were folded in
  st.clear_memory();
  EXPECT_EQ(st.layers[0].M.abs().max().item<float>(), 0.0f);
}

TEST(Precision, Bf16AutocastCloseToFp32AndMemoryStaysFp32) {
  Decoder m = small_model(MemoryUpdate::delta, 9);
  torch::NoGradGuard ng;
  torch::Tensor tok = torch::randint(0, 40, {2, 37}, torch::kLong);
  torch::Tensor ref = m->forward(tok);
  torch::Tensor low;
  infini::StreamState st = m->new_state(2);
  torch::Tensor low_stream;
  {
    infini::compat::AutocastGuard ac(true, torch::kCPU);
    low = m->forward(tok);
    low_stream = m->forward_stream(st, tok);
  }
  EXPECT_EQ(low.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::isfinite(low).all().item<bool>());
  const double scale = ref.abs().max().item<double>();
  EXPECT_GT(max_diff(low, ref), 0.0);  // bf16 really ran
  EXPECT_LE(max_diff(low, ref), 0.05 * scale);
  EXPECT_LE(max_diff(low_stream, ref), 0.05 * scale);
  for (auto& l : st.layers) {
    EXPECT_EQ(l.M.scalar_type(), torch::kFloat);
    EXPECT_EQ(l.z.scalar_type(), torch::kFloat);
  }
}

TEST(Decoder, BadConfigIsRefusedWithTheKey) {
  ModelConfig c;
  c.d_model = 30;
  c.n_heads = 4;
  try {
    Decoder m(c);
    FAIL() << "no error";
  } catch (const infini::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("model.d_model"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace test_core_model_props
