// The exception types the host maps to exit codes: Error -> 1 (runtime failure), UsageError -> 2.
#pragma once

#include <stdexcept>
#include <string>

#include "nas/api.hpp"

namespace nas {

/// A runtime failure (exit code 1).
class NAS_API Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  ~Error() override;
};

/// Bad usage, config or plugin: the user must change something (exit code 2).
class NAS_API UsageError : public Error {
 public:
  using Error::Error;
  ~UsageError() override;
};

}  // namespace nas
