// Genotype parsing, checking, canonical form and the YAML and DARTS text formats.
#include "genotype.hpp"

#include <algorithm>
#include <regex>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include "nas/error.hpp"

namespace nasnet {
namespace {

constexpr const char* kCellNames[] = {"normal", "reduction"};

// Where a problem is: "file:line: entry" or "file: entry".
std::string place(const std::string& source, const YAML::Node& node, const std::string& entry) {
  if (node.IsDefined() && !node.Mark().is_null()) return fmt::format("{}:{}: {}", source, node.Mark().line + 1, entry);
  return fmt::format("{}: {}", source, entry);
}

[[noreturn]] void fail(const std::string& where, const std::string& message) {
  throw nas::UsageError(fmt::format("{}: {}", where, message));
}

bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

// Checks what the parsers cannot: indices in range, names in the vocabulary, block count.
void check_cell(const Cell& cell, const std::string& name, const Vocabulary& v, const std::string& source,
                const std::vector<YAML::Node>& block_nodes = {},
                const YAML::Node& concat_node = YAML::Node(YAML::NodeType::Undefined)) {
  if (static_cast<std::int64_t>(cell.blocks.size()) != v.blocks)
    fail(fmt::format("{}: {}", source, name), fmt::format("{} blocks, the space has {}", cell.blocks.size(), v.blocks));
  for (std::size_t b = 0; b < cell.blocks.size(); ++b) {
    const Block& block = cell.blocks[b];
    std::string where = place(source, b < block_nodes.size() ? block_nodes[b] : YAML::Node(YAML::NodeType::Undefined),
                              fmt::format("{}.blocks[{}]", name, b));
    for (const Operand* operand : {&block.a, &block.b}) {
      if (operand->input < 0 || operand->input >= static_cast<std::int64_t>(2 + b))
        fail(where, fmt::format("input {} out of range; block {} chooses among states 0..{}", operand->input, b, 1 + b));
      if (!contains(v.ops, operand->op))
        fail(where, fmt::format("unknown op '{}'; the space's ops: {}", operand->op, fmt::join(v.ops, ", ")));
    }
    if (!contains(v.combines, block.combine))
      fail(where, fmt::format("unknown combine '{}'; expected one of: {}", block.combine, fmt::join(v.combines, ", ")));
  }
  std::int64_t states = 2 + v.blocks;
  std::string where = place(source, concat_node, fmt::format("{}.concat", name));
  if (cell.concat.empty()) fail(where, "is empty; a cell needs an output");
  for (std::int64_t s : cell.concat)
    if (s < 0 || s >= states) fail(where, fmt::format("state {} out of range 0..{}", s, states - 1));
  if (std::set<std::int64_t>(cell.concat.begin(), cell.concat.end()).size() != cell.concat.size())
    fail(where, "lists a state twice");
}

std::int64_t to_int(const YAML::Node& node, const std::string& where, const char* what) {
  try {
    return node.as<std::int64_t>();
  } catch (const YAML::Exception&) {
    fail(where, fmt::format("expected {} (an integer), got '{}'", what, node.IsScalar() ? node.Scalar() : "a structure"));
  }
}

std::string to_name(const YAML::Node& node, const std::string& where, const char* what) {
  if (!node.IsScalar()) fail(where, fmt::format("expected {} (a name), got {}", what, node.IsDefined() ? "a structure" : "nothing"));
  return node.Scalar();
}

Cell parse_cell(const YAML::Node& root, const char* name, const std::string& source, const Vocabulary& v) {
  const YAML::Node cell_node = root[name];
  if (!cell_node.IsDefined() || !cell_node.IsMap())
    fail(place(source, cell_node.IsDefined() ? cell_node : root, name), "missing; expected a map with 'blocks' (and optionally 'concat')");
  for (auto it = cell_node.begin(); it != cell_node.end(); ++it)
    if (it->first.Scalar() != "blocks" && it->first.Scalar() != "concat")
      fail(place(source, it->first, fmt::format("{}.{}", name, it->first.Scalar())), "unknown key; expected 'blocks' or 'concat'");
  const YAML::Node blocks = cell_node["blocks"];
  if (!blocks.IsDefined() || !blocks.IsSequence())
    fail(place(source, cell_node, fmt::format("{}.blocks", name)), "missing; expected a list of [input, op, input, op, combine]");
  Cell cell;
  std::vector<YAML::Node> block_nodes;
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    const YAML::Node item = blocks[b];
    std::string where = place(source, item, fmt::format("{}.blocks[{}]", name, b));
    if (!item.IsSequence() || item.size() != 5)
      fail(where, "expected [input, op, input, op, combine], e.g. [0, sep_conv_3x3, 1, identity, add]");
    cell.blocks.push_back(Block{{to_int(item[0], where, "an input index"), to_name(item[1], where, "an op")},
                                {to_int(item[2], where, "an input index"), to_name(item[3], where, "an op")},
                                to_name(item[4], where, "a combine op")});
    block_nodes.push_back(item);
  }
  const YAML::Node concat = cell_node["concat"];
  if (concat.IsDefined()) {
    std::string where = place(source, concat, fmt::format("{}.concat", name));
    if (!concat.IsSequence()) fail(where, "expected a list of state indices");
    for (const YAML::Node& s : concat) cell.concat.push_back(to_int(s, where, "a state index"));
    std::sort(cell.concat.begin(), cell.concat.end());
  } else {
    cell.concat = loose_ends(cell.blocks);
  }
  check_cell(cell, name, v, source, block_nodes, concat);
  return cell;
}

std::int64_t darts_index(std::int64_t index) { return index == 0 ? 1 : index == 1 ? 0 : index; }  // its own inverse
std::string darts_op(const std::string& op) { return op == "identity" ? "skip_connect" : op; }
std::string from_darts_op(const std::string& op) { return op == "skip_connect" ? "identity" : op; }

}  // namespace

