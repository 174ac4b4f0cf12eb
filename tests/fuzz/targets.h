// The fuzz targets: one function per kind of untrusted input the trainer reads (config YAML with
// overrides, record files, chat rendering without a tokenizer, safetensors, llama2.c, a shard
// index.json, trainer_state.json), each taking raw bytes as libFuzzer hands them. Inputs that a
// function takes as a path are written to a per-process scratch folder first.
// Used by the libFuzzer binaries (fuzz_main.cpp, scripts/fuzz.sh) and by the replay test
// (tests/test_fuzz_replay.cpp). Not a test of valid behaviour beyond the properties checked here.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace infini::fuzz {

// What one input did. A refusal is an infini::Error (the project's one-line error for bad input);
// any other exception, or a broken property (a round trip that differs, a size that does not
// add up), is a finding: a bug, reported by the fuzzer as a crash and by the replay test as a failure.
struct Outcome {
  bool accepted = false;  // the input was read as valid
  std::string message;    // refused: the error's line; accepted: what was refused inside it ("" if nothing)
  std::string finding;    // non-empty: the bug, in words
};

Outcome fuzz_config(const uint8_t* data, size_t size);         // YAML text, '\0', override lines
Outcome fuzz_records(const uint8_t* data, size_t size);        // a .jsonl / .json / .jsonl.gz file
Outcome fuzz_chat(const uint8_t* data, size_t size);           // 3 control bytes, then two texts split at '\0'
Outcome fuzz_safetensors(const uint8_t* data, size_t size);    // a .safetensors file
Outcome fuzz_llama2c(const uint8_t* data, size_t size);        // a legacy llama2.c checkpoint
Outcome fuzz_shard_index(const uint8_t* data, size_t size);    // index.json of a token shard folder
Outcome fuzz_trainer_state(const uint8_t* data, size_t size);  // trainer_state.json of a step folder

struct Target {
  const char* name;  // the corpus folder: tests/fuzz/corpus/<name>, tests/fuzz/regressions/<name>
  Outcome (*run)(const uint8_t*, size_t);
};
const std::vector<Target>& all_targets();

// The folder this process writes its inputs in: $TMPDIR (or /tmp)/infini-fuzz-<pid>, made on first
// use and removed when the process exits normally.
const std::string& scratch_dir();
// Writes bytes to scratch_dir()/name (subfolders made as needed) and returns the path.
std::string write_scratch(const std::string& name, const uint8_t* data, size_t size);

// Runs body(outcome): an infini::Error becomes a refusal with its message, any other exception a
// finding naming its type. body sets accepted (and checks properties) itself.
template <class F> Outcome guarded(F&& body);

// The name of the exception in flight (demangled), for findings.
std::string current_exception_type();

}  // namespace infini::fuzz

#include "core/error.h"

template <class F> infini::fuzz::Outcome infini::fuzz::guarded(F&& body) {
  Outcome o;
  try {
    body(o);
  } catch (const infini::Error& e) {
    o.accepted = false;
    o.message = e.what();
  } catch (const std::exception& e) {
    o.accepted = false;
    o.finding = "escaped " + current_exception_type() + " (expected an infini::Error): " + e.what();
  } catch (...) {
    o.accepted = false;
    o.finding = "escaped an exception of type " + current_exception_type() + " (expected an infini::Error)";
  }
  return o;
}
