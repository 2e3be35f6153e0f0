// A config document as a YAML tree, for the host's code that builds documents from other files (an
// ablation's base config and its arms' overrides). The only header besides config.cpp that sees YAML.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "nas/config.hpp"

namespace nas {

/// A value set on top of the document: a command-line override, or a node of another file.
struct Override {
  std::string path;                 ///< the dotted key path it replaces
  std::string text;                 ///< a command-line override as typed
  std::filesystem::path from_file;  ///< else the file the value is a node of: its marks name the lines
                                    ///< of errors and its folder anchors relative paths
  Location at;                      ///< where in that file the override is written (for keys it creates)
};

struct ConfigDocument::Impl {
  std::filesystem::path file;        ///< relative paths in `root` are relative to its folder
  YAML::Node root;
  std::vector<Override> overrides;   ///< in the order they were set
};

/// map[key] that is safe to inspect (yaml-cpp's missing-key nodes throw on everything but
/// IsDefined()): the node, or an undefined one.
YAML::Node child(const YAML::Node& map, std::string_view key);

/// Replaces the node at `by.path` (creating sections as needed) with `value`; throws ConfigError
/// when the path runs into a value or past a list's end.
NAS_API void set_value(ConfigDocument::Impl& doc, const Override& by, const YAML::Node& value);

/// Parses "KEY.PATH=VALUE" (VALUE in YAML syntax) and sets it.
NAS_API void apply_override(ConfigDocument::Impl& doc, const std::string& text);

}  // namespace nas
