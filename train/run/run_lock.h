// An exclusive lock on a run directory (flock on RUN_DIR/.lock, holding the owner's pid), so that
// two processes never train into one directory. Released when the process ends, however it ends.
// Not a lock on checkpoints read for inference (eval and generate read without it).
#pragma once
#include <string>

namespace infini {

class RunLock {
 public:
  // Takes the lock or throws ConfigError naming the directory and the pid that holds it.
  explicit RunLock(const std::string& run_dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace infini
