// Command-line lists of the evaluation and data commands: token counts ("8k,32k,1m") and depths
// ("0,0.5,1"). Not the evaluations that use them (train/eval/).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace infini {

// "8k" -> 8192, "1m" -> 1048576, "5000" -> 5000 (k = 1024, m = 1048576). Throws infini::Error
// naming `what` on anything else or on a value < 1.
int64_t parse_token_count(const std::string& text, const std::string& what);
// A comma-separated list of those.
std::vector<int64_t> parse_token_counts(const std::string& text, const std::string& what);
// "0,0.5,1" -> depths in [0, 1]; throws infini::Error otherwise.
std::vector<double> parse_depths(const std::string& text);

}  // namespace infini