std::vector<std::int64_t> loose_ends(const std::vector<Block>& blocks) {
  std::set<std::int64_t> used;
  for (const Block& b : blocks) used.insert({b.a.input, b.b.input});
  std::vector<std::int64_t> out;
  for (std::int64_t s = 2; s < static_cast<std::int64_t>(2 + blocks.size()); ++s)
    if (!used.count(s)) out.push_back(s);
  return out;
}

Genotype parse_yaml(const std::string& text, const std::string& source, const Vocabulary& v) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    fail(fmt::format("{}:{}:{}", source, e.mark.line + 1, e.mark.column + 1), fmt::format("YAML syntax error: {}", e.msg));
  }
  if (!root.IsMap()) fail(source, "expected a map with 'normal' and 'reduction' cells");
  for (auto it = root.begin(); it != root.end(); ++it) {
    std::string key = it->first.Scalar();
    if (key == "space") {
      if (it->second.Scalar() != "nasnet")
        fail(place(source, it->second, "space"), fmt::format("this is a '{}' genotype, expected 'nasnet'", it->second.Scalar()));
    } else if (key != "normal" && key != "reduction") {
      fail(place(source, it->first, key), "unknown key; expected space, normal, reduction");
    }
  }
  return Genotype{parse_cell(root, "normal", source, v), parse_cell(root, "reduction", source, v)};
}

std::string to_yaml(const Genotype& g) {
  std::string out =
      "# A NASNet genotype. Each block: [input, op, input, op, combine]. Inputs: 0 = h_i (the previous\n"
      "# cell's output), 1 = h_{i-1} (the cell before it), 2.. = the outputs of this cell's blocks in order.\n"
      "# concat: the states whose channels are concatenated into the cell's output.\n"
      "space: nasnet\n";
  int index = 0;
  for (const Cell* cell : {&g.normal, &g.reduction}) {
    out += fmt::format("{}:\n  blocks:\n", kCellNames[index++]);
    for (const Block& b : cell->blocks)
      out += fmt::format("    - [{}, {}, {}, {}, {}]\n", b.a.input, b.a.op, b.b.input, b.b.op, b.combine);
    out += fmt::format("  concat: [{}]\n", fmt::join(cell->concat, ", "));
  }
  return out;
}

