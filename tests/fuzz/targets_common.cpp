// What every fuzz target shares: the per-process scratch folder, writing an input there, the
// table of targets, and naming an escaped exception. No target of its own.
#include <cxxabi.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <typeinfo>

#include "tests/fuzz/targets.h"

namespace fs = std::filesystem;

namespace infini::fuzz {

namespace {

struct ScratchDir {
  std::string path;
  ScratchDir() {
    const char* tmp = std::getenv("TMPDIR");
    path = (fs::path(tmp && *tmp ? tmp : "/tmp") / ("infini-fuzz-" + std::to_string(::getpid()))).string();
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

const std::string& scratch_dir() {
  static ScratchDir dir;
  return dir.path;
}

std::string write_scratch(const std::string& name, const uint8_t* data, size_t size) {
  const fs::path p = fs::path(scratch_dir()) / name;
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) std::abort();  // the harness itself failed (disk full): not the code under test
  return p.string();
}

std::string current_exception_type() {
  const std::type_info* t = abi::__cxa_current_exception_type();
  if (!t) return "(none)";
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(t->name(), nullptr, nullptr, &status), std::free);
  return status == 0 && name ? name.get() : t->name();
}

const std::vector<Target>& all_targets() {
  static const std::vector<Target> targets = {
      {"config", fuzz_config},           {"records", fuzz_records},         {"chat", fuzz_chat},
      {"safetensors", fuzz_safetensors}, {"llama2c", fuzz_llama2c},         {"shard_index", fuzz_shard_index},
      {"trainer_state", fuzz_trainer_state},
  };
  return targets;
}

}  // namespace infini::fuzz
