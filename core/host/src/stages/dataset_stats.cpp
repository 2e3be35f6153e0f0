// Stage "dataset_stats": class counts and per-channel mean and std of a dataset split, the numbers
// a training config's normalization needs. Writes dataset_stats.json in the run folder.
#include <chrono>

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "nas/files.hpp"
#include "nas/dataset.hpp"
#include "nas/log.hpp"
#include "stages/stages.hpp"

namespace nas::stages {
namespace {

void run(const StageConfig& stage, const Registry& registry, const StageContext& context) {
  const PluginChoice& choice = *stage.one("dataset");
  const std::string& split_name = stage.params.get<std::string>("split");
  Split split = split_name == "test" ? Split::test : Split::train;
  auto dataset = registry.create<Dataset>(choice.entry->name, choice.params, context, DatasetArgs{split});

  DatasetInfo info = dataset->info();
  std::int64_t limit = stage.params.get<std::int64_t>("limit");
  std::int64_t count = limit > 0 ? std::min(limit, dataset->size()) : dataset->size();
  if (count == 0) throw Error(fmt::format("dataset '{}' ({} split) has no examples", choice.entry->key, split_name));

  // Sums in double: float sums over millions of pixels lose the digits the std needs.
  at::Tensor sum = at::zeros({info.channels}, at::kDouble);
  at::Tensor sum_squares = at::zeros({info.channels}, at::kDouble);
  std::vector<std::int64_t> per_class(info.class_names.size(), 0);
  auto last_report = std::chrono::steady_clock::now();
  for (std::int64_t i = 0; i < count; ++i) {
    Example example = dataset->get(i);
    if (example.label < 0 || example.label >= static_cast<std::int64_t>(per_class.size()))
      throw Error(fmt::format("{}: example {} has label {}, expected 0..{}", choice.entry->key, i, example.label,
                              per_class.size() - 1));
    ++per_class[example.label];
    at::Tensor pixels = example.image.to(at::kDouble).reshape({info.channels, -1});
    sum += pixels.sum(1);
    sum_squares += pixels.square().sum(1);
    auto now = std::chrono::steady_clock::now();
    if (now - last_report > std::chrono::seconds(1) || i + 1 == count) {
      context.log.progress(fmt::format("dataset_stats: {}/{} examples ({:.0f}%)", i + 1, count, 100.0 * (i + 1) / count));
      last_report = now;
    }
  }
  double pixels_per_channel = static_cast<double>(count) * info.height * info.width;
  at::Tensor mean = sum / pixels_per_channel;
  at::Tensor std = (sum_squares / pixels_per_channel - mean.square()).clamp_min(0).sqrt();
  std::vector<double> mean_v(mean.data_ptr<double>(), mean.data_ptr<double>() + info.channels);
  std::vector<double> std_v(std.data_ptr<double>(), std.data_ptr<double>() + info.channels);

  nlohmann::ordered_json classes = nlohmann::ordered_json::array();
  for (std::size_t c = 0; c < per_class.size(); ++c)
    classes.push_back({{"name", info.class_names[c]}, {"count", per_class[c]}});
  nlohmann::ordered_json report{{"dataset", choice.entry->key},
                        {"split", split_name},
                        {"examples", count},
                        {"shape", {info.channels, info.height, info.width}},
                        {"mean", mean_v},
                        {"std", std_v},
                        {"classes", classes}};
  std::filesystem::path out_file = context.run_dir / "dataset_stats.json";
  write_file(out_file, report.dump(2) + "\n");
  context.log.info("{} ({} split): {} examples of {}x{}x{}, {} classes; mean [{:.4f}], std [{:.4f}]", choice.entry->key,
                   split_name, count, info.channels, info.height, info.width, per_class.size(),
                   fmt::join(mean_v, ", "), fmt::join(std_v, ", "));
  context.log.info("wrote {}", out_file.string());
}

}  // namespace

StageDef dataset_stats() {
  return StageDef{
      .name = "dataset_stats",
      .doc = "class counts and per-channel mean/std of a dataset split (for normalization)",
      .params = {param::choice("split", {"train", "test"}, "train").help("which split to measure"),
                 param::integer("limit", 0).at_least(0).help("measure only the first LIMIT examples; 0 = all")},
      .slots = {Slot{"dataset", "dataset", true, false, "the dataset to measure"}},
      .run = run,
  };
}

}  // namespace nas::stages
