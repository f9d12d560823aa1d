#!/usr/bin/env bash
# Installs the Debian packages dsx needs to build and test, when any is missing.
# Idempotent and silent when everything is already there. Needs root (or sudo) to install.
#
#   scripts/deps.sh          build + test dependencies
#   scripts/deps.sh --dev    also the tools for sanitizer/fuzz builds (clang, libFuzzer runtime)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache git ca-certificates
  libboost1.81-dev      # Asio/Beast (broker, connectors)
  libssl-dev            # OpenSSL 3
  nlohmann-json3-dev    # JSON
  libsimdjson-dev       # fast JSON parsing (common/json.cpp)
  libsqlite3-dev        # provenance and broker state
  catch2                # tests (2.13)
  libcli11-dev          # command-line parsing
  libbenchmark-dev      # bench/
  libgoogle-perftools-dev  # tcmalloc_minimal: the allocator of dsx and the benchmarks
)
if [[ "${1:-}" == "--dev" ]]; then
  packages+=(clang libclang-rt-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "dsx: installing missing Debian packages: ${missing[*]}" >&2
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "dsx: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists once if they are empty or the install fails on stale lists.
if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
  "${sudo_cmd[@]}" apt-get update -qq >&2
fi
if ! "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
  "${sudo_cmd[@]}" apt-get update -qq >&2
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
