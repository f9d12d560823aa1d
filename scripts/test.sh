#!/usr/bin/env bash
# Builds dsx and runs every test: the README's test command, and what CI runs (.ci/run).
#
#   1. installs missing Debian packages (scripts/deps.sh --dev);
#   2. GCC build with warnings as errors, then all tests (unit, conformance, CLI);
#   3. clang build with AddressSanitizer + UndefinedBehaviorSanitizer, all tests again, plus the
#      policy fuzzer for DSX_FUZZ_SECONDS (default 60).
# Build trees: build/test and build/sanitize. ccache speeds up rebuilds.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --dev

jobs=${DSX_JOBS:-2}
fuzz_seconds=${DSX_FUZZ_SECONDS:-60}
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/dsx-ccache}

echo "== GCC build (warnings are errors)"
# -g1: backtraces keep function names, and the Beast-heavy files compile faster than with full
# debug info. (-O2 as RelWithDebInfo: GCC's warnings depend on the optimisation level.)
cmake -S . -B build/test -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DDSX_WERROR=ON >/dev/null
cmake --build build/test -j "$jobs"
(cd build/test && ctest -j "$jobs" --output-on-failure)

echo "== clang build with ASan + UBSan, and the fuzzer"
# -O0 with assertions on: clang with ASan compiles the Beast-heavy files three times faster
# than at -O1 (connectors/client.cpp: 85 s against 247 s of CPU), and the tests wait on I/O more
# than they compute. What the fuzzer reaches is built -O1 all the same (dsx_fuzzed in
# CMakeLists.txt), to run thousands of inputs a second.
# -gline-tables-only: sanitizer reports keep file and line, at a fraction of -g's compile time.
CXX=clang++ cmake -S . -B build/sanitize -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O0 -gline-tables-only" -DDSX_WERROR=ON \
  -DDSX_SANITIZE=ON -DDSX_FUZZ=ON -DDSX_BENCH=OFF -DDSX_FUZZ_SECONDS="$fuzz_seconds" >/dev/null
cmake --build build/sanitize -j "$jobs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build/sanitize && ctest -j "$jobs" --output-on-failure)
