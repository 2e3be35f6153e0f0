// What the tests share: the shipped plugins loaded once, parameters with defaults, scratch folders.
#pragma once

#include <png.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <turbojpeg.h>

#include "nas/dataset.hpp"
#include "nas/loader.hpp"
#include "nas/registry.hpp"
#include "nas/regularizer.hpp"

namespace nas::test {

/// Where the tests find everything (tests/CMakeLists.txt writes them into the generated
/// test_paths.cpp): nas-host, the shipped plugins' folder, the test plugins' root, tests/configs,
/// and the source tree.
namespace paths {
extern const char* const host;
extern const char* const plugins;
extern const char* const test_plugins;
extern const char* const configs;
extern const char* const source;
}  // namespace paths

/// The shipped plugins and the example third-party op, loaded once for the test process (plugins are
/// never unloaded, so neither is this).
inline const Registry& plugins() {
  static const Registry* registry = [] {
    auto* r = new Registry();
    load_plugins(*r, {nas::test::paths::plugins, std::filesystem::path(nas::test::paths::test_plugins) / "example_op"});
    return r;
  }();
  return *registry;
}

/// The parameters of plugin `key` as a config would give them: its defaults, then `changes`.
inline Params params(const std::string& key, std::map<std::string, Value, std::less<>> changes = {}) {
  const Entry* entry = plugins().find(key);
  if (!entry) throw Error(fmt::format("no plugin '{}'", key));
  for (const ParamSpec& spec : entry->schema)
    if (spec.default_value) changes.emplace(spec.name, *spec.default_value);
  return Params(std::move(changes));
}

/// The model parameters of space `key` (its ModelFamily), as a config would give them: the preset's
/// values if `preset` names one, the defaults for the rest, then `changes`.
inline Params model(const std::string& key, std::map<std::string, Value, std::less<>> changes = {},
                    const std::string& preset = "") {
  const Entry* entry = plugins().find(key);
  if (!entry) throw Error(fmt::format("no plugin '{}'", key));
  if (!preset.empty())
    for (const auto& [name, value] : entry->models.presets.at(preset)) changes.emplace(name, value);
  for (const ParamSpec& spec : entry->models.schema)
    if (spec.default_value) changes.emplace(spec.name, *spec.default_value);
  return Params(std::move(changes));
}

/// The dataset plugin `name` with its defaults and `changes`, for one split.
inline std::unique_ptr<Dataset> dataset(const Context& context, const std::string& name,
                                        std::map<std::string, Value, std::less<>> changes, Split split = Split::train) {
  return plugins().create<Dataset>(name, params("dataset/" + name, std::move(changes)), context, {split});
}

inline std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct HostResult {
  int code;
  std::string output;  // stdout and stderr together
};

/// Runs nas-host in `dir` as a user would, with NAS_PLUGIN_PATH unset so only what `args` say is loaded.
inline HostResult run_host(const std::filesystem::path& dir, const std::string& args) {
  std::string command = fmt::format("cd '{}' && env -u NAS_PLUGIN_PATH '{}' {} 2>&1", dir.string(), nas::test::paths::host, args);
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  std::array<char, 4096> buffer;
  while (std::size_t n = fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

/// Starts nas-host in `dir` in the background, as run_host runs it (with the variables `env`, e.g.
/// "RANK=1 WORLD_SIZE=2"), its output going to dir/`log`; returns its process id (for kill -9 tests).
inline pid_t start_host(const std::filesystem::path& dir, const std::string& args, const std::string& log,
                        const std::string& env = "") {
  std::string command = fmt::format("cd '{}' && env -u NAS_PLUGIN_PATH {} '{}' {} >'{}' 2>&1 & echo $!", dir.string(),
                                    env, nas::test::paths::host, args, log);
  FILE* pipe = popen(command.c_str(), "r");
  pid_t pid = 0;
  const bool started = fscanf(pipe, "%d", &pid) == 1;
  pclose(pipe);
  if (!started) throw std::runtime_error("could not start: " + command);
  return pid;
}

/// Whether `pid` runs: it exists and is not a zombie (a killed child its parent has not waited for).
inline bool running(pid_t pid) {
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  std::string line;
  if (!std::getline(stat, line)) return false;
  const std::size_t end = line.rfind(')');
  return end != std::string::npos && end + 2 < line.size() && line[end + 2] != 'Z';
}

/// The processes `pid` started (nas-host --nproc: its workers), in the order it started them.
inline std::vector<pid_t> children(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/task/{}/children", pid, pid));
  std::vector<pid_t> out;
  for (pid_t child; in >> child;) out.push_back(child);
  return out;
}

/// Waits until `pid` is gone (started by start_host, it is not this process's child to wait for).
inline void wait_until_gone(pid_t pid) {
  while (running(pid)) usleep(2000);
}

/// An RGB image (`pixels`: height x width x 3 bytes), written as JPEG (quality 95) or PNG by the
/// file's extension, with the libraries dataset/image_folder reads with.
inline void write_pixels(const std::filesystem::path& file, int width, int height, std::vector<std::uint8_t> pixels) {
  ASSERT_EQ(pixels.size(), static_cast<std::size_t>(width * height * 3));
  std::filesystem::create_directories(file.parent_path());
  if (file.extension() == ".png") {
    png_image png{};
    png.version = PNG_IMAGE_VERSION;
    png.width = static_cast<png_uint_32>(width);
    png.height = static_cast<png_uint_32>(height);
    png.format = PNG_FORMAT_RGB;
    ASSERT_TRUE(png_image_write_to_file(&png, file.c_str(), 0, pixels.data(), 0, nullptr));
    return;
  }
  tjhandle tj = tjInitCompress();
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  ASSERT_EQ(tjCompress2(tj, pixels.data(), width, 0, height, TJPF_RGB, &jpeg, &size, TJSAMP_444, 95, 0), 0);
  std::ofstream(file, std::ios::binary).write(reinterpret_cast<const char*>(jpeg), static_cast<std::streamsize>(size));
  tjFree(jpeg);
  tjDestroy(tj);
}

/// A constant-colour image.
inline void write_image(const std::filesystem::path& file, int width, int height, std::array<std::uint8_t, 3> rgb) {
  std::vector<std::uint8_t> pixels;
  for (int i = 0; i < width * height; ++i) pixels.insert(pixels.end(), rgb.begin(), rgb.end());
  write_pixels(file, width, height, std::move(pixels));
}

/// A fresh folder for the running test, removed when it ends.
class ScratchDir {
 public:
  ScratchDir()
      : path_(std::filesystem::temp_directory_path() /
              fmt::format("nas_test_{}_{}_{}", getpid(), ::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name(),
                          ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// Stands in for kill -9 in a training: throws before the given step.
class KillAt final : public Regularizer {
 public:
  explicit KillAt(std::int64_t step) : step_(step) {}
  void on_step(Network&, const TrainingStep& s) override {
    if (s.step == step_) throw std::runtime_error("killed");
  }

 private:
  std::int64_t step_;
};

}  // namespace nas::test
