// The plugin loader: a good plugin of each kind loads; each broken plugin fails with its own message
// naming its file; search-path order.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nas/abi.h"
#include "nas/loader.hpp"
#include "nas/log.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {

// Loads exactly one test case folder and returns its registry.
nas::Registry load_case(const std::string& folder) {
  nas::Registry registry;
  nas::load_plugins(registry, {fs::path(nas::test::paths::test_plugins) / folder});
  return registry;
}

struct BrokenCase {
  std::string folder;
  std::string file;
  std::string message;
  friend void PrintTo(const BrokenCase& c, std::ostream* os) { *os << c.folder; }
};

class BrokenPluginTest : public ::testing::TestWithParam<BrokenCase> {};

TEST_P(BrokenPluginTest, IsRejectedWithItsOwnMessageNamingTheFile) {
  const BrokenCase& c = GetParam();
  nas::Registry registry = load_case(c.folder);
  ASSERT_EQ(registry.broken().size(), 1u);
  EXPECT_EQ(registry.broken()[0].file.filename(), c.file);
  EXPECT_THAT(registry.broken()[0].error, HasSubstr(c.message));
  EXPECT_TRUE(registry.entries().empty()) << "a broken plugin must register nothing";
}

INSTANTIATE_TEST_SUITE_P(
    Loader, BrokenPluginTest,
    ::testing::Values(
        BrokenCase{"no_entry", "libnas_test_no_entry.so", "has no entry symbol 'nas_plugin_entry'"},
        BrokenCase{"abi_major", "libnas_test_abi_major.so", "ABI 3.0, host supports 2.x"},
        BrokenCase{"abi_minor", "libnas_test_abi_minor.so",
                   fmt::format("ABI 2.{} is newer than the host's 2.{}", NAS_ABI_MINOR + 1, NAS_ABI_MINOR)},
        BrokenCase{"fingerprint", "libnas_test_fingerprint.so",
                   std::string("built as 'gcc1;cxx11abi=0;torch=0.0.0', host is '") + nas::host_fingerprint() + "'"},
        BrokenCase{"throws", "libnas_test_throws.so", "registration failed: boom while registering"},
        BrokenCase{"registers_nothing", "libnas_test_registers_nothing.so", "registered no factories"},
        BrokenCase{"registers_twice", "libnas_test_registers_twice.so",
                   "registration failed: registers 'regularizer/twice' twice"},
        BrokenCase{"not_a_library", "libnas_test_not_a_library.so", "cannot be loaded: "}),
    [](const auto& info) { return info.param.folder; });

TEST(Loader, DuplicateKeyNamesBothFiles) {
  nas::Registry registry = load_case("duplicate");
  ASSERT_NE(registry.find("regularizer/shared_name"), nullptr);
  EXPECT_EQ(registry.find("regularizer/shared_name")->plugin->file.filename(), "libnas_test_duplicate_a.so");
  ASSERT_EQ(registry.broken().size(), 1u);
  EXPECT_EQ(registry.broken()[0].file.filename(), "libnas_test_duplicate_b.so");
  EXPECT_THAT(registry.broken()[0].error, HasSubstr("'regularizer/shared_name' is already registered by"));
  EXPECT_THAT(registry.broken()[0].error, HasSubstr("libnas_test_duplicate_a.so"));
}

TEST(Loader, GoodPluginsOfEveryKindLoad) {
  nas::Registry registry;
  nas::load_plugins(registry, {nas::test::paths::plugins});
  EXPECT_TRUE(registry.broken().empty());
  for (const char* key : {"op/sep_conv_3x3", "controller/random", "dataset/synthetic", "regularizer/cutout"}) {
    const nas::Entry* entry = registry.find(key);
    ASSERT_NE(entry, nullptr) << key;
    EXPECT_FALSE(entry->doc.empty());
    EXPECT_EQ(entry->plugin->version, "0.1.0");
    EXPECT_TRUE(fs::exists(entry->plugin->file));
  }
}

