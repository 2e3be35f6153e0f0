// space/nasbench201: the NAS-Bench-201 cell space. A cell is a DAG of 4 nodes; each of its 6 edges
// (i -> j, i < j) carries one of 5 ops, and node j sums its incoming edges. The genotype text is the
// benchmark's own cell string, e.g. |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|,
// so tabular evaluators can look it up. The network is the benchmark's: a stem, three stages of N
// cells with C, 2C, 4C channels joined by residual reduction blocks, global pooling and a classifier.
#include <array>

#include <fmt/ranges.h>
#include <torch/torch.h>

#include "nas/layers.hpp"
#include "nas/options.hpp"
#include "nas/plugin.hpp"
#include "nas/space.hpp"

namespace {

namespace nn = torch::nn;

const std::array<std::string, 5> kOps{"none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"};
constexpr int kNodes = 4;
constexpr int kEdges = 6;  // in cell-string order: 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2

int edge_index(int to, int from) { return to * (to - 1) / 2 + from; }

/// The op of every edge, as indices into kOps.
using Cell = std::array<std::int64_t, kEdges>;

std::string to_string(const Cell& cell) {
  std::string text;
  for (int to = 1; to < kNodes; ++to) {
    if (to > 1) text += "+";
    text += "|";
    for (int from = 0; from < to; ++from) text += fmt::format("{}~{}|", kOps[static_cast<std::size_t>(cell[edge_index(to, from)])], from);
  }
  return text;
}

Cell parse(const std::string& genotype, const std::string& source) {
  std::string text;  // without comment lines and blanks
  for (std::size_t from = 0; from < genotype.size();) {
    std::size_t end = std::min(genotype.find('\n', from), genotype.size());
    std::string_view line(genotype.data() + from, end - from);
    if (line.find_first_not_of(" \t\r") != std::string_view::npos && line.substr(line.find_first_not_of(" \t")).front() != '#')
      for (char c : line)
        if (!std::isspace(static_cast<unsigned char>(c))) text += c;
    from = end + 1;
  }
  auto fail = [&](const std::string& what) -> Cell {
    throw nas::UsageError(fmt::format("{}: nasbench201 cell '{}': {}; expected |op~0|+|op~0|op~1|+|op~0|op~1|op~2| "
                                      "with ops {}", source, text, what, fmt::join(kOps, ", ")));
  };
  Cell cell{};
  std::array<bool, kEdges> seen{};
  int to = 1;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t plus = std::min(text.find('+', pos), text.size());
    std::string node = text.substr(pos, plus - pos);
    if (to >= kNodes) return fail(fmt::format("more than {} nodes", kNodes - 1));
    if (node.size() < 2 || node.front() != '|' || node.back() != '|') return fail(fmt::format("node {} is '{}'", to, node));
    for (std::size_t start = 1; start < node.size();) {
      std::size_t bar = node.find('|', start);
      std::string entry = node.substr(start, bar - start);
      std::size_t tilde = entry.find('~');
      auto op = std::find(kOps.begin(), kOps.end(), entry.substr(0, tilde));
      if (tilde == std::string::npos || op == kOps.end()) return fail(fmt::format("entry '{}' of node {}", entry, to));
      int from = -1;
      try {
        std::size_t used = 0;
        from = std::stoi(entry.substr(tilde + 1), &used);
        if (used != entry.size() - tilde - 1) from = -1;
      } catch (const std::exception&) {
      }
      if (from < 0 || from >= to) return fail(fmt::format("entry '{}' of node {}: input must be 0..{}", entry, to, to - 1));
      if (seen[static_cast<std::size_t>(edge_index(to, from))]) return fail(fmt::format("node {} has input {} twice", to, from));
      seen[static_cast<std::size_t>(edge_index(to, from))] = true;
      cell[static_cast<std::size_t>(edge_index(to, from))] = op - kOps.begin();
      start = bar + 1;
    }
    ++to;
    pos = plus + 1;
  }
  if (to != kNodes) return fail(fmt::format("{} nodes", to - 1));
  for (int e = 0; e < kEdges; ++e)
    if (!seen[static_cast<std::size_t>(e)]) return fail("an edge is missing");
  return cell;
}

nn::Sequential relu_conv_bn(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride) {
  return nn::Sequential(nn::ReLU(), nas::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false)),
                        nas::BatchNorm2d(nn::BatchNorm2dOptions(out)));
}

