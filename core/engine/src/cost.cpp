// Counting multiply-adds with LibTorch's RecordFunction observers: every aten::convolution and
// aten::linear the forward pass dispatches is seen, whichever op plugin issued it.

// RecordFunction has members that exist only without NDEBUG; the wheel's LibTorch is built with it, so
// this file must see the same layout in every build type (a debug build would read garbage otherwise).
#ifndef NDEBUG
#define NDEBUG
#endif

#include "nas/cost.hpp"

#include <ATen/ATen.h>
#include <ATen/record_function.h>

namespace nas {
namespace {

// The observer callbacks are plain function pointers: they report to the counting on this thread.
thread_local std::vector<LayerCost>* t_layers = nullptr;

struct PendingLayer : at::ObserverContext {
  std::string op;
  std::int64_t per_output = 0;  // multiply-adds per output element
};

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
  std::string_view name = fn.name();
  bool conv = name == "aten::convolution", linear = name == "aten::linear";
  if (!t_layers || !(conv || linear)) return nullptr;
  auto inputs = fn.inputs();
  if (inputs.size() < 2 || !inputs[1].isTensor()) return nullptr;
  const at::Tensor& weight = inputs[1].toTensor();
  auto pending = std::make_unique<PendingLayer>();
  pending->op = conv ? "conv" : "linear";
  // conv weight (out, in/groups, kh, kw): per output element, in/groups * kh * kw; linear (out, in): in.
  pending->per_output = weight.numel() / weight.size(0);
  return pending;
}

void on_end(const at::RecordFunction& fn, at::ObserverContext* context) {
  auto* pending = static_cast<PendingLayer*>(context);
  if (!pending || !t_layers || fn.outputs().empty() || !fn.outputs()[0].isTensor()) return;
  const at::Tensor& out = fn.outputs()[0].toTensor();
  t_layers->push_back(LayerCost{pending->op, out.sizes().vec(), out.numel() * pending->per_output});
}

}  // namespace

ModelCost measure_cost(Network& network, const std::vector<std::int64_t>& input) {
  ModelCost cost;
  for (const at::Tensor& p : network.parameters()) cost.params += p.numel();
  cost.params -= network.aux_head_parameters();

  bool was_training = network.is_training();
  network.eval();
  std::vector<std::int64_t> shape{1};
  shape.insert(shape.end(), input.begin(), input.end());
  at::Tensor images = at::zeros(shape);
  {
    at::NoGradGuard no_grad;
    t_layers = &cost.layers;
    auto handle = at::addThreadLocalCallback(
        at::RecordFunctionCallback(on_start, on_end).needsInputs(true).needsOutputs(true));
    try {
      network.forward(images);
    } catch (...) {
      at::removeCallback(handle);
      t_layers = nullptr;
      throw;
    }
    at::removeCallback(handle);
    t_layers = nullptr;
  }
  network.train(was_training);
  for (const LayerCost& layer : cost.layers) cost.mult_adds += layer.mult_adds;
  return cost;
}

}  // namespace nas
