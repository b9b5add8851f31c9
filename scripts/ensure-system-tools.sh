#!/usr/bin/env bash
# Installs the system tools the tests use (Icarus Verilog, Debian yosys) when they are missing.
# As root it uses apt; otherwise it says what to install and the tiers that need them are skipped.
set -euo pipefail
need=()
command -v iverilog >/dev/null 2>&1 || need+=(iverilog)
command -v yosys    >/dev/null 2>&1 || need+=(yosys)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing system tools: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
else
  echo "note: missing system tools: ${need[*]}." >&2
  echo "      Install them (Debian: sudo apt-get install ${need[*]}); the RTL and synthesis" >&2
  echo "      test tiers that need them are skipped until then." >&2
fi
