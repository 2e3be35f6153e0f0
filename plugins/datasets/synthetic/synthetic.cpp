// dataset/synthetic: seeded random images of any shape, learnable (each class has its own mean
// image), generated on demand from (seed, split, index) so that reading is thread-safe and cheap.
#include <cmath>
#include <random>

#include <torch/torch.h>

#include "nas/dataset.hpp"
#include "nas/plugin.hpp"

namespace {

struct Options {
  std::int64_t size, channels, height, width, classes;
  double signal;  // weight of the class prototype against the noise
};

class SyntheticDataset final : public nas::Dataset {
 public:
  SyntheticDataset(Options o, std::uint64_t seed, nas::Split split)
      : o_(o), seed_(seed), split_salt_(split == nas::Split::train ? 0x7261696eULL : 0x74657374ULL) {
    // Prototypes depend on the seed only, so train and test share the classes.
    std::mt19937_64 rng(seed_ ^ 0x70726f746fULL);
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
    std::mt19937_64 rng(seed_ ^ split_salt_ ^ (static_cast<std::uint64_t>(index) * 0x9e3779b97f4a7c15ULL));
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
  std::uint64_t split_salt_;
  at::Tensor prototypes_;
};

void register_all(nas::Registrar& r) {
  using nas::param::integer;
  using nas::param::number;
  r.add<nas::Dataset>(
      "synthetic", "seeded random images of any shape; each class has its own mean image, so it is learnable",
      {integer("size", 1000).range(1, 1e9).help("examples per split"),
       integer("channels", 3).range(1, 64).help("image channels"),
       integer("height", 32).range(1, 4096).help("image height"),
       integer("width", 32).range(1, 4096).help("image width"),
       integer("classes", 10).range(2, 100000).help("number of classes"),
       number("signal", 0.5).range(0, 1).help("weight of the class mean image against uniform noise (0: unlearnable)")},
      [](const nas::Params& p, const nas::Context& context, const nas::DatasetArgs& args) {
        Options o{p.get<std::int64_t>("size"),    p.get<std::int64_t>("channels"), p.get<std::int64_t>("height"),
                  p.get<std::int64_t>("width"),   p.get<std::int64_t>("classes"),  p.get<double>("signal")};
        return std::make_unique<SyntheticDataset>(o, context.seed, args.split);
      });
}

}  // namespace

NAS_PLUGIN("synthetic", "0.1.0", register_all)
