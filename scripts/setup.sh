#!/usr/bin/env bash
# Installs the Debian 12 packages PointEx needs to build, test and run. Idempotent: it asks
# apt-get only for what is missing, and runs `apt-get update` at most once per call.
# `setup.sh bench` also installs what `make bench` needs: the PostgreSQL 15 baseline (server,
# pgbench) and gnuplot for the charts.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libcaf-dev librocksdb-dev libfmt-dev nlohmann-json3-dev catch2
  libcli11-dev libspdlog-dev libboost-dev libjemalloc-dev libssl-dev
  curl python3
)
if [ "${1:-}" = "bench" ]; then
  packages+=(postgresql-15 postgresql-client-15 gnuplot-nox)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
