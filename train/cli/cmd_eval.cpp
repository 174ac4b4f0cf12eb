// `infini eval passkey|ppl` (and `eval reward` and `eval accuracy`, registered from
// train/cli/cmd_eval_reward.cpp and train/cli/cmd_eval_accuracy.cpp): loads a
// checkpoint and its tokenizer, runs the streaming evaluations, prints a table, writes JSON.
// Not the evaluation arithmetic: train/eval/passkey.h and train/eval/ppl.h.
#include <algorithm>
#include <cstdio>
#include <tuple>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "core/compat.h"
#include "core/error.h"
#include "core/model_io.h"
#include "core/safetensors.h"
#include "train/cli/open_checkpoint.h"
#include "train/run/checkpoint_dir.h"
#include "train/cli/commands.h"
#include "train/config/config.h"
#include "train/run/device.h"
#include "train/cli/token_counts.h"
#include "train/dist/comm.h"
#include "train/eval/passkey.h"
#include "train/eval/ppl.h"
#include "train/run/progress.h"
#include "train/run/runtime.h"

namespace infini {
namespace {

struct CommonArgs {
  std::string checkpoint, tokenizer, out, precision = "fp32", random_model, device = "cpu";
  int threads = 0;
  uint64_t seed = 0;
};

// "auto" resolved for the device the model was loaded on: "bf16" or "fp32" (run.precision's rule).
std::string resolved_precision(const std::string& precision, torch::Device device) {
  Precision p = Precision::fp32;
  parse_choice(precision, &p);
  return resolve_bf16(p, device, cpu_has_native_bf16()) ? "bf16" : "fp32";
}

void add_common(CLI::App* cmd, CommonArgs& a) {
  cmd->add_option("--checkpoint", a.checkpoint, "checkpoint: a step directory, a run directory or a model.safetensors");
  cmd->add_option("--tokenizer", a.tokenizer, "sentencepiece model (default: the one the checkpoint records)");
  cmd->add_option("--out", a.out, "write the results as JSON to this file");
  cmd->add_option("--threads", a.threads, "threads (0 = all cores)")->check(integer_at_least(0));
  cmd->add_option("--precision", a.precision,
                  "fp32 | bf16 (autocast; memory stays fp32) | auto (bf16 where the device computes it natively)")
      ->check(CLI::IsMember({"fp32", "bf16", "auto"}));
  cmd->add_option("--device", a.device, "cpu | cuda | cuda:N: where the model runs (default cpu)");
  cmd->add_option("--random-model", a.random_model,
                  "instead of --checkpoint: a randomly initialised model of this config's model: section "
                  "(for measuring speed and memory; needs --tokenizer)");
}

// The model (from --checkpoint, or --random-model) and the device it is on.
struct LoadedModel : OpenedModel {
  torch::Device device{torch::kCPU};  // where the model's weights are (--device)
};

// 0 = this machine's cores, shared by its data-parallel ranks when launched as several.
int resolved_threads(const CommonArgs& a) {
  return resolve_threads(a.threads, "--threads", process_comm(kEvalDistTimeoutS)->env().local_world_size);
}

// Loads on the host, then moves the model to --device (a random model gets the same weights on
// every device).
LoadedModel load_eval_model(const CommonArgs& a, const std::string& command) {
  LoadedModel m;
  m.device = parse_device("--device", a.device);
  compat::set_threads(resolved_threads(a));
  if (!a.random_model.empty()) {
    if (!a.checkpoint.empty()) throw Error("give either --checkpoint or --random-model, not both");
    torch::manual_seed(a.seed);
    m.model = Decoder(load_config(a.random_model).model);
    m.path = a.random_model;
    m.model->to(m.device);
    return m;
  }
  if (a.checkpoint.empty()) throw Error("--checkpoint CK is required (a run directory or a step directory)");
  static_cast<OpenedModel&>(m) = open_model(a.checkpoint, Head::lm, command, m.device);
  return m;
}

Tokenizer load_eval_tokenizer(const CommonArgs& a, const LoadedModel& m) {
  return *open_tokenizer(a.tokenizer, m, /*required=*/true);
}

void write_json(const std::string& path, const nlohmann::json& j) {
  if (path.empty()) return;
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  if (!out) throw Error(path + ": cannot write the JSON results");
}

void add_passkey(CLI::App& eval) {
  struct Args {
    CommonArgs c;
    std::string lengths, depths = "0,0.5,1";
    int64_t trials = 1;
    int digits = 5;
    bool chat = false, no_memory = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = eval.add_subcommand("passkey", "passkey retrieval at long context, streamed segment by segment "
                                                  "(--threads N: up to N cases at once, one thread each; "
                                                  "with --device cuda one case at a time)");
  add_common(cmd, a->c);
  cmd->add_option("--lengths", a->lengths, "prompt lengths in tokens, e.g. 8k,32k,128k,1m (k = 1024, m = 1048576)")
      ->required();
  cmd->add_option("--depths", a->depths, "key depths in [0, 1], e.g. 0,0.5,1");
  cmd->add_option("--trials", a->trials, "prompts (keys) per length and depth")->check(integer_at_least(1));
  cmd->add_option("--digits", a->digits, "digits of the pass key")->check(CLI::Range(1, 18));
  cmd->add_flag("--chat", a->chat,
                "wrap prompts in the default chat template, as SFT records are (for passkey-fine-tuned models)");
  cmd->add_option("--seed", a->c.seed, "seed of the keys (and of --random-model's weights)");
  cmd->add_flag("--no-memory", a->no_memory,
                "memory reset per segment: nothing is written into memory, each segment sees only itself "
                "(the same weights; what retrieval is without the memory)");
  cmd->callback([a] {
    set_command([a] {
      PasskeyOptions opt;
      opt.no_memory = a->no_memory;
      opt.lengths = parse_token_counts(a->lengths, "--lengths");
      opt.depths = parse_depths(a->depths);
      opt.trials = a->trials;
      opt.digits = a->digits;
      opt.seed = a->c.seed;
      // Under a launcher (torchrun, srun) the cases are split over the ranks; rank 0 gathers,
      // prints the table and writes --out.
      const std::shared_ptr<Comm> comm = process_comm(kEvalDistTimeoutS);
      opt.shard = comm->rank();
      opt.shards = comm->world_size();
      LoadedModel m = load_eval_model(a->c, "eval passkey");
      a->c.precision = resolved_precision(a->c.precision, m.device);
      opt.bf16 = a->c.precision == "bf16";
      Tokenizer tok = load_eval_tokenizer(a->c, m);
      // The threads go to cases, one intra-op thread each, and none are handed to a case's ops:
      // a case's ops are small (segments of a few hundred tokens), and on the demo model one
      // 128K case ran at 8.2K tokens/s on two intra-op threads against 19K on one.
      // On a GPU the cases run one after another: the device is shared, and one case's kernels
      // already fill it better than host threads queueing small ones side by side.
      const int64_t all_cases = static_cast<int64_t>(opt.lengths.size() * opt.depths.size()) * opt.trials;
      const int64_t n_cases = all_cases / opt.shards + (opt.shard < all_cases % opt.shards ? 1 : 0);
      if (m.device.is_cuda()) {
        opt.workers = 1;
        if (a->c.threads > 1)
          std::printf("passkey: --threads %d ignored for cases on %s: one case at a time\n", a->c.threads,
                      device_name(m.device).c_str());
      } else {
        opt.workers = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(resolved_threads(a->c), n_cases)));
        compat::set_threads(1);
      }
      std::printf("passkey: %s, %zu lengths x %zu depths x %lld trials, %s, segment %lld, %s, %d at once%s\n",
                  m.path.c_str(), opt.lengths.size(), opt.depths.size(), static_cast<long long>(opt.trials),
                  a->c.precision.c_str(), static_cast<long long>(m.model->config().segment_len),
                  device_name(m.device).c_str(), opt.workers, opt.no_memory ? ", memory reset per segment" : "");
      std::fflush(stdout);
      const ChatTemplate chat;
      int64_t total_tokens = 0, cases_done = 0;
      for (int64_t len : opt.lengths) total_tokens += len * static_cast<int64_t>(opt.depths.size()) * opt.trials;
      Progress progress("eval passkey", static_cast<double>(total_tokens), "tokens");
      progress.note(fmt::format("0/{} cases", n_cases));
      opt.on_tokens = [&progress](int64_t n) { progress.add(static_cast<double>(n)); };
      auto results = run_passkey_eval(m.model, tok, passkey_builder(tok, a->chat ? &chat : nullptr), opt, [&](const PasskeyCaseResult& r) {
        progress.clear();
        std::printf("  length %lld depth %.2f trial %lld: key %s answer \"%s\" %s  log p(key) %.3f  %.1f s  %.0f tokens/s  peak RSS %.1f MiB\n",
                    static_cast<long long>(r.length), r.depth, static_cast<long long>(r.trial), r.key.c_str(),
                    r.answer.c_str(), r.correct ? "correct" : "wrong", r.key_logprob, r.seconds, r.tokens_per_s,
                    static_cast<double>(r.peak_rss_kb) / 1024.0);
        std::fflush(stdout);
        progress.note(fmt::format("{}/{} cases", ++cases_done, n_cases));
      });
      progress.finish();
      if (comm->distributed()) {
        nlohmann::json mine = nlohmann::json::array();
        for (const auto& r : results) mine.push_back(passkey_case_json(r));
        const std::vector<std::string> all = comm->all_gather("passkey_cases", mine.dump());
        if (!comm->is_main()) return 0;
        results.clear();
        for (const std::string& part : all)
          for (const auto& c : nlohmann::json::parse(part)) results.push_back(passkey_case_from_json(c));
        // Back in case order: length, depth, trial as given.
        auto index = [&](const PasskeyCaseResult& r) {
          const auto li = std::find(opt.lengths.begin(), opt.lengths.end(), r.length) - opt.lengths.begin();
          const auto di = std::find(opt.depths.begin(), opt.depths.end(), r.depth) - opt.depths.begin();
          return std::make_tuple(li, di, r.trial);
        };
        std::stable_sort(results.begin(), results.end(),
                         [&](const PasskeyCaseResult& x, const PasskeyCaseResult& y) { return index(x) < index(y); });
        std::printf("passkey: %lld cases from %d ranks\n", static_cast<long long>(results.size()), comm->world_size());
      }
      std::printf("%s", passkey_table(results, opt).c_str());
      nlohmann::json j = passkey_results_json(results, opt);
      j["checkpoint"] = m.path;
      j["tokenizer"] = tok.path();
      j["chat"] = a->chat;
      write_json(a->c.out, j);
      return 0;
    });
  });
}

void print_ppl(const PplResult& r) {
  std::printf("%s: %lld tokens, ppl %.4f (nll %.5f), %.1f s, %.0f tokens/s\n",
              r.no_memory ? "no memory  " : "with memory", static_cast<long long>(r.tokens), r.overall.ppl(),
              r.overall.mean_nll(), r.seconds, r.seconds > 0 ? static_cast<double>(r.tokens) / r.seconds : 0.0);
  for (const auto& b : r.buckets) {
    if (b.count == 0) continue;
    std::printf("  %-10s %10lld targets  ppl %.4f\n", b.label().c_str(), static_cast<long long>(b.count), b.ppl());
  }
  std::fflush(stdout);
}

void add_ppl(CLI::App& eval) {
  struct Args {
    CommonArgs c;
    std::vector<std::string> texts;
    bool no_memory = false, compare = false;
    int64_t max_tokens = 0;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = eval.add_subcommand("ppl", "perplexity of long documents, each streamed segment by segment");
  add_common(cmd, a->c);
  cmd->add_option("--text", a->texts,
                  "UTF-8 text file, one document (BOS is prepended); repeat for several documents, which are "
                  "reported each and together")
      ->required();
  cmd->add_flag("--no-memory", a->no_memory,
                "never write segments into memory (memory reads are 0: each segment sees only itself)");
  cmd->add_flag("--compare", a->compare, "run with memory and with --no-memory on the same tokens")
      ->excludes("--no-memory");
  cmd->add_option("--max-tokens", a->max_tokens, "evaluate at most this many tokens of each document (0 = all)")
      ->check(integer_at_least(0));
  cmd->callback([a] {
    set_command([a] {
      // Under a launcher the passes (document x with / without memory) are split over the ranks,
      // pass i on rank i mod N, and rank 0 gathers, prints and writes them all. A document is one
      // stream and is never split: what its memory sees is the whole document.
      const std::shared_ptr<Comm> comm = process_comm(kEvalDistTimeoutS);
      LoadedModel m = load_eval_model(a->c, "eval ppl");
      a->c.precision = resolved_precision(a->c.precision, m.device);
      Tokenizer tok = load_eval_tokenizer(a->c, m);
      std::vector<bool> modes{a->no_memory};
      if (a->compare) modes = {false, true};
      const size_t n_docs = a->texts.size(), n_passes = n_docs * modes.size();
      std::printf("ppl: %s on %zu document(s), %s, segment %lld, %s%s\n", m.path.c_str(), n_docs,
                  a->c.precision.c_str(), static_cast<long long>(m.model->config().segment_len),
                  device_name(m.device).c_str(),
                  comm->distributed() ? fmt::format(", {} passes over {} ranks", n_passes, comm->world_size()).c_str()
                                      : "");
      PplOptions opt;
      opt.bf16 = a->c.precision == "bf16";
      std::vector<PplResult> results(n_passes);  // pass p: document p / modes, mode p % modes
      std::vector<int64_t> doc_tokens(n_docs, 0);
      nlohmann::json mine = nlohmann::json::array();
      std::vector<int64_t> ids;
      size_t ids_doc = n_docs;  // the document `ids` holds
      for (size_t p = 0; p < n_passes; ++p) {
        if (static_cast<int>(p % static_cast<size_t>(comm->world_size())) != comm->rank()) continue;
        const size_t d = p / modes.size();
        const bool no_memory = modes[p % modes.size()];
        if (ids_doc != d) {
          ids = tokenize_text_file(tok, a->texts[d], a->max_tokens);
          ids_doc = d;
          std::printf("  %s: %zu tokens\n", a->texts[d].c_str(), ids.size());
        }
        opt.no_memory = no_memory;
        Progress progress(no_memory ? "eval ppl (no memory)" : "eval ppl", static_cast<double>(ids.size()), "tokens");
        opt.on_tokens = [&progress](int64_t done) { progress.update(static_cast<double>(done)); };
        results[p] = stream_perplexity(m.model, ids, opt);
        progress.finish();
        mine.push_back({{"pass", p}, {"result", ppl_sums_json(results[p])}});
      }
      if (comm->distributed()) {
        const std::vector<std::string> all = comm->all_gather("ppl_passes", mine.dump());
        if (!comm->is_main()) return 0;
        for (const std::string& part : all)
          for (const auto& e : nlohmann::json::parse(part))
            results[e.at("pass").get<size_t>()] = ppl_result_from_sums(e.at("result"));
      }
      // One document: the JSON as it always was. Several: each, then all of them together.
      auto pass_json = [&](size_t first, const std::function<nlohmann::json(size_t)>& get) {
        nlohmann::json j;
        if (a->compare) {
          j["with_memory"] = get(first);
          j["no_memory"] = get(first + 1);
        } else {
          j = get(first);
        }
        return j;
      };
      nlohmann::json j;
      for (size_t d = 0; d < n_docs; ++d) {
        if (n_docs > 1) std::printf("%s\n", a->texts[d].c_str());
        for (size_t k = 0; k < modes.size(); ++k) print_ppl(results[d * modes.size() + k]);
        nlohmann::json doc = pass_json(d * modes.size(), [&](size_t p) { return ppl_result_json(results[p]); });
        doc["text"] = a->texts[d];
        if (n_docs == 1) j = doc;
        else j["documents"].push_back(doc);
      }
      if (n_docs > 1) {
        std::vector<PplResult> merged;
        for (size_t k = 0; k < modes.size(); ++k) {
          std::vector<PplResult> parts;
          for (size_t d = 0; d < n_docs; ++d) parts.push_back(results[d * modes.size() + k]);
          merged.push_back(merge_ppl_results(parts));
        }
        std::printf("all %zu documents\n", n_docs);
        for (const PplResult& r : merged) print_ppl(r);
        j["all"] = pass_json(0, [&](size_t k) { return ppl_result_json(merged[k]); });
      }
      j["checkpoint"] = m.path;
      j["precision"] = a->c.precision;
      write_json(a->c.out, j);
      return 0;
    });
  });
}

}  // namespace

void add_eval_command(CLI::App& app) {
  CLI::App* eval = app.add_subcommand("eval", "evaluate a checkpoint: passkey, ppl, reward, accuracy");
  eval->require_subcommand(1);
  add_passkey(*eval);
  add_ppl(*eval);
  add_eval_reward_subcommand(*eval);
  add_eval_accuracy_subcommand(*eval);
}

}  // namespace infini
