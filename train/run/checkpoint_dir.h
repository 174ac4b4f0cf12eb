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

// Latest complete step directory of a run, or "" when the run has none.
std::string latest_checkpoint(const std::string& run_dir);

// Writes RUN_DIR/checkpoints/step_XXXXXXXX atomically: `write` fills a temporary sibling
// directory, every file and folder in it (subfolders too) is fsynced, the directory is renamed into place, then
// checkpoints/latest is replaced atomically. keep_last > 0 deletes older step dirs.
// Returns the final step directory.
std::string commit_checkpoint(const std::string& run_dir, int64_t step,
                              const std::function<void(const std::string& tmp_dir)>& write,
                              int keep_last = 0);

// Writes `text` to `path` atomically (temp file, fsync, rename, fsync dir).
void write_file_atomic(const std::string& path, const std::string& text);

}  // namespace infini
