// Plugins whose registration goes wrong, chosen at compile time: THROWS, REGISTERS_NOTHING,
// REGISTERS_TWICE (the same key twice), or DUPLICATE_KEY (a key another test plugin also registers).
#include <stdexcept>

#include "nas/plugin.hpp"
#include "nas/regularizer.hpp"

namespace {

class Noop final : public nas::Regularizer {};

void add_noop(nas::Registrar& r, const char* name) {
  r.add<nas::Regularizer>(name, "does nothing", {},
                          [](const nas::Params&, const nas::Context&, const nas::RegularizerArgs&) {
                            return std::make_unique<Noop>();
                          });
}

void register_all(nas::Registrar& r) {
#if defined(THROWS)
  add_noop(r, "before_the_throw");
  throw std::runtime_error("boom while registering");
#elif defined(REGISTERS_NOTHING)
  (void)r;
#elif defined(REGISTERS_TWICE)
  add_noop(r, "twice");
  add_noop(r, "twice");
#elif defined(DUPLICATE_KEY)
  add_noop(r, "shared_name");
#endif
}

}  // namespace

NAS_PLUGIN("bad_register", "0.0.1", register_all)
