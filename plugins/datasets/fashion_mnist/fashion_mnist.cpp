// dataset/fashion_mnist: Fashion-MNIST from its IDX files, gzipped or not. The default root is where
// Debian's dataset-fashion-mnist package installs them, so it needs no download.
#include <zlib.h>

#include <filesystem>

#include <torch/torch.h>

#include "nas/dataset.hpp"
#include "nas/options.hpp"
#include "nas/plugin.hpp"

namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kClassNames{"t-shirt/top", "trouser", "pullover", "dress", "coat",
                                           "sandal",      "shirt",   "sneaker",  "bag",   "ankle boot"};

// The whole file, decompressed if it is gzipped (zlib reads plain files as they are).
std::vector<std::uint8_t> read_maybe_gzipped(const fs::path& file) {
  gzFile in = gzopen(file.c_str(), "rb");
  if (!in) throw nas::UsageError(fmt::format("dataset/fashion_mnist: cannot open '{}'", file.string()));
  std::vector<std::uint8_t> bytes;
  std::uint8_t buffer[1 << 16];
  for (int n; (n = gzread(in, buffer, sizeof buffer)) > 0;) bytes.insert(bytes.end(), buffer, buffer + n);
  int error = 0;
  std::string message = gzerror(in, &error);
  gzclose(in);
  if (error != Z_OK)  // Z_BUF_ERROR: the gzip stream ended early
    throw nas::UsageError(fmt::format("dataset/fashion_mnist: '{}' is corrupt or truncated: {}", file.string(), message));
  return bytes;
}

std::uint32_t big_endian(const std::vector<std::uint8_t>& b, std::size_t at) {
  return (std::uint32_t{b[at]} << 24) | (std::uint32_t{b[at + 1]} << 16) | (std::uint32_t{b[at + 2]} << 8) | b[at + 3];
}

// The IDX file `stem` under root, gzipped or not.
fs::path find_file(const fs::path& root, const std::string& stem) {
  for (const fs::path& candidate : {root / stem, root / (stem + ".gz")})
    if (fs::exists(candidate)) return candidate;
  throw nas::UsageError(fmt::format("dataset/fashion_mnist: neither '{0}' nor '{0}.gz' exists (install Debian's "
                                    "dataset-fashion-mnist, or set 'root')", (root / stem).string()));
}

class FashionMnist final : public nas::Dataset {
 public:
  FashionMnist(const fs::path& root, nas::Split split) {
    std::string prefix = split == nas::Split::train ? "train" : "t10k";
    fs::path images_file = find_file(root, prefix + "-images-idx3-ubyte");
    fs::path labels_file = find_file(root, prefix + "-labels-idx1-ubyte");
    std::vector<std::uint8_t> images = read_maybe_gzipped(images_file);
    std::vector<std::uint8_t> labels = read_maybe_gzipped(labels_file);

    auto check_header = [](const fs::path& file, const std::vector<std::uint8_t>& b, std::uint32_t magic, std::size_t header) {
      if (b.size() < header)
        throw nas::UsageError(fmt::format("dataset/fashion_mnist: '{}' has {} bytes, expected at least a {}-byte IDX header",
                                          file.string(), b.size(), header));
      if (big_endian(b, 0) != magic)
        throw nas::UsageError(fmt::format("dataset/fashion_mnist: '{}' starts with magic 0x{:08x}, expected 0x{:08x}",
                                          file.string(), big_endian(b, 0), magic));
    };
    check_header(images_file, images, 0x00000803, 16);
    check_header(labels_file, labels, 0x00000801, 8);
    count_ = big_endian(images, 4);
    height_ = big_endian(images, 8);
    width_ = big_endian(images, 12);
    if (big_endian(labels, 4) != static_cast<std::uint32_t>(count_))
      throw nas::UsageError(fmt::format("dataset/fashion_mnist: '{}' has {} labels for the {} images of '{}'",
                                        labels_file.string(), big_endian(labels, 4), count_, images_file.string()));
    // Counts and sizes come from the file (up to 2^32 each): their product is checked in 128 bits.
    const unsigned __int128 image_bytes = static_cast<unsigned __int128>(count_) * static_cast<std::uint64_t>(height_) *
                                          static_cast<std::uint64_t>(width_);
    if (images.size() - 16 != image_bytes)
      throw nas::UsageError(fmt::format("dataset/fashion_mnist: '{}' is truncated or too long: {} bytes, expected "
                                        "16 + {} x {} x {} = {}", images_file.string(), images.size(), count_, height_,
                                        width_, static_cast<double>(16 + image_bytes)));
    if (labels.size() != 8 + static_cast<std::size_t>(count_))
      throw nas::UsageError(fmt::format("dataset/fashion_mnist: '{}' is truncated or too long: {} bytes, expected 8 + {}",
                                        labels_file.string(), labels.size(), count_));
    for (std::int64_t i = 0; i < count_; ++i)
      if (labels[8 + i] >= kClassNames.size())
        throw nas::UsageError(fmt::format("dataset/fashion_mnist: '{}': label {} at byte offset {} (record {}), expected 0..9",
                                          labels_file.string(), labels[8 + i], 8 + i, i));
    images_ = torch::from_blob(images.data() + 16, {count_, 1, height_, width_}, torch::kUInt8).clone();
    labels_ = torch::from_blob(labels.data() + 8, {count_}, torch::kUInt8).to(torch::kInt64);
  }

  nas::DatasetInfo info() const override { return {1, height_, width_, kClassNames, {0.2860}, {0.3530}}; }
  std::int64_t size() const override { return count_; }
  nas::Example get(std::int64_t index) const override {
    return {images_[index].to(torch::kFloat32).div_(255), label(index)};
  }
  std::int64_t label(std::int64_t index) const override { return labels_.data_ptr<std::int64_t>()[index]; }

 private:
  std::int64_t count_ = 0, height_ = 0, width_ = 0;
  at::Tensor images_, labels_;
};

struct Options {
  std::string root = "/usr/share/datasets/fashion-mnist";

  static auto fields() {
    return std::tuple{nas::field("root", &Options::root).path().help("folder of the IDX files")};
  }
};

void register_all(nas::Registrar& r) {
  r.add<nas::Dataset>(
      "fashion_mnist", "Fashion-MNIST (28x28 grayscale, 10 classes) from its IDX files, gzipped or not",
      nas::schema_of<Options>(), [](const nas::Params& p, const nas::Context&, const nas::DatasetArgs& args) {
        return std::make_unique<FashionMnist>(nas::options_from<Options>(p).root, args.split);
      });
}

}  // namespace

NAS_PLUGIN("fashion_mnist", "0.1.0", register_all)
