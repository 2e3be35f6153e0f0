// Parameter schemas (what a plugin or stage accepts) and the typed parameters validated against them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "nas/api.hpp"

namespace nas {

enum class ParamType { boolean, integer, number, string, path, choice, integer_list, number_list, string_list };

/// A validated parameter value; the alternative follows the ParamType (choice and path are strings).
using Value = std::variant<bool, std::int64_t, double, std::string, std::vector<std::int64_t>,
                           std::vector<double>, std::vector<std::string>>;

/// One parameter: name, type, default (none: required), allowed range or values, one-line doc.
struct NAS_API ParamSpec {
  std::string name;
  ParamType type = ParamType::string;
  std::optional<Value> default_value;
  std::optional<double> min;  ///< inclusive; for lists it bounds every element
  std::optional<double> max;  ///< inclusive
  std::vector<std::string> choices;
  std::string doc;

  ParamSpec& range(double lo, double hi) { min = lo; max = hi; return *this; }
  ParamSpec& at_least(double lo) { min = lo; return *this; }
  ParamSpec& help(std::string text) { doc = std::move(text); return *this; }
  bool required() const { return !default_value.has_value(); }
  /// What a valid value looks like, for error messages: "an integer in [1, 100]".
  std::string expected() const;
};

/// Builders: `param::integer("epochs", 20).range(1, 1000).help("training epochs")`.
/// Leaving out the default makes the parameter required.
namespace param {
NAS_API ParamSpec boolean(std::string name, std::optional<bool> def = std::nullopt);
NAS_API ParamSpec integer(std::string name, std::optional<std::int64_t> def = std::nullopt);
NAS_API ParamSpec number(std::string name, std::optional<double> def = std::nullopt);
NAS_API ParamSpec string(std::string name, std::optional<std::string> def = std::nullopt);
/// A file or folder: relative values in a config file are taken relative to that file's folder
/// (on the command line, to the current folder), and the parameter holds the absolute path.
NAS_API ParamSpec path(std::string name, std::optional<std::string> def = std::nullopt);
NAS_API ParamSpec choice(std::string name, std::vector<std::string> choices,
                         std::optional<std::string> def = std::nullopt);
NAS_API ParamSpec integer_list(std::string name, std::optional<std::vector<std::int64_t>> def = std::nullopt);
NAS_API ParamSpec number_list(std::string name, std::optional<std::vector<double>> def = std::nullopt);
NAS_API ParamSpec string_list(std::string name, std::optional<std::vector<std::string>> def = std::nullopt);
}  // namespace param

using Schema = std::vector<ParamSpec>;

NAS_API const ParamSpec* find_param(const Schema& schema, std::string_view name);
NAS_API std::string_view type_name(ParamType type);
/// A value as it would be written in YAML, e.g. `3`, `0.5`, `[1, 2]`, `cifar10`.
NAS_API std::string to_string(const Value& value);

/// Parameters after validation: every schema entry present, with the type its spec says.
class NAS_API Params {
 public:
  Params() = default;
  explicit Params(std::map<std::string, Value, std::less<>> values) : values_(std::move(values)) {}

  /// The value of `name` as T (bool, std::int64_t, double, std::string or a vector of those).
  /// Asking for a name the schema lacks, or for the wrong type, is a bug in the caller: throws nas::Error.
  template <class T>
  const T& get(std::string_view name) const {
    const Value& v = at(name);
    if (const T* p = std::get_if<T>(&v)) return *p;
    wrong_type(name);
  }
  const Value& at(std::string_view name) const;
  const std::map<std::string, Value, std::less<>>& values() const { return values_; }

 private:
  [[noreturn]] void wrong_type(std::string_view name) const;
  std::map<std::string, Value, std::less<>> values_;
};

/// Params holding every default of `schema`; throws UsageError naming `owner` if one is required.
NAS_API Params default_params(const Schema& schema, std::string_view owner);

}  // namespace nas
