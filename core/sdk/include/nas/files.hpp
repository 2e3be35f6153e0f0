// Writing a run's output files so that a full or read-only disk is an error, never a silent loss.
#pragma once

#include <filesystem>
#include <string_view>

#include "nas/api.hpp"

namespace nas {

/// Writes `text` to `path` whole or not at all: into `path`.partial, then renamed over `path`, so a
/// kill or a full disk never leaves half a file. Throws Error naming the path and the reason
/// ("Read-only file system", "No space left on device", ...); what was there before stays.
NAS_API void write_file(const std::filesystem::path& path, std::string_view text);

}  // namespace nas
