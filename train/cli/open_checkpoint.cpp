// Opening checkpoints for inference (see open_checkpoint.h): one resolution and one tokenizer policy.
#include "train/cli/open_checkpoint.h"

#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "core/error.h"
#include "core/model_io.h"
#include "core/safetensors.h"
#include "train/run/checkpoint_dir.h"

namespace fs = std::filesystem;

namespace infini {

std::string model_file_of(const std::string& ck) {
  const bool is_file = ck.size() > 12 && ck.substr(ck.size() - 12) == ".safetensors";
  return is_file ? ck : (fs::path(resolve_checkpoint(ck)) / kModelFileName).string();
}

OpenedModel open_model(const std::string& ck, Head need, const std::string& command, const torch::Device& device) {
  OpenedModel m;
  m.path = model_file_of(ck);
  m.meta = read_safetensors_metadata(m.path);
  const Head head = read_model_head(m.path);
  if (head != need) {
    throw Error(need == Head::lm
                    ? fmt::format("{}: holds a scalar-head (reward/value) model; {} needs a language model", m.path,
                                  command)
                    : fmt::format("{}: holds a language model; {} needs a reward model (stage: reward, scalar head)",
                                  m.path, command));
  }
  m.model = load_model(m.path);
  m.model->to(device);
  m.model->eval();
  return m;
}

std::optional<Tokenizer> open_tokenizer(const std::string& flag, const OpenedModel& m, bool required) {
  std::optional<Tokenizer> tok;
  if (!flag.empty()) {
    tok = Tokenizer::load(flag);
  } else {
    auto it = m.meta.find("tokenizer_path");
    const bool recorded = it != m.meta.end() && !it->second.empty();
    if (!recorded || !fs::exists(it->second)) {
      const std::string why = recorded ? fmt::format("records tokenizer {}, which does not exist", it->second)
                                       : "records no tokenizer_path";
      if (required) throw Error(fmt::format("{} {}; give --tokenizer MODEL", m.path, why));
      if (recorded)  // a model without one (an import) prints ids as expected; a lost one is worth a note
        std::fprintf(stderr, "note: %s %s; printing ids (use --tokenizer)\n", m.path.c_str(), why.c_str());
      return std::nullopt;
    }
    tok = Tokenizer::load(it->second);
    auto h = m.meta.find("tokenizer_hash");
    if (h != m.meta.end() && h->second != tok->content_hash())
      std::fprintf(stderr, "warning: tokenizer %s has changed since the checkpoint was written (hash %s, recorded %s)\n",
                   it->second.c_str(), tok->content_hash().c_str(), h->second.c_str());
  }
  if (tok->vocab_size() > m.model->config().vocab_size)
    throw Error(fmt::format("tokenizer {} has {} pieces but the model's vocab_size is {}", tok->path(),
                            tok->vocab_size(), m.model->config().vocab_size));
  return tok;
}

}  // namespace infini
