// ConfigMap: a checked view of one YAML mapping. Every getter names the file, line and field on
// a bad value; check_all_used() turns any key nobody asked for into an "unknown key" error.
// Integers (get_int) must fit in 32 bits (limits::kConfigInt) and numbers must be finite and at
// most 1e30 in magnitude (core/limits.h), so no caller's arithmetic, int conversion or float
// conversion can overflow or truncate.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace owt {

class ConfigMap {
 public:
  // `what` names the mapping in messages, e.g. "layer 'conv1'" or "solver".
  ConfigMap(YAML::Node node, std::string file, std::string what);

  bool has(const std::string& key) const;
  int64_t get_int(const std::string& key);
  int64_t get_int(const std::string& key, int64_t fallback);
  // An unsigned 64-bit integer (e.g. a seed), not bounded like get_int.
  uint64_t get_u64(const std::string& key, uint64_t fallback);
  double get_float(const std::string& key);
  double get_float(const std::string& key, double fallback);
  std::string get_string(const std::string& key);
  std::string get_string(const std::string& key, const std::string& fallback);
  // One of `choices`; the message lists them.
  std::string get_choice(const std::string& key, const std::vector<std::string>& choices,
                         const std::string& fallback);
  // An enum value by its name in the file: get_enum("transition", {{"allgather", T::Allgather},
  // {"pipelined", T::Pipelined}}, T::Allgather); `fallback` when the key is absent (it need
  // not have a name). Errors list the names, as get_choice.
  template <typename E>
  E get_enum(const std::string& key, const std::vector<std::pair<std::string, E>>& names,
             E fallback) {
    if (!has(key)) return fallback;
    std::vector<std::string> choices;
    for (const auto& [name, value] : names) choices.push_back(name);
    const std::string got = get_choice(key, choices, choices.front());
    for (const auto& [name, value] : names)
      if (name == got) return value;
    return fallback;
  }
  bool get_bool(const std::string& key, bool fallback);
  std::vector<int64_t> get_int_list(const std::string& key);
  std::vector<double> get_float_list(const std::string& key, const std::vector<double>& fallback);
  ConfigMap get_map(const std::string& key);
  // A sequence of mappings, each wrapped with a description made by `describe(i, node)`.
  std::vector<YAML::Node> get_sequence(const std::string& key);

  // Throws "file:line: <what>: unknown key 'k' (expected one of: ...)" for unread keys.
  void check_all_used() const;
  // Throws "file:line: <what>: field 'key': <message>".
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;
  // "file:line" of the key (or of the mapping when absent).
  std::string where(const std::string& key) const;

  const std::string& file() const { return file_; }
  const std::string& what() const { return what_; }
  const YAML::Node& node() const { return node_; }

 private:
  YAML::Node required(const std::string& key);
  YAML::Node node_;
  std::string file_, what_;
  std::set<std::string> used_;
};

// The text of a model file: a regular file of at most limits::kModelFileBytes, checked before
// it is read. Errors name the path.
std::string read_model_file(const std::string& path);
// Loads a YAML file; syntax errors become "file:line:col: <yaml message>". Texts longer than
// limits::kModelFileBytes are refused before parsing.
YAML::Node load_yaml_file(const std::string& path);
YAML::Node load_yaml_string(const std::string& text, const std::string& name);

}  // namespace owt
