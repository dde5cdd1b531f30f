#!/usr/bin/env bash
# Build every kubejudge image from images/Dockerfile, one target each:
#   scripts/images.sh [TAG]        (default tag: dev, as examples/judgecluster.yaml names them)
# kubejudge/{api,gateway,operator,worker}:TAG, and the managed stores under the names the
# operator defaults to (operator/kubejudge_operator/resources/stores.py DEFAULT_*_IMAGE).
#
# With docker or podman running, they build with the Dockerfile's public base images. Otherwise
# (no registry reachable) buildah builds on bases made here (scripts/image-bases.sh), then each
# image is saved as a docker archive in $KUBEJUDGE_CACHE/images/archives/ under the name
# containerd gives a pod's `kubejudge/api:dev` (docker.io/kubejudge/api:dev), and, when a
# cluster from `make cluster-up` is up (.cluster/env, or $CLUSTER_STATE_DIR/env, naming CTR and
# CONTAINERD_ADDRESS), imported into its containerd. Only images whose id changed are saved and
# imported again; buildah's layer cache skips the steps whose inputs did not change.
# Build output goes to stderr; stdout lists each image built, then the engine used, last.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TAG="${1:-dev}"
ROLES=(api gateway operator worker)
STORES=(redis postgres)
ARCHIVES="${KUBEJUDGE_CACHE:-$HOME/.cache/kubejudge}/images/archives"
CLUSTER_ENV="${CLUSTER_STATE_DIR:-.cluster}/env"

log() { echo "images: $*" >&2; }

# The store's image as the operator names it by default: the one place that name is written.
store_image() {
  local constant="DEFAULT_${1^^}_IMAGE"
  sed -n "s/^$constant = \"\(.*\)\"$/\1/p" operator/kubejudge_operator/resources/stores.py
}

declare -A images=()
for role in "${ROLES[@]}"; do images[$role]="kubejudge/$role:$TAG"; done
for store in "${STORES[@]}"; do images[$store]="$(store_image "$store")"; done

engine=""
for candidate in docker podman; do
  if command -v "$candidate" >/dev/null && "$candidate" info >/dev/null 2>&1; then
    engine="$candidate"
    break
  fi
done

if [[ -n "$engine" ]]; then
  log "building with $engine"
  for target in "${ROLES[@]}" "${STORES[@]}"; do
    "$engine" build --file images/Dockerfile --target "$target" --tag "${images[$target]}" . >&2
    echo "${images[$target]}"
  done
  echo "$engine"
  exit 0
fi

if ! command -v buildah >/dev/null || ! command -v mmdebstrap >/dev/null; then
  log "no docker or podman running, and no buildah and mmdebstrap to build without them" \
      "(scripts/install-system-deps.sh installs those); nothing was built."
  exit 2
fi
log "no docker or podman: building with buildah on bases made here"
bases="$(scripts/image-bases.sh)"
build_args=()
while IFS= read -r arg; do build_args+=(--build-arg "$arg"); done <<<"$bases"
# pip inside the build trusts this machine's CA bundle (a TLS-inspecting proxy may sit between
# it and PyPI): mounted for the RUN steps only, never copied into an image.
ca_bundle=/etc/ssl/certs/ca-certificates.crt
if [[ -s "$ca_bundle" ]]; then
  build_args+=(--volume "$ca_bundle:/run/kubejudge-ca.crt:ro"
               --build-arg PIP_CERT=/run/kubejudge-ca.crt)
fi

import=()
if [[ -f "$CLUSTER_ENV" ]]; then
  # shellcheck source=/dev/null
  source "$CLUSTER_ENV"
  ctr=("$CTR" --address "$CONTAINERD_ADDRESS" --namespace k8s.io)
  import=("${ctr[@]}" images import)
fi
imported_digest() {
  "${ctr[@]}" images ls "name==docker.io/$1" | awk 'NR == 2 {print $3}'
}

mkdir -p "$ARCHIVES"
for target in "${ROLES[@]}" "${STORES[@]}"; do
  image="${images[$target]}"
  log "building $image"
  buildah bud --isolation chroot --layers --force-rm --quiet --file images/Dockerfile --target "$target" \
    --tag "$image" "${build_args[@]}" . >&2
  id="$(buildah inspect --type image --format '{{.FromImageID}}' "$image")"
  archive="$ARCHIVES/${image//[\/:]/_}.tar"
  if [[ "$(cat "$archive.id" 2>/dev/null)" != "$id" ]]; then
    rm -f "$archive" "$archive.id"
    buildah push --quiet "$image" "docker-archive:$archive:docker.io/$image" >&2
    echo "$id" >"$archive.id"
  fi
  if ((${#import[@]})); then
    # Imported already when containerd holds this name at the digest recorded for this id.
    held="$(imported_digest "$image")"
    if [[ -z "$held" || "$(cat "$archive.imported" 2>/dev/null)" != "$id $held" ]]; then
      log "importing $archive"
      "${import[@]}" "$archive" >&2
      echo "$id $(imported_digest "$image")" >"$archive.imported"
    fi
  fi
  echo "$image"
done
echo buildah
