# dnsproxy_add_test(NAME <name> LABEL unit|privileged|e2e SOURCES ... [LIBS ...])
#
# Builds one GoogleTest binary and registers each of its tests with ctest under one label.
# A test that calls GTEST_SKIP() (missing capability, missing tool) is reported by ctest as
# skipped, not passed, so a run without privileges says plainly what it did not cover.
include(GoogleTest)

function(dnsproxy_add_test)
  cmake_parse_arguments(T "" "NAME;LABEL" "SOURCES;LIBS" ${ARGN})
  if(NOT T_LABEL MATCHES "^(unit|privileged|e2e)$")
    message(FATAL_ERROR "dnsproxy_add_test(${T_NAME}): LABEL must be unit, privileged or e2e")
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} dnsproxy_test_support GTest::gtest_main GTest::gmock)
  set_target_properties(${T_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/test-bin)
  # Privileged and e2e tests share kernel state (netns names, pinned maps): never run them
  # concurrently with each other.
  set(extra_props "")
  if(NOT T_LABEL STREQUAL "unit")
    set(extra_props RUN_SERIAL TRUE)
  endif()
  gtest_discover_tests(${T_NAME}
    DISCOVERY_MODE PRE_TEST
    DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS ${T_LABEL} SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]" ${extra_props})
endfunction()
