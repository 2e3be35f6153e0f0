# ccache for every C++ compile, with the sloppiness a precompiled header needs to be cached, and keys
# that do not depend on the checkout's folder, so that a fresh clone (CI's) hits what another
# checkout on the machine compiled: paths relative to the source folder (CCACHE_BASEDIR), the build
# folder left out of the key that -g would put in it (CCACHE_NOHASHDIR), and the precompiled header
# stood for by the .sum file written beside it (CCACHE_PCH_EXTSUM; core/CMakeLists.txt).
find_program(NAS_CCACHE ccache)
if(NAS_CCACHE)
  set(CMAKE_CXX_COMPILER_LAUNCHER
      "${CMAKE_COMMAND}" -E env
      "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
      "CCACHE_BASEDIR=${CMAKE_SOURCE_DIR}"
      "CCACHE_NOHASHDIR=1"
      "CCACHE_PCH_EXTSUM=1"
      "${NAS_CCACHE}")
endif()
