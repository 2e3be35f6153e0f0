// The genotype readers: NASNet's YAML (FUZZ_SPACE=nasnet), its DARTS text (nasnet with FUZZ_FORMAT=darts)
// and NAS-Bench-201's cell strings (nasbench201); one target, chosen when it is built.
#include "fuzz.hpp"
#include "nas/space.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::shared_ptr<const nas::Space> space = nas::fuzz::plugins().create<nas::Space>(
      FUZZ_SPACE, nas::fuzz::params("space/" FUZZ_SPACE), nas::fuzz::context(), {});
  const std::string text = nas::fuzz::text(data, size);
  try {
    const std::string read = std::string(FUZZ_FORMAT).empty() ? space->canonical(text, "fuzz")
                                                              : space->import_from(text, FUZZ_FORMAT, "fuzz");
    // What it accepted must survive the way back: its canonical form is a fixed point, and exports.
    const std::string canonical = space->canonical(read, "read");
    if (space->canonical(canonical, "canonical") != canonical) __builtin_trap();
    for (const std::string& format : space->formats()) (void)space->export_as(canonical, format);
    (void)space->to_dot(canonical);
  } catch (const nas::Error&) {
  }
  return 0;
}
