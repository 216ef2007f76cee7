// ConfigMap: checked access to one YAML mapping, with file:line in every message, and YAML
// loading that turns parser errors into the same "file:line:col: message" form.
#include "owt/core/config_map.h"

#include <sys/stat.h>
#include <yaml-cpp/depthguard.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "owt/core/error.h"
#include "owt/core/limits.h"

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
  if (v > limits::kConfigInt || v < -limits::kConfigInt)
    fail(key, cat(v, " is out of range (at most ", limits::kConfigInt, " in magnitude)"));
  return v;
}

uint64_t ConfigMap::get_u64(const std::string& key, uint64_t fallback) {
  used_.insert(key);
  if (!has(key)) return fallback;
  YAML::Node n = required(key);
  const std::string s = n.IsScalar() ? n.Scalar() : "";
  size_t pos = 0;
  uint64_t v = 0;
  try {
    if (!s.empty() && s[0] >= '0' && s[0] <= '9') v = std::stoull(s, &pos);
  } catch (...) {
    pos = 0;
  }
  if (pos == 0 || pos != s.size())
    fail(key, cat("expected an integer from 0 to 2^64 - 1, got ", scalar_text(n)));
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
  if (!std::isfinite(v) || std::fabs(v) > limits::kConfigFloat)
    fail(key, cat("expected a finite number of magnitude at most 1e30, got '", s, "'"));
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
    if (v > limits::kConfigInt || v < -limits::kConfigInt)
      fail(key, cat(v, " is out of range (at most ", limits::kConfigInt, " in magnitude)"));
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
    if (!std::isfinite(v) || std::fabs(v) > limits::kConfigFloat)
      fail(key, cat("expected finite numbers of magnitude at most 1e30, found ", scalar_text(e)));
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
  if (text.size() > limits::kModelFileBytes)
    throw Error(cat(name, ": the model file is ", text.size(), " bytes; model files are at most ",
                    limits::kModelFileBytes, " bytes (1 MiB)"));
  try {
    return YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {  // yaml-cpp's guard against a stack overflow
    throw Error(cat(name, ":", e.mark.line + 1, ":", e.mark.column + 1, ": invalid YAML: nested ",
                    e.depth(), " levels deep (a model file needs a handful)"));
  } catch (const YAML::Exception& e) {
    throw Error(cat(name, ":", e.mark.line + 1, ":", e.mark.column + 1, ": invalid YAML: ", e.msg));
  }
}

std::string read_model_file(const std::string& path) {
  struct stat st;
  // Model files, and the JSON files `owt plan` and `parallel: auto` read (YAML's subset).
  if (::stat(path.c_str(), &st) != 0) throw Error(cat(path, ": cannot open: ", std::strerror(errno)));
  if (!S_ISREG(st.st_mode)) throw Error(cat(path, ": not a regular file (expected YAML or JSON text)"));
  if (static_cast<uint64_t>(st.st_size) > limits::kModelFileBytes)
    throw Error(cat(path, ": the file is ", st.st_size, " bytes; model files and the JSON files owt reads "
                    "are at most ", limits::kModelFileBytes, " bytes (1 MiB)"));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(cat(path, ": cannot open: ", std::strerror(errno)));
  std::string text;
  text.resize(static_cast<size_t>(st.st_size));
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));  // a file that shrank meanwhile
  if (in.bad()) throw Error(cat(path, ": read failed"));
  return text;
}

YAML::Node load_yaml_file(const std::string& path) {
  return load_yaml_string(read_model_file(path), path);
}

}  // namespace owt
