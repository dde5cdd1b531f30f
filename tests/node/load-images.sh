#!/usr/bin/env bash
# Import OCI image archives into the node's containerd, where kubelet finds them:
#   tests/node/load-images.sh [--state-dir DIR | --address SOCKET --ctr CTR] ARCHIVE...
# (default state dir $PWD/.cluster, read through its env file). Each image keeps the name in its
# archive's index (io.containerd.image.name, else org.opencontainers.image.ref.name), normalized as
# kubelet asks for it: `kubejudge/api:dev` is stored as `docker.io/kubejudge/api:dev`, so a pod
# with `image: kubejudge/api:dev` and `imagePullPolicy: IfNotPresent` (or Never) runs it.
set -euo pipefail
log() { echo "[load-images] $*" >&2; }

STATE_DIR="${CLUSTER_STATE_DIR:-$PWD/.cluster}"
ADDRESS="" CTR=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --state-dir) STATE_DIR="$2"; shift 2 ;;
    --address) ADDRESS="$2"; shift 2 ;;
    --ctr) CTR="$2"; shift 2 ;;
    -*) log "unknown argument: $1"; exit 2 ;;
    *) break ;;
  esac
done
[[ $# -gt 0 ]] || { log "no archive given"; exit 2; }
if [[ -z "$ADDRESS" || -z "$CTR" ]]; then
  [[ -f "$STATE_DIR/env" ]] || { log "no cluster in $STATE_DIR (make cluster-up)"; exit 1; }
  ADDRESS="$(sed -n 's/^CONTAINERD_ADDRESS=//p' "$STATE_DIR/env")"
  CTR="$(sed -n 's/^CTR=//p' "$STATE_DIR/env")"
fi
ctr_() { # quiet unless it fails (containerd repeats its cgroup v1 deprecation warning on every call)
  local out
  out="$("$CTR" --address "$ADDRESS" -n k8s.io "$@" 2>&1)" || { echo "$out" >&2; return 1; }
}

for archive in "$@"; do
  # (archive name, kubelet's name) for each image the archive's index names
  names="$(python3 - "$archive" <<'PY'
import json, sys, tarfile

with tarfile.open(sys.argv[1]) as tar:
    member = tar.extractfile("index.json")
    if member is None:
        sys.exit(f"{sys.argv[1]}: no index.json (not an OCI archive)")
    index = json.load(member)
for manifest in index.get("manifests", []):
    notes = manifest.get("annotations", {})
    name = notes.get("io.containerd.image.name") or notes.get("org.opencontainers.image.ref.name")
    if not name or "/" not in name and ":" not in name:
        sys.exit(f"{sys.argv[1]}: an image without a full name ({name!r}); save it as repo:tag")
    first, _, rest = name.partition("/")
    if not rest:
        full = f"docker.io/library/{name}"
    elif "." in first or ":" in first or first == "localhost":
        full = name
    else:
        full = f"docker.io/{name}"
    if ":" not in full.rsplit("/", 1)[1] and "@" not in full:
        full += ":latest"
    print(name, full)
PY
)"
  ctr_ images import "$archive"
  while read -r name full; do
    if [[ "$name" != "$full" ]]; then
      ctr_ images tag --force "$name" "$full"
      ctr_ images rm "$name"
    fi
    log "$archive -> $full"
  done <<< "$names"
done
