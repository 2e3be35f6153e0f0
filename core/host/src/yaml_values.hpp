// Parameter values written as YAML, the one way the host writes them (resolved configs, the space line
// of genotype files), so that what it writes reads back to the same values.
#pragma once

#include <yaml-cpp/yaml.h>

#include "nas/schema.hpp"

namespace nas {

void emit_value(YAML::Emitter& out, const Value& value);
/// `key: value` for every parameter of `schema`, in its order.
void emit_params(YAML::Emitter& out, const Schema& schema, const Params& params);

}  // namespace nas
