// Zero-cost proxies (nas/proxies.hpp). NASWOT sees every ReLU through LibTorch's RecordFunction
// observers (as cost.cpp sees convolutions), whichever op plugin applies it.

// RecordFunction has members that exist only without NDEBUG; the wheel's LibTorch is built with it, so
// this file must see the same layout in every build type (see cost.cpp).
#ifndef NDEBUG
#define NDEBUG
#endif

#include "nas/proxies.hpp"

#include <algorithm>
#include <memory>

#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "nas/error.hpp"
#include "nas/space.hpp"

namespace nas {
namespace {

// NASWOT's kernel, summed ReLU by ReLU over one forward pass (B x B, double), so that the codes of
// the whole network (millions of units per example) never exist at once; undefined until a ReLU.
thread_local at::Tensor* t_kernel = nullptr;

std::unique_ptr<at::ObserverContext> on_relu(const at::RecordFunction& fn) {
  const std::string_view name = fn.name();
  if (!t_kernel || (name != "aten::relu" && name != "aten::relu_")) return nullptr;
  const auto inputs = fn.inputs();  // before an in-place relu_ overwrites its input
  if (inputs.empty() || !inputs[0].isTensor() || inputs[0].toTensor().dim() < 1) return nullptr;
  // 1 where the unit is active; agreements of examples i and j: both active or both not. Counts per
  // ReLU are exact in float (far below 2^24 units); the sum over ReLUs is kept in double.
  const at::Tensor code = (inputs[0].toTensor().detach() > 0).flatten(1).to(at::kFloat);
  const at::Tensor agree = (code.matmul(code.t()) + (1 - code).matmul((1 - code).t())).to(at::kDouble);
  *t_kernel = t_kernel->defined() ? *t_kernel + agree : agree;
  return nullptr;
}

std::vector<at::Tensor> weights(Network& network) {
  std::vector<at::Tensor> out;
  for (const at::Tensor& p : network.parameters())
    if (p.dim() >= 2) out.push_back(p);
  return out;
}

// Everything a proxy changes, put back when it is done.
class Restore {
 public:
  explicit Restore(Network& network) : network_(network), training_(network.is_training()) {
    at::NoGradGuard no_grad;
    for (const at::Tensor& p : network.parameters()) parameters_.push_back(p.detach().clone());
    for (const at::Tensor& b : network.buffers()) buffers_.push_back(b.detach().clone());
    const auto params = network.parameters();
    if (!params.empty()) options_ = params.front().options();
  }
  ~Restore() {
    at::NoGradGuard no_grad;
    network_.to(options_.device(), options_.dtype().toScalarType());
    auto params = network_.parameters();
    for (std::size_t i = 0; i < params.size(); ++i) {
      params[i].copy_(parameters_[i]);
      params[i].mutable_grad() = at::Tensor();
    }
    auto buffers = network_.buffers();
    for (std::size_t i = 0; i < buffers.size(); ++i) buffers[i].copy_(buffers_[i]);
    network_.train(training_);
  }
  Restore(const Restore&) = delete;
  Restore& operator=(const Restore&) = delete;

 private:
  Network& network_;
  bool training_;
  at::TensorOptions options_ = at::TensorOptions(at::kFloat);
  std::vector<at::Tensor> parameters_, buffers_;
};

// The cross-entropy loss's gradient in every weight, in training mode (batch statistics).
std::vector<at::Tensor> loss_gradients(Network& network, const at::Tensor& images, const at::Tensor& labels) {
  network.train();
  network.zero_grad();
  at::cross_entropy_loss(network.forward(images).logits, labels).backward();
  std::vector<at::Tensor> grads;
  for (const at::Tensor& w : weights(network)) grads.push_back(w.grad().defined() ? w.grad() : at::zeros_like(w));
  return grads;
}

double grad_norm(Network& network, const at::Tensor& images, const at::Tensor& labels) {
  double score = 0;
  for (const at::Tensor& g : loss_gradients(network, images, labels)) score += g.norm().item<double>();
  return score;
}

double snip(Network& network, const at::Tensor& images, const at::Tensor& labels) {
  const std::vector<at::Tensor> grads = loss_gradients(network, images, labels);
  const std::vector<at::Tensor> ws = weights(network);
  double score = 0;
  for (std::size_t i = 0; i < ws.size(); ++i) score += (ws[i].detach() * grads[i]).abs().sum().item<double>();
  return score;
}

double synflow(Network& network, const at::Tensor& images) {
  network.eval();
  network.to(at::kDouble);
  {
    at::NoGradGuard no_grad;
    for (at::Tensor& p : network.parameters()) p.abs_();
  }
  network.zero_grad();
  std::vector<std::int64_t> shape = images.sizes().vec();
  shape[0] = 1;
  at::Tensor ones = at::ones(shape, images.options().dtype(at::kDouble));
  network.forward(ones).logits.sum().backward();
  double score = 0;
  for (const at::Tensor& w : weights(network))
    if (w.grad().defined()) score += (w.detach() * w.grad()).abs().sum().item<double>();
  return score;
}

double naswot(Network& network, const at::Tensor& images) {
  network.train();
  at::Tensor kernel;
  {
    at::NoGradGuard no_grad;
    t_kernel = &kernel;
    auto handle = at::addThreadLocalCallback(at::RecordFunctionCallback(on_relu).needsInputs(true));
    try {
      network.forward(images);
    } catch (...) {
      at::removeCallback(handle);
      t_kernel = nullptr;
      throw;
    }
    at::removeCallback(handle);
    t_kernel = nullptr;
  }
  if (!kernel.defined()) throw Error("proxy naswot: the network applies no ReLU (aten::relu), so it has no activation pattern");
  return std::get<1>(at::linalg_slogdet(kernel)).item<double>();
}

}  // namespace

const std::vector<std::string>& proxy_names() {
  static const std::vector<std::string> names{"synflow", "naswot", "grad_norm", "snip"};
  return names;
}

double proxy_score(Network& network, std::string_view proxy, const at::Tensor& images, const at::Tensor& labels) {
  const auto& names = proxy_names();
  if (std::find(names.begin(), names.end(), proxy) == names.end())
    throw UsageError(fmt::format("unknown proxy '{}'; expected one of: {}", proxy, fmt::join(names, ", ")));
  Restore restore(network);
  if (proxy == "synflow") return synflow(network, images);
  if (proxy == "naswot") return naswot(network, images);
  if (proxy == "grad_norm") return grad_norm(network, images, labels);
  return snip(network, images, labels);
}

}  // namespace nas