TEST(Loader, LoadingTheSameFolderTwiceIsReportedNotCrashing) {
  nas::Registry registry;
  nas::load_plugins(registry, {nas::test::paths::plugins});
  std::size_t loaded = registry.entries().size();
  nas::load_plugins(registry, {nas::test::paths::plugins});
  EXPECT_EQ(registry.entries().size(), loaded);
  EXPECT_EQ(registry.broken().size(), registry.plugins().size());
  EXPECT_THAT(registry.broken()[0].error, HasSubstr("is already registered by"));
}

// A plugin is code that runs as the user: a file or folder others can write to is refused, naming it.
TEST(Loader, APluginOthersCanReplaceIsRefused) {
  const fs::path dir = fs::temp_directory_path() / fmt::format("nas_trust_{}", getpid());
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                           fs::perms::others_read | fs::perms::others_exec);
  const fs::path file = dir / "libnas_test_example_op.so";
  fs::copy_file(fs::path(nas::test::paths::test_plugins) / "example_op" / "libnas_test_example_op.so", file);
  auto load = [&] {
    nas::Registry registry;
    nas::load_plugins(registry, {dir});
    return registry;
  };
  EXPECT_TRUE(load().broken().empty()) << load().broken()[0].error;

  fs::permissions(file, fs::perms::others_write, fs::perm_options::add);
  nas::Registry writable_file = load();
  ASSERT_EQ(writable_file.broken().size(), 1u);
  EXPECT_THAT(writable_file.broken()[0].error, HasSubstr("writable by every user"));
  EXPECT_THAT(writable_file.broken()[0].error, HasSubstr(file.string()));
  EXPECT_TRUE(writable_file.entries().empty()) << "refused before any of its code ran";

  fs::permissions(file, fs::perms::others_write, fs::perm_options::remove);
  fs::permissions(dir, fs::perms::others_write, fs::perm_options::add);
  nas::Registry writable_dir = load();
  ASSERT_EQ(writable_dir.broken().size(), 1u);
  EXPECT_THAT(writable_dir.broken()[0].error, HasSubstr("the folder '" + dir.string() + "' is writable by every user"));
  fs::remove_all(dir);
}

TEST(Loader, FindsPluginFilesSortedFolderByFolder) {
  std::vector<fs::path> files = nas::find_plugin_files(
      {fs::path(nas::test::paths::test_plugins) / "duplicate", fs::path(nas::test::paths::test_plugins) / "abi_major"});
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0].filename(), "libnas_test_duplicate_a.so");
  EXPECT_EQ(files[1].filename(), "libnas_test_duplicate_b.so");
  EXPECT_EQ(files[2].filename(), "libnas_test_abi_major.so");
}

class SearchPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* old = std::getenv("NAS_PLUGIN_PATH")) saved_ = old;
  }
  void TearDown() override {
    if (saved_) setenv("NAS_PLUGIN_PATH", saved_->c_str(), 1);
    else unsetenv("NAS_PLUGIN_PATH");
  }
  std::optional<std::string> saved_;
  nas::Logger log_{nas::Logger::Level::error};
};

TEST_F(SearchPathTest, ExplicitThenEnvironmentThenDefaultWithoutDuplicates) {
  fs::path root = nas::test::paths::test_plugins;
  std::string env = (root / "throws").string() + "::" + (root / "abi_major").string();
  setenv("NAS_PLUGIN_PATH", env.c_str(), 1);
  std::vector<fs::path> dirs =
      nas::plugin_search_path({root / "no_entry", root / "abi_major", root / "no_entry"}, false, log_);
  ASSERT_EQ(dirs.size(), 3u);
  EXPECT_EQ(dirs[0], root / "no_entry");
  EXPECT_EQ(dirs[1], root / "abi_major");
  EXPECT_EQ(dirs[2], root / "throws");
}

TEST_F(SearchPathTest, MissingExplicitFolderIsAUsageError) {
  unsetenv("NAS_PLUGIN_PATH");
  EXPECT_THROW(nas::plugin_search_path({"/nonexistent/plugins"}, false, log_), nas::UsageError);
}

TEST_F(SearchPathTest, MissingEnvironmentFolderIsSkipped) {
  setenv("NAS_PLUGIN_PATH", "/nonexistent/plugins", 1);
  EXPECT_TRUE(nas::plugin_search_path({}, false, log_).empty());
}

}  // namespace
