// dataset/image_folder: one folder per class of JPEG or PNG images (the ImageNet layout:
// ROOT/train/<class>/*.jpg and ROOT/val/<class>/*.jpg), decoded with libjpeg-turbo and libpng,
// resized (shorter side) and centre-cropped to a square; the loader adds crops and flips.
#include <png.h>
#include <turbojpeg.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <torch/torch.h>

#include "nas/dataset.hpp"
#include "nas/options.hpp"
#include "nas/plugin.hpp"

namespace fs = std::filesystem;

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool is_image(const fs::path& file) {
  std::string ext = lower(file.extension().string());
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

[[noreturn]] void undecodable(const fs::path& file, const std::string& why) {
  throw nas::UsageError(fmt::format("dataset/image_folder: '{}' cannot be decoded: {}", file.string(), why));
}

// Decodes to uint8 (H, W, 3).
at::Tensor decode_jpeg(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  tjhandle tj = tjInitDecompress();
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(tj, bytes.data(), bytes.size(), &width, &height, &subsampling, &colorspace) != 0) {
    std::string why = tjGetErrorStr2(tj);
    tjDestroy(tj);
    undecodable(file, fmt::format("not a JPEG ({})", why));
  }
  at::Tensor image = torch::empty({height, width, 3}, torch::kUInt8);
  int rc = tjDecompress2(tj, bytes.data(), bytes.size(), image.data_ptr<unsigned char>(), width, 0, height, TJPF_RGB, 0);
  std::string why = rc != 0 ? tjGetErrorStr2(tj) : "";
  bool fatal = rc != 0 && tjGetErrorCode(tj) == TJERR_FATAL;
  tjDestroy(tj);
  if (fatal) undecodable(file, why);  // a warning (e.g. a few bad bytes at the end) still gives the image
  return image;
}

at::Tensor decode_png(const fs::path& file) {
  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&png, file.c_str())) undecodable(file, fmt::format("not a PNG ({})", png.message));
  png.format = PNG_FORMAT_RGB;  // grey and palette images expand, alpha is composited on black
  at::Tensor image = torch::empty({static_cast<std::int64_t>(png.height), static_cast<std::int64_t>(png.width), 3}, torch::kUInt8);
  if (!png_image_finish_read(&png, nullptr, image.data_ptr<unsigned char>(), 0, nullptr)) {
    std::string why = png.message;
    png_image_free(&png);
    undecodable(file, why);
  }
  return image;
}

class ImageFolder final : public nas::Dataset {
 public:
  ImageFolder(const fs::path& folder, std::int64_t size, std::int64_t resize) : size_(size), resize_(resize) {
    if (!fs::is_directory(folder))
      throw nas::UsageError(fmt::format("dataset/image_folder: '{}' is not a folder (expected one sub-folder per class)",
                                        folder.string()));
    for (const fs::directory_entry& entry : fs::directory_iterator(folder))
      if (entry.is_directory()) class_names_.push_back(entry.path().filename().string());
    std::sort(class_names_.begin(), class_names_.end());
    for (std::size_t label = 0; label < class_names_.size(); ++label) {
      std::vector<fs::path> files;
      for (const fs::directory_entry& entry : fs::directory_iterator(folder / class_names_[label]))
        if (entry.is_regular_file() && is_image(entry.path())) files.push_back(entry.path());
      std::sort(files.begin(), files.end());
      for (fs::path& f : files) examples_.emplace_back(std::move(f), static_cast<std::int64_t>(label));
    }
    if (examples_.empty())
      throw nas::UsageError(fmt::format("dataset/image_folder: no .jpg, .jpeg or .png images in the class folders of '{}'",
                                        folder.string()));
  }

  nas::DatasetInfo info() const override {
    return {3, size_, size_, class_names_, {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}};  // ImageNet's statistics
  }
  std::int64_t size() const override { return static_cast<std::int64_t>(examples_.size()); }
  std::int64_t label(std::int64_t index) const override { return examples_.at(static_cast<std::size_t>(index)).second; }

  nas::Example get(std::int64_t index) const override {
    const fs::path& file = examples_.at(static_cast<std::size_t>(index)).first;
    at::Tensor image = lower(file.extension().string()) == ".png" ? decode_png(file) : decode_jpeg(file);
    at::Tensor x = image.permute({2, 0, 1}).to(torch::kFloat32).div_(255).unsqueeze(0);
    // Shorter side to `resize` (antialiased), then the centre `size` x `size` square.
    const std::int64_t h = x.size(2), w = x.size(3);
    const double scale = static_cast<double>(resize_) / static_cast<double>(std::min(h, w));
    const std::int64_t nh = std::max<std::int64_t>(size_, std::llround(h * scale));
    const std::int64_t nw = std::max<std::int64_t>(size_, std::llround(w * scale));
    namespace F = torch::nn::functional;
    x = F::interpolate(x, F::InterpolateFuncOptions().size(std::vector<std::int64_t>{nh, nw}).mode(torch::kBilinear)
                              .align_corners(false).antialias(true));
    x = x.squeeze(0).narrow(1, (nh - size_) / 2, size_).narrow(2, (nw - size_) / 2, size_).clamp(0, 1).contiguous();
    return {x, label(index)};
  }

 private:
  std::int64_t size_, resize_;
  std::vector<std::string> class_names_;
  std::vector<std::pair<fs::path, std::int64_t>> examples_;
};

struct Options {
  std::string root;
  std::string train_dir = "train";
  std::string test_dir = "val";
  std::int64_t size = 224;
  std::int64_t resize = 256;

  static auto fields() {
    using O = Options;
    return std::tuple{
        nas::field("root", &O::root).path().required().help("the folder holding the split folders"),
        nas::field("train_dir", &O::train_dir).help("folder of the training split, under root"),
        nas::field("test_dir", &O::test_dir).help("folder of the test split, under root"),
        nas::field("size", &O::size).range(8, 4096).help("side of the square images"),
        nas::field("resize", &O::resize).range(8, 8192).help("shorter side after resizing, before the centre crop")};
  }
};

void register_all(nas::Registrar& r) {
  r.add<nas::Dataset>(
      "image_folder", "JPEG/PNG images in one folder per class (the ImageNet layout), resized and centre-cropped",
      nas::schema_of<Options>(), [](const nas::Params& p, const nas::Context&, const nas::DatasetArgs& args) {
        const auto o = nas::options_from<Options>(p);
        if (o.resize < o.size) throw nas::UsageError("dataset/image_folder: 'resize' must be at least 'size'");
        const fs::path folder = fs::path(o.root) / (args.split == nas::Split::train ? o.train_dir : o.test_dir);
        return std::make_unique<ImageFolder>(folder, o.size, o.resize);
      });
}

}  // namespace

NAS_PLUGIN("image_folder", "0.1.0", register_all)
