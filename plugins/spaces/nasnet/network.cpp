// NASNet cells and networks (see shared/design/nasnet-facts.md for the conventions followed here).
#include "network.hpp"

#include <set>

#include <fmt/format.h>
#include <torch/torch.h>

#include "nas/layers.hpp"
#include "nas/op.hpp"
#include "nas/registry.hpp"

namespace nasnet {
namespace {

namespace nn = torch::nn;

constexpr double kBatchNormEps = 1e-3;

nas::Conv2d conv1x1(std::int64_t in, std::int64_t out) {
  return nas::Conv2d(nn::Conv2dOptions(in, out, 1).bias(false));
}
nas::BatchNorm2d batch_norm(std::int64_t channels) {
  return nas::BatchNorm2d(nn::BatchNorm2dOptions(channels).eps(kBatchNormEps));
}

// Halves the spatial size with two 1x1-conv paths, the second shifted by one pixel, concatenated, BN.
struct FactorizedReduceImpl : nn::Module {
  FactorizedReduceImpl(std::int64_t in, std::int64_t out)
      : path1(register_module("path1", conv1x1(in, out / 2))),
        path2(register_module("path2", conv1x1(in, out - out / 2))),
        bn(register_module("bn", batch_norm(out))) {}
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor a = path1->forward(nas::every_second_pixel(x, 0));
    at::Tensor b = path2->forward(nas::every_second_pixel(x, 1));  // the grid shifted by one pixel
    return bn->forward(nas::concat_channels({a, b}));
  }
  nas::Conv2d path1, path2;
  nas::BatchNorm2d bn;
};
TORCH_MODULE(FactorizedReduce);

// 1x1 conv and BN: the width adapters of the TF model (behind a ReLU for a cell's inputs, see CellInput).
nn::Sequential conv_bn(std::int64_t in, std::int64_t out) { return nn::Sequential(conv1x1(in, out), batch_norm(out)); }

// A cell's input: a cell output (or the stem's) and, made once on first use, its ReLU. Each cell
// output feeds two cells whose input layers both start with that ReLU (prep0 of the next cell,
// prep1 of the one after; the heads too), so sharing it saves a ReLU and its backward on the
// largest tensors.
class CellInput {
 public:
  explicit CellInput(at::Tensor x) : raw_(std::move(x)) {}
  const at::Tensor& raw() const { return raw_; }
  const at::Tensor& rectified() {
    if (!rectified_.defined()) rectified_ = at::relu(raw_);
    return rectified_;
  }

 private:
  at::Tensor raw_, rectified_;
};

/// How a cell's second input h_{i-1} relates to its first, h_i.
enum class Previous { none, same_size, larger };

class CellModule : public nn::Module {
 public:
  CellModule(const Cell& g, bool reduction, std::int64_t filters, std::int64_t in_channels, Previous previous,
             std::int64_t prev_channels, const nas::Context& context)
      : genotype_(g), reduction_(reduction), filters_(filters) {
    // State 0: h_i to the cell's width. State 1: h_{i-1} brought to h_i's shape (raw h_i when there is
    // none). A state no block reads and the output leaves out gets no layers: no dead parameters.
    std::set<std::int64_t> read(g.concat.begin(), g.concat.end());
    for (const Block& block : g.blocks) read.insert({block.a.input, block.b.input});
    std::vector<std::int64_t> width{filters, filters};
    if (read.count(0)) prep0_ = register_module("prep0", conv_bn(in_channels, filters));
    if (read.count(1)) {
      if (previous == Previous::larger)
        prep1_ = register_module("prep1", nn::Sequential(FactorizedReduce(prev_channels, filters)));
      else if (previous == Previous::same_size && prev_channels != filters)
        prep1_ = register_module("prep1", conv_bn(prev_channels, filters));
      else
        width[1] = previous == Previous::none ? in_channels : prev_channels;
    }
    const nas::Registry& registry = *context.registry;
    for (std::size_t b = 0; b < g.blocks.size(); ++b) {
      const Block& block = g.blocks[b];
      for (const Operand* operand : {&block.a, &block.b}) {
        std::int64_t stride = reduction && operand->input < 2 ? 2 : 1;
        const nas::Entry& entry = registry.require("op", operand->op);
        auto op = registry.create<nas::Op>(operand->op, nas::default_params(entry.schema, entry.key), context,
                                           {width[operand->input], filters, stride});
        ops_.push_back(register_module(fmt::format("block{}_{}", b, operand == &block.a ? 'a' : 'b'), op));
        drop_path_.push_back(!entry.has(nas::capability::no_drop_path));
      }
      width.push_back(block.combine == "concat" ? 2 * filters : filters);
    }
    // Every concatenated state in the output's shape: reduced where it is larger, narrowed where wider.
    for (std::int64_t s : g.concat) {
      nn::Sequential adapt;
      if (reduction && s < 2) adapt->push_back(FactorizedReduce(width[s], filters));
      else if (width[s] != filters) adapt = conv_bn(width[s], filters);
      adapters_.push_back(adapt->size() ? register_module(fmt::format("out{}", s), adapt) : nullptr);
    }
  }

