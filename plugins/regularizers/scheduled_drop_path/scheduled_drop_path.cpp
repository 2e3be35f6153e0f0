// regularizer/scheduled_drop_path: NASNet's ScheduledDropPath. Every op output in a cell (identity
// excluded) is dropped per example with a probability that grows with the cell's depth and with
// training time (shared/design/nasnet-facts.md):
//   keep_cell = 1 - (cell_index + 1) / total_cells * (1 - keep_prob)
//   keep      = 1 - min(1, step / total_steps) * (1 - keep_cell)
// The network applies it in training only.
#include <algorithm>
#include <vector>

#include "nas/options.hpp"
#include "nas/plugin.hpp"
#include "nas/regularizer.hpp"
#include "nas/space.hpp"

namespace {

struct Options {
  double keep_prob = 0.6;

  static auto fields() {
    return std::tuple{nas::field("keep_prob", &Options::keep_prob).range(0.01, 1).help("keep probability of the last "
                                                                                        "cell at the end of training")};
  }
};

class ScheduledDropPath final : public nas::Regularizer {
 public:
  explicit ScheduledDropPath(Options options) : keep_prob_(options.keep_prob) {}

  void on_step(nas::Network& network, const nas::TrainingStep& step) override {
    nas::DropPathCells* drop_path = network.drop_path_cells();
    if (!drop_path)
      throw nas::UsageError("regularizer/scheduled_drop_path: the space's networks have no cells to drop paths in");
    const std::int64_t cells = drop_path->num_cells();
    const double progress = std::min(1.0, static_cast<double>(step.step) / static_cast<double>(step.total_steps));
    std::vector<double> keep(static_cast<std::size_t>(cells));
    for (std::int64_t i = 0; i < cells; ++i) {
      double keep_cell = 1.0 - static_cast<double>(i + 1) / static_cast<double>(cells) * (1.0 - keep_prob_);
      keep[static_cast<std::size_t>(i)] = 1.0 - progress * (1.0 - keep_cell);
    }
    drop_path->set_drop_path_keep(keep);
  }

 private:
  double keep_prob_;
};

void register_all(nas::Registrar& r) {
  r.add<nas::Regularizer>(
      "scheduled_drop_path", "NASNet's ScheduledDropPath: drop probability grows with cell depth and training time",
      nas::schema_of<Options>(), [](const nas::Params& p, const nas::Context&, const nas::RegularizerArgs&) {
        return std::make_unique<ScheduledDropPath>(nas::options_from<Options>(p));
      });
}

}  // namespace

NAS_PLUGIN("scheduled_drop_path", "0.1.0", register_all)
