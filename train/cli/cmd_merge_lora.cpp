// `infini merge-lora --checkpoint CK --out DIR`: a LoRA checkpoint (adapters on a base model) ->
// a run-style checkpoint directory (step 0) holding the full weights, adapters folded in. Every
// command reads LoRA checkpoints directly; this writes one plain file (for export hf, for
// sharing without the base, or for a faster load). Not a trainer: no optimizer state.
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "core/model_io.h"
#include "core/safetensors.h"
#include "train/cli/commands.h"
#include "train/cli/open_checkpoint.h"
#include "train/run/checkpoint.h"
#include "train/run/checkpoint_dir.h"

namespace infini {

void add_merge_lora_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("merge-lora", "fold a LoRA checkpoint's adapters into its base: full weights");
  auto ck = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto force = std::make_shared<bool>(false);
  cmd->add_option("--checkpoint", *ck, "LoRA run, step directory or model .safetensors file")->required();
  cmd->add_option("--out", *out, "run directory to write (DIR/checkpoints/step_00000000); must be new or empty")
      ->required();
  cmd->add_flag("--force", *force, "write into a non-empty --out (its checkpoints/latest then names the merge)");
  cmd->callback([ck, out, force] {
    set_command([ck, out, force] {
      namespace fs = std::filesystem;
      const std::string path = model_file_of(*ck);
      const auto meta = read_safetensors_metadata(path);
      const auto lora = lora_of(meta, path);
      if (!lora) throw Error(fmt::format("{}: holds full weights, not LoRA adapters; nothing to merge", path));
      std::error_code ec;
      if (!*force && fs::exists(*out, ec) && !(fs::is_directory(*out, ec) && fs::is_empty(*out, ec)))
        throw ConfigError(fmt::format("--out {}: exists and is not an empty folder (a run directory?); choose a new "
                                      "folder, or add --force to write step 0 into it", *out));
      Decoder m = load_model(path);
      // What the weights are and where they came from; the tokenizer stays the checkpoint's.
      std::map<std::string, std::string> keep;
      for (const char* k : {"stage", "tokenizer_path", "tokenizer_hash"})
        if (meta.count(k)) keep[k] = meta.at(k);
      keep["source"] = "merge-lora:" + fs::absolute(path).string() + " on " + meta.at("lora_base");
      const std::string dir = commit_checkpoint(*out, 0, [&](const std::string& tmp) {
        save_model((fs::path(tmp) / kModelFileName).string(), m, keep);
        save_trainer_state(tmp, {{"step", 0}, {"stage", "merge-lora"}});
      });
      std::printf("wrote %s (%lld parameters: rank-%lld adapters on %s merged into %s)\n", dir.c_str(),
                  static_cast<long long>(parameter_count(m)), static_cast<long long>(lora->rank),
                  fmt::format("{}", fmt::join(lora->targets, " ")).c_str(), meta.at("lora_base").c_str());
      return 0;
    });
  });
}

}  // namespace infini
