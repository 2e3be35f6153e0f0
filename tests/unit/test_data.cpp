// The data pipeline and the dataset plugins: splits, loaders, real data, and every bad-data case.
#include <zlib.h>

#include <array>
#include <fstream>
#include <set>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nas/data.hpp"
#include "nas/loader.hpp"
#include "nas/log.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {

const fs::path kFashionMnist = "/usr/share/datasets/fashion-mnist";
const fs::path kCifar10 = fs::path(nas::test::paths::source) / "../shared/data/cifar10/cifar-10-batches-bin";

class DataTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { registry_ = &nas::test::plugins(); }

  std::unique_ptr<nas::Dataset> dataset(const std::string& name, std::map<std::string, nas::Value, std::less<>> params,
                                        nas::Split split = nas::Split::train) {
    return nas::test::dataset(context_, name, std::move(params), split);
  }
  std::unique_ptr<nas::Dataset> synthetic(std::int64_t size = 200) {
    return dataset("synthetic", {{"size", size}, {"height", std::int64_t{6}}, {"width", std::int64_t{5}},
                                 {"classes", std::int64_t{4}}});
  }
  std::string error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const nas::UsageError& e) {
      return e.what();
    }
    return "no error";
  }

  static const nas::Registry* registry_;
  nas::Logger log_{nas::Logger::Level::error};
  nas::Context context_{.log = log_, .seed = 5, .registry = registry_};
  nas::test::ScratchDir scratch_;
  const fs::path& dir_ = scratch_.path();
};
const nas::Registry* DataTest::registry_ = nullptr;

TEST_F(DataTest, HoldOutIsDisjointCompleteAndChosenBySeed) {
  auto d = synthetic(100);
  nas::SplitIndices a = nas::hold_out(*d, 30, 1), b = nas::hold_out(*d, 30, 1), c = nas::hold_out(*d, 30, 2);
  EXPECT_EQ(a.validation.size(), 30u);
  EXPECT_EQ(a.train.size(), 70u);
  std::set<std::int64_t> all(a.train.begin(), a.train.end());
  all.insert(a.validation.begin(), a.validation.end());
  EXPECT_EQ(all.size(), 100u);
  EXPECT_EQ(a.validation, b.validation);
  EXPECT_NE(a.validation, c.validation);
  EXPECT_THROW(nas::hold_out(*d, 100, 1), nas::UsageError);
}

TEST_F(DataTest, FirstPerClassTakesTheFirstKOfEachClass) {
  auto d = synthetic(200);
  std::vector<std::int64_t> all(200);
  std::iota(all.begin(), all.end(), 0);
  std::vector<std::int64_t> subset = nas::first_per_class(*d, all, 3);
  ASSERT_EQ(subset.size(), 12u);
  std::map<std::int64_t, int> per_class;
  for (std::int64_t i : subset) ++per_class[d->label(i)];
  for (const auto& [label, count] : per_class) EXPECT_EQ(count, 3) << label;
  EXPECT_TRUE(std::is_sorted(subset.begin(), subset.end()));
}

