// op/scaled_identity: an example third-party op. It multiplies its input by a learned scalar,
// and uses a 1x1 convolution where the stride or the width changes (nas::Conv2d, as every op should:
// it avoids a oneDNN kernel that crashes on strided 1x1 convolutions on some CPUs).
#include "nas/layers.hpp"
#include "nas/op.hpp"
#include "nas/options.hpp"
#include "nas/plugin.hpp"

namespace {

class ScaledIdentity final : public nas::Op {
 public:
  ScaledIdentity(const nas::OpArgs& a, double init) : scale_(register_parameter("scale", torch::full({1}, init))) {
    if (a.stride != 1 || a.in_channels != a.out_channels)
      project_ = register_module("project", nas::Conv2d(torch::nn::Conv2dOptions(a.in_channels, a.out_channels, 1)
                                                                   .stride(a.stride).bias(false)));
  }
  at::Tensor forward(const at::Tensor& x) override { return scale_ * (project_ ? project_->forward(x) : x); }

 private:
  torch::Tensor scale_;
  nas::Conv2d project_{nullptr};
};

// The op's parameters: one declaration gives the schema (with its default) and the typed struct.
struct Options {
  double init = 1.0;

  static auto fields() { return std::tuple{nas::field("init", &Options::init).help("initial value of the scalar")}; }
};

void register_all(nas::Registrar& r) {
  r.add<nas::Op>("scaled_identity", "identity times a learned scalar", nas::schema_of<Options>(),
                 [](const nas::Params& p, const nas::Context&, const nas::OpArgs& args) {
                   return std::make_shared<ScaledIdentity>(args, nas::options_from<Options>(p).init);
                 });
}

}  // namespace

NAS_PLUGIN("example-ops", "1.0.0", register_all)
