/* The plugin ABI: the one C entry point every plugin exports, frozen in layout.
 *
 * The host reads this struct before it calls any C++ in the plugin: the ABI major must equal the
 * host's, the minor must not be newer, and the build fingerprint (compiler, C++ ABI flag, LibTorch
 * version) must match; only then is register_factories called. */
#ifndef NAS_ABI_H
#define NAS_ABI_H

#include <stddef.h>
#include <stdint.h>

/* 2.0: the SDK split into libnas-sdk and libnas-engine; Context, Space and Network changed (model
 * families, capabilities). Minor versions add to what plugins may use. 2.1: presets of any plugin's
 * own parameters (Registrar::add's presets, Entry::presets). 2.2: Controller::learning_signals (the
 * host calls it only on controllers of plugins built for 2.2 or later: older vtables lack it), and an
 * evaluator's Context::run_dir is its stage's folder (RUN_DIR/<stage>/; older ones keep RUN_DIR).
 * 2.3: the scheduler kind (multi-fidelity search) and Candidate::fidelity, appended to Candidate (which
 * the host allocates: older evaluators read the fields before it unchanged, and get no fidelity).
 * 2.4: ControllerArgs::screen (zero-cost pre-screening), appended the same way. 2.5:
 * nas::every_second_pixel (nas/space.hpp), for spaces' factorized reductions. */
#define NAS_ABI_MAJOR 2u
#define NAS_ABI_MINOR 5u
#define NAS_PLUGIN_ENTRY_SYMBOL "nas_plugin_entry"

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque to C; it is a nas::Registrar. */
typedef struct nas_registrar nas_registrar;

typedef struct nas_plugin_info {
  uint32_t abi_major;
  uint32_t abi_minor;
  const char* fingerprint; /* nas_build_fingerprint() of the plugin's build */
  const char* name;
  const char* version;
  /* Registers every factory; must not throw (failures go to the registrar). */
  void (*register_factories)(nas_registrar* registrar);
} nas_plugin_info;

typedef const nas_plugin_info* (*nas_plugin_entry_fn)(void);

#ifdef __cplusplus
}  /* extern "C" */
static_assert(sizeof(nas_plugin_info) == 40, "nas_plugin_info layout is frozen");
static_assert(offsetof(nas_plugin_info, fingerprint) == 8, "nas_plugin_info layout is frozen");
static_assert(offsetof(nas_plugin_info, register_factories) == 32, "nas_plugin_info layout is frozen");
#endif

#endif /* NAS_ABI_H */
