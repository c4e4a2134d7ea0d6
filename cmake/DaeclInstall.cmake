# The plugin SDK: install rules for the public headers, the CMake package
# (find_package(daecl) gives daecl::plugin and daecl_add_plugin) and the
# pkg-config file, plus daecl::plugin itself, which in-tree plugins link too,
# so one mechanism builds plugins in this tree and out of it.
include(CMakePackageConfigHelpers)

set(DAECL_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/daecl)

# daecl::plugin: headers only (plugins never link libdaecl), no FMA
# contraction (shared kernel C must round as OpenCL C does), and the OpenCL
# version every target that includes OpenCL's headers assumes. In this tree
# it also brings daecl_flags (cmake/DaeclFlags.cmake: warnings, sanitizers);
# $<BUILD_INTERFACE:> keeps that out of the installed package, whose users
# choose their own warnings.
add_library(daecl_plugin INTERFACE)
add_library(daecl::plugin ALIAS daecl_plugin)
set_target_properties(daecl_plugin PROPERTIES EXPORT_NAME plugin)
target_include_directories(daecl_plugin INTERFACE
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_compile_options(daecl_plugin INTERFACE -ffp-contract=off)
target_compile_definitions(daecl_plugin INTERFACE CL_TARGET_OPENCL_VERSION=120)
target_link_libraries(daecl_plugin INTERFACE $<BUILD_INTERFACE:daecl_flags>)

# Where an installed daecl finds its plugins relative to its own program, so
# an install moved to another prefix (cmake --install --prefix) still finds
# them (core/registry.c). The build tree mirrors it: build/bin and
# build/lib/daecl/plugins.
file(RELATIVE_PATH DAECL_PLUGIN_REL_DIR ${CMAKE_INSTALL_FULL_BINDIR} ${DAECL_PLUGIN_INSTALL_DIR})
target_compile_definitions(daecl_core PRIVATE DAECL_PLUGIN_REL_DIR="${DAECL_PLUGIN_REL_DIR}")

file(GLOB DAECL_PUBLIC_HEADERS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/include/daecl/*.h)
install(FILES ${DAECL_PUBLIC_HEADERS} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/daecl)

install(TARGETS daecl_plugin EXPORT daeclTargets)
install(EXPORT daeclTargets NAMESPACE daecl:: FILE daeclTargets.cmake
  DESTINATION ${DAECL_CMAKE_INSTALL_DIR})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/daeclConfig.cmake.in
  ${PROJECT_BINARY_DIR}/daeclConfig.cmake
  INSTALL_DESTINATION ${DAECL_CMAKE_INSTALL_DIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_BINDIR DAECL_PLUGIN_DESTINATION)
# 0.x versions of daecl accept each other here; what really decides whether
# a plugin loads is its plugin ABI version, checked when it is loaded.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/daeclConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/daeclConfig.cmake
  ${PROJECT_BINARY_DIR}/daeclConfigVersion.cmake
  ${PROJECT_SOURCE_DIR}/cmake/DaeclPlugin.cmake
  ${PROJECT_SOURCE_DIR}/cmake/DaeclEmbed.cmake
  ${PROJECT_SOURCE_DIR}/cmake/embed.cmake
  DESTINATION ${DAECL_CMAKE_INSTALL_DIR})

# pkg-config: relative to the .pc file itself, so a moved install still works.
set(DAECL_PC_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
file(RELATIVE_PATH DAECL_PC_TO_PREFIX ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" DAECL_PC_TO_PREFIX "${DAECL_PC_TO_PREFIX}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/daecl.pc.in ${PROJECT_BINARY_DIR}/daecl.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/daecl.pc DESTINATION ${DAECL_PC_INSTALL_DIR})
