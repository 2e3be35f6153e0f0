# ccache for every C++ compile, with the sloppiness a precompiled header needs to be cached.
find_program(NAS_CCACHE ccache)
if(NAS_CCACHE)
  set(CMAKE_CXX_COMPILER_LAUNCHER
      "${CMAKE_COMMAND}" -E env
      "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
      "CCACHE_BASEDIR=${CMAKE_SOURCE_DIR}"
      "${NAS_CCACHE}")
endif()