class CellModule : public nn::Module {
 public:
  CellModule(const Cell& cell, std::int64_t channels) : cell_(cell) {
    for (int e = 0; e < kEdges; ++e) {
      const std::string& op = kOps[static_cast<std::size_t>(cell[static_cast<std::size_t>(e)])];
      nn::Sequential module{nullptr};  // none and skip_connect have no module
      if (op == "nor_conv_1x1") module = relu_conv_bn(channels, channels, 1, 1);
      if (op == "nor_conv_3x3") module = relu_conv_bn(channels, channels, 3, 1);
      if (op == "avg_pool_3x3")
        module = nn::Sequential(nn::AvgPool2d(nn::AvgPool2dOptions(3).stride(1).padding(1).count_include_pad(false)));
      if (module) register_module(fmt::format("edge{}", e), module);
      ops_.push_back(std::move(module));
    }
  }

  at::Tensor forward(const at::Tensor& x) {
    std::array<at::Tensor, kNodes> nodes{x};
    for (int to = 1; to < kNodes; ++to) {
      at::Tensor sum;
      for (int from = 0; from < to; ++from) {
        const auto e = static_cast<std::size_t>(edge_index(to, from));
        if (kOps[static_cast<std::size_t>(cell_[e])] == "none") continue;
        at::Tensor y = !ops_[e] ? nodes[static_cast<std::size_t>(from)]  // skip_connect
                                          : nas::drop_path(ops_[e]->forward(nodes[static_cast<std::size_t>(from)]),
                                                           is_training() ? keep_ : 1.0);
        sum = sum.defined() ? sum + y : y;
      }
      nodes[static_cast<std::size_t>(to)] = sum.defined() ? sum : torch::zeros_like(x);  // no inputs: zero
    }
    return nodes[kNodes - 1];
  }

  void set_keep(double keep) { keep_ = keep; }

 private:
  Cell cell_;
  std::vector<nn::Sequential> ops_;
  double keep_ = 1.0;
};

class ResidualReduction : public nn::Module {
 public:
  ResidualReduction(std::int64_t in, std::int64_t out)
      : a_(register_module("conv_a", relu_conv_bn(in, out, 3, 2))),
        b_(register_module("conv_b", relu_conv_bn(out, out, 3, 1))),
        shortcut_(register_module("shortcut", nn::Sequential(nn::AvgPool2d(nn::AvgPool2dOptions(2).stride(2)),
                                                             nas::Conv2d(nn::Conv2dOptions(in, out, 1).bias(false))))) {}
  at::Tensor forward(const at::Tensor& x) { return shortcut_->forward(x) + b_->forward(a_->forward(x)); }

 private:
  nn::Sequential a_, b_, shortcut_;
};

// The benchmark's network family: its parameters (NAS-Bench-201 trained N = 5, C = 16, i.e. F = 64).
struct ModelOptions {
  std::int64_t N = 5;
  std::int64_t F = 64;
  double dropout = 0.0;

  static auto fields() {
    using O = ModelOptions;
    return std::tuple{nas::field("N", &O::N).range(1, 100).help("cells per stage"),
                      nas::field("F", &O::F).range(4, 100000).help("channels entering the classifier (the first stage "
                                                                   "has F/4)"),
                      nas::field("dropout", &O::dropout).range(0, 0.99).help("dropout before the classifier")};
  }
};

