// The logger: terminal lines on stderr, timestamped lines in the run's log file.
#include "nas/log.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "nas/error.hpp"

namespace nas {
namespace {

std::string_view label(Logger::Level level) {
  switch (level) {
    case Logger::Level::debug: return "debug: ";
    case Logger::Level::info: return "";
    case Logger::Level::warn: return "warning: ";
    case Logger::Level::error: return "error: ";
  }
  return "";
}

std::string utc_now() {
  std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

}  // namespace

Logger::Logger(Level threshold) : threshold_(threshold), terminal_(isatty(STDERR_FILENO) != 0) {}

Logger::~Logger() {
  std::lock_guard lock(mutex_);
  end_progress_line();
  if (file_) std::fclose(file_);
}

void Logger::tee_to(const std::filesystem::path& path) {
  std::FILE* file = std::fopen(path.c_str(), "a");
  if (!file) throw Error(fmt::format("cannot open log file '{}' for writing: {}", path.string(), std::strerror(errno)));
  std::lock_guard lock(mutex_);
  if (file_) std::fclose(file_);
  file_ = file;
}

void Logger::end_progress_line() {
  if (progress_open_) std::fputc('\n', stderr);
  progress_open_ = false;
}

void Logger::write(Level level, std::string_view message) {
  std::lock_guard lock(mutex_);
  if (level >= threshold_) {
    end_progress_line();
    fmt::print(stderr, "{}{}\n", label(level), message);
  }
  if (file_ && level >= Level::info) {  // the run's log keeps everything from info up
    fmt::print(file_, "{} {}{}\n", utc_now(), label(level), message);
    std::fflush(file_);
  }
}

void Logger::progress(std::string_view message) {
  std::lock_guard lock(mutex_);
  const bool shown = Level::info >= threshold_;
  if (shown && terminal_) {
    fmt::print(stderr, "\r\033[K{}", message);  // rewrite the line in place
    std::fflush(stderr);
    progress_open_ = true;
  } else if (shown) {
    fmt::print(stderr, "{}\n", message);
  }
  if (file_) {
    fmt::print(file_, "{} {}\n", utc_now(), message);
    std::fflush(file_);
  }
}

}  // namespace nas
