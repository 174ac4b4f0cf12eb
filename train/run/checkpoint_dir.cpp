// Checkpoint directories: atomic commit (tmp dir + fsync + rename), `latest`, resolution, pruning.
// Contents of a checkpoint are written by the caller; this file only moves directories safely.
#include "train/run/checkpoint_dir.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "core/safetensors.h"

namespace fs = std::filesystem;

namespace infini {
namespace {

[[noreturn]] void fail_io(const std::string& what, const fs::path& p) {
  throw Error(fmt::format("{} {}: {}", what, p.string(), std::strerror(errno)));
}

void fsync_path(const fs::path& p, bool directory) {
  fault_point("fsync");
  const int fd = ::open(p.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) fail_io("cannot open to flush", p);
  if (::fsync(fd) != 0) {
    const int e = errno;
    ::close(fd);
    errno = e;
    fail_io("cannot flush", p);
  }
  ::close(fd);
}

void rename_path(const fs::path& from, const fs::path& to) {
  fault_point("rename");
  if (::rename(from.c_str(), to.c_str()) != 0) fail_io(fmt::format("cannot rename {} to", from.string()), to);
}

std::string read_trimmed(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// The step of a "step_XXXXXXXX" name, or -1.
int64_t step_of(const std::string& name) {
  if (name.size() != 13 || name.rfind("step_", 0) != 0) return -1;
  int64_t v = 0;
  for (size_t i = 5; i < name.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(name[i]))) return -1;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

// Step directories of a run, newest first.
std::vector<fs::path> step_dirs(const fs::path& ckdir) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(ckdir, ec)) return out;
  for (const auto& e : fs::directory_iterator(ckdir))
    if (e.is_directory() && step_of(e.path().filename().string()) >= 0) out.push_back(e.path());
  std::sort(out.begin(), out.end(), [](const fs::path& a, const fs::path& b) { return a > b; });
  return out;
}

}  // namespace

void fault_point(const char* what) {
  // INFINI_FAULT=fail:N or kill:N: the Nth checkpoint I/O operation (write, fsync, rename) of this
  // process fails (as a full disk would) or kills the process. For fault-injection tests.
  static const std::pair<std::string, long> plan = [] {
    const char* v = std::getenv("INFINI_FAULT");
    if (!v) return std::pair<std::string, long>{"", 0};
    const std::string s(v);
    const auto colon = s.find(':');
    if (colon == std::string::npos) return std::pair<std::string, long>{"", 0};
    return std::pair<std::string, long>{s.substr(0, colon), std::atol(s.c_str() + colon + 1)};
  }();
  if (plan.first.empty()) return;
  static long count = 0;
  if (++count != plan.second) return;
  if (plan.first == "kill") ::raise(SIGKILL);
  errno = EIO;
  throw Error(fmt::format("injected fault at checkpoint I/O operation {} ({})", count, what));
}

std::string step_dir_name(int64_t step) { return fmt::format("step_{:08d}", step); }

