// The closed sets of values some config keys take: one enum per key, with the spellings the YAML
// uses. The YAML edge (train/config/config.cpp) parses a spelling once into its enum and refuses
// any other with "expected a, b or c"; the rest of the trainer compares enums, never strings.
// Not here: the structs that hold them (train/config/config.h), the model's own enums
// (core/model_config.h: memory.update, memory.gradient), data.format and data.truncate (the data
// layer checks those itself, data/loader.h).
#pragma once
#include <array>
#include <cstddef>
#include <string>
#include <type_traits>

namespace infini {

enum class Stage { pretrain, sft, reward, ppo, dpo };  // stage
enum class RunDevice { cpu, cuda };                 // run.device
enum class Precision { fp32, bf16, auto_ };        // run.precision (auto_ is spelled "auto")
enum class LogLevel { trace, debug, info, warn, error };  // run.log_level
enum class Decay { cosine, linear, constant };      // schedule.decay
enum class OnNonfinite { stop, skip };              // train.on_nonfinite
enum class PrefixGradient { none, writes };         // train.prefix_gradient
enum class RewardSource { model, rule, sum };       // ppo.reward_source
enum class RuleMatch { exact, numeric };            // ppo.rule
enum class Advantage { gae, rloo, grpo };           // ppo.advantage
enum class LossAverage { token, sequence };         // ppo.loss_average
enum class DpoLoss { sigmoid, ipo, hinge };        // dpo.loss
enum class Resume { auto_, never };                 // resume (auto_ is spelled "auto")

// Choices<E>::names[i] spells the enumerator of value i.
template <class E> struct Choices;
template <> struct Choices<Stage> {
  static constexpr std::array<const char*, 5> names{"pretrain", "sft", "reward", "ppo", "dpo"};
};
template <> struct Choices<RunDevice> { static constexpr std::array<const char*, 2> names{"cpu", "cuda"}; };
template <> struct Choices<Precision> { static constexpr std::array<const char*, 3> names{"fp32", "bf16", "auto"}; };
template <> struct Choices<LogLevel> {
  static constexpr std::array<const char*, 5> names{"trace", "debug", "info", "warn", "error"};
};
template <> struct Choices<Decay> { static constexpr std::array<const char*, 3> names{"cosine", "linear", "constant"}; };
template <> struct Choices<OnNonfinite> { static constexpr std::array<const char*, 2> names{"stop", "skip"}; };
template <> struct Choices<PrefixGradient> { static constexpr std::array<const char*, 2> names{"none", "writes"}; };
template <> struct Choices<RewardSource> { static constexpr std::array<const char*, 3> names{"model", "rule", "sum"}; };
template <> struct Choices<RuleMatch> { static constexpr std::array<const char*, 2> names{"exact", "numeric"}; };
template <> struct Choices<Advantage> { static constexpr std::array<const char*, 3> names{"gae", "rloo", "grpo"}; };
template <> struct Choices<LossAverage> { static constexpr std::array<const char*, 2> names{"token", "sequence"}; };
template <> struct Choices<DpoLoss> { static constexpr std::array<const char*, 3> names{"sigmoid", "ipo", "hinge"}; };
template <> struct Choices<Resume> { static constexpr std::array<const char*, 2> names{"auto", "never"}; };

// True for the enums above (generic config code reads and writes them by name).
template <class E, class = void> struct is_choice : std::false_type {};
template <class E> struct is_choice<E, std::void_t<decltype(Choices<E>::names)>> : std::true_type {};
template <class E> constexpr bool is_choice_v = is_choice<E>::value;

// The YAML spelling of `e`, e.g. choice_name(Precision::bf16) == "bf16".
template <class E> const char* choice_name(E e) { return Choices<E>::names[static_cast<size_t>(e)]; }

// Parses a spelling; false (and *out unchanged) when `s` is none of E's.
template <class E> bool parse_choice(const std::string& s, E* out) {
  for (size_t i = 0; i < Choices<E>::names.size(); ++i)
    if (s == Choices<E>::names[i]) {
      *out = static_cast<E>(i);
      return true;
    }
  return false;
}

// "a, b or c": the spellings of E for messages.
template <class E> std::string choice_list() {
  std::string out;
  const auto& n = Choices<E>::names;
  for (size_t i = 0; i < n.size(); ++i) {
    if (i > 0) out += i + 1 == n.size() ? " or " : ", ";
    out += n[i];
  }
  return out;
}

}  // namespace infini
