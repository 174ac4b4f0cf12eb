// YAML -> Config and back: overrides, unknown-key detection with "did you mean", typed reads with
// file:line errors, validation, and the commented YAML written to RUN_DIR/config.yaml.
// Generic over visit_fields(); the structs themselves live beside the code they configure.
#include "train/config/config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <type_traits>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "core/error.h"

namespace infini {
namespace {

// Where each key path came from, for messages: "configs/x.yaml:12" or "override 'a.b=3'".
struct Origins {
  std::string source;
  std::map<std::string, std::string> overrides;  // key path -> override text

  std::string where(const std::string& path, const YAML::Node* node) const {
    for (const auto& [p, text] : overrides)
      if (path == p || path.rfind(p + ".", 0) == 0) return fmt::format("override '{}'", text);
    if (node && node->IsDefined() && node->Mark().line >= 0)
      return fmt::format("{}:{}", source, node->Mark().line + 1);
    return source;
  }
};

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string scalar_text(const YAML::Node& n) {
  if (n.IsScalar()) return "'" + n.Scalar() + "'";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "nothing";
}

[[noreturn]] void fail_type(const Origins& o, const std::string& path, const YAML::Node& n,
                            const char* expected) {
  throw ConfigError(fmt::format("{}: key {}: expected {}, found {}", o.where(path, &n), path, expected,
                                scalar_text(n)));
}

// ---- typed reads -----------------------------------------------------------------------------
template <class T>
void read_value(const YAML::Node& n, T& out, const std::string& path, const Origins& o) {
  if constexpr (std::is_same_v<T, bool>) {
    bool v;
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) fail_type(o, path, n, "true or false");
    out = v;
  } else if constexpr (std::is_integral_v<T>) {
    long long v;
    if (!n.IsScalar() || !YAML::convert<long long>::decode(n, v)) fail_type(o, path, n, "an integer");
    if (v < static_cast<long long>(std::numeric_limits<T>::min()) ||
        static_cast<unsigned long long>(v) > static_cast<unsigned long long>(std::numeric_limits<T>::max()))
      fail_type(o, path, n, "an integer in range");
    out = static_cast<T>(v);
  } else if constexpr (std::is_floating_point_v<T>) {
    double v;
    if (!n.IsScalar() || !YAML::convert<double>::decode(n, v) || !std::isfinite(v))
      fail_type(o, path, n, "a finite number");
    out = static_cast<T>(v);
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (n.IsNull()) { out.clear(); return; }
    if (!n.IsScalar()) fail_type(o, path, n, "a string");
    out = n.Scalar();
  } else if constexpr (std::is_same_v<T, MemoryUpdate>) {
    if (!n.IsScalar() || !parse_memory_update(n.Scalar(), &out)) fail_type(o, path, n, "linear or delta");
  } else if constexpr (std::is_same_v<T, MemoryGradient>) {
    if (!n.IsScalar() || !parse_memory_gradient(n.Scalar(), &out)) fail_type(o, path, n, "bptt or detach");
  } else {
    // std::vector<E>: a YAML list, or a single scalar meaning a one-element list.
    using E = typename T::value_type;
    out.clear();
    if (n.IsNull()) return;
    if (n.IsScalar()) {
      E e{};
      read_value(n, e, path, o);
      out.push_back(e);
      return;
    }
    if (!n.IsSequence()) fail_type(o, path, n, "a list");
    for (size_t i = 0; i < n.size(); ++i) {
      E e{};
      read_value(n[i], e, fmt::format("{}[{}]", path, i), o);
      out.push_back(e);
    }
  }
}

// Walks a struct's fields, reading those present in `node` and refusing keys it does not know.
struct Reader {
  const YAML::Node& node;
  std::string prefix;
  const Origins& origins;
  std::vector<std::string> known;

  std::string path_of(const char* name) const { return prefix.empty() ? name : prefix + "." + name; }

