// op/*: the 13 operations of the NASNet search space, with the conventions of the TF reference model
// (shared/design/nasnet-facts.md): convolutions are ReLU-conv-BN without bias, separable convolutions
// apply ReLU-sepconv-BN twice (stride on the first only), pools use "same" padding and are followed by
// 1x1conv-BN when the width changes, and identity becomes ReLU-1x1conv-BN when it cannot be an identity.
#include <torch/torch.h>

#include "nas/layers.hpp"
#include "nas/op.hpp"
#include "nas/plugin.hpp"

namespace {

namespace nn = torch::nn;

constexpr double kBatchNormEps = 1e-3;  // TF NASNet's epsilon

nas::BatchNorm2d batch_norm(std::int64_t channels) {
  return nas::BatchNorm2d(nn::BatchNorm2dOptions(channels).eps(kBatchNormEps));
}

nas::Conv2d conv(std::int64_t in, std::int64_t out, std::vector<std::int64_t> kernel, std::vector<std::int64_t> stride,
                std::vector<std::int64_t> padding, std::int64_t dilation = 1, std::int64_t groups = 1) {
  return nas::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).dilation(dilation)
                        .groups(groups).bias(false));
}

// Every op but a true identity is a fixed sequence of layers.
class SequentialOp final : public nas::Op {
 public:
  explicit SequentialOp(nn::Sequential body) : body_(register_module("body", std::move(body))) {}
  at::Tensor forward(const at::Tensor& x) override { return body_->forward(x); }

 private:
  nn::Sequential body_;
};

class IdentityOp final : public nas::Op {
 public:
  at::Tensor forward(const at::Tensor& x) override { return x; }
};

using Make = std::shared_ptr<nas::Op> (*)(const nas::OpArgs&);

std::shared_ptr<nas::Op> relu_conv_bn(const nas::OpArgs& a, std::int64_t k) {
  return std::make_shared<SequentialOp>(nn::Sequential(nn::ReLU(), conv(a.in_channels, a.out_channels, {k, k},
                                                                        {a.stride, a.stride}, {k / 2, k / 2}),
                                                       batch_norm(a.out_channels)));
}

std::shared_ptr<nas::Op> identity(const nas::OpArgs& a) {
  if (a.stride == 1 && a.in_channels == a.out_channels) return std::make_shared<IdentityOp>();
  return relu_conv_bn(a, 1);
}

// 1xk then kx1: the stride applies along each axis in its own convolution.
std::shared_ptr<nas::Op> factorized_conv(const nas::OpArgs& a, std::int64_t k) {
  return std::make_shared<SequentialOp>(
      nn::Sequential(nn::ReLU(), conv(a.in_channels, a.out_channels, {1, k}, {1, a.stride}, {0, k / 2}),
                     conv(a.out_channels, a.out_channels, {k, 1}, {a.stride, 1}, {k / 2, 0}), batch_norm(a.out_channels)));
}

std::shared_ptr<nas::Op> dilated_conv_3x3(const nas::OpArgs& a) {
  return std::make_shared<SequentialOp>(nn::Sequential(
      nn::ReLU(), conv(a.in_channels, a.out_channels, {3, 3}, {a.stride, a.stride}, {2, 2}, 2), batch_norm(a.out_channels)));
}

template <class Pool, class Options>
std::shared_ptr<nas::Op> pool(const nas::OpArgs& a, Options options) {
  nn::Sequential body(Pool(options.stride(a.stride).padding(options.kernel_size()->at(0) / 2)));
  if (a.in_channels != a.out_channels) {
    body->push_back(conv(a.in_channels, a.out_channels, {1, 1}, {1, 1}, {0, 0}));
    body->push_back(batch_norm(a.out_channels));
  }
  return std::make_shared<SequentialOp>(std::move(body));
}

std::shared_ptr<nas::Op> avg_pool(const nas::OpArgs& a, std::int64_t k) {
  // TF's "same" average pooling divides by the number of real pixels under the window.
  return pool<nn::AvgPool2d>(a, nn::AvgPool2dOptions(k).count_include_pad(false));
}

