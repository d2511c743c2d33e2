// Generic plumbing for config structs: JSON in and out, unknown keys rejected with a suggestion,
// "a.b=value" overrides. A config struct lists its fields once, in
//   template <class V> void visit(V& v) { v("dim", dim, "model width"); v.section("grpo", grpo); }
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "lriad/io/error.h"

namespace lriad::io {

// Edit distance, for "did you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b);
// The closest of `candidates` to `key` (empty if none is close).
std::string closest_key(const std::string& key, const std::vector<std::string>& candidates);

namespace detail {

template <class T>
struct is_string_map : std::false_type {};
template <class V>
struct is_string_map<std::map<std::string, V>> : std::true_type {};

template <class T>
std::string type_name() {
  if constexpr (is_string_map<T>::value)
    return "an object";
  else if constexpr (std::is_same_v<T, bool>)
    return "a boolean";
  else if constexpr (std::is_integral_v<T>)
    return "an integer in [" + std::to_string(std::numeric_limits<T>::min()) + ", " +
           std::to_string(std::numeric_limits<T>::max()) + "]";
  else if constexpr (std::is_floating_point_v<T>)
    return "a number";
  else if constexpr (std::is_same_v<T, std::string>)
    return "a string";
  else
    return "a list";
}

// Whether the JSON integer `j` fits in T: get<T>() would silently wrap a value that does not
// (model.dim = 4294967360 would become 64).
template <class T>
bool integer_fits(const nlohmann::json& j) {
  if (j.is_number_unsigned() || j.get<int64_t>() >= 0) {
    const uint64_t v = j.is_number_unsigned() ? j.get<uint64_t>() : static_cast<uint64_t>(j.get<int64_t>());
    return v <= static_cast<uint64_t>(std::numeric_limits<T>::max());
  }
  if constexpr (std::is_signed_v<T>)
    return j.get<int64_t>() >= static_cast<int64_t>(std::numeric_limits<T>::min());
  else
    return false;
}

template <class T>
bool json_is(const nlohmann::json& j) {
  if constexpr (is_string_map<T>::value) {
    if (!j.is_object()) return false;
    for (const auto& [k, e] : j.items())
      if (!json_is<typename T::mapped_type>(e)) return false;
    return true;
  } else if constexpr (std::is_same_v<T, bool>)
    return j.is_boolean();
  else if constexpr (std::is_integral_v<T>)
    return j.is_number_integer() && integer_fits<T>(j);
  else if constexpr (std::is_floating_point_v<T>)
    return j.is_number();
  else if constexpr (std::is_same_v<T, std::string>)
    return j.is_string();
  else {
    if (!j.is_array()) return false;
    for (const auto& e : j)
      if (!json_is<typename T::value_type>(e)) return false;
    return true;
  }
}

}  // namespace detail

// Reads fields from a JSON object; every key must be a known field or section.
class JsonReader {
 public:
  JsonReader(const nlohmann::json& j, std::string path) : j_(j), path_(std::move(path)) {
    if (!j_.is_object()) throw Error("config " + label() + ": expected an object, got " + std::string(j_.type_name()));
  }

  template <class T>
  void operator()(const char* key, T& value, const char* /*help*/ = "") {
    known_.push_back(key);
    if (!j_.contains(key)) return;
    const auto& v = j_.at(key);
    if (!detail::json_is<T>(v))
      throw Error("config key " + path_of(key) + ": expected " + detail::type_name<T>() + ", got " +
                      v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),  // never throws
                  "fix the value in the config file or the --set flag");
    value = v.get<T>();
  }

  // A key lriad no longer reads. At `inert` (the value it had in every shipped config, so in the
  // config.json of runs made before) it is accepted and ignored; any other value is refused with
  // what replaces it, since a user who set it expects it to act.
  void removed(const char* key, const nlohmann::json& inert, const char* hint) {
    removed_.push_back(key);
    if (j_.contains(key) && j_.at(key) != inert) throw Error("config key " + path_of(key) + " is no longer read", hint);
  }

  template <class S>
  void section(const char* key, S& sub) {
    known_.push_back(key);
    if (!j_.contains(key)) return;
    JsonReader inner(j_.at(key), path_of(key));
    sub.visit(inner);
    inner.finish();
  }

  // Throws for the first unknown key, suggesting the closest known one.
  void finish() const {
    for (const auto& [key, _] : j_.items()) {
      if (std::find(known_.begin(), known_.end(), key) != known_.end() ||
          std::find(removed_.begin(), removed_.end(), key) != removed_.end())
        continue;
      const std::string near = closest_key(key, known_);
      throw Error("unknown config key " + path_of(key),
                  near.empty() ? "valid keys here: " + list() : "did you mean " + path_of(near) + "?");
    }
  }

 private:
  std::string path_of(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  std::string label() const { return path_.empty() ? "(top level)" : path_; }
  std::string list() const {
    std::string s;
    for (const auto& k : known_) s += (s.empty() ? "" : ", ") + k;
    return s;
  }
  const nlohmann::json& j_;
  std::string path_;
  std::vector<std::string> known_;
  std::vector<std::string> removed_;  // keys no longer read, at their inert value
};

// Writes every field (the resolved config).
class JsonWriter {
 public:
  nlohmann::json out = nlohmann::json::object();
  template <class T>
  void operator()(const char* key, T& value, const char* = "") {
    out[key] = value;
  }
  void removed(const char*, const nlohmann::json&, const char*) {}
  template <class S>
  void section(const char* key, S& sub) {
    JsonWriter inner;
    sub.visit(inner);
    out[key] = inner.out;
  }
};

template <class C>
nlohmann::json config_to_json(const C& config) {
  JsonWriter w;
  const_cast<C&>(config).visit(w);
  return w.out;
}

// Overlays `j` onto `config` (missing keys keep their values). `source` names the file.
template <class C>
void config_from_json(C& config, const nlohmann::json& j, const std::string& source) {
  try {
    JsonReader r(j, "");
    config.visit(r);
    r.finish();
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
}

// Parses "a.b.c=value" into a JSON overlay {"a":{"b":{"c":value}}}. The value is read as JSON
// when it parses (numbers, true/false, lists), else taken as a string.
nlohmann::json parse_override(const std::string& assignment);

// Merges `overlay` into `base` recursively (objects merge, everything else replaces).
void merge_json(nlohmann::json& base, const nlohmann::json& overlay);

}  // namespace lriad::io
