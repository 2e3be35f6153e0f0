// The one seeding rule of a run: every random stream is a function of the experiment seed, a purpose
// and an index (a child, an epoch, a step), never of a shared generator's state, so that results do
// not depend on the order in which streams are drawn, nor on threads, processes or resumes.
#pragma once

#include <cstdint>
#include <random>
#include <string_view>

#include "nas/api.hpp"

namespace nas {

/// A purpose, as the number derive_seed takes: a stable hash (FNV-1a) of its name, e.g.
/// stream("cutout"). Different names give independent streams.
constexpr std::uint64_t stream(std::string_view purpose) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : purpose) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  return h;
}

/// A seed for one use of the experiment seed: different (stream, index) give independent generators.
NAS_API std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream, std::uint64_t index);
/// The generator of (seed, stream, index) itself.
NAS_API std::mt19937_64 generator(std::uint64_t seed, std::uint64_t stream, std::uint64_t index);

}  // namespace nas
