// Checkpoint directories on disk: resolving CK (run dir or step dir), atomic writes, `latest`, keep_last.
// What goes inside a checkpoint (weights, optimizer, trainer state) is the caller's business.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace infini {

// The model file inside a step directory.
constexpr const char* kModelFileName = "model.safetensors";

// "step_00000100" for 100.
std::string step_dir_name(int64_t step);

// CK may be a step directory (holds model.safetensors) or a run directory (its
// checkpoints/latest names the newest step). Returns the step directory or throws infini::Error.
std::string resolve_checkpoint(const std::string& ck);

// "" when DIR is a complete checkpoint: every .safetensors file in it (subfolders too) has a valid
// header that fits the file, and its trainer_state.json (when there is one) parses with an integer
// step equal to `step` (-1: the one in the directory's name). Otherwise what is wrong, in words.
std::string verify_checkpoint(const std::string& dir, int64_t step = -1);

// The step directory a run resumes from, or "" when it has none: the one checkpoints/latest names
// when it verifies; else (latest missing, or naming a missing or broken directory) the newest step
// directory that verifies, with a warning. Step directories with none that verifies are an
// infini::Error: a run never starts over on top of them.
std::string latest_checkpoint(const std::string& run_dir);

// Writes RUN_DIR/checkpoints/step_XXXXXXXX atomically: `write` fills a temporary sibling
// directory, every file and folder in it (subfolders too) is fsynced and the result verified,
// then it is renamed into place (an existing step directory of the same step is exchanged with it
// atomically), then checkpoints/latest is replaced atomically, and only then does keep_last > 0
// delete older step directories. On any failure the temporary directory is removed and an
// infini::Error says why (with errno's text); the previous checkpoints are untouched.
// Returns the final step directory.
std::string commit_checkpoint(const std::string& run_dir, int64_t step,
                              const std::function<void(const std::string& tmp_dir)>& write,
                              int keep_last = 0);

// Removes what interrupted checkpoint writes left in RUN_DIR/checkpoints (.tmp_* directories), and
// puts back a step directory an interrupted re-save had moved aside. Call with the run locked.
void clean_checkpoint_temporaries(const std::string& run_dir);

// Writes `text` to `path` atomically (temp file, fsync, rename, fsync dir); errors carry errno's text.
void write_file_atomic(const std::string& path, const std::string& text);

// A checkpoint I/O operation about to happen (`what`: write, fsync, rename). With INFINI_FAULT=fail:N
// (or kill:N) in the environment, the Nth of the process fails with an infini::Error as a full disk
// would (or the process is killed there): fault-injection tests walk every point.
void fault_point(const char* what);

}  // namespace infini
