#!/usr/bin/env bash
# Debian packages the tests and benchmarks need: chromium (browser tier, console tests), wrk (benchmarks),
# a CJK font (reports and screenshots rendered by chromium show Chinese, not boxes).
# Installs only what is missing; needs root (or sudo) the first time.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || need+=(fonts-wqy-microhei)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "system-deps: missing ${need[*]}; run 'apt-get install ${need[*]}' as root" >&2; exit 1
  fi
else SUDO=""; fi
echo "system-deps: installing ${need[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
