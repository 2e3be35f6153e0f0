// The seeding rule (nas/seed.hpp).
#include "nas/seed.hpp"

namespace nas {

std::mt19937_64 generator(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
  std::seed_seq seq{seed, stream, index, seed >> 32, index >> 32};
  return std::mt19937_64(seq);
}

std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
  return generator(seed, stream, index)();
}

}  // namespace nas
