// nas-host: runs a pipeline from one YAML file, and lists and describes plugins.
#include <cstdio>
#include <exception>

#include <c10/util/Exception.h>
#include <fmt/format.h>

#include "commands.hpp"
#include "nas/error.hpp"

int main(int argc, char** argv) {
  try {
    return nas::host::dispatch(argc, argv);
  } catch (const nas::UsageError& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  } catch (const c10::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what_without_backtrace());  // LibTorch's backtrace helps no user
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
}
