# nas_add_plugin(): the one way to declare a plugin, in this tree and out of tree (installed SDK).
#
#   nas_add_plugin(<target> SOURCES <src>... [OUTPUT_DIR <dir>] [LINK <lib>...])
#
# Builds a MODULE library named lib<target>.so (targets are named nas_<kind>_<name> by convention;
# the host loads files matching libnas_*.so) that links the core SDK, exports only nas_plugin_entry,
# and refuses undefined symbols at link time rather than at load time.
set(NAS_PLUGIN_VERSION_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/nas_plugin.map")

function(nas_add_plugin target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "OUTPUT_DIR" "SOURCES;LINK")
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "nas_add_plugin(${target}): SOURCES is required")
  endif()
  add_library(${target} MODULE ${arg_SOURCES})
  target_link_libraries(${target} PRIVATE nas::core ${arg_LINK})
  target_link_options(${target} PRIVATE
    "LINKER:--version-script=${NAS_PLUGIN_VERSION_SCRIPT}"
    "LINKER:--exclude-libs,ALL"
    "LINKER:--no-undefined")
  set_target_properties(${target} PROPERTIES
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LINK_DEPENDS "${NAS_PLUGIN_VERSION_SCRIPT}")
  if(TARGET nas_torch_pch)
    target_precompile_headers(${target} REUSE_FROM nas_torch_pch)
  endif()
  if(arg_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${arg_OUTPUT_DIR}")
  elseif(DEFINED NAS_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${NAS_PLUGIN_OUTPUT_DIR}")
  endif()
endfunction()
