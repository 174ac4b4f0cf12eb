// Checkpoint directories: atomic commit (tmp dir + fsync + rename), `latest`, resolution, pruning.
// Contents of a checkpoint are written by the caller; this file only moves directories safely.
#include "train/run/checkpoint_dir.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "core/error.h"

namespace fs = std::filesystem;

namespace infini {
namespace {

void fsync_path(const fs::path& p, bool directory) {
  int fd = ::open(p.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) throw Error(fmt::format("cannot open {} to flush it", p.string()));
  ::fsync(fd);
  ::close(fd);
}

std::string read_trimmed(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::string step_dir_name(int64_t step) { return fmt::format("step_{:08d}", step); }

std::string latest_checkpoint(const std::string& run_dir) {
  fs::path latest = fs::path(run_dir) / "checkpoints" / "latest";
  if (!fs::exists(latest)) return "";
  std::string name = read_trimmed(latest);
  fs::path dir = fs::path(run_dir) / "checkpoints" / name;
  if (name.empty() || (!fs::exists(dir / kModelFileName) && !fs::exists(dir / "trainer_state.json")))
    throw Error(fmt::format("{} names '{}', which is not a complete checkpoint", latest.string(), name));
  return dir.string();
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
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(fmt::format("cannot write {}", tmp.string()));
    out << text;
    out.flush();
    if (!out) throw Error(fmt::format("cannot write {}", tmp.string()));
  }
  fsync_path(tmp, false);
  fs::rename(tmp, target);
  fsync_path(target.has_parent_path() ? target.parent_path() : fs::path("."), true);
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
  write(tmp_dir.string());
  // Every file and folder of the step directory, subfolders too (PPO's actor/ and critic/),
  // deepest first, so nothing the rename publishes can be lost in a crash.
  std::vector<fs::path> dirs{tmp_dir};
  for (const auto& e : fs::recursive_directory_iterator(tmp_dir)) {
    if (e.is_regular_file()) fsync_path(e.path(), false);
    else if (e.is_directory()) dirs.push_back(e.path());
  }
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) fsync_path(*it, true);
  if (fs::exists(final_dir)) {
    // Re-saving the same step (e.g. after a resume): move the old one aside first.
    fs::path old = ckdir / fmt::format(".old_{}_{}", name, ::getpid());
    fs::remove_all(old);
    fs::rename(final_dir, old);
    fs::rename(tmp_dir, final_dir);
    fs::remove_all(old);
  } else {
    fs::rename(tmp_dir, final_dir);
  }
  fsync_path(ckdir, true);
  write_file_atomic((ckdir / "latest").string(), name + "\n");

  // Stale temporaries of killed writers and checkpoints beyond keep_last.
  std::vector<fs::path> steps;
  for (const auto& e : fs::directory_iterator(ckdir)) {
    const std::string n = e.path().filename().string();
    if (e.is_directory() && n.rfind(".tmp_", 0) == 0 && e.path() != tmp_dir) fs::remove_all(e.path());
    else if (e.is_directory() && n.rfind("step_", 0) == 0) steps.push_back(e.path());
  }
  if (keep_last > 0 && static_cast<int>(steps.size()) > keep_last) {
    std::sort(steps.begin(), steps.end());
    for (size_t i = 0; i + keep_last < steps.size(); ++i)
      if (steps[i] != final_dir) fs::remove_all(steps[i]);
  }
  return final_dir.string();
}

}  // namespace infini
