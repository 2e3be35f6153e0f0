// What every fuzz target shares: the shipped plugins, a quiet context, the input as files.
// A target feeds its input to one reader; a nas::Error (the bad-input error a user sees, naming the
// file) is the expected outcome for garbage. Anything else escaping (another exception type, a crash,
// a sanitizer report, a hang) is a finding.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "nas/context.hpp"
#include "nas/error.hpp"
#include "nas/loader.hpp"
#include "nas/log.hpp"
#include "nas/registry.hpp"
#include "nas/schema.hpp"

namespace nas::fuzz {

inline const Registry& plugins() {
  static const Registry* registry = [] {
    auto* r = new Registry();  // plugins are never unloaded: neither is this
    // The build tree mirrors the install tree (bin/, lib/nas/plugins/), as nas-host finds its plugins;
    // no compiled-in path, so the targets compile alike in every checkout (ccache hits in CI's clone).
    load_plugins(*r, {std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path() / "lib" / "nas" /
                      "plugins"});
    return r;
  }();
  return *registry;
}

inline Context& context() {
  static Logger log(Logger::Level::error);
  static Context context{.log = log, .seed = 1, .registry = &plugins()};
  return context;
}

/// The parameters of plugin `key`: its defaults, then `changes`.
inline Params params(const std::string& key, std::map<std::string, Value, std::less<>> changes = {}) {
  for (const ParamSpec& spec : plugins().find(key)->schema)
    if (spec.default_value) changes.emplace(spec.name, *spec.default_value);
  return Params(std::move(changes));
}

/// A folder of this process's own, emptied for each input.
inline std::filesystem::path scratch() {
  static const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("nas_fuzz_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline void write(const std::filesystem::path& file, const std::uint8_t* data, std::size_t size) {
  std::filesystem::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary).write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

inline std::string text(const std::uint8_t* data, std::size_t size) { return {reinterpret_cast<const char*>(data), size}; }

}  // namespace nas::fuzz
