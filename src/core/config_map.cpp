// ConfigMap: checked access to one YAML mapping, with file:line in every message, and YAML
// loading that turns parser errors into the same "file:line:col: message" form.
#include "owt/core/config_map.h"

#include <fstream>
#include <sstream>

#include "owt/core/error.h"

namespace owt {
namespace {

std::string scalar_text(const YAML::Node& n) {
  if (n.IsScalar()) return "'" + n.Scalar() + "'";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "nothing";
}

int line_of(const YAML::Node& n) { return n.Mark().line >= 0 ? n.Mark().line + 1 : 0; }

}  // namespace

ConfigMap::ConfigMap(YAML::Node node, std::string file, std::string what)
    : node_(std::move(node)), file_(std::move(file)), what_(std::move(what)) {
  if (!node_.IsMap())
    throw Error(cat(file_, ":", line_of(node_), ": ", what_, ": expected a mapping of keys, got ",
                    scalar_text(node_)));
}

std::string ConfigMap::where(const std::string& key) const {
  for (const auto& kv : node_)
    if (kv.first.Scalar() == key) return cat(file_, ":", line_of(kv.first));
  return cat(file_, ":", line_of(node_));
}

void ConfigMap::fail(const std::string& key, const std::string& message) const {
  throw Error(cat(where(key), ": ", what_, ": field '", key, "': ", message));
}

bool ConfigMap::has(const std::string& key) const { return static_cast<bool>(node_[key]); }

YAML::Node ConfigMap::required(const std::string& key) {
  used_.insert(key);
  YAML::Node n = node_[key];
  if (!n) throw Error(cat(where(key), ": ", what_, ": missing required field '", key, "'"));
  if (n.IsNull()) fail(key, "has no value");
  return n;
}

int64_t ConfigMap::get_int(const std::string& key) {
  YAML::Node n = required(key);
  if (!n.IsScalar()) fail(key, cat("expected an integer, got ", scalar_text(n)));
  const std::string& s = n.Scalar();
  size_t pos = 0;
  int64_t v = 0;
  try {
    v = std::stoll(s, &pos);
  } catch (...) {
    pos = 0;
  }
  if (pos == 0 || pos != s.size()) fail(key, cat("expected an integer, got '", s, "'"));
  return v;
}

int64_t ConfigMap::get_int(const std::string& key, int64_t fallback) {
  used_.insert(key);
  return has(key) ? get_int(key) : fallback;
}

double ConfigMap::get_float(const std::string& key) {
  YAML::Node n = required(key);
  if (!n.IsScalar()) fail(key, cat("expected a number, got ", scalar_text(n)));
  const std::string& s = n.Scalar();
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(s, &pos);
  } catch (...) {
    pos = 0;
  }
  if (pos == 0 || pos != s.size()) fail(key, cat("expected a number, got '", s, "'"));
  return v;
}

double ConfigMap::get_float(const std::string& key, double fallback) {
  used_.insert(key);
  return has(key) ? get_float(key) : fallback;
}

std::string ConfigMap::get_string(const std::string& key) {
  YAML::Node n = required(key);
  if (!n.IsScalar()) fail(key, cat("expected a string, got ", scalar_text(n)));
  return n.Scalar();
}

std::string ConfigMap::get_string(const std::string& key, const std::string& fallback) {
  used_.insert(key);
  return has(key) ? get_string(key) : fallback;
}

std::string ConfigMap::get_choice(const std::string& key, const std::vector<std::string>& choices,
                                  const std::string& fallback) {
  std::string v = get_string(key, fallback);
  for (const auto& c : choices)
    if (c == v) return v;
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
  fail(key, cat("expected one of ", list, "; got '", v, "'"));
}

bool ConfigMap::get_bool(const std::string& key, bool fallback) {
  used_.insert(key);
  if (!has(key)) return fallback;
  YAML::Node n = node_[key];
  std::string s = n.IsScalar() ? n.Scalar() : "";
  if (s == "true" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "no" || s == "off") return false;
  fail(key, cat("expected true or false, got ", scalar_text(n)));
}

std::vector<int64_t> ConfigMap::get_int_list(const std::string& key) {
  YAML::Node n = required(key);
  if (!n.IsSequence()) fail(key, cat("expected a list of integers, got ", scalar_text(n)));
  std::vector<int64_t> out;
  for (const auto& e : n) {
    size_t pos = 0;
    int64_t v = 0;
    try {
      v = std::stoll(e.IsScalar() ? e.Scalar() : "", &pos);
    } catch (...) {
      pos = 0;
    }
    if (pos == 0 || pos != e.Scalar().size())
      fail(key, cat("expected a list of integers, found ", scalar_text(e)));
    out.push_back(v);
  }
  return out;
}

std::vector<double> ConfigMap::get_float_list(const std::string& key,
                                              const std::vector<double>& fallback) {
  used_.insert(key);
  if (!has(key)) return fallback;
  YAML::Node n = node_[key];
  if (!n.IsSequence()) fail(key, cat("expected a list of numbers, got ", scalar_text(n)));
  std::vector<double> out;
  for (const auto& e : n) {
    size_t pos = 0;
    double v = 0;
    try {
      v = std::stod(e.IsScalar() ? e.Scalar() : "", &pos);
    } catch (...) {
      pos = 0;
    }
    if (pos == 0 || pos != e.Scalar().size())
      fail(key, cat("expected a list of numbers, found ", scalar_text(e)));
    out.push_back(v);
  }
  return out;
}

ConfigMap ConfigMap::get_map(const std::string& key) {
  YAML::Node n = required(key);
  if (!n.IsMap()) fail(key, cat("expected a mapping, got ", scalar_text(n)));
  return ConfigMap(n, file_, key);
}

std::vector<YAML::Node> ConfigMap::get_sequence(const std::string& key) {
  YAML::Node n = required(key);
  if (!n.IsSequence()) fail(key, cat("expected a list, got ", scalar_text(n)));
  std::vector<YAML::Node> out;
  for (const auto& e : n) out.push_back(e);
  return out;
}

void ConfigMap::check_all_used() const {
  for (const auto& kv : node_) {
    const std::string key = kv.first.Scalar();
    if (used_.count(key)) continue;
    std::string list;
    for (const auto& u : used_) list += (list.empty() ? "" : ", ") + u;
    throw Error(cat(file_, ":", line_of(kv.first), ": ", what_, ": unknown key '", key,
                    "' (expected one of: ", list, ")"));
  }
}

YAML::Node load_yaml_string(const std::string& text, const std::string& name) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error(cat(name, ":", e.mark.line + 1, ":", e.mark.column + 1, ": invalid YAML: ", e.msg));
  }
}

YAML::Node load_yaml_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(cat(path, ": cannot open model file"));
  std::stringstream ss;
  ss << in.rdbuf();
  return load_yaml_string(ss.str(), path);
}

}  // namespace owt
