// The NASNet genotype: two cells of B blocks, each block two (input, op) operands and a combine.
// Input indices follow the TF encoding: 0 = h_i (the previous cell's output), 1 = h_{i-1} (the one
// before), 2.. = this cell's blocks in order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nas/options.hpp"

namespace nasnet {

struct Operand {
  std::int64_t input = 0;
  std::string op;
  auto operator<=>(const Operand&) const = default;
};

struct Block {
  Operand a, b;
  std::string combine;  // "add" or "concat"
  bool operator==(const Block&) const = default;
};

struct Cell {
  std::vector<Block> blocks;
  std::vector<std::int64_t> concat;  // states concatenated into the cell's output, ascending
  bool operator==(const Cell&) const = default;
};

struct Genotype {
  Cell normal, reduction;
  bool operator==(const Genotype&) const = default;
};

/// What genotypes of a space may contain: the space's parameters (the paper's 13 ops by default).
struct Vocabulary {
  std::int64_t blocks = 5;
  std::vector<std::string> ops{"identity",     "conv_1x3_3x1", "conv_1x7_7x1", "dil_conv_3x3", "avg_pool_3x3",
                               "max_pool_3x3", "max_pool_5x5", "max_pool_7x7", "conv_1x1",     "conv_3x3",
                               "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7"};
  std::vector<std::string> combines{"add", "concat"};

  static auto fields() {
    using O = Vocabulary;
    return std::tuple{nas::field("blocks", &O::blocks).range(1, 20).help("blocks per cell (B)"),
                      nas::field("ops", &O::ops).help("op names the blocks choose from (any registered op)"),
                      nas::field("combines", &O::combines).help("combine choices: add, concat")};
  }
};

/// The states no block uses as an input: the default output of a cell.
std::vector<std::int64_t> loose_ends(const std::vector<Block>& blocks);

/// Parses genotype YAML; concat defaults to the loose ends. Throws nas::UsageError naming `source`,
/// the line and the entry ("normal.blocks[2]") and what was expected.
Genotype parse_yaml(const std::string& text, const std::string& source, const Vocabulary& vocabulary);
std::string to_yaml(const Genotype& genotype);

/// The DARTS text `Genotype(normal=[(op, input), ...], normal_concat=[...], reduce=[...], reduce_concat=[...])`.
/// DARTS numbers the two cell inputs the other way round (0 = h_{i-1}), calls identity skip_connect,
/// and only knows add blocks.
std::string to_darts(const Genotype& genotype);
Genotype parse_darts(const std::string& text, const std::string& source, const Vocabulary& vocabulary);

/// Operands of every block in a fixed order (both combines are symmetric up to a channel permutation
/// the next layer absorbs). Block order and state numbering are left as they are: two genotypes that
/// differ only by renumbering independent blocks are not recognized as equal.
Genotype canonicalize(Genotype genotype);

}  // namespace nasnet
