// DataConfig and TokenizerConfig: what a stage reads and how records become token sequences.
// Plain structs with commented defaults; parsed from YAML in train/config/config.cpp via visit_fields.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace infini {

struct TokenizerConfig {
  std::string model;  // path to a sentencepiece .model ("" = none; pretrain on shards needs none)
};

template <class V> void visit_fields(TokenizerConfig& c, V& v) {
  v("model", c.model, "path to a sentencepiece .model");
}

struct ChatTemplate {
  std::string system_prefix = "### System:\n";        // before a system turn
  std::string user_prefix = "### User:\n";            // before a user turn (the prompt)
  std::string assistant_prefix = "### Assistant:\n";  // before an assistant turn (the response)
  std::string turn_end = "\n\n";                      // after every non-final turn
};

template <class V> void visit_fields(ChatTemplate& c, V& v) {
  v("system_prefix", c.system_prefix, "text before a system turn");
  v("user_prefix", c.user_prefix, "text before a user turn");
  v("assistant_prefix", c.assistant_prefix, "text before an assistant turn");
  v("turn_end", c.turn_end, "text after each turn but the last");
}

struct DataConfig {
  std::vector<std::string> train;  // training inputs: shard dirs (pretrain) or record files
  std::vector<std::string> val;    // validation inputs ([] = none; a shard dir's val split is used)
  std::string format = "tokens";   // tokens (prepared shards) | sft | preference | prompts
  int64_t seq_len = 256;           // tokens per training sequence (records: max length)
  std::string truncate = "right";  // records longer than seq_len: left | right | drop
  bool shuffle = true;             // deterministic shuffle from run.seed + epoch
  bool pack = false;               // sft, preference, prompts: a batch's records (both sides of the
                                   // pairs; PPO's rollouts when scored) share rows of up to seq_len
                                   // tokens (less padding; each record computes what it would alone)
  int64_t prefetch = 2;            // batches prepared ahead on a thread (0 = none)
  int64_t max_record_bytes = 16 << 20;  // a JSONL record (line) longer than this is refused, unparsed
  ChatTemplate chat;               // how records are rendered to tokens
};

template <class V> void visit_fields(DataConfig& c, V& v) {
  v("train", c.train, "training inputs: shard dirs or record files");
  v("val", c.val, "validation inputs");
  v("format", c.format, "tokens | sft | preference | prompts");
  v("seq_len", c.seq_len, "tokens per sequence (records: max length)");
  v("truncate", c.truncate, "records longer than seq_len: left | right | drop");
  v("shuffle", c.shuffle, "shuffle deterministically from seed + epoch");
  v("pack", c.pack, "records (pairs, PPO rollouts) share rows of up to seq_len tokens");
  v("prefetch", c.prefetch, "batches prepared ahead on a thread");
  v("max_record_bytes", c.max_record_bytes, "JSONL records longer than this are refused before parsing");
  v.section("chat", c.chat);
}

}  // namespace infini
