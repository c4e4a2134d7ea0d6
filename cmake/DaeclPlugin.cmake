# daecl_add_plugin(KIND corruption NAME masking SOURCES masking.c [CL masking.cl] [LIBS ...])
# Builds build/lib/daecl/plugins/daecl-<kind>-<name>.so. Only the entry symbol
# is exported, and --no-undefined makes linking fail if the plugin reaches for
# libdaecl instead of the host table. With CL, <name>_cl.h (in the build
# folder) defines `daecl_cl_source`, the embedded shared kernel C.
function(daecl_add_plugin)
  cmake_parse_arguments(P "" "KIND;NAME;CL" "SOURCES;LIBS" ${ARGN})
  set(target daecl-${P_KIND}-${P_NAME})
  if(P_CL)
    set(header ${CMAKE_CURRENT_BINARY_DIR}/${P_NAME}_cl.h)
    daecl_embed(OUTPUT ${header} VAR daecl_cl_source FILES ${CMAKE_CURRENT_SOURCE_DIR}/${P_CL})
    list(APPEND P_SOURCES ${header})
  endif()
  add_library(${target} MODULE ${P_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX "" OUTPUT_NAME ${target}
    LIBRARY_OUTPUT_DIRECTORY ${DAECL_PLUGIN_BUILD_DIR}
    C_VISIBILITY_PRESET hidden)
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/include
    ${CMAKE_CURRENT_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR})
  target_link_options(${target} PRIVATE -Wl,--no-undefined)
  target_link_libraries(${target} PRIVATE m ${P_LIBS})
  install(TARGETS ${target} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/daecl/plugins)
endfunction()
