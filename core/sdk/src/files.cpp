#include "nas/files.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "nas/error.hpp"

namespace nas {

void write_file(const std::filesystem::path& path, std::string_view text) {
  const std::filesystem::path partial = std::filesystem::path(path).concat(".partial");
  auto fail = [&](const std::string& why) {
    std::remove(partial.c_str());
    throw Error(fmt::format("cannot write '{}': {}", path.string(), why));
  };
  std::FILE* file = std::fopen(partial.c_str(), "wb");
  if (!file) fail(std::strerror(errno));
  // Buffered writes report a full disk only when flushed: check the write, the flush and the close.
  const bool written = std::fwrite(text.data(), 1, text.size(), file) == text.size() && std::fflush(file) == 0;
  const int error = errno;
  if (std::fclose(file) != 0 || !written) fail(std::strerror(written ? errno : error));
  std::error_code ec;
  std::filesystem::rename(partial, path, ec);
  if (ec) fail(ec.message());
}

}  // namespace nas
