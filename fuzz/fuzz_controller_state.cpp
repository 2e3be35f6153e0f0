// Restoring a controller (FUZZ_CONTROLLER) from a saved state made of the input, then a round of
// proposals and observations from the restored state.
#include <cstdlib>

#include "fuzz.hpp"
#include "nas/controller.hpp"
#include "nas/space.hpp"

namespace {

std::unique_ptr<nas::Controller> make_controller() {
  static const std::shared_ptr<const nas::Space> space = nas::fuzz::plugins().create<nas::Space>(
      "nasnet", nas::fuzz::params("space/nasnet"), nas::fuzz::context(), {});
  return nas::fuzz::plugins().create<nas::Controller>(FUZZ_CONTROLLER, nas::fuzz::params("controller/" FUZZ_CONTROLLER),
                                                      nas::fuzz::context(), {space->decisions()});
}

void one_round(nas::Controller& controller) {
  std::vector<nas::Outcome> outcomes;
  for (nas::Proposal& p : controller.propose(4)) outcomes.push_back(nas::Outcome{std::move(p), 0.5, ""});
  controller.observe(outcomes);
}

}  // namespace

// With NAS_FUZZ_SEEDS set (scripts/fuzz.sh does), writes a real saved state there first: the seed.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("NAS_FUZZ_SEEDS")) {
    auto controller = make_controller();
    one_round(*controller);
    const std::string state = controller->save_state();
    nas::fuzz::write(std::filesystem::path(dir) / "state", reinterpret_cast<const std::uint8_t*>(state.data()), state.size());
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto controller = make_controller();
  try {
    controller->load_state(nas::fuzz::text(data, size));
    one_round(*controller);
  } catch (const nas::Error&) {
  }
  return 0;
}
