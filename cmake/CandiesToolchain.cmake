# Compiler cache, warnings and sanitizers shared by every project target.
find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM)
  # The sloppiness settings let ccache cache translation units that use the
  # precompiled torch header (see core/CMakeLists.txt).
  set(_launcher ${CMAKE_COMMAND} -E env
      CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
      ${CCACHE_PROGRAM})
  set(CMAKE_C_COMPILER_LAUNCHER ${_launcher})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${_launcher})
endif()

# Warnings apply to project code only; generated protobuf sources and third-party
# headers are not held to them (imported targets' headers are SYSTEM includes).
function(candies_target_defaults target)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
endfunction()

if(CANDIES_SANITIZE)
  string(REPLACE "," ";" _sans "${CANDIES_SANITIZE}")
  foreach(_s IN LISTS _sans)
    add_compile_options(-fsanitize=${_s})
    add_link_options(-fsanitize=${_s})
  endforeach()
  add_compile_options(-fno-omit-frame-pointer -fno-sanitize-recover=undefined)
endif()
