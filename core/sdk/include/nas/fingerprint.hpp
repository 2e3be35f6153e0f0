// The build fingerprint: what must agree between the host and a plugin for C++ calls to be safe.
#pragma once

#include <torch/version.h>

#define NAS_STRINGIFY_(x) #x
#define NAS_STRINGIFY(x) NAS_STRINGIFY_(x)

#if defined(__clang__)
#define NAS_COMPILER_ID "clang" NAS_STRINGIFY(__clang_major__)
#elif defined(__GNUC__)
#define NAS_COMPILER_ID "gcc" NAS_STRINGIFY(__GNUC__)
#else
#define NAS_COMPILER_ID "unknown-compiler"
#endif

#if defined(_GLIBCXX_USE_CXX11_ABI)
#define NAS_CXX11_ABI NAS_STRINGIFY(_GLIBCXX_USE_CXX11_ABI)
#else
#define NAS_CXX11_ABI "n/a"
#endif

/// e.g. "gcc12;cxx11abi=1;torch=2.15.0". Compiler family and major version, libstdc++'s dual-ABI flag
/// and the exact LibTorch version: the things that change the layout of what crosses the boundary.
#define NAS_BUILD_FINGERPRINT                                                                  \
  NAS_COMPILER_ID ";cxx11abi=" NAS_CXX11_ABI ";torch=" NAS_STRINGIFY(TORCH_VERSION_MAJOR) "." \
      NAS_STRINGIFY(TORCH_VERSION_MINOR) "." NAS_STRINGIFY(TORCH_VERSION_PATCH)
