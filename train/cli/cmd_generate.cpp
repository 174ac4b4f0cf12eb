// `infini generate --checkpoint CK (--prompt TEXT | --prompt-ids "1 2 3") [sampling flags]`: streams
// tokens from a checkpoint to stdout as they are produced. Not the sampling itself (core/generate.h).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "core/compat.h"
#include "core/error.h"
#include "core/generate.h"
#include "core/model_io.h"
#include "core/safetensors.h"
#include "data/tokenizer.h"
#include "train/cli/open_checkpoint.h"
#include "train/run/checkpoint_dir.h"
#include "train/cli/commands.h"
#include "train/run/device.h"
#include "train/run/runtime.h"

namespace infini {
namespace {

struct GenerateArgs {
  std::string checkpoint, prompt, prompt_ids, tokenizer, device = "cpu";
  int64_t max_new_tokens = 64;
  double temperature = 1.0;
  int64_t top_k = 0;
  double top_p = 1.0;
  uint64_t seed = 0;
  int64_t eos = 2;
  bool print_ids = false;
  bool stats = false;  // --stats: tokens/s on stderr
  int threads = 0;
};

std::vector<int64_t> parse_ids(const std::string& text) {
  std::string s = text;
  for (char& c : s)
    if (c == ',') c = ' ';
  std::istringstream in(s);
  std::vector<int64_t> ids;
  std::string word;
  while (in >> word) {
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != word.size())
      throw Error(fmt::format("--prompt-ids: '{}' is not a token id (expected integers like \"1 403 407\")", word));
    ids.push_back(v);
  }
  if (ids.empty()) throw Error("--prompt-ids: no token ids given (expected e.g. \"1\")");
  return ids;
}

int run_generate(const GenerateArgs& a) {
  // Options first: nothing is loaded or printed for a command that cannot run.
  GenerateOptions opts;
  opts.sampling.temperature = a.temperature;
  opts.sampling.top_k = a.top_k;
  opts.sampling.top_p = a.top_p;
  opts.max_new_tokens = a.max_new_tokens;
  opts.eos_id = a.eos;
  opts.seed = a.seed;
  check_generate_options(opts);
  const torch::Device device = parse_device("--device", a.device);
  compat::set_threads(resolve_threads(a.threads, "--threads"));
  // generate() feeds its tokens on the weights' device; sampling draws on the host.
  const OpenedModel m = open_model(a.checkpoint, Head::lm, "generate", device);
  Decoder model = m.model;
  // A text prompt needs the tokenizer; with --prompt-ids it only decodes the output, if there is one.
  std::optional<Tokenizer> tok;
  if (!a.prompt.empty() || !a.print_ids) tok = open_tokenizer(a.tokenizer, m, /*required=*/!a.prompt.empty());
  std::vector<int64_t> prompt;
  if (!a.prompt.empty()) {
    prompt.push_back(tok->bos_id());
    for (int id : tok->encode(a.prompt)) prompt.push_back(id);
  } else {
    prompt = parse_ids(a.prompt_ids);
  }

  const int64_t V = model->config().vocab_size;
  for (size_t i = 0; i < prompt.size(); ++i)
    if (prompt[i] < 0 || prompt[i] >= V)
      throw Error(fmt::format("prompt token {} (position {}) is outside the vocabulary [0, {})", prompt[i], i, V));
  if (a.eos < -1 || a.eos >= V)
    throw Error(fmt::format("--eos: expected a token id in [0, {}) or -1 (never stop early), found {}", V, a.eos));

  // --stats: the decoding rate on stderr, counted as llama2.c's run.c counts it: from the first
  // generated token on, so the prompt's forward and the warm-up are left out.
  int64_t generated = 0;
  std::chrono::steady_clock::time_point first;
  auto count = [&]() {
    if (generated++ == 0) first = std::chrono::steady_clock::now();
  };
  auto report = [&]() {
    if (!a.stats) return;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - first).count();
    std::fprintf(stderr, "generated %lld tokens; %.1f tokens/s after the first\n", static_cast<long long>(generated),
                 generated > 1 && s > 0 ? static_cast<double>(generated - 1) / s : 0.0);
  };
  if (a.print_ids || !tok) {
    for (size_t i = 0; i < prompt.size(); ++i) std::printf(i ? " %lld" : "%lld", static_cast<long long>(prompt[i]));
    std::fflush(stdout);
    generate(model, prompt, opts, [&](int64_t id) {
      count();
      std::printf(" %lld", static_cast<long long>(id));
      std::fflush(stdout);
    });
    std::printf("\n");
    report();
    return 0;
  }
  // Text: decode the whole sequence each step and print what is new, so pieces that only make
  // sense together (leading spaces, multi-byte characters) come out right.
  std::vector<int> ids(prompt.begin(), prompt.end());
  std::string shown = tok->decode(ids);
  std::printf("%s", shown.c_str());
  std::fflush(stdout);
  generate(model, prompt, opts, [&](int64_t id) {
    count();
    if (id == a.eos) return;
    ids.push_back(static_cast<int>(id));
    std::string text = tok->decode(ids);
    if (text.compare(0, shown.size(), shown) == 0) std::printf("%s", text.c_str() + shown.size());
    else std::printf("%s", text.c_str());  // the decoder re-spelled the prefix: rare, print anew
    shown = text;
    std::fflush(stdout);
  });
  std::printf("\n");
  report();
  return 0;
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  auto* cmd = app.add_subcommand("generate", "generate tokens from a checkpoint (streaming, bounded memory)");
  cmd->add_option("--checkpoint", a->checkpoint, "run or checkpoint directory")->required();
  auto* p = cmd->add_option("--prompt", a->prompt, "prompt text (needs a tokenizer; BOS is prepended)");
  auto* pi = cmd->add_option("--prompt-ids", a->prompt_ids, "prompt as token ids, e.g. \"1 403 407\"");
  p->excludes(pi);
  cmd->add_option("--max-new-tokens", a->max_new_tokens, "tokens to generate at most (default 64)");
  cmd->add_option("--temperature", a->temperature, "0 = greedy; default 1");
  cmd->add_option("--top-k", a->top_k, "sample among the k most likely tokens (0 = off)");
  cmd->add_option("--top-p", a->top_p, "sample among the smallest set with this much mass (1 = off)");
  cmd->add_option("--seed", a->seed, "sampling seed (same seed, same tokens)");
  cmd->add_option("--eos", a->eos, "stop after this token id (default 2; -1 = never)");
  cmd->add_option("--tokenizer", a->tokenizer, "sentencepiece model (default: the one the checkpoint records)");
  cmd->add_flag("--print-ids", a->print_ids, "print the whole sequence as token ids on one line");
  cmd->add_flag("--stats", a->stats, "print the decoding rate (tokens/s after the first token) on stderr");
  cmd->add_option("--threads", a->threads, "intra-op threads (0 = all cores)");
  cmd->add_option("--device", a->device, "cpu | cuda | cuda:N: where the model runs (default cpu)");
  cmd->callback([a, p, pi] {
    if (p->count() == 0 && pi->count() == 0) throw CLI::RequiredError("--prompt or --prompt-ids");
    set_command([a] { return run_generate(*a); });
  });
}

}  // namespace infini
