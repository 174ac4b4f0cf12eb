// `infini convert hf --model DIR --out CK` (a Hugging Face LLaMA / Mistral folder -> a run-style
// checkpoint at step 0, sentencepiece tokenizer copied in) and `infini export hf --checkpoint CK
// --out DIR` (-> config.json + model.safetensors [+ tokenizer.model] for transformers).
// Not the weight mapping (core/hf_checkpoint.h) nor config.json's keys (core/hf_config.h).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/hf_checkpoint.h"
#include "core/model_io.h"
#include "core/safetensors.h"
#include "data/tokenizer.h"
#include "train/run/checkpoint.h"
#include "train/run/checkpoint_dir.h"
#include "train/run/progress.h"
#include "train/cli/commands.h"

namespace infini {
namespace {

namespace fs = std::filesystem;

struct ConvertArgs {
  std::string model, out, memory, update;
  int64_t segment_len = 0;
  bool force = false, no_tokenizer = false, write_gate = false;
};

struct ExportArgs {
  std::string checkpoint, out, dtype = "float32";
  bool force = false;
};

// A folder given by mistake (a run directory, a model folder) would be overwritten.
void check_out_dir(const std::string& out, bool force, const std::string& what) {
  std::error_code ec;
  if (!force && fs::exists(out, ec) && !(fs::is_directory(out, ec) && fs::is_empty(out, ec)))
    throw ConfigError(fmt::format("--out {}: exists and is not an empty folder; choose a new folder, or add --force to "
                                  "write {} into it",
                                  out, what));
}

int run_convert_hf(const ConvertArgs& a) {
  check_out_dir(a.out, a.force, "step 0");
  HfImportOptions o;
  if (!a.memory.empty()) o.memory = a.memory == "on";
  if (!a.update.empty()) {
    MemoryUpdate u;
    parse_memory_update(a.update, &u);
    o.update = u;
  }
  if (a.segment_len > 0) o.segment_len = a.segment_len;
  if (a.write_gate) o.write_gate = true;

  // One line per phase: reading (MB of the weight files), converting, writing (MB of the model file).
  HfFolder f;
  {
    Progress reading("convert hf", 0, "MB");
    reading.note("reading " + a.model);
    f = read_hf_folder(a.model, progress_in_mb(reading));
  }
  const fs::path tok_src = fs::path(a.model) / "tokenizer.model";
  std::optional<Tokenizer> tok;
  std::error_code ec;
  if (fs::is_regular_file(tok_src, ec)) {
    try {
      tok = Tokenizer::load(tok_src.string());
    } catch (const Error& e) {
      throw ConfigError(fmt::format("{} (infini reads sentencepiece tokenizer.model files only)", e.what()));
    }
    if (tok->vocab_size() > f.config.model.vocab_size)
      throw ConfigError(fmt::format("{}: has {} pieces, more than the model's vocab_size {}", tok_src.string(),
                                    tok->vocab_size(), f.config.model.vocab_size));
  } else if (fs::exists(fs::path(a.model) / "tokenizer.json", ec) && !a.no_tokenizer) {
    throw ConfigError(fmt::format("{}: has tokenizer.json but no tokenizer.model; infini reads sentencepiece "
                                  "tokenizers (tokenizer.model) only: add --no-tokenizer to convert the weights alone",
                                  a.model));
  } else {
    std::fprintf(stderr, "note: %s has no tokenizer.model; the checkpoint records no tokenizer\n", a.model.c_str());
  }

  std::optional<Progress> converting(std::in_place, "convert hf", 0, "");
  converting->note("converting");
  std::optional<ProgressTicker> ticker(std::in_place, *converting);
  Decoder m = import_hf(f, o);
  ticker.reset();
  converting.reset();
  const std::string abs_model = fs::absolute(a.model).lexically_normal().string();
  std::map<std::string, std::string> meta{{"source", "hf:" + abs_model},
                                          {kHfConfigMetadata, f.config.raw.dump()},
                                          {kHfDtypeMetadata, f.dtype}};
  const fs::path final_dir = fs::absolute(a.out).lexically_normal() / "checkpoints" / step_dir_name(0);
  if (tok) {
    meta["tokenizer_path"] = (final_dir / "tokenizer.model").string();
    meta["tokenizer_hash"] = tok->content_hash();
  }
  Progress writing("convert hf", 0, "MB");
  writing.note("writing " + a.out);
  const std::string dir = commit_checkpoint(a.out, 0, [&](const std::string& tmp) {
    save_model((fs::path(tmp) / kModelFileName).string(), m, meta, progress_in_mb(writing));
    if (tok) fs::copy_file(tok_src, fs::path(tmp) / "tokenizer.model", fs::copy_options::overwrite_existing);
    save_trainer_state(tmp, {{"step", 0}, {"stage", "convert"}});
  });
  writing.finish();
  const ModelConfig& c = m->config();
  std::printf("wrote %s (%lld parameters; %s %s, d_model %lld, %lld layers, %lld heads, %lld kv heads, vocab %lld; "
              "memory %s, segment_len %lld%s)\n",
              dir.c_str(), static_cast<long long>(parameter_count(m)), f.config.architecture.c_str(), f.dtype.c_str(),
              static_cast<long long>(c.d_model), static_cast<long long>(c.n_layers), static_cast<long long>(c.n_heads),
              static_cast<long long>(c.kv_heads()), static_cast<long long>(c.vocab_size),
              c.memory.enabled ? to_string(c.memory.update) : "off", static_cast<long long>(c.segment_len),
              tok ? "; tokenizer.model copied" : "");
  return 0;
}

int run_export_hf(const ExportArgs& a) {
  const torch::ScalarType dtype = a.dtype == "bfloat16" ? torch::kBFloat16
                                  : a.dtype == "float16" ? torch::kHalf
                                                         : torch::kFloat;
  const std::string dir = resolve_checkpoint(a.checkpoint);
  const std::string path = (fs::path(dir) / kModelFileName).string();
  const auto meta = read_safetensors_metadata(path);
  Decoder m = load_model(path);
  if (m->head_kind() != Head::lm)
    throw ConfigError(fmt::format("{}: has a scalar (reward/value) head; export hf writes language models "
                                  "(LlamaForCausalLM) only",
                                  path));
  check_out_dir(a.out, a.force, "the export");
  nlohmann::json base = nlohmann::json::object();
  if (auto it = meta.find(kHfConfigMetadata); it != meta.end()) {
    base = nlohmann::json::parse(it->second, nullptr, false);
    if (base.is_discarded() || !base.is_object())
      throw Error(fmt::format("{}: metadata {} is not a JSON object", path, kHfConfigMetadata));
  }
  HfExport e = infini_to_hf(m, base, dtype);

  fs::create_directories(a.out);
  const fs::path out(a.out);
  {
    std::ofstream cfg(out / "config.json", std::ios::trunc);
    cfg << e.config.dump(2) << "\n";
    if (!cfg) throw Error(fmt::format("{}: write failed", (out / "config.json").string()));
  }
  {
    Progress writing("export hf", 0, "MB");
    writing.note("writing " + (out / "model.safetensors").string());
    save_safetensors((out / "model.safetensors").string(), e.tensors, {{"format", "pt"}}, progress_in_mb(writing));
  }
  std::string tok_note = "; no tokenizer recorded";
  if (auto it = meta.find("tokenizer_path"); it != meta.end() && !it->second.empty()) {
    std::error_code ec;
    if (!fs::is_regular_file(it->second, ec)) {
      std::fprintf(stderr, "warning: %s records tokenizer %s, which does not exist; no tokenizer.model written\n",
                   path.c_str(), it->second.c_str());
      tok_note = "; tokenizer missing";
    } else {
      Tokenizer tok = Tokenizer::load(it->second);
      auto h = meta.find("tokenizer_hash");
      if (h != meta.end() && h->second != tok.content_hash())
        std::fprintf(stderr, "warning: tokenizer %s has changed since the checkpoint was written (hash %s, recorded %s)\n",
                     it->second.c_str(), tok.content_hash().c_str(), h->second.c_str());
      fs::copy_file(it->second, out / "tokenizer.model", fs::copy_options::overwrite_existing);
      tok_note = "; tokenizer.model copied";
    }
  }
  std::printf("wrote %s (LlamaForCausalLM, %zu tensors, %s%s%s)\n", a.out.c_str(), e.tensors.size(), a.dtype.c_str(),
              m->config().memory.enabled ? "; memory gates kept as infini.layers.L.attention.gate" : "",
              tok_note.c_str());
  return 0;
}

}  // namespace

void add_hf_commands(CLI::App& app) {
  auto* convert = app.get_subcommand("convert");
  auto ca = std::make_shared<ConvertArgs>();
  auto* c = convert->add_subcommand("hf", "import a Hugging Face LlamaForCausalLM / MistralForCausalLM folder");
  c->add_option("--model", ca->model, "the folder (config.json, model.safetensors or its sharded index)")->required();
  c->add_option("--out", ca->out, "run directory to write (DIR/checkpoints/step_00000000); must be new or empty")
      ->required();
  c->add_option("--memory", ca->memory, "on: add Infini-attention's memory (gates start at 0, wo doubled: the same "
                                        "output inside the first segment); default off, or the folder's infini section")
      ->check(CLI::IsMember({"on", "off"}));
  c->add_option("--update", ca->update, "memory update rule (with memory on); default delta")
      ->check(CLI::IsMember({"linear", "delta", "unit_delta"}));
  c->add_flag("--write-gate", ca->write_gate, "give the memory a learned write gate (starts open; docs/long-context.md)");
  c->add_option("--segment-len", ca->segment_len, "tokens per segment; default min(max_position_embeddings, 2048)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  c->add_flag("--no-tokenizer", ca->no_tokenizer, "convert a folder whose tokenizer is tokenizer.json only, without it");
  c->add_flag("--force", ca->force, "write into a non-empty --out (its checkpoints/latest then names the import)");
  c->callback([ca] { set_command([ca] { return run_convert_hf(*ca); }); });

  auto* ex = app.add_subcommand("export", "write a checkpoint in another format");
  ex->require_subcommand(1);
  auto ea = std::make_shared<ExportArgs>();
  auto* h = ex->add_subcommand("hf", "write a Hugging Face LlamaForCausalLM folder (config.json, model.safetensors)");
  h->add_option("--checkpoint", ea->checkpoint, "run or checkpoint directory")->required();
  h->add_option("--out", ea->out, "folder to write; must be new or empty")->required();
  h->add_option("--dtype", ea->dtype, "dtype of the Hugging Face tensors (float32 is lossless)")
      ->check(CLI::IsMember({"float32", "bfloat16", "float16"}));
  h->add_flag("--force", ea->force, "write into a non-empty --out");
  h->callback([ea] { set_command([ea] { return run_export_hf(*ea); }); });
}

}  // namespace infini
