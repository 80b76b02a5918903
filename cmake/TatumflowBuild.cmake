# SPDX-License-Identifier: GPL-3.0-or-later
# Shared build settings, applied per target (never through global add_definitions).

find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
endif()

add_library(tatumflow_build_settings INTERFACE)
target_compile_options(tatumflow_build_settings INTERFACE -Wall -Wextra -Wpedantic -Wshadow
                                                          -Wnon-virtual-dtor -Wconversion -Wno-sign-conversion)
if(TATUMFLOW_WERROR)
  target_compile_options(tatumflow_build_settings INTERFACE -Werror)
endif()

if(TATUMFLOW_SANITIZE)
  if(NOT TATUMFLOW_SANITIZE MATCHES "^(address|undefined|thread)$")
    message(FATAL_ERROR "TATUMFLOW_SANITIZE must be address, undefined or thread, not '${TATUMFLOW_SANITIZE}'")
  endif()
  set(_san -fsanitize=${TATUMFLOW_SANITIZE} -fno-omit-frame-pointer)
  if(TATUMFLOW_SANITIZE STREQUAL "undefined")
    list(APPEND _san -fno-sanitize-recover=undefined)
  endif()
  target_compile_options(tatumflow_build_settings INTERFACE ${_san})
  target_link_options(tatumflow_build_settings INTERFACE ${_san})
endif()

if(TATUMFLOW_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "TATUMFLOW_FUZZ needs clang (CXX=clang++)")
  endif()
  target_compile_options(tatumflow_build_settings INTERFACE -fsanitize=fuzzer-no-link,address,undefined
                                                            -fno-omit-frame-pointer)
  target_link_options(tatumflow_build_settings INTERFACE -fsanitize=address,undefined)
endif()

# Adds a library whose sources are every .cpp under the given folders, with public headers in include/.
function(tatumflow_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCE_DIRS;LINK" ${ARGN})
  set(sources)
  foreach(dir IN LISTS ARG_SOURCE_DIRS)
    file(GLOB dir_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/*.cpp)
    list(APPEND sources ${dir_sources})
  endforeach()
  add_library(${name} STATIC ${sources})
  target_include_directories(${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                                     PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC ${ARG_LINK} PRIVATE tatumflow_build_settings)
  set_target_properties(${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
endfunction()
