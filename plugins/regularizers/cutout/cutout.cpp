// regularizer/cutout: zeroes one random square per training image (DeVries & Taylor, 2017). The
// square's centre is uniform over the image, so near the border it is clipped, as in the paper.
#include <random>

#include <torch/torch.h>

#include "nas/options.hpp"
#include "nas/plugin.hpp"
#include "nas/regularizer.hpp"

namespace {

struct Options {
  std::int64_t size = 16;

  static auto fields() {
    return std::tuple{nas::field("size", &Options::size).range(1, 4096).help("side of the square in pixels")};
  }
};

class Cutout final : public nas::Regularizer {
 public:
  Cutout(Options options, std::uint64_t seed) : size_(options.size), seed_(seed) {}

  void on_batch(at::Tensor& images, const nas::TrainingStep& step) override {
    TORCH_CHECK(images.dim() == 4, "regularizer/cutout: expected images (N, C, H, W), got ", images.sizes());
    std::mt19937_64 rng = nas::generator(seed_, nas::stream("cutout"), static_cast<std::uint64_t>(step.step));
    const std::int64_t height = images.size(2), width = images.size(3);
    std::uniform_int_distribution<std::int64_t> row(0, height - 1), column(0, width - 1);
    for (std::int64_t n = 0; n < images.size(0); ++n) {
      const std::int64_t top = row(rng) - size_ / 2, left = column(rng) - size_ / 2;
      const std::int64_t y0 = std::clamp<std::int64_t>(top, 0, height), y1 = std::clamp<std::int64_t>(top + size_, 0, height);
      const std::int64_t x0 = std::clamp<std::int64_t>(left, 0, width), x1 = std::clamp<std::int64_t>(left + size_, 0, width);
      images[n].narrow(1, y0, y1 - y0).narrow(2, x0, x1 - x0).zero_();
    }
  }

 private:
  std::int64_t size_;
  std::uint64_t seed_;
};

void register_all(nas::Registrar& r) {
  r.add<nas::Regularizer>("cutout", "zeroes one random square per training image (DeVries & Taylor, 2017)",
                          nas::schema_of<Options>(),
                          [](const nas::Params& p, const nas::Context& context, const nas::RegularizerArgs&) {
                            return std::make_unique<Cutout>(nas::options_from<Options>(p), context.seed);
                          });
}

}  // namespace

NAS_PLUGIN("cutout", "0.1.0", register_all)
