// `infini convert llama2c --model FILE --out DIR`: a legacy llama2.c checkpoint -> a run-style
// checkpoint directory (step 0). Not a trainer: no optimizer state is written.
#include <cstdio>
#include <filesystem>
#include <optional>

#include <fmt/format.h>

#include "core/error.h"
#include "core/llama2c.h"
#include "core/model_io.h"
#include "train/run/checkpoint.h"
#include "train/run/checkpoint_dir.h"
#include "train/cli/commands.h"
#include "train/run/progress.h"

namespace infini {

void add_convert_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("convert", "import weights from other formats");
  cmd->require_subcommand(1);
  auto* l2c = cmd->add_subcommand("llama2c", "import a legacy llama2.c checkpoint (e.g. stories260K.bin)");
  auto model = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  l2c->add_option("--model", *model, "the llama2.c .bin file")->required();
  auto force = std::make_shared<bool>(false);
  l2c->add_option("--out", *out, "run directory to write (DIR/checkpoints/step_00000000); must be new or empty")
      ->required();
  l2c->add_flag("--force", *force, "write into a non-empty --out (its checkpoints/latest then names the import)");
  l2c->callback([model, out, force] {
    set_command([model, out, force] {
      // A run directory given by mistake would get its `latest` repointed at the import.
      namespace fs = std::filesystem;
      std::error_code ec;
      if (!*force && fs::exists(*out, ec) && !(fs::is_directory(*out, ec) && fs::is_empty(*out, ec)))
        throw ConfigError(fmt::format("--out {}: exists and is not an empty folder (a run directory?); choose a new "
                                      "folder, or add --force to write step 0 into it", *out));
      // One line per phase: reading the .bin, writing the model file (MB of each).
      std::optional<Progress> reading(std::in_place, "convert llama2c", 0, "MB");
      reading->note("reading " + *model);
      Decoder m = import_llama2c(*model, progress_in_mb(*reading));
      reading.reset();
      const std::string abs_model = std::filesystem::absolute(*model).string();
      Progress writing("convert llama2c", 0, "MB");
      writing.note("writing " + *out);
      const std::string dir = commit_checkpoint(*out, 0, [&](const std::string& tmp) {
        save_model((std::filesystem::path(tmp) / kModelFileName).string(), m, {{"source", "llama2c:" + abs_model}},
                   progress_in_mb(writing));
        save_trainer_state(tmp, {{"step", 0}, {"stage", "convert"}});
      });
      writing.finish();
      const ModelConfig& c = m->config();
      std::printf("wrote %s (%lld parameters; d_model %lld, %lld layers, %lld heads, %lld kv heads, vocab %lld)\n",
                  dir.c_str(), static_cast<long long>(parameter_count(m)), static_cast<long long>(c.d_model),
                  static_cast<long long>(c.n_layers), static_cast<long long>(c.n_heads),
                  static_cast<long long>(c.kv_heads()), static_cast<long long>(c.vocab_size));
      return 0;
    });
  });
}

}  // namespace infini
