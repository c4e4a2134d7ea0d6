# daecl_embed(OUTPUT header VAR name FILES a.cl b.h ...)
# Generates, at build time, a header defining
#     static const char name[] = "...contents of the files, concatenated...";
# so OpenCL C sources ship inside the shared object that uses them.
set(DAECL_EMBED_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/embed.cmake)

function(daecl_embed)
  cmake_parse_arguments(E "" "OUTPUT;VAR" "FILES" ${ARGN})
  add_custom_command(
    OUTPUT ${E_OUTPUT}
    COMMAND ${CMAKE_COMMAND} -DOUT=${E_OUTPUT} -DVAR=${E_VAR} "-DFILES=${E_FILES}" -P ${DAECL_EMBED_SCRIPT}
    DEPENDS ${E_FILES} ${DAECL_EMBED_SCRIPT}
    COMMENT "Embedding ${E_VAR}"
    VERBATIM)
endfunction()
