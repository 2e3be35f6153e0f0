// evaluator/tabular: looks rewards up in a CSV table keyed by the genotype text (a tabular benchmark
// such as NAS-Bench-201), and optionally a final score in a second table. The defaults read the
// NAS-Bench-201 files: reward = CIFAR-10 12-epoch validation accuracy, final score = 200-epoch test accuracy.
#include <fstream>
#include <unordered_map>

#include <fmt/ranges.h>

#include "nas/evaluator.hpp"
#include "nas/plugin.hpp"

namespace {

/// One numeric column of a CSV file, keyed by another column. Fields hold no commas or quotes.
std::unordered_map<std::string, double> read_column(const std::string& file, const std::string& key_column,
                                                    const std::string& value_column) {
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
  const std::size_t key = column(key_column), value = column(value_column);
  std::unordered_map<std::string, double> table;
  for (std::int64_t number = 2; std::getline(in, line); ++number) {
    if (line.empty() || line == "\r") continue;
    std::vector<std::string> fields = split(line);
    if (fields.size() != header.size())
      throw nas::UsageError(fmt::format("{}:{}: {} fields, expected {} as in the header", file, number, fields.size(),
                                        header.size()));
    try {
      std::size_t used = 0;
      double v = std::stod(fields[value], &used);
      if (used != fields[value].size()) throw std::invalid_argument("trailing text");
      table.emplace(fields[key], v);
    } catch (const std::exception&) {
      throw nas::UsageError(fmt::format("{}:{}: column '{}' is '{}', expected a number", file, number, value_column,
                                        fields[value]));
    }
  }
  if (table.empty()) throw nas::UsageError(fmt::format("evaluator/tabular: table '{}' has no rows", file));
  return table;
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

class TabularEvaluator final : public nas::Evaluator {
 public:
  explicit TabularEvaluator(const nas::Params& p)
      : scale_(p.get<double>("scale")),
        rewards_(read_column(p.get<std::string>("table"), p.get<std::string>("key"), p.get<std::string>("reward"))) {
    if (const std::string& final_table = p.get<std::string>("final_table"); !final_table.empty())
      finals_ = read_column(final_table, p.get<std::string>("final_key"), p.get<std::string>("final_score"));
  }

  nas::Evaluation evaluate(const nas::Candidate& candidate) override {
    nas::Evaluation out;
    const std::string key = key_of(candidate.genotype);
    auto it = rewards_.find(key);
    if (it == rewards_.end()) {
      out.failure = fmt::format("'{}' is not in the table", key);
      return out;
    }
    out.reward = it->second * scale_;
    if (auto f = finals_.find(key); f != finals_.end()) out.final_score = f->second * scale_;
    return out;
  }

 private:
  double scale_;
  std::unordered_map<std::string, double> rewards_, finals_;
};

void register_all(nas::Registrar& r) {
  using namespace nas::param;
  r.add<nas::Evaluator>(
      "tabular", "looks rewards up in a CSV table keyed by genotype text (NAS-Bench-201 by default)",
      {path("table").help("CSV file with a header row: one row per architecture"),
       string("key", "cellstr").help("the column holding the genotype text"),
       string("reward", "cifar10-val").help("the column holding the reward"),
       path("final_table", "").help("CSV file with the final score of each architecture; empty: none"),
       string("final_key", "ArchitectureString").help("final_table's genotype column"),
       string("final_score", "CIFAR10TestAccuracy200Epochs").help("final_table's score column"),
       number("scale", 0.01).help("multiplies rewards and final scores (0.01: percent to fraction)")},
      [](const nas::Params& p, const nas::Context&, const nas::EvaluatorArgs&) {
        return std::make_unique<TabularEvaluator>(p);
      });
}

}  // namespace

NAS_PLUGIN("tabular-evaluator", "0.1.0", register_all)
