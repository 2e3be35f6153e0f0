// The list of built-in stages, in the order a pipeline runs them by default.
#include "stages/stages.hpp"

#include <fmt/format.h>

#include "nas/error.hpp"

namespace nas {

const std::vector<StageDef>& builtin_stages() {
  static const std::vector<StageDef> all{stages::dataset_stats(), stages::search(), stages::select(),
                                                 stages::retrain(), stages::train()};
  return all;
}

const PluginChoice* StageConfig::one(std::string_view slot) const {
  auto it = slots.find(slot);
  if (it == slots.end()) throw Error(fmt::format("stage '{}' has no slot '{}'", def->name, slot));
  return it->second.empty() ? nullptr : &it->second.front();
}

}  // namespace nas
