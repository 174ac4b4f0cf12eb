// LoRA on a Decoder: putting adapters on its projections, which tensors a LoRA model file holds,
// folding adapters into the weights, and the fingerprint that ties adapters to their base model.
// Not the adapter arithmetic (core/linear.h), the file format (core/model_io.h) nor what an
// optimizer updates (train/run/trainable.h).
#pragma once
#include <map>
#include <string>

#include <torch/types.h>

#include "core/decoder.h"
#include "core/lora_config.h"

namespace infini {

// Adds a rank-r adapter to every projection cfg.targets names, in every block (core/linear.h: the
// output is unchanged until the adapters train); with base_bf16, all seven projections of every
// block are then stored in bf16. Records cfg in model->lora. Call once, on a model with base-free
// adapters (before its weights are loaded or moved).
void add_lora_adapters(Decoder& model, const LoraConfig& cfg);

// The tensors a LoRA model file holds, and the only ones a LoRA run trains: the adapters
// (".lora_a", ".lora_b"), the memory gates (".gate", ".write_gate", ".write_gate_bias") and a
// scalar head ("score.weight").
// Everything else is the base model's, unchanged.
bool is_lora_tensor(const std::string& name);
// The adapters alone (".lora_a", ".lora_b"): what a base model never has.
bool is_adapter_tensor(const std::string& name);

// The weights of a plain model from base + adapters (by name): every projection W with an adapter
// becomes W + (alpha / r) B A in fp32, its lora_a / lora_b removed; with base_bf16 every block
// projection is first rounded to bf16, as the LoRA run read it. Other tensors pass through.
std::map<std::string, torch::Tensor> merge_lora(std::map<std::string, torch::Tensor> tensors, const LoraConfig& cfg);

// A content fingerprint of a model file, or of a Hugging Face folder (its config.json and weight
// files): 16 hex digits over every byte, read at disk speed. A LoRA file records its base's.
std::string model_fingerprint(const std::string& path);

}  // namespace infini
