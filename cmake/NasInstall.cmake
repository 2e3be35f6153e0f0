# Installs nas-host, the plugins and the SDK (headers, libnas-core, CMake package) for out-of-tree plugins.
include(CMakePackageConfigHelpers)

install(TARGETS nas_core EXPORT NasTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS nas-host RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY core/include/nas DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY "${NAS_PLUGIN_OUTPUT_DIR}/" DESTINATION ${CMAKE_INSTALL_LIBDIR}/nas/plugins
        FILES_MATCHING PATTERN "libnas_*.so")
install(EXPORT NasTargets NAMESPACE nas:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nas)
configure_package_config_file(cmake/nasConfig.cmake.in "${CMAKE_BINARY_DIR}/nasConfig.cmake"
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nas)
write_basic_package_version_file("${CMAKE_BINARY_DIR}/nasConfigVersion.cmake" COMPATIBILITY SameMajorVersion)
install(FILES "${CMAKE_BINARY_DIR}/nasConfig.cmake" "${CMAKE_BINARY_DIR}/nasConfigVersion.cmake"
              cmake/NasPlugin.cmake cmake/nas_plugin.map
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nas)
