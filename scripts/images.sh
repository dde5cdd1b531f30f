#!/usr/bin/env bash
# Build the four kubejudge images (api, gateway, worker, operator) with docker or podman:
#   scripts/images.sh [TAG]        (default tag: dev, as examples/judgecluster.yaml names them)
# Build output goes to stderr; the engine used is the one line on stdout. Exits 2 with a clear
# message where no engine runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TAG="${1:-dev}"

engine=""
for candidate in docker podman; do
  if command -v "$candidate" >/dev/null && "$candidate" info >/dev/null 2>&1; then
    engine="$candidate"
    break
  fi
done
if [[ -z "$engine" ]]; then
  echo "images: no container engine here (docker or podman with a running daemon);" \
       "nothing was built. The Dockerfiles are linted by tests/chart/test_dockerfiles.py." >&2
  exit 2
fi
echo "images: building with $engine, tag $TAG" >&2

declare -A dockerfiles=(
  [api]=images/api/Dockerfile
  [gateway]=images/gateway/Dockerfile
  [worker]=images/worker/Dockerfile
  [operator]=operator/Dockerfile
)
for role in api gateway worker operator; do
  "$engine" build --file "${dockerfiles[$role]}" --tag "kubejudge/$role:$TAG" . >&2
done
echo "$engine"
