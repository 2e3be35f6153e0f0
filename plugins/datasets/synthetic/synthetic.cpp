// dataset/synthetic: seeded random images of any shape, learnable (each class has its own mean
// image), generated on demand from (seed, split, index) so that reading is thread-safe and cheap.
#include <cmath>
#include <random>

#include <torch/torch.h>

#include "nas/dataset.hpp"
#include "nas/options.hpp"
#include "nas/plugin.hpp"

namespace {

struct Options {
  std::int64_t size = 1000;
  std::int64_t channels = 3;
  std::int64_t height = 32;
  std::int64_t width = 32;
  std::int64_t classes = 10;
  double signal = 0.5;  // weight of the class prototype against the noise

  static auto fields() {
    using O = Options;
    return std::tuple{
        nas::field("size", &O::size).range(1, 1e9).help("examples per split"),
        nas::field("channels", &O::channels).range(1, 64).help("image channels"),
        nas::field("height", &O::height).range(1, 4096).help("image height"),
        nas::field("width", &O::width).range(1, 4096).help("image width"),
        nas::field("classes", &O::classes).range(2, 100000).help("number of classes"),
        nas::field("signal", &O::signal).range(0, 1).help("weight of the class mean image against uniform noise (0: "
                                                          "unlearnable)")};
  }
};

class SyntheticDataset final : public nas::Dataset {
 public:
  SyntheticDataset(Options o, std::uint64_t seed, nas::Split split)
      : o_(o), seed_(seed), split_(nas::stream(split == nas::Split::train ? "synthetic/train" : "synthetic/test")) {
    // Prototypes depend on the seed only, so train and test share the classes.
    std::mt19937_64 rng = nas::generator(seed_, nas::stream("synthetic/prototypes"), 0);
    std::uniform_real_distribution<float> uniform(0.f, 1.f);
    prototypes_ = torch::empty({o_.classes, o_.channels, o_.height, o_.width});
    float* p = prototypes_.data_ptr<float>();
    for (std::int64_t i = 0; i < prototypes_.numel(); ++i) p[i] = uniform(rng);
  }

  nas::DatasetInfo info() const override {
    std::vector<std::string> names;
    for (std::int64_t c = 0; c < o_.classes; ++c) names.push_back(fmt::format("class{}", c));
    // Pixels are s * U + (1 - s) * U' with independent uniforms: mean 1/2, variance (s^2 + (1-s)^2) / 12.
    double std = std::sqrt((o_.signal * o_.signal + (1 - o_.signal) * (1 - o_.signal)) / 12.0);
    return {o_.channels, o_.height, o_.width, names, std::vector<double>(o_.channels, 0.5),
            std::vector<double>(o_.channels, std)};
  }

  std::int64_t size() const override { return o_.size; }

  nas::Example get(std::int64_t index) const override {
    if (index < 0 || index >= o_.size)
      throw nas::Error(fmt::format("dataset/synthetic: index {} out of range [0, {})", index, o_.size));
    std::mt19937_64 rng = nas::generator(seed_, split_, static_cast<std::uint64_t>(index));
    std::int64_t label = std::uniform_int_distribution<std::int64_t>(0, o_.classes - 1)(rng);
    std::uniform_real_distribution<float> uniform(0.f, 1.f);
    at::Tensor image = torch::empty({o_.channels, o_.height, o_.width});
    float* pixel = image.data_ptr<float>();
    const float* prototype = prototypes_[label].data_ptr<float>();
    auto signal = static_cast<float>(o_.signal);
    for (std::int64_t i = 0; i < image.numel(); ++i) pixel[i] = signal * prototype[i] + (1.f - signal) * uniform(rng);
    return {image, label};
  }

 private:
  Options o_;
  std::uint64_t seed_;
  std::uint64_t split_;  // the stream of the split's images
  at::Tensor prototypes_;
};

void register_all(nas::Registrar& r) {
  r.add<nas::Dataset>(
      "synthetic", "seeded random images of any shape; each class has its own mean image, so it is learnable",
      nas::schema_of<Options>(), [](const nas::Params& p, const nas::Context& context, const nas::DatasetArgs& args) {
        return std::make_unique<SyntheticDataset>(nas::options_from<Options>(p), context.seed, args.split);
      });
}

}  // namespace

NAS_PLUGIN("synthetic", "0.1.0", register_all)