std::string to_darts(const Genotype& g) {
  auto cell_text = [](const Cell& cell) {
    std::vector<std::string> pairs;
    for (const Block& b : cell.blocks) {
      if (b.combine != "add")
        throw nas::UsageError("the DARTS format has only add blocks; this genotype has a concat block");
      for (const Operand* o : {&b.a, &b.b}) pairs.push_back(fmt::format("('{}', {})", darts_op(o->op), darts_index(o->input)));
    }
    std::vector<std::int64_t> concat;
    for (std::int64_t s : cell.concat) concat.push_back(darts_index(s));
    std::sort(concat.begin(), concat.end());
    return std::make_pair(fmt::format("[{}]", fmt::join(pairs, ", ")), fmt::format("[{}]", fmt::join(concat, ", ")));
  };
  auto [normal, normal_concat] = cell_text(g.normal);
  auto [reduce, reduce_concat] = cell_text(g.reduction);
  return fmt::format("Genotype(normal={}, normal_concat={}, reduce={}, reduce_concat={})", normal, normal_concat,
                     reduce, reduce_concat);
}

Genotype parse_darts(const std::string& text, const std::string& source, const Vocabulary& v) {
  // The regexes admit any run of digits: a number too long for a state index is an error, not std::stoll's exception.
  auto index = [&](const std::string& digits, const std::string& name) -> std::int64_t {
    if (digits.size() > 6) fail(source, fmt::format("{}: state {} out of range", name, digits));
    return std::stoll(digits);
  };
  auto cell = [&](const std::string& name, const char* cell_name) {
    std::smatch m;
    if (!std::regex_search(text, m, std::regex(name + R"(\s*=\s*\[([^\]]*)\])")))
      fail(source, fmt::format("no '{}=[...]' in the DARTS genotype", name));
    std::string pairs_text = m[1];
    static const std::regex pair(R"(\(\s*'([A-Za-z0-9_]+)'\s*,\s*(\d+)\s*\))");
    std::vector<Operand> operands;
    for (auto it = std::sregex_iterator(pairs_text.begin(), pairs_text.end(), pair); it != std::sregex_iterator(); ++it)
      operands.push_back({darts_index(index((*it)[2], name)), from_darts_op((*it)[1])});
    if (operands.size() % 2 != 0) fail(source, fmt::format("{}: an odd number of (op, input) pairs", name));
    Cell c;
    for (std::size_t i = 0; i < operands.size(); i += 2) c.blocks.push_back(Block{operands[i], operands[i + 1], "add"});
    std::smatch cm;
    if (std::regex_search(text, cm, std::regex(name + R"(_concat\s*=\s*range\(\s*(\d+)\s*,\s*(\d+)\s*\))"))) {
      for (std::int64_t s = index(cm[1], name), end = index(cm[2], name); s < end; ++s) c.concat.push_back(darts_index(s));
    } else if (std::regex_search(text, cm, std::regex(name + R"(_concat\s*=\s*\[([^\]]*)\])"))) {
      std::string list = cm[1];
      static const std::regex number(R"(\d+)");
      for (auto it = std::sregex_iterator(list.begin(), list.end(), number); it != std::sregex_iterator(); ++it)
        c.concat.push_back(darts_index(index((*it)[0], name)));
    } else {
      c.concat = loose_ends(c.blocks);
    }
    std::sort(c.concat.begin(), c.concat.end());
    check_cell(c, cell_name, v, source);
    return c;
  };
  return Genotype{cell("normal", "normal"), cell("reduce", "reduction")};
}

Genotype canonicalize(Genotype g) {
  for (Cell* cell : {&g.normal, &g.reduction}) {
    for (Block& b : cell->blocks)
      if (b.b < b.a) std::swap(b.a, b.b);
    std::sort(cell->concat.begin(), cell->concat.end());
  }
  return g;
}

}  // namespace nasnet