  template <class T> void operator()(const char* name, T& field, const char*) {
    known.emplace_back(name);
    const YAML::Node child = node[name];
    if (child.IsDefined()) read_value(child, field, path_of(name), origins);
  }
  template <class S> void section(const char* name, S& sub) {
    known.emplace_back(name);
    const YAML::Node child = node[name];
    if (!child.IsDefined() || child.IsNull()) return;
    if (!child.IsMap()) fail_type(origins, path_of(name), child, "a mapping of keys");
    read_struct(child, sub, path_of(name), origins);
  }
  void check_unknown() const {
    for (auto it = node.begin(); it != node.end(); ++it) {
      const std::string key = it->first.Scalar();
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      std::string best;
      size_t best_d = 3;
      for (const auto& k : known) {
        size_t d = edit_distance(key, k);
        if (d < best_d || (d == best_d && best.empty() && d <= std::max<size_t>(2, key.size() / 3))) {
          if (d <= std::max<size_t>(2, key.size() / 3)) { best = k; best_d = d; }
        }
      }
      const std::string path = path_of(key.c_str());
      std::string hint = best.empty() ? fmt::format(" (known keys: {})", fmt::join(known, ", "))
                                      : fmt::format(" (did you mean {}?)", path_of(best.c_str()));
      throw ConfigError(fmt::format("{}: unknown key {}{}", origins.where(path, &it->first), path, hint));
    }
  }
  template <class S>
  static void read_struct(const YAML::Node& n, S& s, const std::string& prefix, const Origins& o) {
    Reader r{n, prefix, o, {}};
    visit_fields(s, r);
    r.check_unknown();
  }
};

// ---- emitting --------------------------------------------------------------------------------
std::string number_text(double d) { return fmt::format("{}", d); }

struct Writer {
  YAML::Emitter& out;

  template <class T> void emit(const T& v) {
    if constexpr (std::is_same_v<T, bool>) out << (v ? "true" : "false");
    else if constexpr (std::is_integral_v<T>) out << static_cast<long long>(v);
    else if constexpr (std::is_floating_point_v<T>) out << number_text(v);
    else if constexpr (std::is_same_v<T, std::string>) out << v;
    else if constexpr (std::is_same_v<T, MemoryUpdate> || std::is_same_v<T, MemoryGradient>) out << to_string(v);
    else {
      out << YAML::Flow << YAML::BeginSeq;
      for (const auto& e : v) emit(e);
      out << YAML::EndSeq;
    }
  }
  template <class T> void operator()(const char* name, T& field, const char* comment) {
    out << YAML::Key << name << YAML::Value;
    emit(field);
    out << YAML::Comment(comment);
  }
  template <class S> void section(const char* name, S& sub) {
    out << YAML::Key << name << YAML::Value << YAML::BeginMap;
    visit_fields(sub, *this);
    out << YAML::EndMap;
  }
};

// ---- equality --------------------------------------------------------------------------------
struct Flattener {
  std::vector<std::string> items;
  std::string prefix;
  template <class T> void operator()(const char* name, T& field, const char*) {
    YAML::Emitter e;
    Writer{e}.emit(field);
    items.push_back(prefix + name + "=" + e.c_str());
  }
  template <class S> void section(const char* name, S& sub) {
    std::string saved = prefix;
    prefix += std::string(name) + ".";
    visit_fields(sub, *this);
    prefix = saved;
  }
};

// ---- overrides -------------------------------------------------------------------------------
void apply_override(YAML::Node& root, const std::string& text, Origins& origins) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError(fmt::format("override '{}': expected key.path=value", text));
  const std::string path = text.substr(0, eq);
  const std::string value = text.substr(eq + 1);
  YAML::Node parsed;
  try {
    parsed = YAML::Load(value);
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("override '{}': the value is not valid YAML: {}", text, e.msg));
  }
  std::vector<std::string> parts;
  std::stringstream ss(path);
  for (std::string p; std::getline(ss, p, '.');) {
    if (p.empty()) throw ConfigError(fmt::format("override '{}': empty key in path {}", text, path));
    parts.push_back(p);
  }
  YAML::Node cur = root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node next = cur[parts[i]];
    if (!next.IsMap()) {
      cur[parts[i]] = YAML::Node(YAML::NodeType::Map);
      next = cur[parts[i]];
    }
    cur.reset(next);
  }
  cur[parts.back()] = parsed;
  origins.overrides[path] = text;
}

std::string first_key_path(const std::string& message) {
  // Validation messages start with or contain the key path (e.g. "model.d_model (100) must ...").
  static const char* sections[] = {"run.", "model.", "tokenizer.", "data.", "optim.", "schedule.",
                                   "train.", "checkpoint.", "reward.", "ppo.", "stage", "init_from", "resume"};
  size_t best = std::string::npos;
  for (const char* s : sections) {
    size_t p = message.find(s);
    if (p != std::string::npos && p < best) best = p;
  }
  if (best == std::string::npos) return "";
  size_t end = best;
  while (end < message.size() && (std::isalnum(static_cast<unsigned char>(message[end])) ||
                                  message[end] == '_' || message[end] == '.'))
    ++end;
  return message.substr(best, end - best);
}

