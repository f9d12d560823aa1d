# Runs a libFuzzer binary for SECONDS on a corpus seeded from every *.json below SEEDS.
# Usage: cmake -DFUZZER=... -DSEEDS=dir -DWORK=corpus-dir -DSECONDS=60 -P run_fuzz.cmake
file(MAKE_DIRECTORY ${WORK})
file(GLOB_RECURSE seeds ${SEEDS}/*.json)
foreach(seed IN LISTS seeds)
  file(SHA1 ${seed} digest)
  file(COPY_FILE ${seed} ${WORK}/seed-${digest} ONLY_IF_DIFFERENT)
endforeach()
execute_process(
  COMMAND ${FUZZER} -max_total_time=${SECONDS} -max_len=8192 -timeout=10 -rss_limit_mb=2048
          -print_final_stats=1 ${WORK}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the fuzzer found a problem (exit status ${rc}); the reproducer is in the working directory")
endif()
