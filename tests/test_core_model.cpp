// The model against the independent Python reference (tests/reference/model_reference.py):
// every module and the whole decoder, parallel and streaming, fp32 at 1e-5, for five variants.
// Not the properties (causality, gradients, sizes): those are in test_core_model_props.cpp.
#include <gtest/gtest.h>

#include <string>

#include "core/decoder.h"
#include "core/rope.h"
#include "core/safetensors.h"

// Everything of this file in its own namespace: the suite also builds as one unity translation unit.
namespace test_core_model {

namespace {

using infini::Decoder;
using infini::ModelConfig;

struct Golden {
  infini::SafeTensors st;
  ModelConfig cfg;
  infini::Head head = infini::Head::lm;
  torch::Tensor t(const std::string& name) const {
    auto it = st.tensors.find(name);
    if (it == st.tensors.end()) throw std::runtime_error("golden lacks " + name);
    return it->second;
  }
};

Golden load_golden(const std::string& variant) {
  Golden g;
  g.st = infini::load_safetensors(std::string(INFINI_SOURCE_DIR) + "/tests/golden/model_" + variant + ".safetensors");
  auto m = [&](const char* k) { return g.st.metadata.at(k); };
  g.cfg.vocab_size = std::stoll(m("vocab_size"));
  g.cfg.d_model = std::stoll(m("d_model"));
  g.cfg.n_layers = std::stoll(m("n_layers"));
  g.cfg.n_heads = std::stoll(m("n_heads"));
  g.cfg.n_kv_heads = std::stoll(m("n_kv_heads"));
  g.cfg.ffn_hidden = std::stoll(m("ffn_hidden"));
  g.cfg.segment_len = std::stoll(m("segment_len"));
  g.cfg.rope_theta = std::stod(m("rope_theta"));
  g.cfg.norm_eps = std::stod(m("norm_eps"));
  g.cfg.memory_eps = std::stod(m("memory_eps"));
  g.cfg.memory.enabled = m("memory_enabled") == "true";
  g.cfg.memory.update = m("update") == "delta" ? infini::MemoryUpdate::delta : infini::MemoryUpdate::linear;
  g.cfg.tie_embeddings = m("tie_embeddings") == "true";
  g.head = m("head") == "scalar" ? infini::Head::scalar : infini::Head::lm;
  return g;
}

// Builds the decoder and loads the reference weights, checking the registered names are exactly
// the reference's (they are a file format).
Decoder build(const Golden& g) {
  Decoder model(g.cfg, g.head);
  torch::NoGradGuard ng;
  size_t expected = 0;
  for (const auto& kv : g.st.tensors) expected += kv.first.rfind("param.", 0) == 0;
  auto params = model->named_parameters();
  EXPECT_EQ(params.size(), expected);
  for (auto& p : params) {
    torch::Tensor src = g.t("param." + p.key());
    EXPECT_EQ(src.sizes(), p.value().sizes()) << p.key();
    p.value().copy_(src);
  }
  return model;
}

void expect_close(const torch::Tensor& a, const torch::Tensor& b, double tol, const std::string& what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  double err = (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
  double scale = std::max(1.0, b.abs().max().item<double>());
  EXPECT_LE(err, tol * scale) << what << ": max abs diff " << err;
}

class ModelGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelGolden, ModulesMatchReference) {
  Golden g = load_golden(GetParam());
  Decoder model = build(g);
  torch::NoGradGuard ng;
  torch::Tensor x = g.t("x");  // (B, T, D)
  const int64_t B = x.size(0), T = x.size(1), H = g.cfg.n_heads;
  auto& b0 = model->blocks[0];
  expect_close(b0->attention_norm(x), g.t("rmsnorm"), 1e-5, "rmsnorm");
  // RoPE at positions 3.. over (B, H, T, Dh)
  torch::Tensor xh = x.view({B, T, H, -1}).transpose(1, 2);
  torch::Tensor r = infini::apply_rope(xh, infini::rope_tables(3, T, g.cfg.head_dim(), g.cfg.rope_theta));
  expect_close(r.transpose(1, 2).reshape({B, T, -1}), g.t("rope"), 1e-5, "rope");
  expect_close(b0->feed_forward(x), g.t("swiglu"), 1e-5, "swiglu");
  infini::AttentionParts parts = b0->attention->forward_parts(x, true);
  expect_close(parts.out, g.t("attention"), 1e-5, "attention");
  expect_close(parts.a_dot, g.t("attention.a_dot"), 1e-5, "a_dot");
  if (g.cfg.memory.enabled) expect_close(parts.a_mem, g.t("attention.a_mem"), 1e-5, "a_mem");
  expect_close(b0(x), g.t("block"), 1e-5, "block");
}

TEST_P(ModelGolden, DecoderMatchesReferenceParallelAndStreaming) {
  Golden g = load_golden(GetParam());
  Decoder model = build(g);
  torch::NoGradGuard ng;
  torch::Tensor tokens = g.t("tokens");  // (2, 21): two full segments of 8 and a partial one
  torch::Tensor want = g.t("output");
  expect_close(model->forward(tokens), want, 1e-5, "forward");

  infini::StreamState st = model->new_state(tokens.size(0));
  std::vector<torch::Tensor> outs;
  int64_t at = 0;
  for (int64_t len : {3, 9, 1, 8}) {  // crosses boundaries at 8 and 16 mid-chunk
    outs.push_back(model->forward_stream(st, tokens.narrow(1, at, len)));
    at += len;
  }
  EXPECT_EQ(st.tokens_seen, 21);
  expect_close(torch::cat(outs, 1), want, 1e-5, "forward_stream");
}

INSTANTIATE_TEST_SUITE_P(Variants, ModelGolden,
                         ::testing::Values("linear", "delta", "tied", "scalar", "nomem"));

TEST(ModelGolden, ScalarHeadShapeAndTiedHasNoOutput) {
  Golden g = load_golden("scalar");
  Decoder scalar = build(g);
  EXPECT_EQ(scalar->forward(g.t("tokens")).sizes(), (std::vector<int64_t>{2, 21}));
  EXPECT_EQ(scalar->named_parameters().find("output.weight"), nullptr);
  Golden t = load_golden("tied");
  Decoder tied = build(t);
  EXPECT_EQ(tied->named_parameters().find("output.weight"), nullptr);
  EXPECT_NE(tied->named_parameters().find("tok_embeddings.weight"), nullptr);
}

}  // namespace
}  // namespace test_core_model
