// The one header a plugin includes: the ABI, the registrar, schemas and the NAS_PLUGIN macro.
//
//   void register_all(nas::Registrar& r) {
//     r.add<nas::Controller>("random", "uniform sampling", {nas::param::integer("x", 1)},
//                            [](const nas::Params& p, const nas::Context& c, const nas::ControllerArgs& a) {...});
//   }
//   NAS_PLUGIN("my-plugin", "1.0.0", register_all)
#pragma once

#include <exception>

#include <fmt/format.h>

#include "nas/abi.h"
#include "nas/fingerprint.hpp"
#include "nas/registry.hpp"
#include "nas/schema.hpp"

namespace nas::detail {

// Nothing may cross the C boundary as an exception: whatever the plugin throws becomes a failure.
inline void run_registration(nas_registrar* registrar, void (*register_fn)(Registrar&)) noexcept {
  auto& r = *reinterpret_cast<Registrar*>(registrar);
  try {
    register_fn(r);
  } catch (const std::exception& e) {
    r.fail(e.what());
  } catch (...) {
    r.fail("unknown exception");
  }
}

}  // namespace nas::detail

/// Declares the plugin's entry symbol. NAME and VERSION are string literals; REGISTER is a
/// `void(nas::Registrar&)` function that adds the plugin's factories.
#define NAS_PLUGIN(NAME, VERSION, REGISTER)                                                          \
  namespace {                                                                                        \
  void nas_plugin_register_(nas_registrar* r) noexcept { ::nas::detail::run_registration(r, REGISTER); } \
  }                                                                                                  \
  extern "C" __attribute__((visibility("default"))) const nas_plugin_info* nas_plugin_entry(void) {  \
    static const nas_plugin_info info{NAS_ABI_MAJOR, NAS_ABI_MINOR, NAS_BUILD_FINGERPRINT, NAME,     \
                                      VERSION, &nas_plugin_register_};                               \
    return &info;                                                                                    \
  }
