// Plugin discovery and loading with Boost.DLL: every check happens before any C++ in the plugin runs.
#include "nas/loader.hpp"

#include <dlfcn.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <sstream>

#define BOOST_DLL_USE_STD_FS
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "nas/abi.h"
#include "nas/fingerprint.hpp"
#include "nas/log.hpp"

namespace fs = std::filesystem;

namespace nas {
namespace {

// Opened libraries stay loaded for the life of the process: objects, vtables and deleters from them
// may outlive any owner we could name, and LibTorch's static destructors crash on dlclose. The
// handles are leaked on purpose and the libraries are opened RTLD_NODELETE as well.
std::vector<boost::dll::shared_library>& resident_libraries() {
  static auto* libraries = new std::vector<boost::dll::shared_library>();
  return *libraries;
}

constexpr auto load_mode =
    static_cast<boost::dll::load_mode::type>(RTLD_LOCAL | RTLD_NOW | RTLD_NODELETE);

std::string check_info(const nas_plugin_info& info) {
  if (info.abi_major != NAS_ABI_MAJOR)
    return fmt::format("ABI {}.{}, host supports {}.x", info.abi_major, info.abi_minor, NAS_ABI_MAJOR);
  if (info.abi_minor > NAS_ABI_MINOR)
    return fmt::format("ABI {}.{} is newer than the host's {}.{}; upgrade nas-host or rebuild the plugin",
                       info.abi_major, info.abi_minor, NAS_ABI_MAJOR, NAS_ABI_MINOR);
  std::string_view fingerprint = info.fingerprint ? info.fingerprint : "";
  if (fingerprint != host_fingerprint())
    return fmt::format("built as '{}', host is '{}'; rebuild the plugin against this SDK", fingerprint,
                       host_fingerprint());
  if (!info.name || !*info.name || !info.version || !info.register_factories)
    return "its info lacks a name, a version or a register function";
  return "";
}

// Group-writable is fine when the group is this user's own (a user private group, no other members).
bool own_group(gid_t gid) {
  if (gid != getgid()) return false;
  const group* g = getgrgid(gid);
  return g && (!g->gr_mem || !g->gr_mem[0]);
}

// A plugin is code that runs as the user: one that another user could replace is refused (like ssh's
// StrictModes): the file, or the folder it is in, writable by others or owned by someone else than
// the user or root.
std::string trust_problem(const fs::path& file) {
  std::error_code ec;
  const fs::path real = fs::canonical(file, ec);
  for (const fs::path& path : {ec ? file : real, (ec ? file : real).parent_path()}) {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) continue;
    const unsigned mode = st.st_mode & 07777;
    const char* fix = fs::is_directory(path) ? "folder" : "file";
    if ((st.st_mode & S_IWOTH) || ((st.st_mode & S_IWGRP) && !own_group(st.st_gid)))
      return fmt::format("refused: the {} '{}' is writable by {} (mode {:04o}), who could replace the code it runs as "
                         "you; 'chmod go-w {}' (see docs/plugins.md, Trust)", fix, path.string(),
                         (st.st_mode & S_IWOTH) ? "every user" : "its group", mode, path.string());
    if (st.st_uid != getuid() && st.st_uid != 0)
      return fmt::format("refused: the {} '{}' belongs to another user (uid {}), who could replace the code it runs as "
                         "you (see docs/plugins.md, Trust)", fix, path.string(), st.st_uid);
  }
  return "";
}

}  // namespace

const char* host_fingerprint() { return NAS_BUILD_FINGERPRINT; }

fs::path default_plugin_dir() {
  return boost::dll::program_location().parent_path().parent_path() / "lib" / "nas" / "plugins";
}

std::vector<fs::path> plugin_search_path(const std::vector<fs::path>& explicit_dirs, bool with_default, Logger& log) {
  std::vector<fs::path> dirs;
  std::set<fs::path> seen;
  auto add = [&](const fs::path& dir) {
    std::error_code ec;
    fs::path canonical = fs::canonical(dir, ec);
    if (!ec && seen.insert(canonical).second) dirs.push_back(dir);
  };
  for (const fs::path& dir : explicit_dirs) {
    if (!fs::is_directory(dir)) throw UsageError(fmt::format("plugin path '{}' is not a folder", dir.string()));
    add(dir);
  }
  if (const char* env = std::getenv("NAS_PLUGIN_PATH")) {
    std::stringstream entries(env);
    for (std::string entry; std::getline(entries, entry, ':');) {
      if (entry.empty()) continue;
      if (!fs::is_directory(entry)) {
        log.warn("NAS_PLUGIN_PATH entry '{}' is not a folder; skipped", entry);
        continue;
      }
      add(entry);
    }
  }
  if (with_default && fs::is_directory(default_plugin_dir())) add(default_plugin_dir());
  std::vector<std::string> names;
  for (const fs::path& dir : dirs) names.push_back(dir.string());
  log.debug("plugin search path, in order: {}", fmt::join(names, ", "));
  return dirs;
}

std::vector<fs::path> find_plugin_files(const std::vector<fs::path>& dirs) {
  std::vector<fs::path> files;
  for (const fs::path& dir : dirs) {
    std::vector<fs::path> here;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
      std::string name = entry.path().filename().string();
      if (name.starts_with("libnas_") && name.ends_with(".so") && !entry.is_directory()) here.push_back(entry.path());
    }
    std::sort(here.begin(), here.end());
    files.insert(files.end(), here.begin(), here.end());
  }
  return files;
}

bool load_plugin(Registry& registry, const fs::path& file) {
  auto broken = [&](std::string error) {
    registry.add_broken(BrokenPlugin{file, std::move(error)});
    return false;
  };
  if (std::string problem = trust_problem(file); !problem.empty()) return broken(problem);
  boost::dll::shared_library library;
  try {
    library.load(file, load_mode);
  } catch (const std::exception& e) {
    // Boost wraps the loader's reason: "... (dlerror system message: <reason>): <errno text>".
    std::string_view what = e.what();
    constexpr std::string_view marker = "dlerror system message: ";
    std::size_t at = what.find(marker);
    std::string_view reason = at == std::string_view::npos ? what : what.substr(at + marker.size());
    return broken(fmt::format("cannot be loaded: {}", reason.substr(0, reason.find(')'))));
  }
  if (!library.has(NAS_PLUGIN_ENTRY_SYMBOL))
    return broken(fmt::format("has no entry symbol '{}'; is it a nas plugin built with NAS_PLUGIN()?",
                              NAS_PLUGIN_ENTRY_SYMBOL));
  resident_libraries().push_back(library);

  const nas_plugin_info* info = library.get<const nas_plugin_info*()>(NAS_PLUGIN_ENTRY_SYMBOL)();
  if (!info) return broken("its entry symbol returned no plugin info");
  if (std::string problem = check_info(*info); !problem.empty()) return broken(problem);

  Registrar registrar;
  info->register_factories(reinterpret_cast<nas_registrar*>(&registrar));
  if (!registrar.failure().empty()) return broken(fmt::format("registration failed: {}", registrar.failure()));
  if (registrar.entries().empty()) return broken("registered no factories");
  auto plugin = std::make_shared<const PluginFile>(PluginFile{file, info->name, info->version, info->abi_minor});
  try {
    registry.commit(plugin, registrar.entries());
  } catch (const UsageError& e) {
    return broken(e.what());
  }
  return true;
}

void load_plugins(Registry& registry, const std::vector<fs::path>& dirs) {
  for (const fs::path& file : find_plugin_files(dirs)) load_plugin(registry, file);
}

}  // namespace nas
