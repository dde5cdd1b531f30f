#!/usr/bin/env bash
# Build (or reuse) what one real Kubernetes node needs, from Go modules and Debian packages only:
#   kubelet, kube-proxy                  (../controlplane/k8s/go.mod: the control plane's own pins)
#   containerd, containerd-shim-runc-v2, ctr   (containerd/go.mod)
#   runc                                 (runc/go.mod; cgo + libseccomp)
#   coredns                              (coredns/: our main with a small plugin list, no forward)
#   local-path-provisioner               (localpath/go.mod)
#   pause.oci.tar, busybox.oci.tar       (pause/pause.c built static; Debian's busybox-static)
#
# Output: ${KUBEJUDGE_CACHE:-$HOME/.cache/kubejudge}/node/<key>/bin, <key> from the versions, the
# Go version and a hash of the go.mod/go.sum files and of this recipe's own inputs. Idempotent:
# a complete bin dir is reused. Only the bin dir is printed on stdout; progress goes to stderr.
#
# Env knobs: KUBEJUDGE_CACHE, KUBEJUDGE_BUILD_P (go build -p, default 2),
#            KUBEJUDGE_FORCE_REBUILD=1 (rebuild even when the bin dir exists).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
K8S_MOD="$HERE/../controlplane/k8s"
log() { echo "[node build.sh] $*" >&2; }

command -v go >/dev/null || { log "go is not on PATH"; exit 1; }

modver() { # modver <go.mod> <module path>
  awk -v m="$2" '$1==m && $2 ~ /^v/ {print $2; exit} $1=="require" && $2==m {print $3; exit}' "$1"
}
K8S_VERSION="$(modver "$K8S_MOD/go.mod" k8s.io/kubernetes)"
CONTAINERD_VERSION="$(modver "$HERE/containerd/go.mod" github.com/containerd/containerd/v2)"
RUNC_VERSION="$(modver "$HERE/runc/go.mod" github.com/opencontainers/runc)"
COREDNS_VERSION="$(modver "$HERE/coredns/go.mod" github.com/coredns/coredns)"
LOCALPATH_VERSION="$(modver "$HERE/localpath/go.mod" github.com/rancher/local-path-provisioner)"
for v in K8S_VERSION CONTAINERD_VERSION RUNC_VERSION COREDNS_VERSION LOCALPATH_VERSION; do
  [[ -n "${!v}" ]] || { log "cannot read $v from the go.mod files"; exit 1; }
done
BUSYBOX="/bin/busybox"
# the image holds this one file: it must need no shared library
[[ -x "$BUSYBOX" ]] && ! ldd "$BUSYBOX" >/dev/null 2>&1 \
  || { log "$BUSYBOX is missing or not static: apt-get install busybox-static"; exit 1; }
GO_VERSION="$(go env GOVERSION)"
SUM="$(cat "$K8S_MOD"/go.{mod,sum} "$HERE"/{containerd,runc,coredns,localpath}/go.{mod,sum} \
  "$HERE/coredns/main.go" "$HERE/pause/pause.c" "$HERE/oci_image.py" "${BASH_SOURCE[0]}" "$BUSYBOX" \
  | sha256sum | cut -c1-10)"
KEY="k8s-${K8S_VERSION}_containerd-${CONTAINERD_VERSION}_runc-${RUNC_VERSION}_coredns-${COREDNS_VERSION}"
KEY+="_localpath-${LOCALPATH_VERSION}_${GO_VERSION}_${SUM}"

KEYDIR="${KUBEJUDGE_CACHE:-$HOME/.cache/kubejudge}/node/$KEY"
BIN="$KEYDIR/bin"
ALL=(kubelet kube-proxy containerd containerd-shim-runc-v2 ctr runc coredns local-path-provisioner
     pause.oci.tar busybox.oci.tar images.env)
complete() {
  [[ "${KUBEJUDGE_FORCE_REBUILD:-}" == 1 ]] && return 1
  local b
  for b in "${ALL[@]}"; do [[ -s "$BIN/$b" ]] || return 1; done
}
if complete; then echo "$BIN"; exit 0; fi

mkdir -p "$KEYDIR"
exec 9>"$KEYDIR/.lock"
flock 9
if complete; then echo "$BIN"; exit 0; fi  # another builder finished while we waited

