// The narrow C interface of libinfini_spm, the only code that links libsentencepiece.
// Not a tokenizer API for the project: data/tokenizer.h wraps this and is what everyone uses.
#pragma once
#include <stddef.h>

extern "C" {

typedef struct infini_spm infini_spm;

// Loads a .model file. Returns nullptr and writes a message into err (err_len bytes) on failure.
infini_spm* infini_spm_load(const char* path, char* err, int err_len);
void infini_spm_free(infini_spm* h);

int infini_spm_vocab_size(const infini_spm* h);
int infini_spm_bos_id(const infini_spm* h);
int infini_spm_eos_id(const infini_spm* h);
int infini_spm_pad_id(const infini_spm* h);
int infini_spm_unk_id(const infini_spm* h);

// Encodes len bytes of UTF-8 (no BOS/EOS). Returns the id count (or -1) and a malloc'ed array
// in *ids that the caller releases with infini_spm_release. Thread-safe for one handle.
int infini_spm_encode(const infini_spm* h, const char* text, size_t len, int** ids);
// Decodes n ids. Returns the byte length (or -1) and a malloc'ed buffer in *text.
long infini_spm_decode(const infini_spm* h, const int* ids, int n, char** text);
// The piece of an id, malloc'ed in *piece; returns its length or -1 for an id out of range.
long infini_spm_id_to_piece(const infini_spm* h, int id, char** piece);
// The id of a piece (the unk id when unknown).
int infini_spm_piece_to_id(const infini_spm* h, const char* piece);
void infini_spm_release(void* p);

// Sentences and log lines of one training run, through the caller's functions.
typedef struct infini_spm_train_io {
  void* user;
  // Puts the next sentence into *text / *len (valid until the next call). Returns 1 for a
  // sentence, 0 when there are no more, -1 on a failure (the caller keeps its own message).
  int (*next_sentence)(void* user, const char** text, size_t* len);
  // One line sentencepiece logged, without its newline (from any of its threads, one at a time).
  void (*log_line)(void* user, const char* line, size_t len);
} infini_spm_train_io;

// Trains a model. kwargs: "key=value" pairs separated by '\n' (the SentencePieceTrainer flags
// without "--", so values may hold spaces; no "input": the sentences come from io->next_sentence).
// What sentencepiece logs goes to io->log_line, not to stderr.
// Returns 0 on success, else writes err.
int infini_spm_train(const char* kwargs, const infini_spm_train_io* io, char* err, int err_len);

}  // extern "C"
