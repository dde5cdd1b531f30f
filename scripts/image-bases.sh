#!/usr/bin/env bash
# The base images images/Dockerfile names as build arguments, made on this machine for a build
# without a registry (scripts/images.sh, when no docker or podman runs):
#   - a Debian bookworm root filesystem made with `mmdebstrap --variant=minbase`, cached as a tar
#     under $KUBEJUDGE_CACHE/images/ per mirror and ISO week (security updates arrive weekly);
#   - one image per toolchain Debian 12 lacks at the version kubejudge/languages.py names, made
#     from this machine's installed toolchain, whose version is checked first (a mismatch stops
#     the build: rename the language in languages.py when a version really changes).
# Each is made once and kept in buildah's storage under a name that carries its version.
# Prints the `--build-arg NAME=IMAGE` arguments for buildah, one per line, on stdout.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CACHE="${KUBEJUDGE_CACHE:-$HOME/.cache/kubejudge}/images"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
GO_ROOT=/usr/local/go
NODE_BIN=/usr/bin/node
JDK_HOME=/usr/lib/jvm/java-17-openjdk-amd64
RUSTUP_TOOLCHAINS="${RUSTUP_HOME:-$HOME/.rustup}/toolchains"

log() { echo "image-bases: $*" >&2; }
die() { log "$*"; exit 1; }
have_image() { buildah inspect --type image "$1" >/dev/null 2>&1; }

# The version kubejudge/languages.py names for a language, e.g. `named_version 'Go \('`.
named_version() {
  grep -oP "name=\"$1\K[0-9]+\.[0-9]+\.[0-9]+" kubejudge/languages.py | head -n 1 \
    || die "kubejudge/languages.py names no version after $1"
}

# $1 wanted version, $2 what the toolchain printed, $3 its name.
check_version() {
  [[ "$2" == *"$1"* ]] || die "$3: languages.py names $1, this machine has: $2"
}

# A new image $2 from image $1 with `buildah copy` of each "SRC DEST" pair after them.
image_from() {
  local from="$1" name="$2" container
  shift 2
  container="$(buildah from --quiet "$from")"
  while (($#)); do
    buildah copy --quiet "$container" "$1" "$2" >/dev/null
    shift 2
  done
  buildah commit --quiet --rm "$container" "$name" >/dev/null
}

# What debian:*-slim leaves out, and so does our base: documentation, manuals and translations
# (dpkg never unpacks them, in later apt-get installs too), and apt's caches (an image's
# `apt-get install` leaves no package cache nor downloaded packages behind).
MMDEBSTRAP_OPTIONS=(
  --variant=minbase --mode=root --quiet
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*'
  --customize-hook='cat >"$1/etc/apt/apt.conf.d/docker-clean" <<"EOF"
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
rm -f "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb'
)

debian_base() {
  local week key tar name sources
  sources=("deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main"
           "deb $SECURITY_MIRROR bookworm-security main")
  week="$(date -u +%G-w%V)"
  key="$(printf '%s\n' "${MMDEBSTRAP_OPTIONS[@]}" "${sources[@]}" | sha256sum | cut -c1-8)"
  name="localhost/kubejudge-base/debian:bookworm-$week-$key"
  if ! have_image "$name"; then
    tar="$CACHE/debian-bookworm-minbase-$week-$key.tar"
    if [[ ! -s "$tar" ]]; then
      log "making $tar with mmdebstrap (once a week)"
      mkdir -p "$CACHE"
      mmdebstrap "${MMDEBSTRAP_OPTIONS[@]}" --format=tar bookworm "$tar.partial" "${sources[@]}"
      mv "$tar.partial" "$tar"
    fi
    log "importing $tar as $name"
    local container
    container="$(buildah from --quiet scratch)"
    buildah add --quiet "$container" "$tar" / >/dev/null
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --cmd /bin/bash "$container"
    buildah commit --quiet --rm "$container" "$name" >/dev/null
  fi
  echo "$name"
}

go_image() {
  local version name
  version="$(named_version 'Go \(')"
  name="localhost/kubejudge-toolchain/go:$version"
  check_version "go$version " "$("$GO_ROOT/bin/go" version)" "$GO_ROOT"
  have_image "$name" || image_from "$1" "$name" "$GO_ROOT" /usr/local/go
  echo "$name"
}

node_image() {
  local version name
  version="$(named_version 'JavaScript \(Node.js ')"
  name="localhost/kubejudge-toolchain/node:$version"
  check_version "v$version" "$("$NODE_BIN" --version)" "$NODE_BIN"
  have_image "$name" || image_from "$1" "$name" "$NODE_BIN" /usr/local/bin/node
  echo "$name"
}

# Debian's JDK links its configuration from /etc: the image gets a self-contained copy at the
# path the Temurin image uses (/opt/java/openjdk), with those links replaced by the files they
# name. Links to what the JDK does not need (sources, docs, the host's CA store) are dropped.
java_image() {
  local version name stage link target
  version="$(named_version 'Java \(OpenJDK ')"
  name="localhost/kubejudge-toolchain/java:$version"
  check_version "\"$version\"" "$("$JDK_HOME/bin/java" -version 2>&1 | head -n 1)" "$JDK_HOME"
  check_version "javac $version" "$("$JDK_HOME/bin/javac" -version 2>&1)" "$JDK_HOME"
  if ! have_image "$name"; then
    stage="$(mktemp -d)"
    cp -a "$JDK_HOME/." "$stage/"
    while IFS= read -r -d '' link; do
      target="$(readlink -f -- "$JDK_HOME/${link#"$stage"/}" || true)"
      if [[ "$target" == "$JDK_HOME"/* ]]; then
        continue
      fi
      rm -- "$link"
      if [[ -f "$target" && "$link" != */lib/security/cacerts ]]; then
        cp -- "$target" "$link"
      fi
    done < <(find "$stage" -type l -print0)
    image_from "$1" "$name" "$stage" /opt/java/openjdk
    rm -rf "$stage"
  fi
  echo "$name"
}

# rustup's toolchain directory (its bin, lib and libexec; not the 800 MB of docs), with rustc
# on PATH: the Dockerfile's rust stage copies `rustc --print sysroot` to /opt/rust.
rust_image() {
  local version name toolchain
  version="$(named_version 'Rust \(')"
  name="localhost/kubejudge-toolchain/rust:$version"
  toolchain="$(readlink -f "$RUSTUP_TOOLCHAINS/$version-x86_64-unknown-linux-gnu")"
  check_version "rustc $version " "$("$toolchain/bin/rustc" --version)" "$toolchain"
  if ! have_image "$name"; then
    image_from "$1" "$name.partial" "$toolchain/bin" /usr/local/rust/bin \
      "$toolchain/lib" /usr/local/rust/lib "$toolchain/libexec" /usr/local/rust/libexec
    local container
    container="$(buildah from --quiet "$name.partial")"
    buildah config --env PATH=/usr/local/rust/bin:/usr/sbin:/usr/bin:/sbin:/bin "$container"
    buildah commit --quiet --rm "$container" "$name" >/dev/null
    buildah rmi "$name.partial" >/dev/null
  fi
  echo "$name"
}

base="$(debian_base)"
echo "DEBIAN_IMAGE=$base"
echo "GO_IMAGE=$(go_image "$base")"
echo "NODE_IMAGE=$(node_image "$base")"
echo "JAVA_IMAGE=$(java_image "$base")"
echo "RUST_IMAGE=$(rust_image "$base")"
