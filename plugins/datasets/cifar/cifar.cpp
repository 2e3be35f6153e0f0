// dataset/cifar10 and dataset/cifar100: the official binary formats. A CIFAR-10 record is a label
// byte and 3072 pixel bytes (1024 R, 1024 G, 1024 B, row-major); CIFAR-100 has a coarse and a fine
// label byte before the pixels (the fine label is used).
#include <filesystem>
#include <fstream>

#include <torch/torch.h>

#include "nas/dataset.hpp"
#include "nas/options.hpp"
#include "nas/plugin.hpp"

namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kPixels = 3 * 32 * 32;

struct Format {
  const char* key;
  std::vector<std::string> train_files, test_files;
  std::int64_t label_bytes;  // bytes before the pixels; the last one is the label used
  std::int64_t classes;
  const char* names_file;
  std::vector<double> mean, std;  // of the training images
};

const Format kCifar10{"dataset/cifar10",
                      {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"},
                      {"test_batch.bin"}, 1, 10, "batches.meta.txt", {0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616}};
const Format kCifar100{"dataset/cifar100", {"train.bin"}, {"test.bin"}, 2, 100, "fine_label_names.txt",
                       {0.5071, 0.4865, 0.4409}, {0.2673, 0.2564, 0.2762}};

class Cifar final : public nas::Dataset {
 public:
  Cifar(const Format& format, const fs::path& root, nas::Split split) : format_(format) {
    const std::int64_t record = format.label_bytes + kPixels;
    std::vector<std::uint8_t> pixels;
    std::vector<std::int64_t> labels;
    for (const std::string& name : split == nas::Split::train ? format.train_files : format.test_files) {
      fs::path file = root / name;
      std::ifstream in(file, std::ios::binary);
      if (!in) throw nas::UsageError(fmt::format("{}: cannot open '{}'", format.key, file.string()));
      std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      const auto size = static_cast<std::int64_t>(bytes.size());
      if (size == 0 || size % record != 0)
        throw nas::UsageError(fmt::format("{}: '{}' has {} bytes, not a whole number of {}-byte records (the record at "
                                          "byte offset {} is truncated)", format.key, file.string(), size, record,
                                          size - size % record));
      for (std::int64_t at = 0; at < size; at += record) {
        std::int64_t label = bytes[at + format.label_bytes - 1];
        if (label >= format.classes)
          throw nas::UsageError(fmt::format("{}: '{}': label {} at byte offset {}, expected 0..{}", format.key,
                                            file.string(), label, at + format.label_bytes - 1, format.classes - 1));
        labels.push_back(label);
        pixels.insert(pixels.end(), bytes.begin() + at + format.label_bytes, bytes.begin() + at + record);
      }
    }
    const auto count = static_cast<std::int64_t>(labels.size());
    images_ = torch::from_blob(pixels.data(), {count, 3, 32, 32}, torch::kUInt8).clone();
    labels_ = torch::tensor(labels, torch::kInt64);
    std::ifstream names(root / format.names_file);
    for (std::string line; std::getline(names, line);)
      if (!line.empty()) class_names_.push_back(line);
    if (static_cast<std::int64_t>(class_names_.size()) != format.classes) {
      class_names_.clear();
      for (std::int64_t c = 0; c < format.classes; ++c) class_names_.push_back(std::to_string(c));
    }
  }

  nas::DatasetInfo info() const override { return {3, 32, 32, class_names_, format_.mean, format_.std}; }
  std::int64_t size() const override { return labels_.size(0); }
  nas::Example get(std::int64_t index) const override {
    return {images_[index].to(torch::kFloat32).div_(255), label(index)};
  }
  std::int64_t label(std::int64_t index) const override { return labels_.data_ptr<std::int64_t>()[index]; }

 private:
  const Format& format_;
  at::Tensor images_, labels_;
  std::vector<std::string> class_names_;
};

struct Options {
  std::string root;

  static auto fields() {
    return std::tuple{nas::field("root", &Options::root).path().required().help("folder of the .bin files")};
  }
};

void register_all(nas::Registrar& r) {
  for (const Format* format : {&kCifar10, &kCifar100}) {
    std::string name = std::string(format->key).substr(std::string("dataset/").size());
    r.add<nas::Dataset>(name, fmt::format("{} in the official binary format ({} classes, 32x32 RGB)", name, format->classes),
                        nas::schema_of<Options>(),
                        [format](const nas::Params& p, const nas::Context&, const nas::DatasetArgs& args) {
                          return std::make_unique<Cifar>(*format, nas::options_from<Options>(p).root, args.split);
                        });
  }
}

}  // namespace

NAS_PLUGIN("cifar", "0.1.0", register_all)
