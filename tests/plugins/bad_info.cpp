// A plugin whose info is wrong in one way, chosen at compile time: BAD_ABI_MAJOR, BAD_ABI_MINOR or
// BAD_FINGERPRINT. The host must reject it before calling any of its C++.
#include <cstdlib>

#include "nas/plugin.hpp"

namespace {

void register_nothing(nas_registrar*) { std::abort(); }  // must never be called

#if defined(BAD_ABI_MAJOR)
constexpr nas_plugin_info info{NAS_ABI_MAJOR + 1, 0, NAS_BUILD_FINGERPRINT, "bad", "0.0.1", &register_nothing};
#elif defined(BAD_ABI_MINOR)
constexpr nas_plugin_info info{NAS_ABI_MAJOR, NAS_ABI_MINOR + 1, NAS_BUILD_FINGERPRINT, "bad", "0.0.1", &register_nothing};
#elif defined(BAD_FINGERPRINT)
constexpr nas_plugin_info info{NAS_ABI_MAJOR, NAS_ABI_MINOR, "gcc1;cxx11abi=0;torch=0.0.0", "bad", "0.0.1", &register_nothing};
#endif

}  // namespace

extern "C" __attribute__((visibility("default"))) const nas_plugin_info* nas_plugin_entry(void) { return &info; }