TEST_F(DataTest, LoaderBatchesAreAFunctionOfSeedEpochAndIndexOnly) {
  auto d = synthetic(100);
  std::vector<std::int64_t> indices(100);
  std::iota(indices.begin(), indices.end(), 0);
  nas::LoaderOptions o;
  o.batch_size = 16;
  o.train = true;
  o.augmentation = {2, true};
  o.mean = {0.5, 0.5, 0.5};
  o.std = {0.25, 0.25, 0.25};
  nas::LoaderOptions inline_options = o;
  inline_options.workers = 0;
  nas::Loader threaded(*d, indices, o, 9), serial(*d, indices, inline_options, 9);
  EXPECT_EQ(threaded.batches_per_epoch(), 6);  // the partial batch is dropped in training
  std::vector<torch::Tensor> seen;
  threaded.for_each(1, 0, [&](std::int64_t b, nas::Batch& batch) {
    nas::Batch again = serial.batch(1, b);
    EXPECT_TRUE(torch::equal(batch.images, again.images)) << "batch " << b;
    EXPECT_TRUE(torch::equal(batch.labels, again.labels));
    EXPECT_EQ(batch.images.sizes(), (std::vector<std::int64_t>{16, 3, 6, 5}));
    seen.push_back(batch.labels);
    return true;
  });
  EXPECT_EQ(seen.size(), 6u);
  EXPECT_FALSE(torch::equal(threaded.batch(1, 0).images, threaded.batch(2, 0).images)) << "each epoch reshuffles";
  nas::Loader other_seed(*d, indices, o, 10);
  EXPECT_FALSE(torch::equal(threaded.batch(1, 0).images, other_seed.batch(1, 0).images));
  // Resuming mid-epoch reads the same batches.
  std::int64_t first = -1;
  threaded.for_each(1, 4, [&](std::int64_t b, nas::Batch& batch) {
    if (first < 0) first = b;
    EXPECT_TRUE(torch::equal(batch.images, serial.batch(1, b).images));
    return true;
  });
  EXPECT_EQ(first, 4);
}

TEST_F(DataTest, EvaluationLoaderReadsEveryExampleOnceUnaugmented) {
  auto d = synthetic(50);
  std::vector<std::int64_t> indices(50);
  std::iota(indices.begin(), indices.end(), 0);
  nas::LoaderOptions o;
  o.batch_size = 16;
  o.augmentation = {4, true};  // ignored: not training
  nas::Loader loader(*d, indices, o, 1);
  EXPECT_EQ(loader.batches_per_epoch(), 4);
  std::int64_t count = 0;
  loader.for_each(0, 0, [&](std::int64_t, nas::Batch& batch) {
    for (std::int64_t i = 0; i < batch.labels.size(0); ++i, ++count)
      EXPECT_TRUE(torch::equal(batch.images[i], d->get(count).image));
    return true;
  });
  EXPECT_EQ(count, 50);
}

// Data-parallel shares: each shard's training batch is its slice of the unsharded global batch of
// the same batch size (augmentation included; 24 = 8 + 8 + 8, 25 = 8 + 8 + 9), so any number of
// shards takes the same steps; evaluation shards take turns and together read every example once.
TEST_F(DataTest, ShardsSplitEveryGlobalBatchAndTheEvaluationSet) {
  auto d = synthetic(100);
  std::vector<std::int64_t> indices(100);
  std::iota(indices.begin(), indices.end(), 0);
  nas::LoaderOptions o;
  o.train = true;
  o.augmentation = {2, true};
  for (const std::int64_t batch : {24, 25}) {
    o.batch_size = batch;
    o.shard = 0;
    o.shards = 1;
    nas::Loader whole(*d, indices, o, 9);
    o.shards = 3;
    std::vector<nas::Loader> shards;
    for (o.shard = 0; o.shard < 3; ++o.shard) shards.emplace_back(*d, indices, o, 9);
    EXPECT_EQ(whole.batches_per_epoch(), 4);
    for (const nas::Loader& shard : shards) EXPECT_EQ(shard.batches_per_epoch(), 4);
    for (std::int64_t b = 0; b < 4; ++b) {
      nas::Batch global = whole.batch(2, b);
      for (std::int64_t s = 0, begin = 0; s < 3; ++s) {
        nas::Batch part = shards[static_cast<std::size_t>(s)].batch(2, b);
        const std::int64_t size = s < 2 ? 8 : batch - 16;
        ASSERT_EQ(part.labels.size(0), size) << "batch " << b << " shard " << s;
        EXPECT_TRUE(torch::equal(part.images, global.images.narrow(0, begin, size))) << "batch " << b << " shard " << s;
        EXPECT_TRUE(torch::equal(part.labels, global.labels.narrow(0, begin, size)));
        begin += size;
      }
    }
  }
  o.batch_size = 2;  // fewer examples than shards
  o.shard = 0;
  EXPECT_THROW(nas::Loader(*d, indices, o, 9), nas::UsageError);

  nas::LoaderOptions e;
  e.batch_size = 16;  // 7 batches, the last of 4
  e.shards = 3;
  std::multiset<std::int64_t> labels, expected;
  std::int64_t batches = 0;
  for (e.shard = 0; e.shard < 3; ++e.shard) {
    nas::Loader shard(*d, indices, e, 1);
    batches += shard.batches_per_epoch();
    shard.for_each(0, 0, [&](std::int64_t, nas::Batch& batch) {
      for (std::int64_t i = 0; i < batch.labels.size(0); ++i) labels.insert(batch.labels[i].item<std::int64_t>());
      return true;
    });
  }
  for (std::int64_t i = 0; i < 100; ++i) expected.insert(d->get(i).label);
  EXPECT_EQ(batches, 7);
  EXPECT_EQ(labels, expected);
  e.shard = 3;
  EXPECT_THROW(nas::Loader(*d, indices, e, 1), nas::UsageError);
}

