// Parameter specs, their builders and typed parameter access.
#include "nas/schema.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "nas/error.hpp"

namespace nas {
namespace {

std::string number_text(double v) {
  return fmt::format("{}", v);
}

std::string bounds_text(const ParamSpec& spec) {
  if (spec.min && spec.max) return fmt::format(" in [{}, {}]", number_text(*spec.min), number_text(*spec.max));
  if (spec.min) return fmt::format(" >= {}", number_text(*spec.min));
  if (spec.max) return fmt::format(" <= {}", number_text(*spec.max));
  return "";
}

ParamSpec make(std::string name, ParamType type, std::optional<Value> def) {
  ParamSpec spec;
  spec.name = std::move(name);
  spec.type = type;
  spec.default_value = std::move(def);
  return spec;
}

template <class T>
std::optional<Value> as_value(std::optional<T> v) {
  if (!v) return std::nullopt;
  return Value(std::move(*v));
}

}  // namespace

std::string ParamSpec::expected() const {
  switch (type) {
    case ParamType::boolean: return "a boolean (true or false)";
    case ParamType::integer: return "an integer" + bounds_text(*this);
    case ParamType::number: return "a number" + bounds_text(*this);
    case ParamType::string: return "a string";
    case ParamType::path: return "a file or folder path";
    case ParamType::choice: return fmt::format("one of: {}", fmt::join(choices, ", "));
    case ParamType::integer_list: return "a list of integers" + (min || max ? ", each" + bounds_text(*this) : "");
    case ParamType::number_list: return "a list of numbers" + (min || max ? ", each" + bounds_text(*this) : "");
    case ParamType::string_list: return "a list of strings";
  }
  return "";
}

namespace param {
ParamSpec boolean(std::string name, std::optional<bool> def) {
  return make(std::move(name), ParamType::boolean, as_value(def));
}
ParamSpec integer(std::string name, std::optional<std::int64_t> def) {
  return make(std::move(name), ParamType::integer, as_value(def));
}
ParamSpec number(std::string name, std::optional<double> def) {
  return make(std::move(name), ParamType::number, as_value(def));
}
ParamSpec string(std::string name, std::optional<std::string> def) {
  return make(std::move(name), ParamType::string, as_value(std::move(def)));
}
ParamSpec path(std::string name, std::optional<std::string> def) {
  return make(std::move(name), ParamType::path, as_value(std::move(def)));
}
ParamSpec choice(std::string name, std::vector<std::string> choices, std::optional<std::string> def) {
  ParamSpec spec = make(std::move(name), ParamType::choice, as_value(std::move(def)));
  spec.choices = std::move(choices);
  return spec;
}
ParamSpec integer_list(std::string name, std::optional<std::vector<std::int64_t>> def) {
  return make(std::move(name), ParamType::integer_list, as_value(std::move(def)));
}
ParamSpec number_list(std::string name, std::optional<std::vector<double>> def) {
  return make(std::move(name), ParamType::number_list, as_value(std::move(def)));
}
ParamSpec string_list(std::string name, std::optional<std::vector<std::string>> def) {
  return make(std::move(name), ParamType::string_list, as_value(std::move(def)));
}
}  // namespace param

const ParamSpec* find_param(const Schema& schema, std::string_view name) {
  for (const ParamSpec& spec : schema)
    if (spec.name == name) return &spec;
  return nullptr;
}

std::string_view type_name(ParamType type) {
  switch (type) {
    case ParamType::boolean: return "bool";
    case ParamType::integer: return "int";
    case ParamType::number: return "float";
    case ParamType::string: return "string";
    case ParamType::path: return "path";
    case ParamType::choice: return "choice";
    case ParamType::integer_list: return "list of int";
    case ParamType::number_list: return "list of float";
    case ParamType::string_list: return "list of string";
  }
  return "?";
}

std::string to_string(const Value& value) {
  struct Visitor {
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(std::int64_t i) const { return std::to_string(i); }
    std::string operator()(double d) const { return number_text(d); }
    std::string operator()(const std::string& s) const { return s; }
    std::string operator()(const std::vector<std::int64_t>& v) const { return fmt::format("[{}]", fmt::join(v, ", ")); }
    std::string operator()(const std::vector<double>& v) const { return fmt::format("[{}]", fmt::join(v, ", ")); }
    std::string operator()(const std::vector<std::string>& v) const { return fmt::format("[{}]", fmt::join(v, ", ")); }
  };
  return std::visit(Visitor{}, value);
}

const Value& Params::at(std::string_view name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw Error(fmt::format("no parameter '{}' (it is not in the schema)", name));
  return it->second;
}

Params default_params(const Schema& schema, std::string_view owner) {
  std::map<std::string, Value, std::less<>> values;
  for (const ParamSpec& spec : schema) {
    if (!spec.default_value)
      throw UsageError(fmt::format("{}: parameter '{}' has no default and must be given", owner, spec.name));
    values.emplace(spec.name, *spec.default_value);
  }
  return Params(std::move(values));
}

void Params::wrong_type(std::string_view name) const {
  throw Error(fmt::format("parameter '{}' was read with a type other than its schema's", name));
}

}  // namespace nas