class Nb201Network final : public nas::Network, public nas::DropPathCells {
 public:
  Nb201Network(const Cell& cell, const ModelOptions& model, const nas::DataShape& data) {
    if (model.F % 4 != 0)
      throw nas::UsageError(fmt::format("nasbench201: F = {} must be a multiple of 4 (the first stage has F/4 "
                                        "channels); the smallest is 4", model.F));
    std::int64_t channels = model.F / 4;
    stem_ = register_module("stem", nn::Sequential(nas::Conv2d(nn::Conv2dOptions(data.channels, channels, 3).padding(1).bias(false)),
                                                   nas::BatchNorm2d(nn::BatchNorm2dOptions(channels))));
    for (int stage = 0; stage < 3; ++stage) {
      if (stage > 0) {
        reductions_.push_back(register_module(fmt::format("reduction{}", stage), std::make_shared<ResidualReduction>(channels, 2 * channels)));
        channels *= 2;
      }
      for (std::int64_t n = 0; n < model.N; ++n)
        cells_.push_back(register_module(fmt::format("cell{}", cells_.size()), std::make_shared<CellModule>(cell, channels)));
    }
    head_ = register_module("head", nn::Sequential(nas::BatchNorm2d(nn::BatchNorm2dOptions(channels)), nn::ReLU()));
    dropout_ = register_module("dropout", nn::Dropout(model.dropout));
    classifier_ = register_module("classifier", nn::Linear(channels, data.num_classes));
    per_stage_ = model.N;
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

 private:
  nas::NetworkOutput run(const at::Tensor& images, std::vector<std::pair<std::string, std::vector<std::int64_t>>>* shapes) {
    at::Tensor x = stem_->forward(images);
    if (shapes) shapes->emplace_back("stem", x.sizes().vec());
    for (std::size_t i = 0; i < cells_.size(); ++i) {
      const auto position = static_cast<std::int64_t>(i) % per_stage_;
      const auto stage = static_cast<std::size_t>(static_cast<std::int64_t>(i) / per_stage_);
      if (position == 0 && stage > 0) x = reductions_[stage - 1]->forward(x);
      x = cells_[i]->forward(x);
      if (shapes && position == per_stage_ - 1)
        shapes->emplace_back(fmt::format("stage {} ({} cells)", stage + 1, per_stage_), x.sizes().vec());
    }
    x = torch::adaptive_avg_pool2d(head_->forward(x), {1, 1}).flatten(1);
    nas::NetworkOutput out;
    out.logits = classifier_->forward(dropout_->forward(x));
    if (shapes) shapes->emplace_back("logits", out.logits.sizes().vec());
    return out;
  }

  nn::Sequential stem_{nullptr}, head_{nullptr};
  std::vector<std::shared_ptr<CellModule>> cells_;
  std::vector<std::shared_ptr<ResidualReduction>> reductions_;
  nn::Dropout dropout_{nullptr};
  nn::Linear classifier_{nullptr};
  std::int64_t per_stage_ = 1;
};

class Nb201Space final : public nas::Space {
 public:
  std::vector<nas::Decision> decisions() const override {
    std::vector<nas::Decision> out;
    for (int to = 1; to < kNodes; ++to)
      for (int from = 0; from < to; ++from) out.push_back({fmt::format("edge{}<-{}", to, from), static_cast<std::int64_t>(kOps.size())});
    return out;
  }

  std::string decode(const std::vector<std::int64_t>& values) const override {
    if (values.size() != kEdges) throw nas::UsageError(fmt::format("nasbench201: {} decisions, expected {}", values.size(), kEdges));
    Cell cell{};
    for (std::size_t e = 0; e < values.size(); ++e) {
      if (values[e] < 0 || values[e] >= static_cast<std::int64_t>(kOps.size()))
        throw nas::UsageError(fmt::format("nasbench201: decision {} is {}, expected 0..{}", e, values[e], kOps.size() - 1));
      cell[e] = values[e];
    }
    return to_string(cell);
  }

  // Edges are listed in one order only, so equal cells have equal strings. (Cells that compute the
  // same function through different dead edges, NB201's "UniqueString", stay distinct: they build
  // different networks.)
  std::string canonical(const std::string& genotype, const std::string& source) const override {
    return to_string(parse(genotype, source));
  }

  std::shared_ptr<nas::Network> build(const std::string& genotype, const nas::Params& model,
                                      const nas::DataShape& data) const override {
    return std::make_shared<Nb201Network>(parse(genotype, "<genotype>"), nas::options_from<ModelOptions>(model), data);
  }

  std::string model_name(const nas::Params& model) const override {
    const auto o = nas::options_from<ModelOptions>(model);
    return fmt::format("N={} C={}", o.N, o.F / 4);
  }

  std::vector<std::string> formats() const override { return {}; }
  std::string export_as(const std::string&, std::string_view format) const override { return no_format(format); }
  std::string import_from(const std::string&, std::string_view format, const std::string&) const override {
    return no_format(format);
  }

  std::string to_dot(const std::string& genotype) const override {
    Cell cell = parse(genotype, "<genotype>");
    std::string dot = "digraph nasbench201 {\n  rankdir=LR;\n  node [shape=circle];\n";
    for (int to = 1; to < kNodes; ++to)
      for (int from = 0; from < to; ++from)
        if (const std::string& op = kOps[static_cast<std::size_t>(cell[static_cast<std::size_t>(edge_index(to, from))])]; op != "none")
          dot += fmt::format("  {} -> {} [label=\"{}\"];\n", from, to, op);
    return dot + "}\n";
  }

 private:
  static std::string no_format(std::string_view format) {
    throw nas::UsageError(fmt::format("nasbench201: unknown genotype format '{}'; this space has none besides its cell string", format));
  }
};

void register_all(nas::Registrar& r) {
  r.add<nas::Space>("nasbench201", "the NAS-Bench-201 cell: 4 nodes, 6 edges, 5 ops (cell strings as in its tables)", {},
                    nas::ModelFamily{nas::schema_of<ModelOptions>(), {}},
                    [](const nas::Params&, const nas::Context&, const nas::SpaceArgs&) { return std::make_unique<Nb201Space>(); });
}

}  // namespace

NAS_PLUGIN("nasbench201-space", "0.1.0", register_all)
