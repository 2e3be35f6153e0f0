// Genotype files as runs write them (top/<rank>.genotype, selected/, best.genotype): the space's
// genotype text after comment lines, one of which records the space the genotype belongs to (its
// plugin and parameters), so that `inspect` and `genotype` read a file without --space options.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "nas/api.hpp"
#include "nas/stage.hpp"

namespace nas {

/// The line recording a space: `# space: {plugin: nasnet, blocks: 5, ops: [...], combines: [...]}`.
NAS_API std::string space_comment(const PluginChoice& space);

/// A space as recorded in a genotype file: its plugin, and its parameters as KEY=VALUE assignments
/// (for parse_assignments).
struct SpaceRecord {
  std::string plugin;
  std::vector<std::string> assignments;
};

/// The space recorded in a genotype file's text, if it has the line; throws UsageError naming
/// `source` if the line is malformed.
NAS_API std::optional<SpaceRecord> recorded_space(const std::string& text, const std::string& source);

}  // namespace nas