std::string verify_checkpoint(const std::string& dir, int64_t step) {
  const fs::path d(dir);
  if (step < 0) step = step_of(d.filename().string());
  std::error_code ec;
  if (!fs::is_directory(d, ec)) return "no such directory";
  int files = 0;
  try {
    for (const auto& e : fs::recursive_directory_iterator(d)) {
      if (!e.is_regular_file() || e.path().extension() != ".safetensors") continue;
      read_safetensors_metadata(e.path().string());  // the whole header, against the file's size
      ++files;
    }
    if (fs::exists(d / "trainer_state.json")) {
      const std::string path = (d / "trainer_state.json").string();
      std::ifstream in(path);
      const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
      if (j.is_discarded() || !j.is_object()) return path + " is not a JSON object";
      if (!j.contains("step") || !j["step"].is_number_integer())
        return path + ": step is missing or not an integer";
      if (step >= 0 && j["step"].get<int64_t>() != step)
        return fmt::format("{}: step is {}, the directory's name says {}", path, j["step"].dump(), step);
    } else if (files == 0) {
      return "neither a model file nor trainer_state.json";
    }
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

std::string latest_checkpoint(const std::string& run_dir) {
  const fs::path ckdir = fs::path(run_dir) / "checkpoints";
  const fs::path latest = ckdir / "latest";
  std::string named;
  if (fs::exists(latest)) {
    named = read_trimmed(latest);
    const fs::path dir = ckdir / named;
    const std::string problem = named.empty() ? "empty" : verify_checkpoint(dir.string());
    if (problem.empty()) return dir.string();
    spdlog::warn("{} names '{}', which is not a complete checkpoint ({}); looking for the newest good one",
                 latest.string(), named, problem);
  }
  const std::vector<fs::path> dirs = step_dirs(ckdir);
  if (dirs.empty()) {
    if (!named.empty()) throw Error(fmt::format("{} names '{}', which does not exist, and {} holds no step "
                                                "directory", latest.string(), named, ckdir.string()));
    return "";
  }
  for (const fs::path& d : dirs) {
    if (d.filename() == named) continue;
    const std::string problem = verify_checkpoint(d.string());
    if (problem.empty()) {
      spdlog::warn("resuming from {}: {}", d.string(),
                   named.empty() ? "checkpoints/latest is missing; this is the newest complete checkpoint"
                                 : "the newest complete checkpoint before the one `latest` names");
      return d.string();
    }
    spdlog::warn("{}: skipped, not a complete checkpoint ({})", d.string(), problem);
  }
  throw Error(fmt::format("{}: none of its {} step directories is a complete checkpoint; refusing to start "
                          "over in it (move it aside, or choose another run.dir)", ckdir.string(), dirs.size()));
}

std::string resolve_checkpoint(const std::string& ck) {
  fs::path p(ck);
  if (!fs::exists(p)) throw Error(fmt::format("checkpoint {}: no such file or directory", ck));
  if (!fs::is_directory(p))
    throw Error(fmt::format("checkpoint {}: expected a run or checkpoint directory, found a file", ck));
  if (fs::exists(p / kModelFileName) || fs::exists(p / "trainer_state.json")) return p.string();
  std::string latest = latest_checkpoint(ck);
  if (!latest.empty()) return latest;
  throw Error(fmt::format(
      "checkpoint {}: expected a step directory with model.safetensors or a run directory with "
      "checkpoints/latest, found neither", ck));
}

void write_file_atomic(const std::string& path, const std::string& text) {
  fs::path target(path);
  fs::path tmp = target;
  tmp += fmt::format(".tmp{}", ::getpid());
  {
    fault_point("write");
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail_io("cannot write", tmp);
    out << text;
    out.flush();
    if (!out) {
      const int e = errno;
      out.close();
      fs::remove(tmp);
      errno = e;
      fail_io("cannot write", tmp);
    }
  }
  try {
    fsync_path(tmp, false);
    rename_path(tmp, target);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  fsync_path(target.has_parent_path() ? target.parent_path() : fs::path("."), true);
}

void clean_checkpoint_temporaries(const std::string& run_dir) {
  const fs::path ckdir = fs::path(run_dir) / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(ckdir, ec)) return;
  for (const auto& e : fs::directory_iterator(ckdir)) {
    const std::string n = e.path().filename().string();
    if (n.rfind(".tmp_", 0) == 0) {
      spdlog::info("removing {}, left by an interrupted checkpoint write", e.path().string());
      fs::remove_all(e.path());
    } else if (n.rfind(".old_", 0) == 0) {
      // A re-save of the same step interrupted between its two renames: the old copy may be the
      // only one.
      const std::string name = n.substr(5, n.rfind('_') - 5);
      if (step_of(name) >= 0 && !fs::exists(ckdir / name)) rename_path(e.path(), ckdir / name);
      else fs::remove_all(e.path());
    }
  }
}

std::string commit_checkpoint(const std::string& run_dir, int64_t step,
                              const std::function<void(const std::string&)>& write, int keep_last) {
  fs::path ckdir = fs::path(run_dir) / "checkpoints";
  fs::create_directories(ckdir);
  const std::string name = step_dir_name(step);
  fs::path final_dir = ckdir / name;
  fs::path tmp_dir = ckdir / fmt::format(".tmp_{}_{}", name, ::getpid());
  fs::remove_all(tmp_dir);
  fs::create_directories(tmp_dir);
  try {
    fault_point("write");
    write(tmp_dir.string());
    // Every file and folder of the step directory, subfolders too (PPO's actor/ and critic/),
    // deepest first, so nothing the rename publishes can be lost in a crash.
    std::vector<fs::path> dirs{tmp_dir};
    for (const auto& e : fs::recursive_directory_iterator(tmp_dir)) {
      if (e.is_regular_file()) fsync_path(e.path(), false);
      else if (e.is_directory()) dirs.push_back(e.path());
    }
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) fsync_path(*it, true);
    const std::string problem = verify_checkpoint(tmp_dir.string(), step);
    if (!problem.empty()) throw Error(fmt::format("{}: reads back wrong: {}", tmp_dir.string(), problem));
    if (fs::exists(final_dir)) {
      // Re-saving the same step (e.g. after a resume): swap the two atomically, so a crash leaves
      // one complete copy under the final name either way.
      fault_point("rename");
      if (::renameat2(AT_FDCWD, tmp_dir.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_EXCHANGE) == 0) {
        fs::remove_all(tmp_dir);  // now the old copy
      } else if (errno == EINVAL || errno == ENOSYS || errno == ENOTSUP) {
        // A file system without the exchange: move the old copy aside first (a crash between the
        // renames is repaired on the next start, see clean_checkpoint_temporaries).
        const fs::path old = ckdir / fmt::format(".old_{}_{}", name, ::getpid());
        fs::remove_all(old);
        rename_path(final_dir, old);
        rename_path(tmp_dir, final_dir);
        fs::remove_all(old);
      } else {
        fail_io(fmt::format("cannot exchange {} with", tmp_dir.string()), final_dir);
      }
    } else {
      rename_path(tmp_dir, final_dir);
    }
    fsync_path(ckdir, true);
  } catch (const std::exception& e) {
    std::error_code ec;
    fs::remove_all(tmp_dir, ec);  // a full disk must not leave a half-written step behind
    throw Error(fmt::format("checkpoint {} not written ({}); the previous checkpoints are kept", final_dir.string(),
                            e.what()));
  }
  write_file_atomic((ckdir / "latest").string(), name + "\n");

  // Checkpoints beyond keep_last, now that the new one is in place and read back.
  std::vector<fs::path> steps = step_dirs(ckdir);
  if (keep_last > 0 && static_cast<int>(steps.size()) > keep_last) {
    for (size_t i = static_cast<size_t>(keep_last); i < steps.size(); ++i)
      if (steps[i] != final_dir) fs::remove_all(steps[i]);
  }
  return final_dir.string();
}

}  // namespace infini