std::shared_ptr<nas::Op> max_pool(const nas::OpArgs& a, std::int64_t k) {
  return pool<nn::MaxPool2d>(a, nn::MaxPool2dOptions(k));
}

// (ReLU, depthwise kxk, pointwise 1x1, BN) twice; the first changes the width and carries the stride.
std::shared_ptr<nas::Op> separable_conv(const nas::OpArgs& a, std::int64_t k) {
  nn::Sequential body;
  std::int64_t in = a.in_channels, stride = a.stride;
  for (int layer = 0; layer < 2; ++layer) {
    body->push_back(nn::ReLU());
    body->push_back(conv(in, in, {k, k}, {stride, stride}, {k / 2, k / 2}, 1, in));
    body->push_back(conv(in, a.out_channels, {1, 1}, {1, 1}, {0, 0}));
    body->push_back(batch_norm(a.out_channels));
    in = a.out_channels;
    stride = 1;
  }
  return std::make_shared<SequentialOp>(std::move(body));
}

struct OpDef {
  const char* name;
  const char* doc;
  Make make;
};

const OpDef kOps[] = {
    {"identity", "identity; ReLU-1x1conv-BN when the stride is 2 or the width changes", identity},
    {"conv_1x3_3x1", "ReLU, 1x3 conv, 3x1 conv, BN", [](const nas::OpArgs& a) { return factorized_conv(a, 3); }},
    {"conv_1x7_7x1", "ReLU, 1x7 conv, 7x1 conv, BN", [](const nas::OpArgs& a) { return factorized_conv(a, 7); }},
    {"dil_conv_3x3", "ReLU, 3x3 conv with dilation 2, BN", dilated_conv_3x3},
    {"avg_pool_3x3", "3x3 average pool (same padding); 1x1conv-BN when the width changes",
     [](const nas::OpArgs& a) { return avg_pool(a, 3); }},
    {"max_pool_3x3", "3x3 max pool (same padding); 1x1conv-BN when the width changes",
     [](const nas::OpArgs& a) { return max_pool(a, 3); }},
    {"max_pool_5x5", "5x5 max pool (same padding); 1x1conv-BN when the width changes",
     [](const nas::OpArgs& a) { return max_pool(a, 5); }},
    {"max_pool_7x7", "7x7 max pool (same padding); 1x1conv-BN when the width changes",
     [](const nas::OpArgs& a) { return max_pool(a, 7); }},
    {"conv_1x1", "ReLU, 1x1 conv, BN", [](const nas::OpArgs& a) { return relu_conv_bn(a, 1); }},
    {"conv_3x3", "ReLU, 3x3 conv, BN", [](const nas::OpArgs& a) { return relu_conv_bn(a, 3); }},
    {"sep_conv_3x3", "(ReLU, 3x3 depthwise-separable conv, BN) twice", [](const nas::OpArgs& a) { return separable_conv(a, 3); }},
    {"sep_conv_5x5", "(ReLU, 5x5 depthwise-separable conv, BN) twice", [](const nas::OpArgs& a) { return separable_conv(a, 5); }},
    {"sep_conv_7x7", "(ReLU, 7x7 depthwise-separable conv, BN) twice", [](const nas::OpArgs& a) { return separable_conv(a, 7); }},
};

void register_all(nas::Registrar& r) {
  for (const OpDef& op : kOps) {
    Make make = op.make;
    std::vector<std::string> capabilities;
    if (make == identity) capabilities.emplace_back(nas::capability::no_drop_path);
    r.add<nas::Op>(op.name, op.doc, {}, [make](const nas::Params&, const nas::Context&, const nas::OpArgs& args) {
      if (args.in_channels < 1 || args.out_channels < 1 || (args.stride != 1 && args.stride != 2))
        throw nas::Error(fmt::format("op: expected channels >= 1 and stride 1 or 2, got in {} out {} stride {}",
                                     args.in_channels, args.out_channels, args.stride));
      return make(args);
    }, std::move(capabilities));
  }
}

}  // namespace

NAS_PLUGIN("nasnet-ops", "0.1.0", register_all)