export GOWORK=off
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
P="${KUBEJUDGE_BUILD_P:-2}"
STAGE="$KEYDIR/bin.tmp"
rm -rf "$STAGE"; mkdir -p "$STAGE"
timed() { local t0=$SECONDS; "$@"; log "$1 done in $((SECONDS - t0))s"; }

build_kubernetes() {
  # The control plane's flags (build.sh there), so both report the same version.
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local ld="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  (cd "$K8S_MOD" && CGO_ENABLED=0 go build -p "$P" -trimpath -tags=selinux,notest,grpcnotrace \
      -ldflags="$ld" -o "$STAGE/" k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
}

build_containerd() {
  # Upstream's tags: no_grpc for the shim; snapshotters other than overlayfs left out.
  local ld="-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION"
  local tags="urfave_cli_no_docs no_btrfs no_devmapper no_zfs"
  (cd "$HERE/containerd" && CGO_ENABLED=0 go build -p "$P" -trimpath -tags "$tags" -ldflags="$ld" \
      -o "$STAGE/" github.com/containerd/containerd/v2/cmd/containerd github.com/containerd/containerd/v2/cmd/ctr \
    && CGO_ENABLED=0 go build -p "$P" -trimpath -tags "$tags no_grpc" -ldflags="$ld" \
      -o "$STAGE/" github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2)
}

build_runc() {
  (cd "$HERE/runc" && CGO_ENABLED=1 go build -p "$P" -trimpath -buildmode=pie \
      -tags "seccomp urfave_cli_no_docs" -ldflags="-X main.gitCommit=$RUNC_VERSION" \
      -o "$STAGE/runc" github.com/opencontainers/runc)
}

build_coredns() {
  (cd "$HERE/coredns" && CGO_ENABLED=0 go build -p "$P" -trimpath \
      -ldflags="-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" -o "$STAGE/coredns" .)
}

build_localpath() {
  (cd "$HERE/localpath" && CGO_ENABLED=0 go build -p "$P" -trimpath \
      -ldflags="-s -w -X main.VERSION=$LOCALPATH_VERSION" -o "$STAGE/local-path-provisioner" \
      github.com/rancher/local-path-provisioner)
}

build_images() {
  local work; work="$(mktemp -d)"
  gcc -static -Os -Wall -Werror -o "$work/pause" "$HERE/pause/pause.c"
  strip "$work/pause"
  local bb_version; bb_version="$(dpkg-query -W -f '${Version}' busybox-static | sed 's/^[0-9]*://; s/[^A-Za-z0-9_.-]/_/g')"
  PAUSE_IMAGE="kubejudge.local/pause:1"
  BUSYBOX_IMAGE="kubejudge.local/busybox:$bb_version"
  python3 "$HERE/oci_image.py" --name "$PAUSE_IMAGE" --entrypoint /pause \
    --file "/pause=$work/pause" --out "$STAGE/pause.oci.tar"
  local links=() applet
  for applet in $("$BUSYBOX" --list); do
    [[ "$applet" == busybox ]] || links+=(--link "/bin/$applet=busybox")
  done
  # as Docker Hub's busybox: a shell by default, a writable /tmp
  python3 "$HERE/oci_image.py" --name "$BUSYBOX_IMAGE" --cmd /bin/sh --dir /tmp=1777 \
    --file "/bin/busybox=$BUSYBOX" "${links[@]}" --out "$STAGE/busybox.oci.tar"
  printf 'PAUSE_IMAGE=%s\nBUSYBOX_IMAGE=%s\n' "$PAUSE_IMAGE" "$BUSYBOX_IMAGE" > "$STAGE/images.env"
  rm -rf "$work"
}

T0=$SECONDS
timed build_images
timed build_runc
timed build_containerd
timed build_coredns
timed build_localpath
timed build_kubernetes
mkdir -p "$BIN"
for f in "$STAGE"/*; do mv -f "$f" "$BIN/"; done
rmdir "$STAGE"
log "built in $((SECONDS - T0))s: kubernetes=$K8S_VERSION containerd=$CONTAINERD_VERSION runc=$RUNC_VERSION" \
    "coredns=$COREDNS_VERSION local-path-provisioner=$LOCALPATH_VERSION go=$GO_VERSION"
echo "$BIN"
