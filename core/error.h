// infini::Error: the one exception type for user-facing failures (bad files, bad input).
// Its message is the single line the CLI prints; internal bugs use TORCH_CHECK instead.
#pragma once
#include <stdexcept>
#include <string>

namespace infini {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Configuration errors: the CLI exits with code 2 for these.
struct ConfigError : Error {
  using Error::Error;
};

}  // namespace infini
