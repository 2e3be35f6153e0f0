// evaluator/tabular: looks rewards up in a CSV table keyed by the genotype text (a tabular benchmark
// such as NAS-Bench-201), and optionally a final score in a second table. The defaults read the
// NAS-Bench-201 files: reward = CIFAR-10 12-epoch validation accuracy, final score = 200-epoch test accuracy.
// Multi-fidelity: `fidelity_column`, a column name with {} for the fidelity (e.g. "val@{}"), names one
// column per fidelity; every column of the table that matches it is read, and a job at fidelity f
// looks up the column for f (a full evaluation, fidelity 0, the `reward` column).
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <unordered_map>

#include <fmt/ranges.h>

#include "nas/evaluator.hpp"
#include "nas/options.hpp"
#include "nas/plugin.hpp"
#include "nas/registry.hpp"

namespace {

using Column = std::unordered_map<std::string, double>;

/// The numeric columns of a CSV file that `wanted` picks by name (returning a number for each: the
/// column's fidelity), keyed by another column; `description` says what is wanted when none is there.
/// Fields hold no commas or quotes.
std::map<std::int64_t, Column> read_columns(const std::string& file, const std::string& key_column,
                                            const std::function<std::optional<std::int64_t>(const std::string&)>& wanted,
                                            const std::string& description) {
  std::ifstream in(file);
  if (!in) throw nas::UsageError(fmt::format("evaluator/tabular: cannot read table '{}'", file));
  auto split = [](const std::string& line) {
    std::vector<std::string> fields;
    std::size_t from = 0;
    for (std::size_t comma; (comma = line.find(',', from)) != std::string::npos; from = comma + 1)
      fields.push_back(line.substr(from, comma - from));
    fields.push_back(line.substr(from, line.find_last_not_of("\r") + 1 - from));
    return fields;
  };
  std::string line;
  std::getline(in, line);
  const std::vector<std::string> header = split(line);
  auto column = [&](const std::string& name) {
    auto it = std::find(header.begin(), header.end(), name);
    if (it == header.end())
      throw nas::UsageError(fmt::format("{}:1: no column '{}'; columns: {}", file, name, fmt::join(header, ", ")));
    return static_cast<std::size_t>(it - header.begin());
  };
  const std::size_t key = column(key_column);
  std::map<std::int64_t, std::size_t> values;  // fidelity -> column
  for (std::size_t c = 0; c < header.size(); ++c)
    if (std::optional<std::int64_t> f = wanted(header[c])) values.emplace(*f, c);
  if (values.empty())
    throw nas::UsageError(fmt::format("{}:1: no column {}; columns: {}", file, description, fmt::join(header, ", ")));
  std::map<std::int64_t, Column> table;
  for (std::int64_t number = 2; std::getline(in, line); ++number) {
    if (line.empty() || line == "\r") continue;
    std::vector<std::string> fields = split(line);
    if (fields.size() != header.size())
      throw nas::UsageError(fmt::format("{}:{}: {} fields, expected {} as in the header", file, number, fields.size(),
                                        header.size()));
    for (const auto& [fidelity, value] : values) {
      try {
        std::size_t used = 0;
        double v = std::stod(fields[value], &used);
        if (used != fields[value].size()) throw std::invalid_argument("trailing text");
        table[fidelity].emplace(fields[key], v);
      } catch (const std::exception&) {
        throw nas::UsageError(fmt::format("{}:{}: column '{}' is '{}', expected a number", file, number, header[value],
                                          fields[value]));
      }
    }
  }
  if (table.empty()) throw nas::UsageError(fmt::format("evaluator/tabular: table '{}' has no rows", file));
  return table;
}

/// One numeric column of a CSV file, keyed by another column.
Column read_column(const std::string& file, const std::string& key_column, const std::string& value_column) {
  std::map<std::int64_t, Column> table = read_columns(
      file, key_column,
      [&](const std::string& name) { return name == value_column ? std::optional<std::int64_t>(0) : std::nullopt; },
      fmt::format("'{}'", value_column));
  return std::move(table.begin()->second);
}

/// The genotype text without comment lines and surrounding blanks (top/ files carry a comment).
std::string key_of(const std::string& genotype) {
  std::string out;
  std::size_t from = 0;
  while (from < genotype.size()) {
    std::size_t end = genotype.find('\n', from);
    if (end == std::string::npos) end = genotype.size();
    std::string_view line(genotype.data() + from, end - from);
    if (!line.empty() && line.front() != '#') out.append(line).push_back('\n');
    from = end + 1;
  }
  const auto first = out.find_first_not_of(" \t\r\n"), last = out.find_last_not_of(" \t\r\n");
  return first == std::string::npos ? std::string() : out.substr(first, last - first + 1);
}

struct Options {
  std::string table;
  std::string key = "cellstr";
  std::string reward = "cifar10-val";
  std::string final_table;
  std::string final_key = "ArchitectureString";
  std::string final_score = "CIFAR10TestAccuracy200Epochs";
  double scale = 0.01;
  std::string fidelity_column;

