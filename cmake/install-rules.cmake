include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS courier EXPORT courierTargets)
set(courier_cmake_dir ${CMAKE_INSTALL_DATADIR}/courier/cmake)
install(EXPORT courierTargets NAMESPACE courier:: DESTINATION ${courier_cmake_dir})
configure_package_config_file(cmake/courierConfig.cmake.in
    ${CMAKE_CURRENT_BINARY_DIR}/courierConfig.cmake INSTALL_DESTINATION ${courier_cmake_dir})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/courierConfigVersion.cmake
    COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES
    ${CMAKE_CURRENT_BINARY_DIR}/courierConfig.cmake
    ${CMAKE_CURRENT_BINARY_DIR}/courierConfigVersion.cmake
    cmake/Findasio.cmake cmake/FindRapidJSONTarget.cmake
    DESTINATION ${courier_cmake_dir})
