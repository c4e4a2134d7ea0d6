# daecl_add_plugin(KIND corruption NAME masking SOURCES masking.c [CL masking.cl] [LIBS ...])
# Builds ${DAECL_PLUGIN_BUILD_DIR}/daecl-<kind>-<name>.so against daecl::plugin
# (the public headers, -ffp-contract=off). Only the entry symbol is exported,
# and --no-undefined makes linking fail if the plugin reaches for libdaecl
# instead of the host table. With CL, <name>_cl.h (in the build folder)
# defines `daecl_cl_source`, the embedded shared kernel C. `cmake --install`
# puts the plugin in ${DAECL_PLUGIN_DESTINATION} under the install prefix.
# The same file serves daecl's own plugins and, installed with the CMake
# package (cmake/DaeclInstall.cmake), plugins built out of tree.
if(NOT DEFINED DAECL_PLUGIN_BUILD_DIR)
  set(DAECL_PLUGIN_BUILD_DIR ${CMAKE_BINARY_DIR})
endif()
if(NOT DEFINED DAECL_PLUGIN_DESTINATION)
  set(DAECL_PLUGIN_DESTINATION ${CMAKE_INSTALL_LIBDIR}/daecl/plugins)
endif()

function(daecl_add_plugin)
  cmake_parse_arguments(P "" "KIND;NAME;CL" "SOURCES;LIBS" ${ARGN})
  if(NOT P_KIND MATCHES "^(corruption|likelihood|backend|comm)$")
    message(FATAL_ERROR "daecl_add_plugin: KIND must be corruption, likelihood, backend or comm, not '${P_KIND}'")
  endif()
  if(NOT P_NAME MATCHES "^[a-z][a-z0-9_]*$")
    message(FATAL_ERROR "daecl_add_plugin: NAME '${P_NAME}' must be lower_snake_case ([a-z][a-z0-9_]*), as configs write it")
  endif()
  set(target daecl-${P_KIND}-${P_NAME})
  if(P_CL)
    set(header ${CMAKE_CURRENT_BINARY_DIR}/${P_NAME}_cl.h)
    daecl_embed(OUTPUT ${header} VAR daecl_cl_source FILES ${CMAKE_CURRENT_SOURCE_DIR}/${P_CL})
    list(APPEND P_SOURCES ${header})
  endif()
  add_library(${target} MODULE ${P_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX "" SUFFIX ".so" OUTPUT_NAME ${target}
    LIBRARY_OUTPUT_DIRECTORY ${DAECL_PLUGIN_BUILD_DIR}
    C_VISIBILITY_PRESET hidden)
  target_include_directories(${target} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR})
  target_link_options(${target} PRIVATE -Wl,--no-undefined)
  target_link_libraries(${target} PRIVATE daecl::plugin m ${P_LIBS})
  install(TARGETS ${target} LIBRARY DESTINATION ${DAECL_PLUGIN_DESTINATION})
endfunction()
