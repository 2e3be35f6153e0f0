// Command-line flags of the benchmark programs: `--name value` pairs, read where they are used.
#pragma once
#include <cstdint>
#include <string>

namespace bench {

/// The value after `--name`, or `fallback` when there is none.
inline std::string text_flag(int argc, char** argv, const std::string& name, const std::string& fallback = "") {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == "--" + name) return argv[i + 1];
  return fallback;
}

/// The integer after `--name`, or `fallback` when there is none.
inline std::int64_t flag(int argc, char** argv, const std::string& name, std::int64_t fallback) {
  const std::string text = text_flag(argc, argv, name);
  return text.empty() ? fallback : std::stoll(text);
}

}  // namespace bench
