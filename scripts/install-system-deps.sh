#!/usr/bin/env bash
# Installs what kubejudge needs from Debian's packages, only when something is missing:
# Redis and PostgreSQL (the judge's stores), bubblewrap (the sandbox), the language toolchains
# the worker runs, chromium (the browser tests), prometheus (promtool for the alert tests), what
# the real node of tests/node runs on (runc's libseccomp, the CNI plugins, iptables and conntrack
# for kube-proxy, busybox for images), and what `make images` builds with where no docker or
# podman runs (buildah, mmdebstrap; uidmap for buildah as a non-root user).
set -euo pipefail

missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need redis-server redis-server
need bwrap bubblewrap
need gcc gcc
need g++ g++
need javac default-jdk-headless
need node nodejs
need chromium chromium
need chromedriver chromium-driver
need openssl openssl
need iptables iptables
need conntrack conntrack
need ip iproute2
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
dpkg-query -W -f '${Status}' busybox-static 2>/dev/null | grep -q "ok installed" || missing+=(busybox-static)
[ -f /usr/include/seccomp.h ] || missing+=(libseccomp-dev)
need buildah buildah
need mmdebstrap mmdebstrap
need newuidmap uidmap
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
[ -x /usr/bin/python3 ] || missing+=(python3)

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The Debian package starts its own cluster and server; ours run on their own ports, so
# stopping the system ones is not needed, but they must not be required either.
