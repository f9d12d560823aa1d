#!/usr/bin/env bash
# Alternating pairs of dsx_negotiation_bench rounds: an old and a new binary take turns, so that
# both see the same swings of a shared machine; prints each round and the means of each side
# (docs/performance.md, "Contract negotiation": every before/after figure there).
#
#   bench/alternate.sh OLD_BINARY NEW_BINARY [PAIRS] [more bench options]
#
# Each round: --reps=1 --negotiations=6000 --baseline=10 --alone=0 (50 consumers).
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: $0 OLD_BINARY NEW_BINARY [PAIRS] [bench options]" >&2
  exit 2
fi
old=$1 new=$2
pairs=${3:-6}
shift $(( $# < 3 ? $# : 3 ))
for ((i = 0; i < pairs; ++i)); do
  for side in old new; do
    bin=$old
    [[ $side == new ]] && bin=$new
    "$bin" --reps=1 --negotiations=6000 --baseline=10 --alone=0 "$@" |
      grep "round 1" | sed "s/^ */$side /; s/ mean time.*//"
  done
done | awk '
  { print }
  {
    rate = $9; gsub(/[,\/s]/, "", rate)
    cpu = $0; sub(/.*broker CPU /, "", cpu); sub(/ ms.*/, "", cpu)
    cl = $0; sub(/.*clients /, "", cl); sub(/ ms.*/, "", cl)
    n[$1]++; r[$1] += rate; c[$1] += cpu; k[$1] += cl
  }
  END {
    for (s in n)
      printf "%s: mean %.0f negotiations/s, broker CPU %.3f ms, clients %.3f ms (%d rounds)\n",
             s, r[s] / n[s], c[s] / n[s], k[s] / n[s], n[s]
  }'
