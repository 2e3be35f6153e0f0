// space/nasnet: the NASNet search space (normal + reduction cell of B blocks) as a plugin.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "genotype.hpp"
#include "network.hpp"
#include "nas/plugin.hpp"
#include "nas/space.hpp"

namespace nasnet {
namespace {

class NasnetSpace final : public nas::Space {
 public:
  NasnetSpace(Vocabulary vocabulary, nas::Context context) : v_(std::move(vocabulary)), context_(std::move(context)) {}

  std::vector<nas::Decision> decisions() const override {
    std::vector<nas::Decision> out;
    for (const char* cell : {"normal", "reduction"})
      for (std::int64_t b = 0; b < v_.blocks; ++b) {
        auto name = [&](const char* what) { return fmt::format("{}.block{}.{}", cell, b, what); };
        out.push_back({name("input_a"), 2 + b});
        out.push_back({name("input_b"), 2 + b});
        out.push_back({name("op_a"), static_cast<std::int64_t>(v_.ops.size())});
        out.push_back({name("op_b"), static_cast<std::int64_t>(v_.ops.size())});
        out.push_back({name("combine"), static_cast<std::int64_t>(v_.combines.size())});
      }
    return out;
  }

  std::string decode(const std::vector<std::int64_t>& values) const override {
    std::vector<nas::Decision> ds = decisions();
    if (values.size() != ds.size())
      throw nas::UsageError(fmt::format("nasnet: {} decisions, expected {}", values.size(), ds.size()));
    for (std::size_t i = 0; i < ds.size(); ++i)
      if (values[i] < 0 || values[i] >= ds[i].choices)
        throw nas::UsageError(fmt::format("nasnet: decision {} ({}) is {}, expected 0..{}", i, ds[i].name, values[i],
                                          ds[i].choices - 1));
    Genotype g;
    std::size_t i = 0;
    for (Cell* cell : {&g.normal, &g.reduction}) {
      for (std::int64_t b = 0; b < v_.blocks; ++b, i += 5)
        cell->blocks.push_back(Block{{values[i], v_.ops[values[i + 2]]}, {values[i + 1], v_.ops[values[i + 3]]},
                                     v_.combines[values[i + 4]]});
      cell->concat = loose_ends(cell->blocks);
    }
    return to_yaml(g);
  }

  std::string canonical(const std::string& genotype, const std::string& source) const override {
    return to_yaml(canonicalize(parse_yaml(genotype, source, v_)));
  }

  std::shared_ptr<nas::Network> build(const std::string& genotype, const nas::Params& model,
                                      const nas::DataShape& data) const override {
    return build_network(parse_yaml(genotype, "<genotype>", v_), nas::options_from<ModelOptions>(model), data, context_);
  }

  std::string model_name(const nas::Params& model) const override {
    const auto o = nas::options_from<ModelOptions>(model);
    return fmt::format("{}@{}", o.N, o.F);
  }

  std::vector<std::string> formats() const override { return {"darts"}; }

  std::string export_as(const std::string& genotype, std::string_view format) const override {
    check_format(format);
    return to_darts(parse_yaml(genotype, "<genotype>", v_));
  }

  std::string import_from(const std::string& text, std::string_view format, const std::string& source) const override {
    check_format(format);
    return to_yaml(parse_darts(text, source, v_));
  }

  std::string to_dot(const std::string& genotype) const override {
    Genotype g = parse_yaml(genotype, "<genotype>", v_);
    std::string dot = "digraph nasnet {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n";
    int index = 0;
    for (const Cell* cell : {&g.normal, &g.reduction}) {
      std::string name = index++ == 0 ? "normal" : "reduction";
      auto node = [&](std::int64_t s) { return fmt::format("{}_{}", name, s); };
      dot += fmt::format("  subgraph cluster_{0} {{\n    label=\"{0} cell\";\n", name);
      dot += fmt::format("    {} [label=\"h_i\"];\n    {} [label=\"h_{{i-1}}\"];\n", node(0), node(1));
      for (std::size_t b = 0; b < cell->blocks.size(); ++b) {
        const Block& block = cell->blocks[b];
        std::int64_t s = static_cast<std::int64_t>(b) + 2;
        dot += fmt::format("    {} [label=\"{} ({})\", shape=ellipse];\n", node(s), s, block.combine);
        for (const Operand* o : {&block.a, &block.b})
          dot += fmt::format("    {} -> {} [label=\"{}\"];\n", node(o->input), node(s), o->op);
      }
      dot += fmt::format("    {}_out [label=\"concat\", shape=doubleoctagon];\n", name);
      for (std::int64_t s : cell->concat) dot += fmt::format("    {} -> {}_out;\n", node(s), name);
      dot += "  }\n";
    }
    return dot + "}\n";
  }

 private:
  static void check_format(std::string_view format) {
    if (format != "darts") throw nas::UsageError(fmt::format("nasnet: unknown genotype format '{}'; known: darts", format));
  }

  Vocabulary v_;
  nas::Context context_;
};

void register_all(nas::Registrar& r) {
  r.add<nas::Space>(
      "nasnet", "the NASNet space: a normal and a reduction cell of B blocks (inputs, ops, combine)",
      nas::schema_of<Vocabulary>(), model_family(),
      [](const nas::Params& p, const nas::Context& context, const nas::SpaceArgs&) {
        Vocabulary v = nas::options_from<Vocabulary>(p);
        if (v.ops.empty()) throw nas::UsageError("space/nasnet: 'ops' is empty");
        for (const std::string& op : v.ops)
          if (context.registry && !context.registry->find("op/" + op)) try {
              context.registry->require("op", op);
            } catch (const nas::UsageError& e) {
              throw nas::UsageError(fmt::format("space/nasnet: ops: {}", e.what()));  // lists the known ops
            }
        if (v.combines.empty()) throw nas::UsageError("space/nasnet: 'combines' is empty");
        for (const std::string& c : v.combines)
          if (c != "add" && c != "concat")
            throw nas::UsageError(fmt::format("space/nasnet: combine '{}'; expected add or concat", c));
        return std::make_unique<NasnetSpace>(std::move(v), context);
      });
}

}  // namespace
}  // namespace nasnet

NAS_PLUGIN("nasnet-space", "0.1.0", nasnet::register_all)
