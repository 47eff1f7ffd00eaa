#!/usr/bin/env bash
# Install the Debian packages regwatch's integration tests use, when missing.
set -euo pipefail
need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v mvn >/dev/null || need+=(maven)
command -v script >/dev/null || need+=(bsdutils)
command -v promtool >/dev/null || need+=(prometheus)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
command -v chromium >/dev/null || need+=(chromium)  # the report page test renders in headless Chromium
if [ ${#need[@]} -eq 0 ]; then
  echo "sysdeps: all present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "sysdeps: missing ${need[*]}; install them as root: apt-get install ${need[*]}" >&2
    exit 1
  fi
fi
echo "sysdeps: installing ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
