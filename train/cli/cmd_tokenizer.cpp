// `infini tokenizer train`: trains a sentencepiece model (byte fallback, pad id) from text files.
// Not the tokenizer itself (data/tokenizer.h).
#include <cstdio>
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
        // sentencepiece reports nothing while it trains: the line shows the phase and the time.
        Progress progress("tokenizer train", 0, "");
        progress.note(fmt::format("training {} pieces ({}) on {} file{}", opt->vocab_size, opt->model_type,
                                  opt->inputs.size(), opt->inputs.size() == 1 ? "" : "s"));
        ProgressTicker ticker(progress);
        rep = train_tokenizer(*opt);
      }
      if (rep.lines_cut > 0)
        std::printf("cut %lld lines longer than 16384 bytes (sentencepiece's limit) into %lld lines, at spaces where "
                    "possible, in %lld input file%s\n", static_cast<long long>(rep.lines_cut),
                    static_cast<long long>(rep.pieces_from_cuts), static_cast<long long>(rep.files_rewritten),
                    rep.files_rewritten == 1 ? "" : "s");
      const Tokenizer t = Tokenizer::load(opt->model_prefix + ".model");
      std::printf("wrote %s.model and %s.vocab: %d pieces (bos %d, eos %d, pad %d, unk %d), hash %s\n",
                  opt->model_prefix.c_str(), opt->model_prefix.c_str(), t.vocab_size(), t.bos_id(), t.eos_id(),
                  t.pad_id(), t.unk_id(), t.content_hash().c_str());
      return 0;
    });
  });
}

}  // namespace infini