  std::int64_t out_channels() const { return filters_ * static_cast<std::int64_t>(genotype_.concat.size()); }
  void set_keep(double keep) { keep_ = keep; }

  /// `prev` is null for the first cell, which reads h_i twice.
  at::Tensor forward(CellInput& h, CellInput* prev) {
    CellInput& second = prev ? *prev : h;
    // The preps are ReLU-conv-BN (TF), their ReLU taken from the shared CellInput.
    std::vector<at::Tensor> states{prep0_ ? prep0_->forward(h.rectified()) : at::Tensor(),
                                   prep1_ ? prep1_->forward(second.rectified()) : second.raw()};
    std::size_t k = 0;
    for (const Block& block : genotype_.blocks) {
      at::Tensor a = apply(k, states[block.a.input]);
      at::Tensor b = apply(k + 1, states[block.b.input]);
      k += 2;
      states.push_back(block.combine == "concat" ? nas::concat_channels({a, b}) : a + b);
    }
    std::vector<at::Tensor> outputs;
    for (std::size_t i = 0; i < genotype_.concat.size(); ++i) {
      const at::Tensor& s = states[genotype_.concat[i]];
      outputs.push_back(adapters_[i] ? adapters_[i]->forward(s) : s);
    }
    return nas::concat_channels(outputs);
  }

 private:
  at::Tensor apply(std::size_t k, const at::Tensor& x) {
    at::Tensor y = ops_[k]->forward(x);
    return is_training() && keep_ < 1.0 && drop_path_[k] ? nas::drop_path(y, keep_) : y;
  }

