# One ctest entry per GoogleTest suite of a test binary: run after each build of the binary, it
# asks the binary for its tests (--gtest_list_tests) and writes OUT, a file ctest includes, with
# `add_test(SUITE EXE --gtest_filter=SUITE.*)` for each suite and the properties given here.
#
#   cmake -DEXE=attend_tests -DOUT=suites.cmake -DWORKDIR=DIR -DENVIRONMENT=A=1
#         -DENVIRONMENT_MODIFICATION=B=set:2 -DFIXTURES=name -P gtest_suites.cmake
#
# Why not gtest_discover_tests (one entry per test): under ASan + UBSan a test process costs
# 0.12-0.16 s to start and end, and most tests take less than that (docs/results.md, issue 20).
# A suite's tests then share a process, as they do when the binary runs whole; the binary as a
# whole passes (each suite is a subset of that run, in the same order).
foreach(var EXE OUT WORKDIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "gtest_suites: -D${var}= is required")
  endif()
endforeach()

execute_process(COMMAND "${EXE}" --gtest_list_tests
                WORKING_DIRECTORY "${WORKDIR}" TIMEOUT 120
                OUTPUT_VARIABLE listing ERROR_VARIABLE errors RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "gtest_suites: '${EXE} --gtest_list_tests' failed (${status}):\n${listing}${errors}")
endif()

# Suites are the lines that do not start with a space: "Suite." or "Prefix/Suite.  # TypeParam = T".
# Matched in the whole text (not split into a list first: a test's parameter printed after '#'
# may hold brackets or semicolons, which CMake's lists treat specially).
string(REGEX MATCHALL "(^|\n)[^ \n#][^ \n]*\\.( |\n|$)" heads "${listing}")
set(suites)
foreach(head IN LISTS heads)
  string(STRIP "${head}" head)
  string(REGEX REPLACE "\\.$" "" suite "${head}")
  list(APPEND suites "${suite}")
endforeach()
list(REMOVE_DUPLICATES suites)
list(LENGTH suites count)
if(count EQUAL 0)
  message(FATAL_ERROR "gtest_suites: no suites in the listing of ${EXE}:\n${listing}")
endif()

set(script "# Written by tests/gtest_suites.cmake from ${EXE} --gtest_list_tests: ${count} suites.\n")
foreach(suite IN LISTS suites)
  string(APPEND script
         "add_test([==[${suite}]==] [==[${EXE}]==] [==[--gtest_filter=${suite}.*]==])\n"
         "set_tests_properties([==[${suite}]==] PROPERTIES WORKING_DIRECTORY [==[${WORKDIR}]==]")
  if(DEFINED ENVIRONMENT)
    string(APPEND script " ENVIRONMENT [==[${ENVIRONMENT}]==]")
  endif()
  if(DEFINED ENVIRONMENT_MODIFICATION)
    string(APPEND script " ENVIRONMENT_MODIFICATION [==[${ENVIRONMENT_MODIFICATION}]==]")
  endif()
  if(DEFINED FIXTURES)
    string(APPEND script " FIXTURES_REQUIRED [==[${FIXTURES}]==]")
  endif()
  string(APPEND script ")\n")
endforeach()
# Written whole, then renamed: a ctest started during a build never reads half a file.
file(WRITE "${OUT}.tmp" "${script}")
file(RENAME "${OUT}.tmp" "${OUT}")