YAML::Node find_node(const YAML::Node& root, const std::string& path) {
  YAML::Node cur = root;
  std::stringstream ss(path);
  for (std::string p; std::getline(ss, p, '.');) {
    if (!cur.IsMap()) return YAML::Node();
    YAML::Node next = cur[p];
    if (!next.IsDefined()) return YAML::Node();
    cur.reset(next);
  }
  return cur;
}

void check(bool ok, const std::string& message) {
  if (!ok) throw ConfigError(message);
}

template <class T> bool one_of(const T& v, std::initializer_list<const char*> set) {
  for (const char* s : set)
    if (v == s) return true;
  return false;
}

void validate_values(const Config& c) {
  check(one_of(c.stage, {"pretrain", "sft", "reward", "ppo"}),
        fmt::format("stage: expected pretrain, sft, reward or ppo, found '{}'", c.stage));
  check(one_of(c.run.device, {"cpu", "cuda"}),
        fmt::format("run.device: expected cpu or cuda, found '{}'", c.run.device));
  check(one_of(c.run.precision, {"fp32", "bf16"}),
        fmt::format("run.precision: expected fp32 or bf16, found '{}'", c.run.precision));
  check(one_of(c.run.log_level, {"trace", "debug", "info", "warn", "error"}),
        fmt::format("run.log_level: expected trace, debug, info, warn or error, found '{}'", c.run.log_level));
  check(c.run.threads >= 0, fmt::format("run.threads: expected >= 0, found {}", c.run.threads));
  check(!c.run.dir.empty(), "run.dir: expected a directory, found an empty string");
  const std::string m = c.model.validate();
  check(m.empty(), m);
  check(c.optim.lr >= 0, fmt::format("optim.lr: expected >= 0, found {}", c.optim.lr));
  check(c.optim.weight_decay >= 0,
        fmt::format("optim.weight_decay: expected >= 0, found {}", c.optim.weight_decay));
  check(c.optim.betas.size() == 2 && c.optim.betas[0] >= 0 && c.optim.betas[0] < 1 &&
            c.optim.betas[1] >= 0 && c.optim.betas[1] < 1,
        fmt::format("optim.betas: expected two numbers in [0, 1), found [{}]", fmt::join(c.optim.betas, ", ")));
  check(c.optim.eps > 0, fmt::format("optim.eps: expected > 0, found {}", c.optim.eps));
  check(c.optim.grad_clip >= 0, fmt::format("optim.grad_clip: expected >= 0, found {}", c.optim.grad_clip));
  check(c.optim.gate_lr_mult > 0,
        fmt::format("optim.gate_lr_mult: expected > 0, found {}", c.optim.gate_lr_mult));
  check(c.optim.freeze_layers >= 0 && c.optim.freeze_layers < c.model.n_layers,
        fmt::format("optim.freeze_layers: expected 0 to model.n_layers - 1 ({}), found {}", c.model.n_layers - 1,
                    c.optim.freeze_layers));
  check(c.schedule.warmup_steps >= 0,
        fmt::format("schedule.warmup_steps: expected >= 0, found {}", c.schedule.warmup_steps));
  check(one_of(c.schedule.decay, {"cosine", "linear", "constant"}),
        fmt::format("schedule.decay: expected cosine, linear or constant, found '{}'", c.schedule.decay));
  check(c.schedule.min_lr >= 0 && c.schedule.min_lr <= c.optim.lr,
        fmt::format("schedule.min_lr: expected between 0 and optim.lr ({}), found {}", c.optim.lr, c.schedule.min_lr));
  check(c.train.max_steps >= 1, fmt::format("train.max_steps: expected >= 1, found {}", c.train.max_steps));
  check(c.train.batch_size >= 1, fmt::format("train.batch_size: expected >= 1, found {}", c.train.batch_size));
  check(c.train.grad_accum >= 1, fmt::format("train.grad_accum: expected >= 1, found {}", c.train.grad_accum));
  check(c.train.log_every >= 1, fmt::format("train.log_every: expected >= 1, found {}", c.train.log_every));
  check(c.train.eval_every >= 0, fmt::format("train.eval_every: expected >= 0, found {}", c.train.eval_every));
  check(c.train.eval_batches >= 0,
        fmt::format("train.eval_batches: expected >= 0, found {}", c.train.eval_batches));
  check(one_of(c.train.on_nonfinite, {"stop", "skip"}),
        fmt::format("train.on_nonfinite: expected stop or skip, found '{}'", c.train.on_nonfinite));
  check(c.train.peak_flops >= 0, fmt::format("train.peak_flops: expected >= 0, found {}", c.train.peak_flops));
  check(c.train.stop_after >= 0, fmt::format("train.stop_after: expected >= 0, found {}", c.train.stop_after));
  check(one_of(c.train.prefix_gradient, {"none", "writes"}),
        fmt::format("train.prefix_gradient: expected none or writes, found '{}'", c.train.prefix_gradient));
  check(c.train.prefix_write_weight >= 0,
        fmt::format("train.prefix_write_weight: expected >= 0, found {}", c.train.prefix_write_weight));
  check(c.train.prefix_gradient == "none" || (c.model.memory.enabled && c.model.memory.gradient == MemoryGradient::detach),
        fmt::format("train.prefix_gradient: writes needs model.memory with enabled: true and gradient: detach, "
                    "found enabled: {}, gradient: {}", c.model.memory.enabled, to_string(c.model.memory.gradient)));
  check(c.checkpoint.every >= 0, fmt::format("checkpoint.every: expected >= 0, found {}", c.checkpoint.every));
  check(c.checkpoint.keep_last >= 0,
        fmt::format("checkpoint.keep_last: expected >= 0, found {}", c.checkpoint.keep_last));
  check(c.reward.center_coef >= 0,
        fmt::format("reward.center_coef: expected >= 0, found {}", c.reward.center_coef));
  check(one_of(c.ppo.reward_source, {"model", "rule", "sum"}),
        fmt::format("ppo.reward_source: expected model, rule or sum, found '{}'", c.ppo.reward_source));
  check(one_of(c.ppo.rule, {"exact", "numeric"}),
        fmt::format("ppo.rule: expected exact or numeric, found '{}'", c.ppo.rule));
  check(c.ppo.mini_batch_size >= 1,
        fmt::format("ppo.mini_batch_size: expected >= 1, found {}", c.ppo.mini_batch_size));
  check(c.ppo.ppo_epochs >= 1, fmt::format("ppo.ppo_epochs: expected >= 1, found {}", c.ppo.ppo_epochs));
  check(c.ppo.actor_lr >= 0, fmt::format("ppo.actor_lr: expected >= 0, found {}", c.ppo.actor_lr));
  check(c.ppo.critic_lr >= 0, fmt::format("ppo.critic_lr: expected >= 0, found {}", c.ppo.critic_lr));
  check(c.ppo.temperature > 0, fmt::format("ppo.temperature: expected > 0, found {}", c.ppo.temperature));
  check(c.ppo.top_k >= 0, fmt::format("ppo.top_k: expected >= 0, found {}", c.ppo.top_k));
  check(c.ppo.top_p > 0 && c.ppo.top_p <= 1, fmt::format("ppo.top_p: expected in (0, 1], found {}", c.ppo.top_p));
  check(c.ppo.max_new_tokens >= 1,
        fmt::format("ppo.max_new_tokens: expected >= 1, found {}", c.ppo.max_new_tokens));
  check(c.ppo.kl_coef >= 0, fmt::format("ppo.kl_coef: expected >= 0, found {}", c.ppo.kl_coef));
  check(c.ppo.kl_target > 0, fmt::format("ppo.kl_target: expected > 0, found {}", c.ppo.kl_target));
  check(c.ppo.kl_horizon > 0, fmt::format("ppo.kl_horizon: expected > 0, found {}", c.ppo.kl_horizon));
  check(c.ppo.gamma >= 0 && c.ppo.gamma <= 1, fmt::format("ppo.gamma: expected in [0, 1], found {}", c.ppo.gamma));
  check(c.ppo.lambda >= 0 && c.ppo.lambda <= 1,
        fmt::format("ppo.lambda: expected in [0, 1], found {}", c.ppo.lambda));
  check(c.ppo.clip_eps > 0, fmt::format("ppo.clip_eps: expected > 0, found {}", c.ppo.clip_eps));
  check(c.ppo.value_clip > 0, fmt::format("ppo.value_clip: expected > 0, found {}", c.ppo.value_clip));
  check(c.ppo.reward_clip >= 0, fmt::format("ppo.reward_clip: expected >= 0, found {}", c.ppo.reward_clip));
  check(c.ppo.missing_eos_penalty >= 0,
        fmt::format("ppo.missing_eos_penalty: expected >= 0, found {}", c.ppo.missing_eos_penalty));
  check(c.ppo.eval_every >= 0, fmt::format("ppo.eval_every: expected >= 0, found {}", c.ppo.eval_every));
  check(c.ppo.critic_warmup >= 0,
        fmt::format("ppo.critic_warmup: expected >= 0, found {}", c.ppo.critic_warmup));
  check(c.ppo.samples_per_prompt >= 1,
        fmt::format("ppo.samples_per_prompt: expected >= 1, found {}", c.ppo.samples_per_prompt));
  check(c.ppo.advantage == "gae" || c.ppo.advantage == "rloo",
        fmt::format("ppo.advantage: expected gae or rloo, found '{}'", c.ppo.advantage));
  check(c.ppo.advantage != "rloo" || c.ppo.samples_per_prompt >= 2,
        fmt::format("ppo.advantage: rloo needs ppo.samples_per_prompt >= 2, found {}", c.ppo.samples_per_prompt));
  check(c.ppo.eval_prompts >= 0, fmt::format("ppo.eval_prompts: expected >= 0, found {}", c.ppo.eval_prompts));
  if (c.stage == "ppo") {
    check(c.ppo.reward_source == "rule" || !c.ppo.reward_model.empty(),
          fmt::format("ppo.reward_model: reward_source {} needs a reward run or checkpoint, found none",
                      c.ppo.reward_source));
    check(c.data.format == "prompts",
          fmt::format("data.format: stage ppo reads prompts, found '{}'", c.data.format));
  }
  if (c.stage == "reward")
    check(c.data.format == "preference",
          fmt::format("data.format: stage reward reads preference pairs, found '{}'", c.data.format));
  check(one_of(c.resume, {"auto", "never"}), fmt::format("resume: expected auto or never, found '{}'", c.resume));
  check(one_of(c.data.format, {"tokens", "sft", "preference", "prompts"}),
        fmt::format("data.format: expected tokens, sft, preference or prompts, found '{}'", c.data.format));
  check(c.data.seq_len >= 1, fmt::format("data.seq_len: expected >= 1, found {}", c.data.seq_len));
  check(one_of(c.data.truncate, {"left", "right", "drop"}),
        fmt::format("data.truncate: expected left, right or drop, found '{}'", c.data.truncate));
  check(c.data.prefetch >= 0, fmt::format("data.prefetch: expected >= 0, found {}", c.data.prefetch));
}