  Cell genotype_;
  bool reduction_;
  std::int64_t filters_;
  double keep_ = 1.0;
  nn::Sequential prep0_{nullptr}, prep1_{nullptr};
  std::vector<std::shared_ptr<nas::Op>> ops_;
  std::vector<bool> drop_path_;
  std::vector<nn::Sequential> adapters_;
};

// Auxiliary classifier after the last cell of stage 2 (TF/DARTS shape; the last conv covers what
// remains of the image, made independent of the input size by an adaptive pool). It reads the cell
// output's ReLU (CellInput::rectified), shared with the cells that follow.
struct AuxHeadImpl : nn::Module {
  AuxHeadImpl(std::int64_t in, std::int64_t classes)
      : body(register_module("body", nn::Sequential(nn::AvgPool2d(nn::AvgPool2dOptions(5).stride(3)),
                                                     conv1x1(in, 128), batch_norm(128), nn::ReLU(),
                                                     nn::AdaptiveAvgPool2d(2),
                                                     nas::Conv2d(nn::Conv2dOptions(128, 768, 2).bias(false)),
                                                     batch_norm(768), nn::ReLU(), nn::Flatten()))),
        classifier(register_module("classifier", nn::Linear(768, classes))) {}
  at::Tensor forward(const at::Tensor& x) { return classifier->forward(body->forward(x)); }
  nn::Sequential body;
  nn::Linear classifier;
};
TORCH_MODULE(AuxHead);

class NasnetNetwork final : public nas::Network, public nas::DropPathCells {
 public:
  NasnetNetwork(const Genotype& g, const ModelOptions& model, const nas::DataShape& data, const nas::Context& context) {
    if (model.layout != "cifar" && model.layout != "imagenet")
      throw nas::UsageError(fmt::format("layout '{}': expected cifar or imagenet", model.layout));
    // N@F: F = base filters x 4 (two doublings) x the states the normal cell concatenates.
    std::int64_t per_filter = 4 * static_cast<std::int64_t>(g.normal.concat.size());
    std::int64_t base = model.F / per_filter;
    // The imagenet layout's stem cells have base/4 filters: F must be 4x larger there.
    const std::int64_t smallest = model.layout == "imagenet" ? 4 * per_filter : per_filter;
    if (model.F < smallest)
      throw nas::UsageError(fmt::format("F = {} is too small: the {} layout needs at least {} (4 x the {} states the "
                                        "normal cell concatenates{})", model.F, model.layout, smallest,
                                        g.normal.concat.size(), model.layout == "imagenet" ? ", x 4 for the stem cells" : ""));
    // The stem: base x multiplier filters (cifar), 32 x multiplier (imagenet), at least one.
    const double stem_base = model.layout == "cifar" ? static_cast<double>(base) : 32.0;
    const auto stem_filters = static_cast<std::int64_t>(stem_base * model.stem_multiplier);
    if (stem_filters < 1)
      throw nas::UsageError(fmt::format("stem_multiplier = {} leaves the stem without filters ({} x {}); it needs at "
                                        "least {}", model.stem_multiplier, stem_base, model.stem_multiplier, 1.0 / stem_base));

    // Outputs of every cell so far, as (index into the forward pass's outputs, channels, spatial level).
    struct Slot { std::int64_t index, channels, level; };
    std::vector<Slot> outputs;
    stem_ = register_module("stem", nn::Sequential(
        nas::Conv2d(nn::Conv2dOptions(data.channels, stem_filters, 3).stride(model.layout == "cifar" ? 1 : 2)
                       .padding(model.layout == "cifar" ? 1 : 0).bias(false)),
        batch_norm(stem_filters)));
    std::optional<Slot> before_last;  // TF's cell_outputs[-2]; none for the first cell
    Slot last{0, stem_filters, 0};
    shape_labels_.emplace_back(0, "stem");

    auto add_cell = [&](const Cell& cell, bool reduction, std::int64_t filters, const std::optional<Slot>& prev) {
      Previous relation = !prev ? Previous::none : prev->level < last.level ? Previous::larger : Previous::same_size;
      auto module = std::make_shared<CellModule>(cell, reduction, filters, last.channels, relation,
                                                 prev ? prev->channels : 0, context);
      register_module(fmt::format("cell{}", cells_.size()), module);
      cells_.push_back(module);
      inputs_.emplace_back(last.index, prev ? prev->index : -1);
      before_last = last;
      last = Slot{static_cast<std::int64_t>(cells_.size()), module->out_channels(), last.level + (reduction ? 1 : 0)};
    };

    if (model.layout == "imagenet") {
      for (std::int64_t i = 0; i < 2; ++i) {  // stem cells: reduction cells with base/4 and base/2 filters
        add_cell(g.reduction, true, base / (i == 0 ? 4 : 2), before_last);
        shape_labels_.emplace_back(last.index, fmt::format("stem cell {}", i));
      }
    }
    std::int64_t filters = base;
    for (std::int64_t stage = 0; stage < 3; ++stage) {
      for (std::int64_t n = 0; n < model.N; ++n) {
        std::optional<Slot> prev = before_last;  // with skip_reduction_input, taken before the reduction
        if (n == 0 && stage > 0) {
          filters *= 2;
          add_cell(g.reduction, true, filters, before_last);
          if (!model.skip_reduction_input) prev = before_last;
        }
        add_cell(g.normal, false, filters, prev);
      }
      shape_labels_.emplace_back(last.index, fmt::format("stage {} ({} cells)", stage + 1, model.N));
      if (stage == 1 && model.aux_head) {
        aux_after_ = last.index;
        aux_ = register_module("aux_head", AuxHead(last.channels, data.num_classes));
      }
    }
    dropout_ = register_module("dropout", nn::Dropout(model.dropout));
    classifier_ = register_module("classifier", nn::Linear(last.channels, data.num_classes));
  }

  nas::NetworkOutput forward(const at::Tensor& images) override { return run(images, nullptr); }

  nas::DropPathCells* drop_path_cells() override { return this; }

  std::int64_t num_cells() const override { return static_cast<std::int64_t>(cells_.size()); }

