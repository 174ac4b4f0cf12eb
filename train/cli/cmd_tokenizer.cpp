// `infini tokenizer train`: trains a sentencepiece model (byte fallback, pad id) from text files.
// Not the tokenizer itself (data/tokenizer.h).
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "data/tokenizer.h"
#include "train/cli/commands.h"
#include "train/run/progress.h"
#include "train/run/runtime.h"

namespace infini {

void add_tokenizer_command(CLI::App& app) {
  auto* tok = app.add_subcommand("tokenizer", "train a sentencepiece tokenizer");
  tok->require_subcommand(1);
  auto* train = tok->add_subcommand("train", "train PREFIX.model and PREFIX.vocab from text files");
  auto opt = std::make_shared<TokenizerTrainOptions>();
  train->add_option("--input", opt->inputs, "text files (one sentence per line)")->required();
  train->add_option("--vocab-size", opt->vocab_size, "pieces in the vocabulary, byte pieces included")->required();
  train->add_option("--out", opt->model_prefix, "output prefix: writes PREFIX.model and PREFIX.vocab")->required();
  train->add_option("--model-type", opt->model_type, "bpe | unigram")->check(CLI::IsMember({"bpe", "unigram"}));
  train->add_option("--input-sentence-size", opt->input_sentence_size, "lines sampled from large inputs");
  train->add_option("--threads", opt->threads, "0 = all cores");
  train->callback([opt] {
    set_command([opt] {
      opt->threads = resolve_threads(opt->threads, "--threads");
      TokenizerTrainReport rep;
      {
        // One line per phase: reading (MB of the inputs), preparing (sentencepiece's step), merging
        // (bpe: pieces made of those to make) or EM rounds (unigram: pieces left, as a note).
        std::mutex mu;
        std::optional<Progress> line;
        std::optional<ProgressTicker> ticker;  // the elapsed time moves between sentencepiece's log lines
        std::string phase, last_note;
        const std::string what = fmt::format("vocabulary {} ({})", opt->vocab_size, opt->model_type);
        auto on_progress = [&](const TokenizerTrainProgress& p) {
          std::lock_guard<std::mutex> lock(mu);
          const std::string now = p.reading ? "reading" : p.done > 0 ? "merging" : "preparing";
          if (now != phase) {
            ticker.reset();
            if (line) line->finish();
            line.reset();
            phase = now;
            if (now == "reading") line.emplace("tokenizer train", p.total / 1e6, "MB");
            else if (now == "merging") line.emplace("tokenizer train", p.total, "pieces");
            else line.emplace("tokenizer train", 0, "");
            ticker.emplace(*line);
            last_note.clear();
          }
          const std::string note = now == "reading" ? "reading the input, " + what : p.step + ", " + what;
          if (note != last_note) line->note(note);  // a note redraws a terminal's line at once
          last_note = note;
          line->update(now == "reading" ? p.done / 1e6 : p.done);
        };
        rep = train_tokenizer(*opt, on_progress);
        ticker.reset();
        if (line) line->finish();
      }
      for (const auto& w : rep.warnings) std::fprintf(stderr, "sentencepiece: %s\n", w.c_str());
      if (rep.invalid_utf8_bytes > 0)
        std::fprintf(stderr, "warning: tokenizer train: %lld bytes of the input are not valid UTF-8 (the first at %s); "
                     "sentencepiece read each as U+FFFD, the replacement character\n",
                     static_cast<long long>(rep.invalid_utf8_bytes), rep.first_invalid_utf8.c_str());
      if (rep.lines_cut > 0)
        std::printf("cut %lld lines longer than 16384 bytes (sentencepiece's limit) into %lld lines, at spaces where "
                    "possible, in %lld input file%s\n", static_cast<long long>(rep.lines_cut),
                    static_cast<long long>(rep.pieces_from_cuts), static_cast<long long>(rep.files_with_cuts),
                    rep.files_with_cuts == 1 ? "" : "s");
      const Tokenizer t = Tokenizer::load(opt->model_prefix + ".model");
      std::printf("wrote %s.model and %s.vocab: %d pieces (bos %d, eos %d, pad %d, unk %d), hash %s\n",
                  opt->model_prefix.c_str(), opt->model_prefix.c_str(), t.vocab_size(), t.bos_id(), t.eos_id(),
                  t.pad_id(), t.unk_id(), t.content_hash().c_str());
      return 0;
    });
  });
}

}  // namespace infini
