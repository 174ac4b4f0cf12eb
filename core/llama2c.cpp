// Legacy llama2.c checkpoint reader: header validation, exact size check, weights renamed to ours.
// Not a general converter: the versioned exports (magic "ak42") and quantized files are refused.
#include "core/llama2c.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "core/model_io.h"

namespace infini {
namespace {

constexpr int32_t kVersionedMagic = 0x616b3432;  // "ak42": llama2.c's export.py version >= 1

void check_header(const std::string& path, const Llama2cHeader& h) {
  auto fail = [&](const std::string& what) {
    return Error(fmt::format(
        "{}: not a legacy llama2.c checkpoint: {} (header dim={}, hidden_dim={}, n_layers={}, n_heads={}, "
        "n_kv_heads={}, vocab_size={}, seq_len={})",
        path, what, h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads, h.vocab_size, h.seq_len));
  };
  if (h.dim == kVersionedMagic)
    throw Error(fmt::format("{}: this is a versioned llama2.c export (magic \"ak42\"); only the legacy "
                            "format (7 int32 header, fp32 weights) is supported",
                            path));
  // Bounds keep every size product below 2^53 and refuse garbage early.
  if (h.dim < 2 || h.dim > 65536) throw fail("dim must be in [2, 65536]");
  if (h.hidden_dim < 1 || h.hidden_dim > (1 << 20)) throw fail("hidden_dim must be in [1, 1048576]");
  if (h.n_layers < 1 || h.n_layers > 4096) throw fail("n_layers must be in [1, 4096]");
  if (h.n_heads < 1 || h.dim % h.n_heads != 0) throw fail("n_heads must be >= 1 and divide dim");
  if ((h.dim / h.n_heads) % 2 != 0) throw fail("head size dim / n_heads must be even");
  if (h.n_kv_heads < 1 || h.n_heads % h.n_kv_heads != 0) throw fail("n_kv_heads must be >= 1 and divide n_heads");
  if (h.vocab_size == 0 || h.vocab_size == INT32_MIN) throw fail("vocab_size must be non-zero");
  if (h.seq_len < 1) throw fail("seq_len must be >= 1");
}

}  // namespace

Llama2cCheckpoint read_llama2c(const std::string& path, const ByteProgress& progress) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw Error(fmt::format("{}: no such file", path));
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(fmt::format("{}: cannot read its size", path));
  if (file_size < 28)
    throw Error(fmt::format("{}: file has {} bytes, a llama2.c checkpoint starts with a 28-byte header", path,
                            file_size));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open for reading", path));
  int32_t raw[7];
  in.read(reinterpret_cast<char*>(raw), sizeof(raw));
  Llama2cHeader h{raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6]};
  check_header(path, h);

  const uint64_t D = h.dim, F = h.hidden_dim, L = h.n_layers, H = h.n_heads, Hkv = h.n_kv_heads;
  const bool shared = h.vocab_size > 0;
  const uint64_t V = shared ? h.vocab_size : -static_cast<int64_t>(h.vocab_size);
  const uint64_t hs = D / H, kv_dim = D * Hkv / H;
  const uint64_t floats = V * D + L * D + L * D * D + 2 * L * kv_dim * D + L * D * D + L * D + 3 * L * F * D + D +
                          static_cast<uint64_t>(h.seq_len) * hs + (shared ? 0 : V * D);
  const uint64_t expected = 28 + 4 * floats;
  if (file_size != expected)
    throw Error(fmt::format(
        "{}: file has {} bytes, expected {} for dim={}, hidden_dim={}, n_layers={}, n_heads={}, n_kv_heads={}, "
        "vocab_size={}, seq_len={} ({})",
        path, file_size, expected, h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads, h.vocab_size,
        h.seq_len, file_size < expected ? "truncated?" : "trailing data or a different format?"));

  torch::Tensor all = torch::empty({static_cast<int64_t>(floats)}, torch::kFloat);
  char* into = static_cast<char*>(all.data_ptr());
  for (uint64_t done = 0; done < 4 * floats;) {
    const uint64_t n = std::min<uint64_t>(4 * floats - done, uint64_t{16} << 20);
    in.read(into + done, static_cast<std::streamsize>(n));
    if (!in) throw Error(fmt::format("{}: read failed after {} bytes", path, 28 + done));
    done += n;
    if (progress) progress(28 + done, file_size);
  }

  Llama2cCheckpoint ck;
  ck.header = h;
  ModelConfig& c = ck.config;
  c.vocab_size = static_cast<int64_t>(V);
  c.d_model = h.dim;
  c.n_layers = h.n_layers;
  c.n_heads = h.n_heads;
  c.n_kv_heads = h.n_kv_heads;
  c.ffn_hidden = h.hidden_dim;
  c.norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.segment_len = h.seq_len;  // one segment spans the whole trained context: plain causal attention
  c.memory.enabled = false;
  c.tie_embeddings = shared;
  if (std::string err = c.validate(); !err.empty()) throw Error(fmt::format("{}: {}", path, err));

  int64_t pos = 0;
  // Next array of the file, viewed as `shape` (the file is (out, in) like torch.nn.Linear).
  auto take = [&](std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    torch::Tensor t = all.narrow(0, pos, n).view(shape);
    pos += n;
    return t;
  };
  const int64_t iD = D, iF = F, iL = L, iV = V, ikv = kv_dim;
  auto per_layer = [&](const std::string& name, torch::Tensor stacked) {
    for (int64_t i = 0; i < iL; ++i) ck.weights[fmt::format("layers.{}.{}", i, name)] = stacked[i].clone();
  };
  ck.weights["tok_embeddings.weight"] = take({iV, iD}).clone();
  per_layer("attention_norm.weight", take({iL, iD}));
  per_layer("attention.wq.weight", take({iL, iD, iD}));
  per_layer("attention.wk.weight", take({iL, ikv, iD}));
  per_layer("attention.wv.weight", take({iL, ikv, iD}));
  per_layer("attention.wo.weight", take({iL, iD, iD}));
  per_layer("ffn_norm.weight", take({iL, iD}));
  per_layer("feed_forward.w1.weight", take({iL, iF, iD}));
  per_layer("feed_forward.w2.weight", take({iL, iD, iF}));
  per_layer("feed_forward.w3.weight", take({iL, iF, iD}));
  ck.weights["norm.weight"] = take({iD}).clone();
  pos += static_cast<int64_t>(h.seq_len) * static_cast<int64_t>(hs);  // legacy RoPE tables (cos, sin): recomputed
  if (!shared) ck.weights["output.weight"] = take({iV, iD}).clone();
  TORCH_CHECK(pos == static_cast<int64_t>(floats), "llama2c: size arithmetic out of step");

  for (const auto& [name, t] : ck.weights)
    if (!torch::isfinite(t).all().item<bool>())
      throw Error(fmt::format("{}: weight {} holds NaN or infinite values", path, name));
  return ck;
}

Decoder import_llama2c(const std::string& path, const ByteProgress& progress) {
  Llama2cCheckpoint ck = read_llama2c(path, progress);
  Decoder model(ck.config, Head::lm);
  load_weights(model, SafeTensors{ck.weights, {}}, path);
  model->eval();
  return model;
}

}  // namespace infini