TEST_F(DataTest, CropAndFlipMoveTheImageWithoutChangingIt) {
  auto d = synthetic(64);
  std::vector<std::int64_t> indices(64);
  std::iota(indices.begin(), indices.end(), 0);
  nas::LoaderOptions o;
  o.batch_size = 64;
  o.train = true;
  o.augmentation = {0, true};
  nas::Loader loader(*d, indices, o, 3);
  nas::Batch batch = loader.batch(0, 0);
  int flipped = 0;
  for (std::int64_t i = 0; i < 64; ++i) {
    // Find the example by its label and pixels: flipped or not, the pixel multiset is the same.
    bool found = false;
    for (std::int64_t j = 0; j < 64 && !found; ++j) {
      torch::Tensor original = d->get(j).image;
      if (torch::equal(batch.images[i], original)) found = true;
      else if (torch::equal(batch.images[i], original.flip({2}))) found = true, ++flipped;
    }
    EXPECT_TRUE(found) << i;
  }
  EXPECT_GT(flipped, 10);
  EXPECT_LT(flipped, 54);
}

TEST_F(DataTest, AWorkersExceptionReachesTheCaller) {
  auto d = synthetic(100);
  std::vector<std::int64_t> indices{0, 1, 2, 3, 100, 5, 6, 7};  // 100 is out of range
  nas::LoaderOptions o;
  o.batch_size = 2;
  nas::Loader loader(*d, indices, o, 1);
  EXPECT_THROW(loader.for_each(0, 0, [](std::int64_t, nas::Batch&) { return true; }), nas::Error);
}

TEST_F(DataTest, FashionMnistFromTheDebianPackage) {
  if (!fs::exists(kFashionMnist)) GTEST_SKIP() << kFashionMnist << " is absent (Debian's dataset-fashion-mnist)";
  auto train = dataset("fashion_mnist", {}), test = dataset("fashion_mnist", {}, nas::Split::test);
  EXPECT_EQ(train->size(), 60000);
  EXPECT_EQ(test->size(), 10000);
  nas::DatasetInfo info = train->info();
  EXPECT_EQ(info.class_names.size(), 10u);
  EXPECT_EQ(info.class_names[9], "ankle boot");
  nas::Example e = train->get(0);
  EXPECT_EQ(e.image.sizes(), (std::vector<std::int64_t>{1, 28, 28}));
  EXPECT_EQ(e.label, 9);  // the first training image is an ankle boot
  EXPECT_LE(e.image.max().item<float>(), 1.0f);
}

