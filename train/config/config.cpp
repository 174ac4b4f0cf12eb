// YAML -> Config and back: `base:` chains, overrides, unknown-key detection with "did you mean",
// typed reads (enums by name) with file:line errors, and the commented YAML written to
// RUN_DIR/config.yaml. The value checks themselves are in train/config/validate.*.
// Generic over visit_fields(); the structs themselves live beside the code they configure.
#include "train/config/config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <type_traits>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "core/error.h"
#include "train/config/validate.h"

namespace infini {
namespace {

namespace fs = std::filesystem;

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
  } else if constexpr (is_choice_v<T>) {
    if (!n.IsScalar() || !parse_choice(n.Scalar(), &out))
      throw ConfigError(fmt::format("{}: {}: expected {}, found {}", o.where(path, &n), path, choice_list<T>(),
                                    scalar_text(n)));
  } else if constexpr (std::is_same_v<T, MemoryUpdate>) {
    if (!n.IsScalar() || !parse_memory_update(n.Scalar(), &out)) fail_type(o, path, n, "linear, delta or unit_delta");
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
    else if constexpr (is_choice_v<T>) out << choice_name(v);
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
                                   "train.", "checkpoint.", "reward.", "ppo.", "dpo.", "lora.", "stage", "init_from", "resume"};
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

// One file of a `base:` chain: its name for messages and its YAML (the `base` key taken out).
struct Layer {
  std::string source;
  YAML::Node root;
};

YAML::Node parse_file_text(const std::string& yaml_text, const std::string& source) {
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
  return root;
}

bool read_text(const std::string& path, std::string* text) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw ConfigError(fmt::format("{}: is a directory; expected a YAML config file", path));
  // A config is a page of keys; a huge file would cost its size many times over in the YAML tree.
  constexpr uintmax_t kMaxConfigBytes = 1 << 20;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxConfigBytes)
    throw ConfigError(fmt::format("{}: {} bytes; a config file may have at most {} bytes", path, size, kMaxConfigBytes));
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *text = ss.str();
  return true;
}

// The file and its bases, the file first: `base: FILE` names a file relative to the one that holds
// the key; a base may have a base; a file met twice is a cycle and refused.
std::vector<Layer> resolve_bases(const std::string& yaml_text, const std::string& source) {
  std::vector<Layer> chain{{source, parse_file_text(yaml_text, source)}};
  std::error_code ec;
  const fs::path top = fs::weakly_canonical(fs::path(source), ec);
  std::vector<std::string> seen{ec ? source : top.string()};
  for (;;) {
    Layer& child = chain.back();
    const YAML::Node base = child.root["base"];
    if (!base.IsDefined()) return chain;
    const std::string at = fmt::format("{}:{}", child.source, base.Mark().line + 1);
    if (!base.IsScalar() || base.Scalar().empty())
      throw ConfigError(fmt::format("{}: key base: expected a config file name, found {}", at, scalar_text(base)));
    const std::string path = (fs::path(child.source).parent_path() / base.Scalar()).lexically_normal().string();
    child.root.remove("base");
    // A name the filesystem cannot resolve (too long, a file used as a folder) is a base it cannot read.
    const std::string canonical = fs::weakly_canonical(fs::path(path), ec).string();
    if (ec)
      throw ConfigError(fmt::format("{}: base {}: cannot read {} ({}; bases are relative to the file that names them)",
                                    at, base.Scalar(), path, ec.message()));
    std::vector<std::string> names;
    for (const auto& l : chain) names.push_back(l.source);
    names.push_back(path);
    if (std::find(seen.begin(), seen.end(), canonical) != seen.end())
      throw ConfigError(fmt::format("{}: base {}: the bases form a cycle ({}); a file cannot be its own base", at,
                                    base.Scalar(), fmt::join(names, " -> ")));
    std::string text;
    if (!read_text(path, &text))
      throw ConfigError(fmt::format("{}: base {}: cannot read {} (missing or unreadable; bases are relative to "
                                    "the file that names them)", at, base.Scalar(), path));
    seen.push_back(canonical);
    chain.push_back({path, parse_file_text(text, path)});
  }
}

// Where a validation message's key was set: the override, else the first file of the chain that
// gives it (the file itself before its bases), else the file.
std::string where_set(const std::vector<Layer>& chain, const Origins& top, const std::string& key) {
  for (const auto& [p, text] : top.overrides)
    if (key == p || key.rfind(p + ".", 0) == 0) return fmt::format("override '{}'", text);
  for (const auto& l : chain) {
    const YAML::Node node = key.empty() ? YAML::Node() : find_node(l.root, key);
    if (node.IsDefined() && node.Mark().line >= 0) return fmt::format("{}:{}", l.source, node.Mark().line + 1);
  }
  return top.source;
}

}  // namespace

Config parse_config(const std::string& yaml_text, const std::string& source,
                    const std::vector<std::string>& overrides) {
  std::vector<Layer> chain = resolve_bases(yaml_text, source);
  Origins top{source, {}};
  for (const auto& o : overrides) {
    if (o.rfind("base=", 0) == 0)
      throw ConfigError(fmt::format("override '{}': base can only be given in a config file", o));
    apply_override(chain.front().root, o, top);
  }
  // The deepest base first; each file then sets the keys it gives (maps key by key, lists whole).
  Config c;
  bool has_stage = false;
  for (auto l = chain.rbegin(); l != chain.rend(); ++l) {
    const Origins& o = l + 1 == chain.rend() ? top : Origins{l->source, {}};
    Reader::read_struct(static_cast<const YAML::Node&>(l->root), c, "", o);
    has_stage = has_stage || l->root["stage"].IsDefined();
  }
  if (!has_stage)
    throw ConfigError(fmt::format("{}: missing required key stage (pretrain, sft, reward, ppo or dpo)", source));
  try {
    check_config_values(c);
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{}: {}", where_set(chain, top, first_key_path(e.what())), e.what()));
  }
  return c;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::string text;
  if (!read_text(path, &text))
    throw ConfigError(fmt::format("{}: cannot read the config file (missing or unreadable)", path));
  return parse_config(text, path, overrides);
}

void validate_config(const Config& c, const std::string& source) {
  try {
    check_config_values(c);
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
