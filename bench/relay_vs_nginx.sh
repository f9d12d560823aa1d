#!/usr/bin/env bash
# The encrypted relay beside nginx: one transfer of DSX_BENCH_SIZE_MIB (default 2048 MiB)
# provider -> broker -> consumer on loopback, and the same bytes relayed by nginx's `stream`
# TLS proxy between two `openssl` peers, in the same run, on the same machine.
#
# What it measures
#   dsx    `dsx broker`, the provider's `dsx connector serve` and the consumer's
#          `dsx connector fetch`, each its own process, certificates from `dsx certs`, the
#          dataset published and negotiated first (not timed). Timed: the whole
#          `dsx connector fetch --agreement ID --out FILE --quiet`, from its start to its exit
#          (transfer request, the provider's sealing passes, upload through the broker,
#          download, decryption and every check, the receipt). CPU: the broker's process
#          (utime + stime from /proc/PID/stat, all threads) before and after the fetch; the
#          provider's connector the same way; the consumer's from the shell's `time`.
#   nginx  nginx from Debian (stream module), `worker_processes auto`, TLS 1.3 on both sides
#          with mutual TLS like the broker: it listens with the broker's certificate and
#          requires a client certificate from the dsx CA; it connects upstream with TLS
#          (`proxy_ssl on`) presenting the consumer's certificate. Sender: `openssl s_client`
#          with the provider's certificate, reading the input file; receiver: `openssl
#          s_server` with the broker's certificate (it requires the client's certificate too),
#          writing what it receives to a file. Timed: from the sender's start to the
#          receiver's exit. CPU: nginx's master and workers (/proc/PID/stat) before and after;
#          the peers' from the shell's `time`.
#   Both outputs must have the input's SHA-256 (checked after the timing).
#
# It prints MB/s (10^6 bytes/s; MiB/s beside it) of each, the broker's and nginx's CPU seconds
# per GB (10^9 bytes of payload), the ratios dsx/nginx, and the issue's targets: dsx throughput
# >= 1.0x nginx's and broker CPU per GB <= 1.1x nginx's. Missing a target is reported, not an
# error: the exit status is 1 only when something failed (a process died, a wrong hash, a
# timeout), 2 on bad settings.
#
# Run it (as root, or with sudo available, when packages are missing), from anywhere:
#   bench/relay_vs_nginx.sh
#   DSX_BENCH_SIZE_MIB=128 bench/relay_vs_nginx.sh      # a quick try
#
# Settings (environment):
#   DSX_BENCH_SIZE_MIB  payload size in MiB (default 2048)
#   DSX_BIN             the dsx binary (default build-release/cli/dsx in this checkout; built
#                       with scripts/deps.sh + CMake when missing)
#   DSX_BENCH_BUILD=1   (re)build DSX_BIN's build folder first even when the binary exists
#                       (only for the default DSX_BIN)
#   DSX_BENCH_DIR       folder for the temporary working folder (default /dev/shm when it has
#                       room for the input and one output, else ${TMPDIR:-/tmp})
#   DSX_BENCH_KEEP=1    keep the working folder (logs, configs; the data files are removed)
#
# It installs what is missing with apt-get (Debian 12): nginx and libnginx-mod-stream (the
# stream module is not in nginx-light on Debian 12, which is nginx plus the http echo module),
# openssl, iproute2 (ss). On a systemd machine installing nginx also starts Debian's own nginx
# service on port 80; this script never uses or stops it (it runs its own nginx, on a free
# port of 127.0.0.1, with its own prefix, pid file and logs in the working folder).
#
# The machine's load matters (two busy cores halve anything): the script prints `uptime` and
# the core count before and after. Run nothing else heavy meanwhile.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
size_mib=${DSX_BENCH_SIZE_MIB:-2048}
default_bin="$root/build-release/cli/dsx"
dsx=${DSX_BIN:-$default_bin}
[[ "$dsx" == /* ]] || dsx="$PWD/$dsx"
purpose="https://w3id.org/dpv#AcademicResearch"

die() { echo "relay_vs_nginx: $*" >&2; exit 1; }
note() { echo "relay_vs_nginx: $*" >&2; }

[[ "$size_mib" =~ ^[1-9][0-9]*$ ]] || { echo "relay_vs_nginx: DSX_BENCH_SIZE_MIB must be a positive integer (MiB), not \"$size_mib\"" >&2; exit 2; }
bytes=$((size_mib * 1024 * 1024))

as_root=()
if [[ $(id -u) -ne 0 ]]; then as_root=(sudo); fi

# --- 1. packages and the dsx binary -------------------------------------------------------

# The stream module: built in (nginx -V says --with-stream without =dynamic) or as a module file.
stream_module=/usr/lib/nginx/modules/ngx_stream_module.so
nginx_has_stream() {
  command -v nginx >/dev/null || return 1
  [[ -f $stream_module ]] && return 0
  nginx -V 2>&1 | tr ' ' '\n' | grep -qx -- '--with-stream'
}
missing=()
nginx_has_stream || missing+=(nginx libnginx-mod-stream)
command -v openssl >/dev/null || missing+=(openssl)
command -v ss >/dev/null || missing+=(iproute2)
if [[ ${#missing[@]} -gt 0 ]]; then
  note "installing ${missing[*]} (apt-get)"
  [[ ${#as_root[@]} -eq 0 ]] || command -v sudo >/dev/null || die "need root (or sudo) to install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
    "${as_root[@]}" apt-get update -qq >&2
    "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
  nginx_has_stream || die "nginx has no stream module after installing ${missing[*]}"
fi

if [[ ! -x "$dsx" || ( "${DSX_BENCH_BUILD:-0}" == 1 && "$dsx" == "$default_bin" ) ]]; then
  [[ "$dsx" == "$default_bin" ]] || die "no dsx binary at $dsx (DSX_BIN)"
  note "building $dsx"
  "$root/scripts/deps.sh"
  # An existing build folder keeps its settings (it may be someone's with tests on).
  [[ -f "$root/build-release/build.ninja" ]] ||
    cmake -S "$root" -B "$root/build-release" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDSX_TESTS=OFF >&2
  cmake --build "$root/build-release" -j "${DSX_JOBS:-2}" --target dsx >&2
fi
"$dsx" connector fetch --help >/dev/null 2>&1 ||
  die "$dsx has no 'connector fetch' (too old?): rebuild it (DSX_BENCH_BUILD=1, or ninja -C build-release dsx)"

# --- 2. the working folder ------------------------------------------------------------------

# Room for the input and one output at a time (each output is removed once checked), plus
# some for certificates, logs and the broker's SQLite files.
need_kib=$(( (2 * bytes) / 1024 + 64 * 1024 ))
free_kib() { df -Pk "$1" 2>/dev/null | awk 'NR == 2 {print $4}'; }
base=${DSX_BENCH_DIR:-}
if [[ -z "$base" ]]; then
  if [[ -d /dev/shm && -w /dev/shm && $(free_kib /dev/shm || echo 0) -ge $need_kib ]]; then
    base=/dev/shm
  else
    base=${TMPDIR:-/tmp}
  fi
fi
[[ $(free_kib "$base" || echo 0) -ge $need_kib ]] ||
  die "$base has $(( $(free_kib "$base" || echo 0) / 1024 )) MiB free; needs $((need_kib / 1024)) MiB (DSX_BENCH_DIR)"
work=$(mktemp -d "$base/dsx-relay-bench-XXXXXX")

# Every background process this script started and has not reaped yet (a reaped id may be
# reused by another process: it leaves the list when reaped).
pids=()
forget() {
  local keep=() p
  for p in "${pids[@]}"; do [[ "$p" == "$1" ]] || keep+=("$p"); done
  pids=("${keep[@]}")
}
# Stops one of our background processes with signal $2 (default TERM) and reaps it.
stop() {
  kill "-${2:-TERM}" "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  forget "$1"
}
cleanup() {
  local status=$? pid
  set +e
  # The receiver is a subshell running openssl: stop the openssl first.
  if [[ -n "${receiver_pid:-}" ]]; then
    for pid in $(pgrep -P "$receiver_pid"); do kill -TERM "$pid" 2>/dev/null; done
  fi
  for pid in "${pids[@]}"; do stop "$pid"; done
  if [[ "${DSX_BENCH_KEEP:-0}" == 1 ]]; then
    rm -f "$work"/*.bin "$work"/*.bin.part
    note "kept $work"
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# CPU time (clock ticks, user + system, all threads) of the given processes that still run.
clk_tck=$(getconf CLK_TCK)
cpu_ticks() {
  local total=0 pid stat f
  for pid in "$@"; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    stat=${stat##*) }  # drop "PID (comm) ": field 3 (state) is f[0], utime (14) f[11], stime (15) f[12]
    read -r -a f <<<"$stat"
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
}
now_ns() { date +%s%N; }
alive() { kill -0 "$1" 2>/dev/null; }

# Waits up to $3 seconds for the text $2 in the file $1 while the process $4 lives.
wait_for_text() {
  local file=$1 text=$2 deadline=$(( $(date +%s) + $3 )) pid=$4
  while ! grep -qF -- "$text" "$file" 2>/dev/null; do
    alive "$pid" || { tail -n 20 "$file" >&2; die "process $pid exited before printing \"$text\" ($file)"; }
    [[ $(date +%s) -lt $deadline ]] || { tail -n 20 "$file" >&2; die "no \"$text\" in $file after $3 s"; }
    sleep 0.1
  done
}
# A TCP port of 127.0.0.1 nobody listens on.
free_port() {
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 40000))
    [[ -z "$(ss -Htln "sport = :$port")" ]] && { echo "$port"; return; }
  done
  die "no free port found"
}
wait_for_listen() {  # port, seconds, pid
  local deadline=$(( $(date +%s) + $2 ))
  while [[ -z "$(ss -Htln "sport = :$1")" ]]; do
    alive "$3" || die "process $3 exited before listening on port $1"
    [[ $(date +%s) -lt $deadline ]] || die "nothing listens on port $1 after $2 s"
    sleep 0.05
  done
}
sha256() { openssl dgst -sha256 -r "$1" | cut -d' ' -f1; }
size_of() { stat -c %s "$1"; }

echo "relay_vs_nginx: $size_mib MiB payload, working folder $work"
echo "before: $(uptime) ($(nproc) cores)"
echo "dsx: $dsx ($("$dsx" --version 2>&1)), $(nginx -v 2>&1 | sed 's/^nginx version: //'), $(openssl version)"

# The input: pseudo-random bytes (AES-128-CTR of zeros; the key and IV are fixed so no key
# derivation runs). openssl is killed by SIGPIPE when head has enough: not an error.
input="$work/input.bin"
{ openssl enc -aes-128-ctr -K 00112233445566778899aabbccddeeff -iv 00000000000000000000000000000000 \
    </dev/zero 2>/dev/null || true; } | head -c "$bytes" >"$input"
[[ $(size_of "$input") -eq $bytes ]] || die "the input has $(size_of "$input") bytes, not $bytes"
input_sha=$(sha256 "$input")

# --- 3. dsx: certificates, broker, provider, consumer ---------------------------------------

"$dsx" certs init --out "$work/ca" >"$work/certs.log"
for who_role in 127.0.0.1:broker acme:provider leiden:consumer; do
  "$dsx" certs issue --ca "$work/ca" --name "${who_role%%:*}" --role "${who_role#*:}" \
    --out "$work/${who_role%%:*}" >>"$work/certs.log"
done

"$dsx" broker --cert "$work/127.0.0.1" --listen 127.0.0.1:0 --data "$work/data" \
  >"$work/broker.log" 2>&1 &
broker_pid=$!
pids+=("$broker_pid")
wait_for_text "$work/broker.log" "listening on https://" 20 "$broker_pid"
url=$(grep -o 'listening on https://[^ ]*' "$work/broker.log" | head -n 1)
url=${url#listening on }

dataset=urn:dsx:dataset:relay-bench
offer=urn:dsx:offer:relay-bench
cat >"$work/dataset.json" <<EOF
{"id": "$dataset", "title": "Relay benchmark ($size_mib MiB)",
 "offers": [{"@id": "$offer", "permission": [{"action": "use"}]}]}
EOF
cat >"$work/acme.json" <<EOF
{"autoAccept": [{"dataset": "*"}], "datasets": {"$dataset": "$input"}}
EOF
"$dsx" connector publish --broker "$url" --cert "$work/acme" --dataset "$work/dataset.json" \
  >"$work/publish.log" 2>&1 || { cat "$work/publish.log" >&2; die "dsx connector publish failed"; }

"$dsx" connector serve --config "$work/acme.json" --state "$work/acme-state" --broker "$url" \
  --cert "$work/acme" >"$work/serve.log" 2>&1 &
serve_pid=$!
pids+=("$serve_pid")
wait_for_text "$work/serve.log" "control channel open" 20 "$serve_pid"

"$dsx" connector negotiate --broker "$url" --cert "$work/leiden" --offer "$offer" \
  --purpose "$purpose" --wait --timeout 60 >"$work/negotiate.log" 2>&1 ||
  { cat "$work/negotiate.log" >&2; die "dsx connector negotiate failed"; }
agreement=$(grep -o 'FINALIZED: agreement [^ ]*' "$work/negotiate.log" | head -n 1)
agreement=${agreement#FINALIZED: agreement }
[[ -n "$agreement" ]] || { cat "$work/negotiate.log" >&2; die "no agreement in negotiate's output"; }

# The timed fetch. `time` gives the consumer's own CPU (the fetch is the shell's only child
# that ends in between); /proc gives the broker's and the provider's connector's.
dsx_out="$work/received-dsx.bin"
broker_before=$(cpu_ticks "$broker_pid")
serve_before=$(cpu_ticks "$serve_pid")
t0=$(now_ns)
fetch_status=0
TIMEFORMAT='%3R %3U %3S'
{ time "$dsx" connector fetch --broker "$url" --cert "$work/leiden" --agreement "$agreement" \
    --out "$dsx_out" --quiet --wait 120 >"$work/fetch.log" 2>&1; } 2>"$work/fetch.time" ||
  fetch_status=$?
t1=$(now_ns)
broker_after=$(cpu_ticks "$broker_pid")
serve_after=$(cpu_ticks "$serve_pid")
alive "$broker_pid" || { tail -n 20 "$work/broker.log" >&2; die "the broker died during the fetch"; }
alive "$serve_pid" || { tail -n 20 "$work/serve.log" >&2; die "the provider's connector died during the fetch"; }
if [[ $fetch_status -ne 0 ]]; then
  cat "$work/fetch.log" >&2
  tail -n 20 "$work/serve.log" >&2
  tail -n 20 "$work/broker.log" >&2
  die "dsx connector fetch exited with status $fetch_status"
fi
[[ -f "$dsx_out" && $(size_of "$dsx_out") -eq $bytes ]] ||
  die "dsx: received $(size_of "$dsx_out" 2>/dev/null || echo no) bytes, not $bytes"
[[ $(sha256 "$dsx_out") == "$input_sha" ]] || die "dsx: the received file's SHA-256 differs from the input's"
rm -f "$dsx_out"
read -r _ consumer_user consumer_sys <"$work/fetch.time"
dsx_wall_ns=$((t1 - t0))
# The relay phase alone, as the broker logs it ({"event":"relay", "bytes": ..., "ms": ...}): the
# sealed stream's bytes from the provider's upload to the consumer's download.
relay_line=$(grep '"event":"relay"' "$work/broker.log" | tail -n 1 || true)
relay_bytes=$(sed -n 's/.*"bytes":\([0-9]*\).*/\1/p' <<<"$relay_line")
relay_ms=$(sed -n 's/.*"ms":\([0-9.]*\).*/\1/p' <<<"$relay_line")
dsx_broker_ticks=$((broker_after - broker_before))
dsx_provider_ticks=$((serve_after - serve_before))

# The broker and the provider are stopped before nginx runs, so that they take no CPU.
stop "$serve_pid"
stop "$broker_pid"

# --- 4. nginx: openssl s_client -> nginx stream (TLS both sides) -> openssl s_server ---------

mkdir -p "$work/nginx/logs"
proxy_port=$(free_port)
upstream_port=$(free_port)
while [[ "$upstream_port" == "$proxy_port" ]]; do upstream_port=$(free_port); done
load_module=""
[[ -f $stream_module ]] && load_module="load_module $stream_module;"
cat >"$work/nginx/nginx.conf" <<EOF
$load_module
daemon off;
master_process on;
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log info;
events { worker_connections 64; }
stream {
  server {
    listen 127.0.0.1:$proxy_port ssl;
    ssl_protocols TLSv1.3;
    ssl_certificate $work/127.0.0.1/cert.pem;
    ssl_certificate_key $work/127.0.0.1/key.pem;
    ssl_verify_client on;
    ssl_client_certificate $work/ca/ca.pem;
    proxy_pass 127.0.0.1:$upstream_port;
    proxy_ssl on;
    proxy_ssl_protocols TLSv1.3;
    proxy_ssl_certificate $work/leiden/cert.pem;
    proxy_ssl_certificate_key $work/leiden/key.pem;
    proxy_ssl_trusted_certificate $work/ca/ca.pem;
    proxy_ssl_verify on;
    proxy_ssl_name 127.0.0.1;
  }
}
EOF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/logs/error.log" -t \
  >"$work/nginx/logs/test.log" 2>&1 || { cat "$work/nginx/logs/test.log" >&2; die "nginx refused the configuration"; }
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/logs/error.log" \
  >"$work/nginx/logs/output.log" 2>&1 &
nginx_pid=$!
pids+=("$nginx_pid")
wait_for_listen "$proxy_port" 20 "$nginx_pid"
nginx_procs() { echo "$nginx_pid"; pgrep -P "$nginx_pid" || true; }
# Wait for the workers (worker_processes auto: one per core).
for _ in $(seq 100); do
  [[ $(nginx_procs | wc -w) -gt 1 ]] && break
  sleep 0.05
done

# The receiver: its standard input is a FIFO it holds open itself (no writer), so it never
# sees input to send nor an end of input to act on; it exits after its one connection.
# -num_tickets 0: no TLS 1.3 session tickets to nginx. With them, nginx 1.22 often closes the
# upstream connection with the tickets unread, the kernel then sends a reset instead of a FIN
# and the last few hundred KiB still in flight are lost (seen here: 13 of 40 runs of 1 MiB
# arrived short; the one-way-protocol TLS 1.3 problem of openssl/openssl#10880 and #7948).
# The connection is never resumed, so this changes nothing else.
nginx_out="$work/received-nginx.bin"
mkfifo "$work/receiver-stdin"
(
  TIMEFORMAT='%3R %3U %3S'
  time openssl s_server -accept "127.0.0.1:$upstream_port" -naccept 1 -quiet -tls1_3 -num_tickets 0 \
    -cert "$work/127.0.0.1/cert.pem" -key "$work/127.0.0.1/key.pem" \
    -Verify 1 -verify_return_error -CAfile "$work/ca/ca.pem" \
    0<>"$work/receiver-stdin" >"$nginx_out" 2>"$work/receiver.log"
) 2>"$work/receiver.time" &
receiver_pid=$!
pids+=("$receiver_pid")
wait_for_listen "$upstream_port" 20 "$receiver_pid"

mapfile -t procs < <(nginx_procs)
nginx_before=$(cpu_ticks "${procs[@]}")
t0=$(now_ns)
sender_status=0
# -nocommands: a line of the input starting with Q, R or k must not be read as a command;
# -no_ign_eof: close the connection at the input's end (-quiet alone would wait forever).
{ time openssl s_client -connect "127.0.0.1:$proxy_port" -quiet -no_ign_eof -nocommands -tls1_3 \
    -cert "$work/acme/cert.pem" -key "$work/acme/key.pem" -CAfile "$work/ca/ca.pem" \
    -verify_return_error -verify_ip 127.0.0.1 <"$input" >"$work/sender.out" 2>"$work/sender.log"; } 2>"$work/sender.time" ||
  sender_status=$?
receiver_status=0
wait "$receiver_pid" || receiver_status=$?
forget "$receiver_pid"
t1=$(now_ns)
nginx_after=$(cpu_ticks "${procs[@]}")
alive "$nginx_pid" || { cat "$work/nginx/logs/error.log" "$work/nginx/logs/output.log" >&2; die "nginx died during the transfer"; }
if [[ $sender_status -ne 0 || $receiver_status -ne 0 ]]; then
  echo "--- sender (status $sender_status):" >&2; cat "$work/sender.log" >&2
  echo "--- receiver (status $receiver_status):" >&2; cat "$work/receiver.log" >&2
  echo "--- nginx:" >&2; cat "$work/nginx/logs/error.log" >&2
  die "the openssl transfer through nginx failed"
fi
[[ $(size_of "$nginx_out") -eq $bytes ]] || {
  cat "$work/nginx/logs/error.log" "$work/sender.log" "$work/receiver.log" >&2
  die "nginx: received $(size_of "$nginx_out") bytes, not $bytes"
}
[[ $(sha256 "$nginx_out") == "$input_sha" ]] || die "nginx: the received file's SHA-256 differs from the input's"
rm -f "$nginx_out"
read -r _ sender_user sender_sys <"$work/sender.time"
read -r _ receiver_user receiver_sys <"$work/receiver.time"
nginx_wall_ns=$((t1 - t0))
nginx_ticks=$((nginx_after - nginx_before))
stop "$nginx_pid" QUIT

# --- 5. the figures ---------------------------------------------------------------------------

# What the crypto dsx must do on top of a TLS relay costs on this machine, measured now (kB/s,
# 1000 bytes): SHA-256 over 64 KiB pieces, AES-256-GCM over 16 KiB (the stream's 64 KiB chunks
# cost the same per byte).
speed_kbs() { openssl speed -seconds 2 -evp "$1" -bytes "$2" 2>/dev/null | awk 'END { sub(/k$/, "", $NF); print $NF }'; }
sha_kbs=$(speed_kbs sha256 65536)
aes_kbs=$(speed_kbs aes-256-gcm 16384)

echo "after:  $(uptime)"
echo
awk -v bytes="$bytes" -v tck="$clk_tck" -v shak="${sha_kbs:-0}" -v aesk="${aes_kbs:-0}" \
    -v dw="$dsx_wall_ns" -v db="$dsx_broker_ticks" -v dp="$dsx_provider_ticks" \
    -v dcu="$consumer_user" -v dcs="$consumer_sys" \
    -v rb="${relay_bytes:-0}" -v rms="${relay_ms:-0}" \
    -v nw="$nginx_wall_ns" -v nn="$nginx_ticks" \
    -v su="$sender_user" -v ss="$sender_sys" -v ru="$receiver_user" -v rs="$receiver_sys" '
BEGIN {
  gb = bytes / 1e9
  dsec = dw / 1e9; nsec = nw / 1e9
  dmb = bytes / 1e6 / dsec; nmb = bytes / 1e6 / nsec
  dcpu = db / tck; ncpu = nn / tck
  dpg = dcpu / gb; npg = ncpu / gb
  printf "%-36s %12s %12s %8s\n", "", "dsx", "nginx", "dsx/nginx"
  printf "%-36s %12.2f %12.2f\n", "wall time, s", dsec, nsec
  printf "%-36s %12.1f %12.1f %8.2f\n", "throughput, MB/s (10^6 B/s)", dmb, nmb, dmb / nmb
  printf "%-36s %12.1f %12.1f\n", "throughput, MiB/s", bytes / 1048576 / dsec, bytes / 1048576 / nsec
  printf "%-36s %12.2f %12.2f\n", "relay CPU, s (broker | nginx)", dcpu, ncpu
  printf "%-36s %12.3f %12.3f %8.2f\n", "relay CPU per GB, s (10^9 B)", dpg, npg, (npg > 0 ? dpg / npg : 0)
  if (rms > 0)
    printf "%-36s %12.1f\n", "relay phase only, MB/s (broker log)", rb / 1e6 / (rms / 1e3)
  printf "%-36s %12.2f %12.2f\n", "sender CPU, s (serve | s_client)", dp / tck, su + ss
  printf "%-36s %12.2f %12.2f\n", "receiver CPU, s (fetch | s_server)", dcu + dcs, ru + rs
  if (shak > 0 && aesk > 0) {
    # Lower bounds: the broker does nginx work plus one SHA-256 of every byte; the whole chain
    # (all on these cores) does nginx chain work plus sealing and opening (AES-256-GCM) and four
    # SHA-256 passes (plaintext at both ends for manifest and receipt, ciphertext at the provider
    # for the manifest and at the broker for the log).
    sha = 1e9 / (shak * 1000); aes = 1e9 / (aesk * 1000)
    nchain = (ncpu + su + ss + ru + rs) / gb
    dchain = (dcpu + dp / tck + dcu + dcs) / gb
    extra = 2 * aes + 4 * sha
    print ""
    printf "%-36s %12.3f %12.3f\n", "crypto, s/GB (SHA-256 | AES-256-GCM)", sha, aes
    printf "%-36s %12.2f %12.2f %8.2f\n", "chain CPU per GB, s (all processes)", dchain, nchain, dchain / nchain
    printf "%-36s %12.2f %12s %8.2f\n", "broker CPU floor, s/GB (nginx + SHA)", npg + sha, "", (npg + sha) / npg
    printf "%-36s %12.2f %12s %8.2f\n", "chain CPU floor, s/GB (nginx + crypto)", nchain + extra, "", (nchain + extra) / nchain
    printf "best throughput ratio if CPU-bound on these cores: %.2fx (nginx chain / floor)\n", nchain / (nchain + extra)
  }
  print ""
  printf "target throughput >= 1.0x nginx: %.2fx, %s\n", dmb / nmb, (dmb >= nmb ? "met" : "NOT met")
  if (npg > 0)
    printf "target CPU per GB <= 1.1x nginx: %.2fx, %s\n", dpg / npg, (dpg <= 1.1 * npg ? "met" : "NOT met")
}'
