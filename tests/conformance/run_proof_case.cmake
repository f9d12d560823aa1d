# Runs `dsx audit verify-proof` on one proof file and checks the exit status against the
# .expected file next to it (0 valid, 1 invalid, 2 malformed); a non-zero status must come with
# exactly one line on standard error. Usage:
#   cmake -DDSX=path/to/dsx -DCASE=path/to/NAME.json -P run_proof_case.cmake
execute_process(COMMAND ${DSX} audit verify-proof ${CASE}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(REGEX REPLACE "\\.json$" ".expected" expected_file ${CASE})
file(READ ${expected_file} expected)
string(STRIP "${expected}" expected)
if(NOT rc STREQUAL expected)
  message(FATAL_ERROR "expected exit status ${expected}, got ${rc}\nstdout: ${out}\nstderr: ${err}")
endif()
if(NOT rc EQUAL 0)
  string(STRIP "${err}" line)
  if(line STREQUAL "" OR line MATCHES "\n")
    message(FATAL_ERROR "expected one line on standard error, got:\n${err}")
  endif()
endif()
message(STATUS "exit ${rc} as expected: ${out}${err}")
