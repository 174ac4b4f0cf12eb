// Import of legacy llama2.c checkpoints (7 int32 header + fp32 arrays) into a memory-less Decoder.
// Not the tokenizer (tok512.bin) nor the newer versioned llama2.c exports (refused with a message).
#pragma once
#include <map>
#include <string>

#include <torch/types.h>

#include "core/decoder.h"
#include "core/model_config.h"
#include "core/safetensors.h"

namespace infini {

// The header of a legacy llama2.c file, as stored (vocab_size < 0: untied classifier follows).
struct Llama2cHeader {
  int32_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0, seq_len = 0;
};

struct Llama2cCheckpoint {
  Llama2cHeader header;
  ModelConfig config;                             // memory off, segment_len = seq_len, eps 1e-5, theta 1e4
  std::map<std::string, torch::Tensor> weights;   // by Decoder parameter name, fp32
};

// Reads and validates `path` (header values, exact file size); throws infini::Error naming the file.
// `progress` hears of the bytes read as the weights come in (in pieces of 16 MiB).
Llama2cCheckpoint read_llama2c(const std::string& path, const ByteProgress& progress = {});

// read_llama2c + a Decoder (Head::lm) holding its weights.
Decoder import_llama2c(const std::string& path, const ByteProgress& progress = {});

}  // namespace infini
