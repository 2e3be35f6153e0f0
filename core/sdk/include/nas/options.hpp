// Typed options with one source: a plain struct whose member initializers are the defaults, and a
// `fields()` list that names each member's parameter and its range and doc (in the spirit of PyTorch's
// TORCH_ARG). The schema, with its defaults, and the typed struct, from validated parameters, both come
// from that one declaration, so a default cannot drift between them.
//
//   struct MyOptions {
//     std::int64_t hidden = 100;
//     double lr = 3.5e-4;
//     static auto fields() {
//       return std::tuple{nas::field("hidden", &MyOptions::hidden).range(1, 4096).help("LSTM units"),
//                         nas::field("lr", &MyOptions::lr).range(0, 1).help("Adam learning rate")};
//     }
//   };
//   nas::Schema schema = nas::schema_of<MyOptions>();         // register it with the plugin
//   MyOptions options = nas::options_from<MyOptions>(params);  // in the factory
#pragma once

#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "nas/schema.hpp"

namespace nas {

/// One member of an options struct as a parameter: its name, its type (from the member's), its
/// default (the member's initializer), and chained settings like ParamSpec's.
template <class Options, class T>
class Field {
 public:
  Field(std::string name, T Options::*member) : member_(member) {
    spec_.name = std::move(name);
    if constexpr (std::is_same_v<T, bool>) spec_.type = ParamType::boolean;
    else if constexpr (std::is_same_v<T, std::int64_t>) spec_.type = ParamType::integer;
    else if constexpr (std::is_same_v<T, double>) spec_.type = ParamType::number;
    else if constexpr (std::is_same_v<T, std::string>) spec_.type = ParamType::string;
    else if constexpr (std::is_same_v<T, std::vector<std::int64_t>>) spec_.type = ParamType::integer_list;
    else if constexpr (std::is_same_v<T, std::vector<double>>) spec_.type = ParamType::number_list;
    else if constexpr (std::is_same_v<T, std::vector<std::string>>) spec_.type = ParamType::string_list;
    else static_assert(sizeof(T) == 0, "an option is bool, std::int64_t, double, std::string or a vector of those");
    spec_.default_value = Value(Options{}.*member);
  }

  Field& range(double lo, double hi) { spec_.range(lo, hi); return *this; }
  Field& at_least(double lo) { spec_.at_least(lo); return *this; }
  Field& help(std::string text) { spec_.help(std::move(text)); return *this; }
  /// A string that must be one of `choices`.
  Field& one_of(std::vector<std::string> choices) {
    static_assert(std::is_same_v<T, std::string>, "one_of is for string options");
    spec_.type = ParamType::choice;
    spec_.choices = std::move(choices);
    return *this;
  }
  /// A string that is a file or folder (see param::path).
  Field& path() {
    static_assert(std::is_same_v<T, std::string>, "path is for string options");
    spec_.type = ParamType::path;
    return *this;
  }
  /// No default: the config must give it (the member's initializer is then only a placeholder).
  Field& required() { spec_.default_value.reset(); return *this; }

  const ParamSpec& spec() const { return spec_; }
  void read(Options& options, const Params& params) const { options.*member_ = params.get<T>(spec_.name); }

 private:
  T Options::*member_;
  ParamSpec spec_;
};

template <class Options, class T>
Field<Options, T> field(std::string name, T Options::*member) {
  return Field<Options, T>(std::move(name), member);
}

/// The schema of an options struct, in the order of its fields().
template <class Options>
Schema schema_of() {
  Schema schema;
  std::apply([&](const auto&... f) { (schema.push_back(f.spec()), ...); }, Options::fields());
  return schema;
}

/// The options struct from parameters validated against schema_of<Options>() (or a schema holding it).
template <class Options>
Options options_from(const Params& params) {
  Options options;
  std::apply([&](const auto&... f) { (f.read(options, params), ...); }, Options::fields());
  return options;
}

/// Schemas end to end (a stage's own parameters, then those of the options it is made of).
inline Schema join(std::vector<Schema> parts) {
  Schema all;
  for (Schema& part : parts)
    for (ParamSpec& spec : part) all.push_back(std::move(spec));
  return all;
}

}  // namespace nas
