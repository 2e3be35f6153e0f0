// Starting nas-host's own child processes (workers, an ablation's runs) safely from a process that
// has threads: everything the child needs is built before fork, the child only calls exec.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace nas {

struct SpawnOptions {
  std::filesystem::path output;                            ///< stdout and stderr appended here; empty: this process's
  std::map<std::string, std::optional<std::string>> env;  ///< set these (nullopt: unset) over this process's environment
  bool die_with_parent = false;                            ///< SIGKILL when this process dies (even by kill -9)
};

/// Starts `executable` with `args` (args[0] included); returns its pid. Throws Error when it cannot.
pid_t spawn(const std::string& executable, std::vector<std::string> args, const SpawnOptions& options);

}  // namespace nas