  void set_drop_path_keep(const std::vector<double>& keep) override {
    if (keep.size() != cells_.size())
      throw nas::Error(fmt::format("drop path: {} keep probabilities for {} cells", keep.size(), cells_.size()));
    for (std::size_t i = 0; i < cells_.size(); ++i) cells_[i]->set_keep(keep[i]);
  }

  std::vector<std::pair<std::string, std::vector<std::int64_t>>> stage_shapes(const at::Tensor& images) override {
    std::vector<std::pair<std::string, std::vector<std::int64_t>>> shapes;
    run(images, &shapes);
    return shapes;
  }

  std::int64_t aux_head_parameters() const override {
    std::int64_t n = 0;
    if (aux_)
      for (const auto& p : aux_->parameters()) n += p.numel();
    return n;
  }

 private:
  nas::NetworkOutput run(const at::Tensor& images, std::vector<std::pair<std::string, std::vector<std::int64_t>>>* shapes) {
    std::vector<CellInput> outputs{CellInput(stem_->forward(images))};
    nas::NetworkOutput out;
    auto record = [&](std::int64_t index) {
      if (!shapes) return;
      for (const auto& [at, label] : shape_labels_)
        if (at == index) shapes->emplace_back(label, outputs[index].raw().sizes().vec());
    };
    record(0);
    for (std::size_t i = 0; i < cells_.size(); ++i) {
      auto [h, prev] = inputs_[i];
      at::Tensor output = cells_[i]->forward(outputs[h], prev >= 0 ? &outputs[prev] : nullptr);
      outputs.emplace_back(std::move(output));  // after the call: growing the vector moves its elements
      record(static_cast<std::int64_t>(i) + 1);
      if (aux_ && is_training() && static_cast<std::int64_t>(i) + 1 == aux_after_) out.aux_logits = aux_->forward(outputs.back().rectified());
    }
    at::Tensor x = torch::adaptive_avg_pool2d(outputs.back().rectified(), {1, 1}).flatten(1);
    out.logits = classifier_->forward(dropout_->forward(x));
    if (shapes) shapes->emplace_back("logits", out.logits.sizes().vec());
    return out;
  }

  nn::Sequential stem_{nullptr};
  std::vector<std::shared_ptr<CellModule>> cells_;
  std::vector<std::pair<std::int64_t, std::int64_t>> inputs_;  // per cell: output index of h_i, of h_{i-1} (-1: none)
  std::vector<std::pair<std::int64_t, std::string>> shape_labels_;
  AuxHead aux_{nullptr};
  std::int64_t aux_after_ = -1;
  nn::Dropout dropout_{nullptr};
  nn::Linear classifier_{nullptr};
};

}  // namespace

nas::ModelFamily model_family() {
  using Preset = std::map<std::string, nas::Value>;
  // As the TF models have them (tensorflow/models research/slim/nets/nasnet): shared/design/nasnet-facts.md.
  return {nas::schema_of<ModelOptions>(),
          {{"nasnet_a_mobile", Preset{{"layout", std::string("imagenet")}, {"N", std::int64_t{4}},
                                      {"F", std::int64_t{1056}}, {"stem_multiplier", 1.0}, {"dropout", 0.5},
                                      {"aux_head", true}, {"skip_reduction_input", false}}},
           {"nasnet_a_large", Preset{{"layout", std::string("imagenet")}, {"N", std::int64_t{6}},
                                     {"F", std::int64_t{4032}}, {"stem_multiplier", 3.0}, {"dropout", 0.5},
                                     {"aux_head", true}, {"skip_reduction_input", true}}},
           {"nasnet_a_cifar", Preset{{"layout", std::string("cifar")}, {"N", std::int64_t{6}}, {"F", std::int64_t{768}},
                                     {"stem_multiplier", 3.0}, {"dropout", 0.0}, {"aux_head", true},
                                     {"skip_reduction_input", false}}}}};
}

std::shared_ptr<nas::Network> build_network(const Genotype& genotype, const ModelOptions& model,
                                            const nas::DataShape& data, const nas::Context& context) {
  if (!context.registry) throw nas::Error("nasnet: building a network needs the registry (for the ops)");
  return std::make_shared<NasnetNetwork>(genotype, model, data, context);
}

}  // namespace nasnet
