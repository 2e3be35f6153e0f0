# Finds LibTorch (from the pinned PyPI wheel) and the Debian-packaged dependencies.

# LibTorch comes from the machine's python3 (the first on PATH, as in scripts/setup.sh, which installs
# the pinned wheel there); FindPython3 could pick another interpreter that lacks it.
find_program(NAS_PYTHON python3 REQUIRED)
if(NOT Torch_DIR)
  execute_process(
    COMMAND "${NAS_PYTHON}" -c "import torch, sys; sys.stdout.write(torch.utils.cmake_prefix_path)"
    OUTPUT_VARIABLE nas_torch_prefix RESULT_VARIABLE nas_torch_rc ERROR_QUIET)
  if(NOT nas_torch_rc EQUAL 0)
    message(FATAL_ERROR "torch is not installed for ${NAS_PYTHON}; run scripts/setup.sh (as root) first")
  endif()
  list(APPEND CMAKE_PREFIX_PATH "${nas_torch_prefix}")
endif()

# Torch's CMake config runs CUDA checks against the system toolkit; we compile no CUDA code ourselves.
if(NOT DEFINED CUDAToolkit_ROOT AND EXISTS /usr/local/cuda)
  set(CUDAToolkit_ROOT /usr/local/cuda)
endif()
if(NOT DEFINED TORCH_CUDA_ARCH_LIST)
  set(TORCH_CUDA_ARCH_LIST "8.0;9.0")  # only silences torch's GPU auto-detection
endif()
find_package(Torch REQUIRED)

file(STRINGS "${CMAKE_SOURCE_DIR}/scripts/requirements.txt" nas_torch_pin REGEX "^torch==")
string(REPLACE "torch==" "" NAS_TORCH_PIN "${nas_torch_pin}")
if(NOT Torch_VERSION VERSION_EQUAL NAS_TORCH_PIN)
  message(WARNING "found LibTorch ${Torch_VERSION}, but scripts/requirements.txt pins ${NAS_TORCH_PIN}")
endif()

# The wheel's libraries carry no RUNPATH to the CUDA libraries of the nvidia-* wheels (Python preloads
# them). We give every binary an old-style RPATH (inherited by its dependencies, unlike RUNPATH) to
# torch/lib and those folders, so that the right libcudart/libnccl load instead of other system copies.
get_filename_component(nas_site_packages "${TORCH_INSTALL_PREFIX}/.." ABSOLUTE)
file(GLOB NAS_NVIDIA_LIB_DIRS LIST_DIRECTORIES true "${nas_site_packages}/nvidia/*/lib")
set(NAS_TORCH_RPATH "${TORCH_INSTALL_PREFIX}/lib" ${NAS_NVIDIA_LIB_DIRS})
list(APPEND CMAKE_BUILD_RPATH ${NAS_TORCH_RPATH})
add_link_options(LINKER:--disable-new-dtags)

# fmt: the wheel ships fmt 12 headers that shadow Debian's libfmt-dev on the include path of every
# target that uses torch, so we use exactly those headers, header-only: one fmt in every translation unit.
add_compile_definitions(FMT_HEADER_ONLY)

# The OpenMP runtime LibTorch's CPU kernels run on (the wheel ships its libgomp.so.1 in torch/lib; the
# same soname loads once). The loader sets its threads' OpenMP team size to 1 (core/engine/src/data.cpp).
find_library(NAS_OPENMP_RUNTIME NAMES libgomp.so.1 gomp HINTS "${TORCH_INSTALL_PREFIX}/lib" REQUIRED)

find_package(Boost 1.74 REQUIRED COMPONENTS program_options)
find_package(yaml-cpp REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(Threads REQUIRED)
find_package(SQLite3 REQUIRED)
# c10d's ProcessGroupGloo.hpp includes gloo's headers, which the wheel does not ship. Debian's are
# older than the gloo inside libtorch, which is harmless: only pointers to gloo's types reach our code.
find_path(NAS_GLOO_INCLUDE_DIR gloo/algorithm.h)
if(NOT NAS_GLOO_INCLUDE_DIR)
  message(FATAL_ERROR "gloo's headers (gloo/algorithm.h) not found; install libgloo-dev (scripts/setup.sh)")
endif()
if(NAS_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
