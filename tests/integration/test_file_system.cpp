// A run whose folder is on a read-only or a full file system: a clear error naming the path, exit 1,
// and what the store holds kept (a small tmpfs; skipped where this machine does not allow mounting).
#include <sys/mount.h>

#include <cerrno>
#include <cstring>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nas/store.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using ::testing::AnyOf;
using ::testing::HasSubstr;

namespace {

class FileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(mount_);
    if (::mount("tmpfs", mount_.c_str(), "tmpfs", 0, "size=16m") != 0)
      GTEST_SKIP() << "cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): " << std::strerror(errno);
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) ::umount2(mount_.c_str(), MNT_DETACH);
  }
  void make_read_only() {
    ASSERT_EQ(::mount("tmpfs", mount_.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, nullptr), 0) << std::strerror(errno);
  }
  std::string search(int evaluations) const {
    return fmt::format("'{}/search_synthetic.yaml' search.evaluations={} search.batch=10", nas::test::paths::configs, evaluations);
  }

  nas::test::ScratchDir scratch_;
  const fs::path& dir_ = scratch_.path();
  const fs::path mount_ = dir_ / "disk";
  bool mounted_ = false;
};

TEST_F(FileSystemTest, AReadOnlyRunFolderIsAClearErrorAndTheStoreStaysAsItWas) {
  ASSERT_EQ(nas::test::run_host(dir_, fmt::format("run {} --run-dir disk/run", search(20))).code, 0);
  const std::string before = nas::test::read_text(mount_ / "run" / "search.sqlite");
  make_read_only();

  const auto resumed = nas::test::run_host(dir_, "run --resume disk/run");
  EXPECT_EQ(resumed.code, 1) << resumed.output;
  EXPECT_THAT(resumed.output, HasSubstr("disk/run/"));
  EXPECT_THAT(resumed.output, HasSubstr("Read-only file system"));
  EXPECT_EQ(nas::test::read_text(mount_ / "run" / "search.sqlite"), before);

  const auto fresh = nas::test::run_host(dir_, fmt::format("run {} --run-dir disk/new", search(20)));
  EXPECT_EQ(fresh.code, 1) << fresh.output;
  EXPECT_THAT(fresh.output, HasSubstr("disk/new"));
  EXPECT_THAT(fresh.output, HasSubstr("Read-only file system"));
}

TEST_F(FileSystemTest, AFullDiskStopsTheRunWithAClearErrorAndResumeFinishesItOnceThereIsRoom) {
  // Almost full: a file takes all but 200 kB, less than the search's store and log need.
  const auto space = fs::space(mount_);
  ASSERT_EQ(std::system(fmt::format("head -c {} /dev/zero > '{}'", space.available - 200 * 1024,
                                    (mount_ / "ballast").string()).c_str()), 0);
  const auto full = nas::test::run_host(dir_, fmt::format("run {} --run-dir disk/run", search(2000)));
  EXPECT_EQ(full.code, 1) << full.output;
  EXPECT_THAT(full.output, HasSubstr("disk/run/"));
  EXPECT_THAT(full.output, AnyOf(HasSubstr("No space left on device"), HasSubstr("disk is full")));
  EXPECT_THAT(full.output, ::testing::Not(HasSubstr("terminate called")));
  const auto kept = nas::SearchStore(mount_ / "run" / "search.sqlite").evaluations();
  ASSERT_FALSE(kept.empty()) << "it stopped before storing anything";
  ASSERT_LT(kept.size(), 2000u) << "the disk was not full enough to stop it";

  fs::remove(mount_ / "ballast");
  const auto resumed = nas::test::run_host(dir_, "run --resume disk/run");
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  const auto after = nas::SearchStore(mount_ / "run" / "search.sqlite").evaluations();
  ASSERT_EQ(after.size(), 2000u);
  for (const auto& e : kept)  // nothing computed before the disk filled up is lost or changed
    if (e.status == nas::EvaluationStatus::ok) EXPECT_EQ(after[static_cast<std::size_t>(e.index)].reward, e.reward);
  for (const auto& e : after) EXPECT_NE(e.status, nas::EvaluationStatus::pending) << "#" << e.index;
}

}  // namespace