// YAML maps with a key twice parse without complaint and the first value wins: refuse them, with
// both places. Keys are compared as written (scalars).
void refuse_duplicate_keys(const YAML::Node& node, const std::string& source, const std::string& path) {
  if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) refuse_duplicate_keys(node[i], source, fmt::format("{}[{}]", path, i));
    return;
  }
  if (!node.IsMap()) return;
  std::map<std::string, YAML::Mark> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string key = it->first.IsScalar() ? it->first.Scalar() : "?";
    const std::string here = path.empty() ? key : path + "." + key;
    const auto [at, fresh] = seen.emplace(key, it->first.Mark());
    if (!fresh)
      throw ConfigError(fmt::format("{}:{}: duplicate key {} (first at line {}; give each key once)", source,
                                    it->first.Mark().line + 1, here, at->second.line + 1));
    refuse_duplicate_keys(it->second, source, here);
  }
}

}  // namespace

Config parse_config(const std::string& yaml_text, const std::string& source,
                    const std::vector<std::string>& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(fmt::format("{}:{}:{}: YAML syntax error: {}", source, e.mark.line + 1,
                                  e.mark.column + 1, e.msg));
  }
  refuse_duplicate_keys(root, source, "");
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap())
    throw ConfigError(fmt::format("{}: expected a mapping of sections (stage, run, model, ...), found {}",
                                  source, scalar_text(root)));
  Origins origins{source, {}};
  for (const auto& o : overrides) apply_override(root, o, origins);

  Config c;
  Reader::read_struct(static_cast<const YAML::Node&>(root), c, "", origins);
  if (!root["stage"].IsDefined())
    throw ConfigError(fmt::format("{}: missing required key stage (pretrain, sft, reward or ppo)", source));
  try {
    validate_values(c);
  } catch (const ConfigError& e) {
    const std::string key = first_key_path(e.what());
    const YAML::Node node = key.empty() ? YAML::Node() : find_node(root, key);
    throw ConfigError(fmt::format("{}: {}", origins.where(key, &node), e.what()));
  }
  return c;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  if (!in) throw ConfigError(fmt::format("{}: cannot read the config file (missing or unreadable)", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path, overrides);
}

void validate_config(const Config& c, const std::string& source) {
  try {
    validate_values(c);
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{}: {}", source, e.what()));
  }
}

std::string config_to_yaml(const Config& c) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  Writer w{out};
  visit_fields(const_cast<Config&>(c), w);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

bool configs_equal(const Config& a, const Config& b) {
  Flattener fa, fb;
  visit_fields(const_cast<Config&>(a), fa);
  visit_fields(const_cast<Config&>(b), fb);
  return fa.items == fb.items;
}

}  // namespace infini
