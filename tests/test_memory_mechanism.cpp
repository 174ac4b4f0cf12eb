// The compressive memory's retrieval at 1M tokens, through the memory rules alone (no model): one
// key/value pair is written, then filler, and the read with the key is compared with the value.
// Two kinds of filler: random (a fresh key and value per token) and repeated (16 pairs cycled, as
// the passkey filler repeats its sentences). Rules: the paper's linear and delta updates
// (core/compressive_memory.h), the delta update with a write gate on the filler (memory.write_gate),
// and the unit_delta rule (L2-normalised keys, no normaliser z), whose definition, one token at a
// time, is also written out here as the reference its segment-at-once form is held to. Every
// expected figure comes from the algebra stated next to it. fp64 throughout; head dimension 64
// (the demo model's).
#include <gtest/gtest.h>

#include <cmath>

#include <torch/torch.h>

#include "core/compressive_memory.h"

namespace infini::test {
// Named, not anonymous: the suite also builds as one unity translation unit.
namespace test_memory_mechanism {

constexpr int64_t kD = 64;          // key and value dimension
constexpr int64_t kSegment = 2048;  // filler tokens folded per update
constexpr int64_t kRepeats = 16;    // distinct pairs of the repeated filler
constexpr double kEps = 1e-6;
// The cosine of a random direction with a fixed one in 64 dimensions has standard deviation
// 1/sqrt(64): |cos| < 3/8 is the chance band (3 standard deviations), i.e. no retrieval.
constexpr double kChance = 0.375;

torch::TensorOptions f64() { return torch::TensorOptions().dtype(torch::kDouble); }

double cosine(const torch::Tensor& a, const torch::Tensor& b) {
  return (torch::dot(a, b) / (a.norm() * b.norm())).item<double>();
}

// E[sigma(x)] and E[sigma(x)^2] for x ~ N(0, 1), sigma = ELU + 1:
//   E[sigma] = E[x + 1; x > 0] + E[e^x; x < 0] = (phi(0) + 1/2) + e^{1/2} Phi(-1)
//   E[sigma^2] = E[(x + 1)^2; x > 0] + E[e^{2x}; x < 0] = (1/2 + 2 phi(0) + 1/2) + e^2 Phi(-2)
double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }
const double kPhi0 = 1.0 / std::sqrt(2.0 * M_PI);
const double kMeanSigma = kPhi0 + 0.5 + std::exp(0.5) * normal_cdf(-1.0);  // 1.1605

struct Filler {
  bool repeated;
  torch::Tensor keys, values;  // repeated: the kRepeats pairs; random: unused
  at::Generator gen;
  // The next `n` filler keys and values (n a multiple of kRepeats when repeated).
  std::pair<torch::Tensor, torch::Tensor> next(int64_t n) {
    if (repeated) return {keys.repeat({n / kRepeats, 1}), values.repeat({n / kRepeats, 1})};
    return {torch::randn({n, kD}, gen, f64()), torch::randn({n, kD}, gen, f64())};
  }
};

Filler make_filler(bool repeated, uint64_t seed) {
  Filler f{repeated, {}, {}, at::detail::createCPUGenerator(seed)};
  f.keys = torch::randn({kRepeats, kD}, f.gen, f64());
  f.values = torch::randn({kRepeats, kD}, f.gen, f64());
  return f;
}

struct Probe {
  double cos;    // cos(read with the key, the value)
  double share;  // the key's own share of the normaliser: sigma(k) . sigma(k) / sigma(k) . z
};

// A memory of the model's (core/compressive_memory.h, the rule's own feature map): the pair, then
// filler in segments of `segment` tokens, the filler's writes through the write gate at
// `filler_gate` (1: no gate). Probes at `at`: the read's cosine and, for the rules with a
// normaliser, the key's share of it.
std::vector<Probe> model_memory(MemoryUpdate rule, bool repeated, double filler_gate, const std::vector<int64_t>& at,
                                int64_t segment = kSegment) {
  Filler filler = make_filler(repeated, 7);
  at::Generator g = at::detail::createCPUGenerator(3);
  const torch::Tensor key = torch::randn({1, kD}, g, f64()), value = torch::randn({1, kD}, g, f64());
  const torch::Tensor sk = memory_features(key, rule);
  MemoryState s{torch::zeros({kD, kD}, f64()), torch::zeros({kD}, f64())};
  s = memory_update(sk, value, s, rule, kEps);
  const torch::Tensor gate = filler_gate == 1.0 ? torch::Tensor() : torch::full({segment}, filler_gate, f64());
  std::vector<Probe> out;
  int64_t done = 0;
  for (int64_t stop : at) {
    for (; done < stop; done += segment) {
      auto [k, v] = filler.next(segment);
      s = memory_update(memory_features(k, rule), v, s, rule, kEps, gate);
    }
    const torch::Tensor read = memory_read(sk, s.M, s.z, kEps, rule)[0];
    out.push_back({cosine(read, value[0]), (torch::dot(sk[0], sk[0]) / torch::dot(sk[0], s.z)).item<double>()});
  }
  return out;
}

// The DeltaNet-style rule, one token at a time: k^ = k / |k|, M <- M + k^T (v - k^ M); read k^ M.
// Repeated filler: one cycle of the 16 pairs is the affine map M <- A M + C, applied cycle by cycle.
std::vector<double> unit_delta_memory(bool repeated, const std::vector<int64_t>& at, torch::Tensor* limit = nullptr) {
  Filler filler = make_filler(repeated, 7);
  at::Generator g = at::detail::createCPUGenerator(3);
  const torch::Tensor key = torch::randn({1, kD}, g, f64()), value = torch::randn({1, kD}, g, f64());
  const torch::Tensor kh = key / key.norm();
  torch::Tensor M = kh.t().matmul(value);  // the pair into empty memory
  auto step = [](torch::Tensor& m, const torch::Tensor& k, const torch::Tensor& v) {  // k (1, D) unit
    m = m + k.t().matmul(v - k.matmul(m));
  };
  torch::Tensor A = torch::eye(kD, f64()), C = torch::zeros({kD, kD}, f64());
  if (repeated) {
    for (int64_t p = 0; p < kRepeats; ++p) {  // compose the cycle: A and C start as identity and zero
      const torch::Tensor k = filler.keys[p].unsqueeze(0) / filler.keys[p].norm(), v = filler.values[p].unsqueeze(0);
      const torch::Tensor P = torch::eye(kD, f64()) - k.t().matmul(k);
      A = P.matmul(A);
      C = P.matmul(C) + k.t().matmul(v);
    }
    if (limit) {
      // The fixed point reached along k's directions: k's component outside the filler keys' span
      // is never touched, and inside the span M solves k_p M = v_p (pseudo-inverse).
      const torch::Tensor K = filler.keys / filler.keys.norm(2, 1, true);
      const torch::Tensor proj = K.t().matmul(torch::linalg_pinv(K.t()));  // onto span of the keys' rows
      const torch::Tensor kperp = kh - kh.matmul(proj);
      *limit = (kperp.matmul(kperp.t()) * value + kh.matmul(torch::linalg_pinv(K)).matmul(filler.values))[0];
    }
  }
  std::vector<double> out;
  int64_t done = 0;
  for (int64_t stop : at) {
    if (repeated) {
      for (; done < stop; done += kRepeats) M = A.matmul(M) + C;
    } else {
      for (; done < stop; ++done) {
        auto [k, v] = filler.next(1);
        step(M, k / k.norm(), v);
      }
    }
    out.push_back(cosine(kh.matmul(M)[0], value[0]));
  }
  return out;
}

const std::vector<int64_t> kLengths = {8192, 32768, 131072, 1048576};

TEST(MemoryMechanism, ThePapersRulesDiluteAsOneOverTheLength) {
  // z grows by sigma(k) every token whatever the rule, so the key's share of the normaliser is
  // |sigma(k*)|^2 / (|sigma(k*)|^2 + T E[sigma(k*) . sigma(k)]), E[sigma(k*) . sigma(k)] =
  // E[sigma] |sigma(k*)|_1 for random filler: about 1.46e-6 at 1M (|sigma|^2 ~ 64 x 1.97,
  // |sigma|_1 ~ 64 x 1.16). Under the linear rule the read is the z-weighted mean of every value
  // written, the key's weight being exactly this share: the value is ~1e-6 of the read, and the
  // read's cosine with it is a random vector's (inside the chance band). Repeated filler: the
  // same, with z = sigma(k*) + (T / 16) sum_p sigma(k_p) exactly.
  at::Generator g = at::detail::createCPUGenerator(3);
  const torch::Tensor sk = memory_sigma(torch::randn({1, kD}, g, f64()))[0];
  const double sq = torch::dot(sk, sk).item<double>(), l1 = sk.sum().item<double>();
  // Repeated filler: z = sigma(k*) + (T / 16) sum_p sigma(k_p) exactly.
  const double rep = memory_sigma(make_filler(true, 7).keys).matmul(sk).sum().item<double>();
  for (MemoryUpdate rule : {MemoryUpdate::linear, MemoryUpdate::delta}) {
    const auto random = model_memory(rule, false, 1.0, kLengths);
    const auto repeated = model_memory(rule, true, 1.0, kLengths);
    for (size_t i = 0; i < kLengths.size(); ++i) {
      const double T = static_cast<double>(kLengths[i]);
      const double want = sq / (sq + T * kMeanSigma * l1);
      EXPECT_NEAR(random[i].share, want, 0.03 * want) << "rule " << to_string(rule) << " T " << T;
      EXPECT_LT(std::abs(random[i].cos), kChance) << "rule " << to_string(rule) << " T " << T;
      EXPECT_NEAR(repeated[i].share, sq / (sq + T / kRepeats * rep), 1e-9 * repeated[i].share) << "rule " << to_string(rule);
      EXPECT_LT(std::abs(repeated[i].cos), kChance) << "rule " << to_string(rule) << " T " << T;
    }
    EXPECT_LT(random.back().share, 2e-6);
  }
}

TEST(MemoryMechanism, AWriteGateHoldsOnlyWhenItAllButClosesOnFiller) {
  // Gate g on every filler write (the model's write gate, memory.write_gate): z grows by g s per
  // filler token, so share = |s|^2 / (|s|^2 + g T E[s . s_filler]). Holding half the
  // normaliser at 1M needs g T E <= |s|^2, g <= ~1.3e-6: a sigmoid gate ~14 logits below zero.
  // At g = sigmoid(-16) = 1.1e-7 the key keeps > 90% of the normaliser and the read its value;
  // at g = sigmoid(-4) = 0.018 it is diluted as the paper's rule is at ~20K tokens.
  const double closed = 1.0 / (1.0 + std::exp(16.0)), ajar = 1.0 / (1.0 + std::exp(4.0));
  for (const bool repeated : {false, true}) {
    const auto held = model_memory(MemoryUpdate::delta, repeated, closed, kLengths);
    const auto lost = model_memory(MemoryUpdate::delta, repeated, ajar, kLengths);
    for (size_t i = 0; i < kLengths.size(); ++i) {
      EXPECT_GT(held[i].share, 0.9) << "repeated " << repeated << " T " << kLengths[i];
      EXPECT_GT(held[i].cos, 0.95) << "repeated " << repeated << " T " << kLengths[i];
    }
    EXPECT_LT(lost.back().share, 1e-3) << "repeated " << repeated;
    EXPECT_LT(std::abs(lost.back().cos), kChance) << "repeated " << repeated;
  }
}

TEST(MemoryMechanism, UnitKeyDeltaHoldsOnRepeatedFillerAndForgetsRandomFiller) {
  // Repeated filler: each write changes M only along its key, so k*'s component outside the 16
  // filler keys' span (~ 1 - 16/64 of it) is kept for ever and the read converges to the fixed
  // point computed in unit_delta_memory: the same from 8K to 1M, its cosine well above chance.
  torch::Tensor limit;
  const auto repeated = unit_delta_memory(true, kLengths, &limit);
  for (size_t i = 0; i < kLengths.size(); ++i) EXPECT_GT(repeated[i], 0.6) << "T " << kLengths[i];
  EXPECT_NEAR(repeated.front(), repeated.back(), 1e-9) << "flat from 8K to 1M";
  // The converged read is the fixed point (cosine with the value the same to 1e-9).
  at::Generator g = at::detail::createCPUGenerator(3);
  torch::randn({1, kD}, g, f64());
  const torch::Tensor value = torch::randn({1, kD}, g, f64())[0];
  EXPECT_NEAR(repeated.back(), cosine(limit, value), 1e-9);
  // Random filler: each write keeps a fraction 1 - (k^ . k*)^2 of k*'s component, 1 - 1/64 on
  // average, so after T tokens about (63/64)^T of it is left: e^-32 at 2048 tokens. The read is
  // then a mixture of the last filler values: a random vector's cosine.
  const auto random = unit_delta_memory(false, {0, 2048});
  EXPECT_NEAR(random[0], 1.0, 1e-12);  // right after the write the read is the value
  EXPECT_LT(std::abs(random[1]), kChance);
}

TEST(MemoryMechanism, TheUnitDeltaOptionFollowsItsTokenByTokenDefinition) {
  // The model's unit_delta (a whole segment of 2048 tokens per update, one triangular solve) reads
  // what the token-by-token definition reads: on repeated filler the fixed point, already reached
  // at 8K and stationary from there (each segment is 128 whole cycles of the filler, and the fixed
  // point is fixed under one cycle), so the read stays the same to 1M.
  torch::Tensor limit;
  const std::vector<int64_t> at = {8192, 32768};
  const auto reference = unit_delta_memory(true, at, &limit);
  const auto model = model_memory(MemoryUpdate::unit_delta, true, 1.0, at);
  for (size_t i = 0; i < at.size(); ++i) {
    EXPECT_NEAR(model[i].cos, reference[i], 1e-9) << "T " << at[i];
    EXPECT_GT(model[i].cos, 0.6) << "T " << at[i];
  }
  // Random filler: forgotten by 2048 tokens, as the definition forgets it.
  EXPECT_LT(std::abs(model_memory(MemoryUpdate::unit_delta, false, 1.0, {2048}).back().cos), kChance);
}

TEST(MemoryMechanism, UnitDeltaWithAClosedWriteGateHoldsOnRandomFillerTo1M) {
  // A gated write w k^T (v - k M) keeps a fraction 1 - w (k^ . k*)^2 of the key's component,
  // 1 - w / 64 on average: after T tokens about exp(-w T / 64) of it is left. At w = sigmoid(-16)
  // = 1.1e-7 that is 0.998 at 1M, and the filler's own writes add about w sqrt(T / 64) of a value
  // (1e-5 of it): the read is the value (cosine > 0.99) from 8K to 1M. At w = sigmoid(-4) = 0.018
  // it is exp(-300) at 1M: gone. Segments of 64 tokens keep the solves small.
  const double closed = 1.0 / (1.0 + std::exp(16.0)), ajar = 1.0 / (1.0 + std::exp(4.0));
  const auto held = model_memory(MemoryUpdate::unit_delta, false, closed, kLengths, 64);
  for (size_t i = 0; i < kLengths.size(); ++i) EXPECT_GT(held[i].cos, 0.99) << "T " << kLengths[i];
  const auto lost = model_memory(MemoryUpdate::unit_delta, false, ajar, {32768}, 64);
  EXPECT_LT(std::abs(lost.back().cos), kChance);
}

}  // namespace test_memory_mechanism
}  // namespace infini::test
