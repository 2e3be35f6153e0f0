// Plugin discovery and loading: search path order, ABI checks, transactional registration.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "nas/api.hpp"
#include "nas/registry.hpp"

namespace nas {

class Logger;

/// The host's own build fingerprint (NAS_BUILD_FINGERPRINT as compiled into the core).
NAS_API const char* host_fingerprint();

/// The plugin folder of the build or install tree: <folder of nas-host>/../lib/nas/plugins.
NAS_API std::filesystem::path default_plugin_dir();

/// Plugin folders in discovery order: `explicit_dirs` (--plugin-path, then the config's plugin_paths;
/// each must exist), then NAS_PLUGIN_PATH (colon-separated), then default_plugin_dir() unless
/// `with_default` is false. Duplicates (same canonical folder) are kept once, at their first place.
NAS_API std::vector<std::filesystem::path> plugin_search_path(const std::vector<std::filesystem::path>& explicit_dirs,
                                                              bool with_default, Logger& log);

/// Plugin files in `dirs`: every libnas_*.so, folder by folder, sorted by file name within each.
NAS_API std::vector<std::filesystem::path> find_plugin_files(const std::vector<std::filesystem::path>& dirs);

/// Loads one plugin file into `registry`; on any failure records a BrokenPlugin naming the reason and
/// returns false, having committed nothing. Libraries, once opened, are never unloaded.
NAS_API bool load_plugin(Registry& registry, const std::filesystem::path& file);

/// find_plugin_files + load_plugin for each.
NAS_API void load_plugins(Registry& registry, const std::vector<std::filesystem::path>& dirs);

}  // namespace nas
