# daecl_flags: the compile and link flags of every target daecl builds, as
# one INTERFACE target that each of them links (PRIVATE), instead of
# directory-wide add_compile_options. Plugins get it through daecl::plugin
# (cmake/DaeclInstall.cmake), in this tree only: an installed daecl::plugin
# carries -ffp-contract=off alone. daecl_check_flags(), called once at the end
# of the top-level CMakeLists.txt, fails the configure step if a target that
# compiles C does not link it, so a new target cannot quietly lose
# -ffp-contract=off and stop agreeing with the OpenCL side.
add_library(daecl_flags INTERFACE)

# -ffp-contract=off: shared kernel C (include/daecl/clc.h) must round every
# add and mul as the OpenCL side does, with no fused multiply-add.
# -fno-math-errno, -fno-trapping-math: nothing reads errno or the floating-
# point exception flags, and without them sqrtf stays a call and a division
# under a condition stays a branch, both of which block vectorisation. NaN
# and infinity behave exactly as before (this is not -ffast-math).
target_compile_options(daecl_flags INTERFACE
  -Wall -Wextra -ffp-contract=off -fno-math-errno -fno-trapping-math)
target_compile_definitions(daecl_flags INTERFACE _GNU_SOURCE)

option(DAECL_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
if(DAECL_SANITIZE)
  target_compile_options(daecl_flags INTERFACE
    -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(daecl_flags INTERFACE -fsanitize=address,undefined)
endif()

# Every target under `dir` (and its subfolders) that compiles C must list
# daecl_flags, or daecl::plugin (which brings it in this tree), among its
# own link libraries. Imported targets, custom targets and INTERFACE
# libraries compile nothing and are passed over.
function(daecl_check_flags dir)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(t IN LISTS targets)
    get_target_property(type ${t} TYPE)
    if(NOT type MATCHES "^(EXECUTABLE|STATIC_LIBRARY|SHARED_LIBRARY|MODULE_LIBRARY|OBJECT_LIBRARY)$")
      continue()
    endif()
    get_target_property(libs ${t} LINK_LIBRARIES)
    if(NOT libs)
      set(libs "")
    endif()
    if(NOT "daecl_flags" IN_LIST libs AND NOT "daecl::plugin" IN_LIST libs)
      message(FATAL_ERROR "target ${t} (${dir}) does not link daecl_flags: add "
        "target_link_libraries(${t} PRIVATE daecl_flags) so it gets -ffp-contract=off, "
        "the warnings and the sanitizers (cmake/DaeclFlags.cmake)")
    endif()
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    daecl_check_flags(${sub})
  endforeach()
endfunction()
