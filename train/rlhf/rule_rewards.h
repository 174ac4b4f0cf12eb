// Rule rewards for verifiable tasks: compare a decoded response with the reference answer.
// Not the reward model (a Decoder with Head::scalar) nor how rewards enter PPO (train/stages/ppo.cpp).
#pragma once
#include <string>

#include "train/config/choices.h"

namespace infini {

// Both sides are trimmed of surrounding whitespace first.
// "exact": 1 when the texts are equal, else 0.
// "numeric": 1 when both parse completely as numbers that agree within 1e-6 (relative), else 0;
// a response that is not a number scores 0.
double rule_reward(const std::string& response, const std::string& answer, RuleMatch mode);
// The same with the mode by name (ppo.rule's spellings); throws infini::ConfigError for any other.
double rule_reward(const std::string& response, const std::string& answer, const std::string& mode);

// Whitespace trimmed from both ends.
std::string trim_text(const std::string& s);

}  // namespace infini
