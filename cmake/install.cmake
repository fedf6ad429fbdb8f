# cmake --install: the headers, the library and the command line, with a CMake package
# (find_package(sieve) gives sieve::sieve) and a pkg-config file (docs/cpp.md).
include(CMakePackageConfigHelpers)

set(SIEVE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/sieve)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/sieve DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS sieve EXPORT sieveTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS sieve_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(EXPORT sieveTargets NAMESPACE sieve:: DESTINATION ${SIEVE_CMAKE_DIR})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/sieveConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/sieveConfig.cmake INSTALL_DESTINATION ${SIEVE_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/sieveConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/sieveConfig.cmake ${PROJECT_BINARY_DIR}/sieveConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/sieve_imported_libraries.cmake
        DESTINATION ${SIEVE_CMAKE_DIR})

# The prefix relative to the .pc file, so the package works wherever it is installed (--prefix).
file(RELATIVE_PATH SIEVE_PC_PREFIX /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
configure_file(${PROJECT_SOURCE_DIR}/cmake/sieve.pc.in ${PROJECT_BINARY_DIR}/sieve.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/sieve.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
