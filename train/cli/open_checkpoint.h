// Opening a checkpoint for inference, the same way in every command (eval, generate, eval reward,
// info): CK is a run directory, a step directory or a model .safetensors file; the head is checked
// against what the command needs; the tokenizer follows one policy (see open_tokenizer).
// Not training resume (train/run/session.h) nor the file format (core/model_io.h).
#pragma once
#include <map>
#include <optional>
#include <string>

#include <torch/types.h>

#include "core/decoder.h"
#include "data/tokenizer.h"

namespace infini {

struct OpenedModel {
  Decoder model{nullptr};
  std::string path;                          // the model file
  std::map<std::string, std::string> meta;   // its metadata (stage, tokenizer_path, tokenizer_hash, source)
};

// The model file of CK (a .safetensors file is itself; a directory resolves to its step
// directory's model.safetensors). Throws infini::Error naming CK when there is none.
std::string model_file_of(const std::string& ck);

// Loads CK's model onto `device`. `need` is the head the command works with; a model with the
// other head is an error naming the file and `command` (e.g. "eval passkey").
OpenedModel open_model(const std::string& ck, Head need, const std::string& command,
                       const torch::Device& device = torch::kCPU);

// The tokenizer policy of every command: `flag` (--tokenizer) when given; else the one the
// checkpoint records, with a warning when its content changed since (hash). When none is recorded,
// or the recorded file no longer exists, a command that `requires` one fails with an error saying
// to pass --tokenizer, and one that does not gets nullopt (with a note on stderr when the recorded
// file is gone). A tokenizer with
// more pieces than the model's vocabulary is an error.
std::optional<Tokenizer> open_tokenizer(const std::string& flag, const OpenedModel& m, bool required);

}  // namespace infini
