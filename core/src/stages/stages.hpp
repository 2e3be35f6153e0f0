// The built-in stages, one file each (internal to the core).
#pragma once

#include "nas/stage.hpp"

namespace nas::stages {

StageDef dataset_stats();
StageDef search();
StageDef train();

}  // namespace nas::stages
