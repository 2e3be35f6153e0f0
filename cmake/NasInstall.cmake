# Installs nas-host, the plugins and the SDK for out-of-tree plugins: the sdk and engine layers' headers,
# libraries and CMake package. The host layer's library is installed for nas-host, but neither exported
# nor its headers installed: a plugin cannot reach it.
include(CMakePackageConfigHelpers)

install(TARGETS nas_sdk nas_engine EXPORT NasTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS nas_host LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS nas-host RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY core/sdk/include/nas core/engine/include/nas DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY "${NAS_PLUGIN_OUTPUT_DIR}/" DESTINATION ${CMAKE_INSTALL_LIBDIR}/nas/plugins
        FILES_MATCHING PATTERN "libnas_*.so")
install(EXPORT NasTargets NAMESPACE nas:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nas)
configure_package_config_file(cmake/nasConfig.cmake.in "${CMAKE_BINARY_DIR}/nasConfig.cmake"
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nas)
write_basic_package_version_file("${CMAKE_BINARY_DIR}/nasConfigVersion.cmake" COMPATIBILITY SameMajorVersion)
install(FILES "${CMAKE_BINARY_DIR}/nasConfig.cmake" "${CMAKE_BINARY_DIR}/nasConfigVersion.cmake"
              cmake/NasPlugin.cmake cmake/nas_plugin.map
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nas)
