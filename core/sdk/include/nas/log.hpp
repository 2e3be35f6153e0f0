// The logger the host injects into every stage and plugin: terminal (stderr) plus the run's log file.
#pragma once

#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string_view>

#include <fmt/format.h>

#include "nas/api.hpp"

namespace nas {

class NAS_API Logger {
 public:
  enum class Level { debug, info, warn, error };

  explicit Logger(Level threshold = Level::info);
  ~Logger();
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  /// From now on every line from info up also goes, timestamped, to `path` (appended), whatever the
  /// terminal's threshold.
  void tee_to(const std::filesystem::path& path);
  void write(Level level, std::string_view message);
  /// A status line for long work: rewritten in place on a terminal, one line each in the log file.
  void progress(std::string_view message);

  template <class... A>
  void debug(fmt::format_string<A...> f, A&&... a) { write(Level::debug, fmt::format(f, std::forward<A>(a)...)); }
  template <class... A>
  void info(fmt::format_string<A...> f, A&&... a) { write(Level::info, fmt::format(f, std::forward<A>(a)...)); }
  template <class... A>
  void warn(fmt::format_string<A...> f, A&&... a) { write(Level::warn, fmt::format(f, std::forward<A>(a)...)); }
  template <class... A>
  void error(fmt::format_string<A...> f, A&&... a) { write(Level::error, fmt::format(f, std::forward<A>(a)...)); }

 private:
  void end_progress_line();  // caller holds mutex_

  Level threshold_;
  std::mutex mutex_;
  std::FILE* file_ = nullptr;
  bool terminal_;
  bool progress_open_ = false;
};

}  // namespace nas
