// `infini data prepare` (text -> token shards) and `infini data synth` (synthetic task records).
// Not the work itself: data/prepare.h and data/synth.h.
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "core/error.h"
#include "data/prepare.h"
#include "train/run/progress.h"
#include "data/synth.h"
#include "data/tokenizer.h"
#include "train/cli/commands.h"
#include "train/run/runtime.h"

namespace infini {

void add_data_command(CLI::App& app) {
  auto* data = app.add_subcommand("data", "prepare corpora and synthesize task data");
  data->require_subcommand(1);

  auto* prep = data->add_subcommand("prepare", "tokenize text files into token shards (DIR/index.json)");
  auto popt = std::make_shared<PrepareOptions>();
  auto ptok = std::make_shared<std::string>();
  prep->add_option("--tokenizer", *ptok, "sentencepiece .model")->required();
  prep->add_option("--input", popt->inputs, "UTF-8 text files; documents are blocks between blank lines")->required();
  prep->add_option("--out", popt->out_dir, "output directory")->required();
  prep->add_option("--val-fraction", popt->val_fraction, "share of documents held out for validation (default 0.005)");
  prep->add_option("--threads", popt->threads, "0 = all cores");
  prep->add_option("--shard-tokens", popt->shard_tokens, "tokens per shard file at most");
  prep->callback([popt, ptok] {
    set_command([popt, ptok] {
      popt->threads = resolve_threads(popt->threads, "--threads");
      const Tokenizer tok = Tokenizer::load(*ptok);
      Progress progress("data prepare", 0, "MB");
      popt->on_progress = [&progress](int64_t read, int64_t total) {
        progress.set_total(static_cast<double>(total) / 1e6);
        progress.update(static_cast<double>(read) / 1e6);
      };
      const PrepareStats s = prepare_corpus(tok, *popt);
      progress.finish();
      for (const auto& b : s.invalid_utf8)
        std::fprintf(stderr,
                     "warning: data prepare: %s: %lld bytes are not valid UTF-8 (the first at line %lld, byte %lld); "
                     "each was tokenized as U+FFFD, the replacement character\n",
                     b.file.c_str(), static_cast<long long>(b.bytes), static_cast<long long>(b.first_line),
                     static_cast<long long>(b.first_byte));
      const int64_t tokens = s.train_tokens + s.val_tokens;
      std::printf("prepared %s: %lld documents (%lld train, %lld val), %lld train + %lld val tokens, "
                  "%.2f bytes/token, %.1f MB in %.2f s (%.1f MB/s)\n",
                  popt->out_dir.c_str(), static_cast<long long>(s.documents), static_cast<long long>(s.train_documents),
                  static_cast<long long>(s.val_documents), static_cast<long long>(s.train_tokens),
                  static_cast<long long>(s.val_tokens), tokens ? static_cast<double>(s.bytes) / tokens : 0.0,
                  s.bytes / 1e6, s.seconds, s.seconds > 0 ? s.bytes / 1e6 / s.seconds : 0.0);
      return 0;
    });
  });

  auto* synth = data->add_subcommand("synth", "write synthetic task records (JSONL)");
  auto sopt = std::make_shared<SynthOptions>();
  auto out = std::make_shared<std::string>();
  auto stok = std::make_shared<std::string>();
  auto depth = std::make_shared<std::string>("random");
  auto length = std::make_shared<std::string>("1024");
  synth->add_option("--task", sopt->task, "passkey | add | reverse | sort | kjv_book")->required();
  synth->add_option("--count", sopt->count, "records")->required();
  synth->add_option("--out", *out, "output .jsonl")->required();
  synth->add_option("--seed", sopt->seed, "random seed");
  synth->add_option("--kind", sopt->kind, "sft | preference | prompts")->check(CLI::IsMember({"sft", "preference", "prompts"}));
  synth->add_option("--tokenizer", *stok, "sentencepiece .model (passkey lengths are in tokens)");
  synth->add_option("--length", *length, "passkey: prompt tokens incl. BOS (k/m suffix ok)");
  synth->add_option("--depth", *depth, "passkey: key position in [0, 1], or 'random'");
  synth->add_option("--digits", sopt->digits, "passkey: key digits; add: digits per operand");
  synth->add_option("--items", sopt->items, "reverse/sort: words per list");
  synth->add_option("--corpus", sopt->corpus, "kjv_book: kjv.txt from scripts/get_data.sh");
  synth->callback([sopt, out, stok, depth, length] {
    set_command([sopt, out, stok, depth, length] {
      SynthOptions o = *sopt;
      try {
        size_t used = 0;
        o.length = std::stoll(*length, &used);
        const std::string suffix = length->substr(used);
        if (suffix == "k" || suffix == "K") o.length *= 1024;
        else if (suffix == "m" || suffix == "M") o.length *= 1024 * 1024;
        else if (!suffix.empty()) throw std::invalid_argument(suffix);
      } catch (const std::exception&) {
        throw Error(fmt::format("data synth: --length must be a number of tokens (k/m suffix ok), got '{}'", *length));
      }
      if (*depth == "random") {
        o.depth = -1;
      } else {
        try {
          size_t used = 0;
          o.depth = std::stod(*depth, &used);
          if (used != depth->size() || o.depth < 0 || o.depth > 1) throw std::invalid_argument(*depth);
        } catch (const std::exception&) {
          throw Error(fmt::format("data synth: --depth must be in [0, 1] or 'random', got '{}'", *depth));
        }
      }
      std::unique_ptr<Tokenizer> tok;
      if (!stok->empty()) tok = std::make_unique<Tokenizer>(Tokenizer::load(*stok));
      const auto records = make_synthetic(o, tok.get());
      std::ofstream f(*out);
      if (!f) throw Error(fmt::format("data synth: cannot open {} for writing", *out));
      for (const auto& r : records) f << r.dump() << "\n";
      f.close();
      if (!f) throw Error(fmt::format("data synth: write to {} failed", *out));
      std::printf("wrote %zu %s records (%s) to %s\n", records.size(), o.task.c_str(), o.kind.c_str(), out->c_str());
      return 0;
    });
  });
}

}  // namespace infini