TEST_F(DataTest, Cifar10FromSharedData) {
  if (!fs::exists(kCifar10)) GTEST_SKIP() << kCifar10 << " is absent";
  auto train = dataset("cifar10", {{"root", kCifar10.string()}});
  auto test = dataset("cifar10", {{"root", kCifar10.string()}}, nas::Split::test);
  EXPECT_EQ(train->size(), 50000);
  EXPECT_EQ(test->size(), 10000);
  EXPECT_EQ(train->info().class_names[0], "airplane");
  std::vector<int> per_class(10);
  for (std::int64_t i = 0; i < test->size(); ++i) ++per_class[test->label(i)];
  for (int c : per_class) EXPECT_EQ(c, 1000);
}

// --- bad data: every case names the file and what was expected ---

void write(const fs::path& file, const std::vector<std::uint8_t>& bytes) {
  std::ofstream(file, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

std::vector<std::uint8_t> idx(std::uint32_t magic, std::vector<std::uint32_t> dims, std::size_t payload, std::uint8_t value = 1) {
  std::vector<std::uint8_t> b;
  for (std::uint32_t v : std::vector<std::uint32_t>{magic}) dims.insert(dims.begin(), v);
  for (std::uint32_t v : dims)
    for (int shift : {24, 16, 8, 0}) b.push_back(static_cast<std::uint8_t>(v >> shift));
  b.insert(b.end(), payload, value);
  return b;
}

TEST_F(DataTest, FashionMnistBadFiles) {
  auto load = [&] { dataset("fashion_mnist", {{"root", dir_.string()}}); };
  EXPECT_THAT(error_of(load), HasSubstr("neither '" + (dir_ / "train-images-idx3-ubyte").string()));

  write(dir_ / "train-images-idx3-ubyte", idx(0x803, {3, 2, 2}, 12));
  write(dir_ / "train-labels-idx1-ubyte", idx(0x801, {3}, 3));
  EXPECT_NO_THROW(load());

  write(dir_ / "train-images-idx3-ubyte", idx(0x999, {3, 2, 2}, 12));
  EXPECT_THAT(error_of(load), HasSubstr("train-images-idx3-ubyte' starts with magic 0x00000999, expected 0x00000803"));

  write(dir_ / "train-images-idx3-ubyte", idx(0x803, {3, 2, 2}, 10));  // truncated
  EXPECT_THAT(error_of(load), HasSubstr("train-images-idx3-ubyte' is truncated or too long: 26 bytes, expected 16 + 3 x 2 x 2 = 28"));

  // Found by fuzz_idx: sizes whose product overflows 64 bits (undefined behaviour before) are an error too.
  write(dir_ / "train-images-idx3-ubyte", idx(0x803, {3, 0xffffffff, 0xffffffff}, 12));
  EXPECT_THAT(error_of(load), HasSubstr("train-images-idx3-ubyte' is truncated or too long: 28 bytes, expected 16 + 3 x "
                                        "4294967295 x 4294967295"));

  write(dir_ / "train-images-idx3-ubyte", idx(0x803, {3, 2, 2}, 12));
  write(dir_ / "train-labels-idx1-ubyte", idx(0x801, {3}, 3, 12));  // label 12
  EXPECT_THAT(error_of(load), HasSubstr("train-labels-idx1-ubyte': label 12 at byte offset 8 (record 0), expected 0..9"));

  write(dir_ / "train-labels-idx1-ubyte", idx(0x801, {4}, 4));
  EXPECT_THAT(error_of(load), HasSubstr("has 4 labels for the 3 images"));

  // Gzipped files are read the same way, and a corrupt one is named.
  fs::remove(dir_ / "train-labels-idx1-ubyte");
  std::vector<std::uint8_t> labels = idx(0x801, {3}, 3);
  gzFile gz = gzopen((dir_ / "train-labels-idx1-ubyte.gz").c_str(), "wb");
  gzwrite(gz, labels.data(), static_cast<unsigned>(labels.size()));
  gzclose(gz);
  EXPECT_NO_THROW(load());
  std::ifstream in(dir_ / "train-labels-idx1-ubyte.gz", std::ios::binary);
  std::vector<std::uint8_t> gz_bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  gz_bytes.resize(gz_bytes.size() - 6);  // cut off the end
  write(dir_ / "train-labels-idx1-ubyte.gz", gz_bytes);
  EXPECT_THAT(error_of(load), HasSubstr("train-labels-idx1-ubyte.gz' is corrupt or truncated"));
}

TEST_F(DataTest, CifarBadFiles) {
  auto load = [&] { dataset("cifar10", {{"root", dir_.string()}}, nas::Split::test); };
  EXPECT_THAT(error_of(load), HasSubstr("dataset/cifar10: cannot open '" + (dir_ / "test_batch.bin").string() + "'"));
  std::vector<std::uint8_t> records(2 * 3073 + 100, 7);
  write(dir_ / "test_batch.bin", records);
  EXPECT_THAT(error_of(load), HasSubstr("test_batch.bin' has 6246 bytes, not a whole number of 3073-byte records "
                                        "(the record at byte offset 6146 is truncated)"));
  records.resize(2 * 3073);
  records[3073] = 10;  // the second record's label
  write(dir_ / "test_batch.bin", records);
  EXPECT_THAT(error_of(load), HasSubstr("test_batch.bin': label 10 at byte offset 3073, expected 0..9"));
  records[3073] = 9;
  write(dir_ / "test_batch.bin", records);
  EXPECT_NO_THROW(load());
}

TEST_F(DataTest, ImageFolderReadsJpegAndPngPerClassFolder) {
  nas::test::write_image(dir_ / "train/cat/a.jpg", 40, 30, {255, 0, 0});
  nas::test::write_image(dir_ / "train/cat/b.png", 20, 50, {0, 255, 0});
  nas::test::write_image(dir_ / "train/dog/c.JPEG", 64, 64, {0, 0, 255});
  std::ofstream(dir_ / "train/dog/notes.txt") << "not an image";
  auto d = dataset("image_folder", {{"root", dir_.string()}, {"size", std::int64_t{16}}, {"resize", std::int64_t{20}}});
  EXPECT_EQ(d->size(), 3);
  EXPECT_EQ(d->info().class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(d->label(0), 0);
  EXPECT_EQ(d->label(2), 1);
  for (std::int64_t i = 0; i < 3; ++i) EXPECT_EQ(d->get(i).image.sizes(), (std::vector<std::int64_t>{3, 16, 16}));
  torch::Tensor red = d->get(0).image, green = d->get(1).image;
  EXPECT_NEAR(red[0].mean().item<double>(), 1.0, 0.02);
  EXPECT_NEAR(red[1].mean().item<double>(), 0.0, 0.02);
  EXPECT_NEAR(green[1].mean().item<double>(), 1.0, 0.01);  // PNG is lossless
}

TEST_F(DataTest, ImageFolderBadData) {
  auto load = [&] { return dataset("image_folder", {{"root", dir_.string()}, {"size", std::int64_t{16}}}); };
  EXPECT_THAT(error_of([&] { load(); }), HasSubstr("'" + (dir_ / "train").string() + "' is not a folder"));
  fs::create_directories(dir_ / "train/empty");
  EXPECT_THAT(error_of([&] { load(); }), HasSubstr("no .jpg, .jpeg or .png images"));
  std::ofstream(dir_ / "train/empty/broken.jpg") << "this is not a JPEG";
  nas::test::write_image(dir_ / "train/empty/cut.png", 8, 8, {1, 2, 3});
  fs::resize_file(dir_ / "train/empty/cut.png", 40);
  auto d = load();
  EXPECT_THAT(error_of([&] { d->get(0); }), HasSubstr("'" + (dir_ / "train/empty/broken.jpg").string() + "' cannot be decoded: not a JPEG"));
  EXPECT_THAT(error_of([&] { d->get(1); }), HasSubstr("'" + (dir_ / "train/empty/cut.png").string() + "' cannot be decoded"));
}

}  // namespace
