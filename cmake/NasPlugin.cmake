# nas_add_plugin(): the one way to declare a plugin, in this tree and out of tree (installed SDK).
#
#   nas_add_plugin(<target> SOURCES <src>... [OUTPUT_DIR <dir>] [LINK <lib>...])
#
# Builds a MODULE library named lib<target>.so (targets are named nas_<kind>_<name> by convention;
# the host loads files matching libnas_*.so) that links the SDK and the engine (never the host), exports only nas_plugin_entry,
# and refuses undefined symbols at link time rather than at load time.
set(NAS_PLUGIN_VERSION_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/nas_plugin.map")

# nas_includes_torch(<file> <out>): whether a source includes torch's tensor or module headers, directly
# or through the project headers it includes ("..." includes, searched next to the file, then in
# NAS_HEADER_DIRS; results are memoized).
function(nas_includes_torch file out)
  get_property(known GLOBAL PROPERTY "NAS_INCLUDES_TORCH_${file}" SET)
  if(known)
    get_property(result GLOBAL PROPERTY "NAS_INCLUDES_TORCH_${file}")
    set(${out} ${result} PARENT_SCOPE)
    return()
  endif()
  set_property(GLOBAL PROPERTY "NAS_INCLUDES_TORCH_${file}" OFF)  # a cycle ends here
  set(result OFF)
  file(STRINGS "${file}" includes REGEX "^#include [<\"]")
  foreach(line IN LISTS includes)
    if(line MATCHES "^#include <(torch|ATen)/" AND NOT line MATCHES "<torch/version\\.h>")
      set(result ON)
      break()
    elseif(line MATCHES "^#include \"([^\"]+)\"")
      cmake_path(GET file PARENT_PATH here)
      foreach(dir IN ITEMS "${here}" LISTS NAS_HEADER_DIRS)
        if(EXISTS "${dir}/${CMAKE_MATCH_1}")
          nas_includes_torch("${dir}/${CMAKE_MATCH_1}" nested)
          if(nested)
            set(result ON)
          endif()
          break()
        endif()
      endforeach()
      if(result)
        break()
      endif()
    endif()
  endforeach()
  set_property(GLOBAL PROPERTY "NAS_INCLUDES_TORCH_${file}" ${result})
  set(${out} ${result} PARENT_SCOPE)
endfunction()

# nas_use_torch_pch(<target>): reuse the precompiled <torch/torch.h> in the target's sources that include
# torch (nas_includes_torch). The others skip it: loading it costs more than such a source's whole compile
# (measured: a source including only light headers compiles about 3x slower with it, one including the
# SDK's module headers about 1.4-2.4x faster). The sources are read when CMake configures: after changing
# their includes, re-run cmake --preset.
function(nas_use_torch_pch target)
  if(NOT TARGET nas_torch_pch)
    return()
  endif()
  target_precompile_headers(${target} REUSE_FROM nas_torch_pch)
  get_target_property(sources ${target} SOURCES)
  get_target_property(source_dir ${target} SOURCE_DIR)
  foreach(source IN LISTS sources)
    cmake_path(ABSOLUTE_PATH source BASE_DIRECTORY "${source_dir}" OUTPUT_VARIABLE file)
    if(file MATCHES "\\.cpp$")
      nas_includes_torch("${file}" includes_torch)
      if(NOT includes_torch)
        set_source_files_properties(${source} TARGET_DIRECTORY ${target} PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
      endif()
    endif()
  endforeach()
endfunction()

function(nas_add_plugin target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "OUTPUT_DIR" "SOURCES;LINK")
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "nas_add_plugin(${target}): SOURCES is required")
  endif()
  add_library(${target} MODULE ${arg_SOURCES})
  set_property(GLOBAL APPEND PROPERTY NAS_PLUGIN_TARGETS ${target})  # so tests can depend on them all
  target_link_libraries(${target} PRIVATE nas::engine ${arg_LINK})
  target_link_options(${target} PRIVATE
    "LINKER:--version-script=${NAS_PLUGIN_VERSION_SCRIPT}"
    "LINKER:--exclude-libs,ALL"
    "LINKER:--no-undefined")
  set_target_properties(${target} PROPERTIES
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LINK_DEPENDS "${NAS_PLUGIN_VERSION_SCRIPT}")
  nas_use_torch_pch(${target})
  if(arg_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${arg_OUTPUT_DIR}")
  elseif(DEFINED NAS_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${NAS_PLUGIN_OUTPUT_DIR}")
  endif()
endfunction()
