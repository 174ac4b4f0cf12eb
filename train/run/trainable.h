// What a run trains: every parameter, or with optim.freeze_layers all but the embedding and the
// first blocks, or with lora.rank > 0 only the adapters, the memory gates and a scalar head
// (core/lora.h). Frozen parameters get no gradient and no optimizer state. Not the optimizer
// (train/run/adamw.h) nor the adapters' arithmetic (core/linear.h).
#pragma once
#include "core/decoder.h"
#include "train/config/config.h"

namespace infini {

// Adds cfg.lora's adapters (when enabled) and sets requires_grad accordingly; logs what trains.
// `what` names the model in the log line ("model", "actor", "critic"). Call on a freshly built
// model, before its weights are loaded and before it moves to its device.
void prepare_trainable(Decoder& model, const Config& cfg, const char* what = "model");

}  // namespace infini
