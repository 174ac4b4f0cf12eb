// Hugging Face LLaMA-family weights <-> a Decoder: reading a model folder (model.safetensors or a
// sharded model.safetensors.index.json), the tensor names, the q/k row permutation between HF's
// "rotate half" RoPE layout and our adjacent pairs, and the memory gates' fold into wo. With memory
// on, a plain HF model gets gates 0 and wo = 2 o_proj: exact, so inside the first segment (memory
// read exactly 0) the converted model computes the original's output (docs/hf.md).
// Not config.json's keys (core/hf_config.h), the tokenizer, nor checkpoint directories (train/).
#pragma once
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "core/decoder.h"
#include "core/hf_config.h"
#include "core/model_config.h"
#include "core/safetensors.h"

namespace infini {

// One model folder as read. Every defect (missing file, shard or tensor, bad header, truncated
// data, wrong shape or dtype, unknown tensor) is a ConfigError naming the file and the tensor.
struct HfFolder {
  std::string dir;
  HfConfig config;
  std::map<std::string, torch::Tensor> tensors;  // by HF name, as stored (F32, F16 or BF16)
  std::map<std::string, std::string> file_of;    // tensor -> the file it came from (messages)
  std::string dtype;                             // "float32" | "bfloat16" | "float16" | "mixed"
};
// `progress` hears of every tensor read: bytes so far of all the weight files' bytes.
HfFolder read_hf_folder(const std::string& dir, const ByteProgress& progress = {});

// True when DIR holds a config.json (a Hugging Face folder, not an infini checkpoint or run directory).
bool is_hf_folder(const std::string& dir);

// q/k projection rows (n_heads * Dh, D). HF pairs row i with row i + Dh/2 of a head (rotate half);
// we pair rows 2i and 2i + 1 (core/rope.h), at the same frequency theta^(-2i/Dh). So our row 2i + j
// is HF's row j * Dh/2 + i (j in {0, 1}), and back. The attention scores q.k are unchanged.
torch::Tensor hf_rows_to_interleaved(const torch::Tensor& w, int64_t n_heads);
torch::Tensor interleaved_rows_to_hf(const torch::Tensor& w, int64_t n_heads);

// What `convert hf` may change; unset fields come from the folder.
struct HfImportOptions {
  std::optional<bool> memory;
  std::optional<MemoryUpdate> update;
  std::optional<bool> write_gate;  // add (or drop) the memory's write gate
  std::optional<int64_t> segment_len;
};

// The ModelConfig a folder converts to: the "infini" section of its config.json when it has one
// (a folder written by export_hf), else parse_hf_config's (memory off), then `o` on top.
ModelConfig hf_target_config(const HfFolder& f, const HfImportOptions& o);

// Throws ConfigError unless `target` has the folder's shapes, norm epsilon, RoPE base and tying
// (the keys a converted model takes from config.json); `where` names the consumer in the message.
void check_hf_compatible(const HfConfig& hf, const ModelConfig& target, const std::string& where);

// The parameters of a Decoder(target, Head::lm) from the folder's tensors, fp32 by our names.
// With memory on, each layer's gate is the folder's infini.layers.L.attention.gate when present,
// else target.gate_init, and wo = o_proj / (1 - sigmoid(gate)) per head (columns of that head),
// or the folder's infini.layers.L.attention.wo.weight when present (export_hf writes it where the
// division would not give back the exact wo). With gate 0 that is o_proj * 2: exact, and inside
// the first segment (empty memory, read exactly 0) the layer's output equals o_proj(A_dot).
std::map<std::string, torch::Tensor> hf_to_infini_weights(const HfFolder& f, const ModelConfig& target);

// read_hf_folder + hf_target_config + a Decoder holding the converted weights (eval mode).
Decoder import_hf(const HfFolder& f, const HfImportOptions& o);

// What export_hf writes: config.json and the tensors of model.safetensors.
struct HfExport {
  nlohmann::json config;
  std::map<std::string, torch::Tensor> tensors;
};
// A language model (Head::scalar is refused with an Error) as a LlamaForCausalLM: o_proj is wo
// with each head's columns times (1 - sigmoid(gate)), so transformers computes our output inside
// one segment; the gates are kept as infini.layers.L.attention.gate (transformers ignores them)
// and the whole ModelConfig as config.json's "infini" section, so convert rebuilds this model.
// `base_config` is the converted model's original config.json (or an empty object), `dtype`
// torch::kFloat, kBFloat16 or kHalf for the HF tensors (infini's own stay fp32).
HfExport infini_to_hf(Decoder& model, const nlohmann::json& base_config, torch::ScalarType dtype);

// The checkpoint metadata keys `convert hf` writes and `export hf` reads.
constexpr const char* kHfConfigMetadata = "hf_config";  // the original config.json text
constexpr const char* kHfDtypeMetadata = "hf_dtype";    // HfFolder::dtype

}  // namespace infini
