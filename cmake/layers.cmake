# layers.cmake — how a layer is built (see the top CMakeLists.txt and docs/architecture.md).
#
# dt_stage(TARGET NAME FILE...): stage the headers FILE... (paths under the source tree) in a
# folder of their own, build/layers/NAME, and make it TARGET's include folder for whoever
# links it. include/durabletask/X.h is staged as durabletask/X.h, src/DIR/X.h as DIR/X.h.
# Staged as symbolic links, so an edited header is seen at once.
function(dt_stage target name)
  set(dir ${CMAKE_BINARY_DIR}/layers/${name})
  foreach(f ${ARGN})
    if(f MATCHES "^include/(.*)$")
      set(rel ${CMAKE_MATCH_1})
    elseif(f MATCHES "^src/(.*)$")
      set(rel ${CMAKE_MATCH_1})
    else()
      message(FATAL_ERROR "dt_stage: ${f} is neither under include/ nor under src/")
    endif()
    get_filename_component(sub ${dir}/${rel} DIRECTORY)
    file(MAKE_DIRECTORY ${sub})
    file(CREATE_LINK ${CMAKE_SOURCE_DIR}/${f} ${dir}/${rel} SYMBOLIC)
  endforeach()
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "INTERFACE_LIBRARY")
    target_include_directories(${target} INTERFACE ${dir})
  else()
    target_include_directories(${target} PUBLIC ${dir})
  endif()
  set_property(GLOBAL APPEND PROPERTY DT_STAGED_HEADERS ${ARGN})
endfunction()

# dt_layer(NAME EXPORTS header... [SOURCES file...] [PUBLIC lib...] [PRIVATE lib...]): the
# static library dtNAME from src/NAME/*.c (and SOURCES), exporting the headers EXPORTS,
# linking the given libraries. A link check links the whole library alone into a program
# with nothing but what it declares, so an undeclared call fails the build.
function(dt_layer name)
  cmake_parse_arguments(L "" "" "EXPORTS;SOURCES;PUBLIC;PRIVATE" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/${name}/*.c)
  add_library(dt${name} STATIC ${srcs} ${L_SOURCES})
  target_include_directories(dt${name} PRIVATE ${CMAKE_SOURCE_DIR}/src/${name})
  dt_stage(dt${name} ${name} ${L_EXPORTS})
  target_link_libraries(dt${name} PUBLIC ${L_PUBLIC} PRIVATE ${L_PRIVATE})
  add_executable(link_check_${name} ${CMAKE_SOURCE_DIR}/cmake/link_check.c)
  target_link_libraries(link_check_${name} PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,dt${name}>")
  set_property(GLOBAL APPEND PROPERTY DT_LAYER_LIBS dt${name})
endfunction()

# dt_install(): the public headers, every layer's library and a relocatable durabletask.pc.
function(dt_install)
  file(GLOB headers ${CMAKE_SOURCE_DIR}/include/durabletask/*.h)
  install(FILES ${headers} DESTINATION include/durabletask)
  get_property(libs GLOBAL PROPERTY DT_LAYER_LIBS)
  install(TARGETS ${libs} dtproto ARCHIVE DESTINATION lib)
  configure_file(${CMAKE_SOURCE_DIR}/cmake/durabletask.pc.in ${CMAKE_BINARY_DIR}/durabletask.pc
                 @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/durabletask.pc DESTINATION lib/pkgconfig)
endfunction()