  static auto fields() {
    using O = Options;
    return std::tuple{
        nas::field("table", &O::table).path().required().help("CSV file with a header row: one row per architecture"),
        nas::field("key", &O::key).help("the column holding the genotype text"),
        nas::field("reward", &O::reward).help("the column holding the reward"),
        nas::field("final_table", &O::final_table).path().help("CSV file with the final score of each architecture; "
                                                               "empty: none"),
        nas::field("final_key", &O::final_key).help("final_table's genotype column"),
        nas::field("final_score", &O::final_score).help("final_table's score column"),
        nas::field("scale", &O::scale).help("multiplies rewards and final scores (0.01: percent to fraction)"),
        nas::field("fidelity_column", &O::fidelity_column).help(
            "multi-fidelity: the column of each fidelity, {} standing for it (e.g. \"val@{}\"); empty: none")};
  }
};

class TabularEvaluator final : public nas::Evaluator {
 public:
  explicit TabularEvaluator(const Options& o)
      : table_(o.table), scale_(o.scale), rewards_(read_column(o.table, o.key, o.reward)) {
    if (!o.final_table.empty()) finals_ = read_column(o.final_table, o.final_key, o.final_score);
    if (o.fidelity_column.empty()) return;
    const std::size_t at = o.fidelity_column.find("{}");
    if (at == std::string::npos)
      throw nas::UsageError(fmt::format("evaluator/tabular: fidelity_column '{}' has no {{}} for the fidelity",
                                        o.fidelity_column));
    const std::string before = o.fidelity_column.substr(0, at), after = o.fidelity_column.substr(at + 2);
    by_fidelity_ = read_columns(o.table, o.key, [&](const std::string& name) -> std::optional<std::int64_t> {
      if (name.size() <= before.size() + after.size() || !name.starts_with(before) || !name.ends_with(after))
        return std::nullopt;
      const std::string digits = name.substr(before.size(), name.size() - before.size() - after.size());
      if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) return std::nullopt;
      return std::stoll(digits);
    }, fmt::format("'{}' for any fidelity (fidelity_column)", o.fidelity_column));
  }

  nas::Evaluation evaluate(const nas::Candidate& candidate) override {
    nas::Evaluation out;
    const std::string key = key_of(candidate.genotype);
    const Column* rewards = &rewards_;
    if (candidate.fidelity > 0) {
      auto column = by_fidelity_.find(candidate.fidelity);
      if (column == by_fidelity_.end()) {
        std::vector<std::int64_t> known;
        for (const auto& [f, c] : by_fidelity_) known.push_back(f);
        throw nas::UsageError(fmt::format("evaluator/tabular: table '{}' has no column for fidelity {} (fidelity_column "
                                          "gives: {}); the scheduler's rungs must be among them", table_,
                                          candidate.fidelity, known.empty() ? "none" : fmt::format("{}", fmt::join(known, ", "))));
      }
      rewards = &column->second;
    }
    auto it = rewards->find(key);
    if (it == rewards->end()) {
      out.failure = fmt::format("'{}' is not in the table", key);
      return out;
    }
    out.reward = it->second * scale_;
    if (auto f = finals_.find(key); f != finals_.end()) out.final_score = f->second * scale_;
    return out;
  }

 private:
  std::string table_;
  double scale_;
  Column rewards_, finals_;
  std::map<std::int64_t, Column> by_fidelity_;  // multi-fidelity: fidelity -> rewards
};

void register_all(nas::Registrar& r) {
  r.add<nas::Evaluator>("tabular", "looks rewards up in a CSV table keyed by genotype text (NAS-Bench-201 by default)",
                        nas::schema_of<Options>(), [](const nas::Params& p, const nas::Context&, const nas::EvaluatorArgs&) {
                          return std::make_unique<TabularEvaluator>(nas::options_from<Options>(p));
                        },
                        {std::string(nas::capability::multi_fidelity)});
}

}  // namespace

NAS_PLUGIN("tabular-evaluator", "0.1.0", register_all)
