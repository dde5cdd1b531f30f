#!/usr/bin/env bash
# Start a real single-node Kubernetes cluster on this machine: the control plane of
# tests/controlplane (no kwok) plus one node made of containerd 2 + runc, kubelet, kube-proxy
# (iptables), CoreDNS (cluster.local only) and local-path-provisioner, all plain processes, with
# pods on a bridge of our own from which nothing is forwarded out of the machine.
#
# Usage:
#   tests/node/start.sh [--state-dir] [DIR]           start (stops a previous instance in DIR first)
#   tests/node/start.sh --stop [--state-dir] [DIR]    stop and clean up (same as stop.sh [DIR])
#
# Env knobs: CLUSTER_STATE_DIR (default $PWD/.cluster), CLUSTER_TIMEOUT (seconds per component,
#            default 90), CLUSTER_WATCH_PID (stop the cluster when that process exits).
# Root only (bridges, iptables, mounts, cgroups). One such cluster per machine: the iptables chains
# of kube-proxy and the bridge are machine-wide, so a second start elsewhere is refused.
#
# Writes DIR/kubeconfig (admin) and DIR/env (shell-sourceable); the last stdout line is
# "export KUBECONFIG=...".
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "[node] $*" >&2; }

STOP=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --stop) STOP=1; shift ;;
    --state-dir) CLUSTER_STATE_DIR="$2"; shift 2 ;;
    --state-dir=*) CLUSTER_STATE_DIR="${1#*=}"; shift ;;
    -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) log "unknown argument: $1"; exit 2 ;;
    *) CLUSTER_STATE_DIR="$1"; shift ;;
  esac
done
[[ "$(id -u)" == 0 ]] || { log "must run as root"; exit 1; }
CLUSTER_STATE_DIR="${CLUSTER_STATE_DIR:-$PWD/.cluster}"
mkdir -p "$CLUSTER_STATE_DIR"
D="$(cd "$CLUSTER_STATE_DIR" && pwd)"
# shellcheck source=tests/node/node.env
source "$HERE/node.env"
CP="$D/controlplane"
N="$D/node"
OWNER="$MACHINE_LOCK_DIR/owner"

if [[ $STOP == 1 ]]; then
  exec "$HERE/teardown.sh" "$D"
fi

# ---------------------------------------------------------------------------------------------- claim
mkdir -p "$MACHINE_LOCK_DIR"
exec 8>"$MACHINE_LOCK_DIR/lock"
flock -w 60 8 || { log "another start or stop holds $MACHINE_LOCK_DIR/lock"; exit 1; }
if [[ -s "$OWNER" && "$(cat "$OWNER")" != "$D" ]]; then
  other="$(cat "$OWNER")"
  if [[ -d "$other" ]]; then
    log "a cluster from $other holds this machine's node network; stop it first: $HERE/stop.sh $other"
    exit 1
  fi
  log "the previous owner $other is gone; cleaning up after it"
  "$HERE/teardown.sh" "$other"
fi
"$HERE/teardown.sh" "$D"
echo "$D" > "$OWNER"
# The owner file now guards the machine; the lock must not stay open in the daemons started below.
flock -u 8
exec 8>&-

T_START=$(date +%s.%N)
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.1f}')" "$T_START" "$(date +%s.%N)"; }
rm -rf "$N" "$D/env" "$D/kubeconfig"
mkdir -p "$N"/{run,logs,pki,cni/net.d,kubelet,local-path}
TIMEOUT="${CLUSTER_TIMEOUT:-90}"

# The user-namespaced root of a `hostUsers: false` pod is an unprivileged host uid: it must be able
# to pass through every directory above containerd's root and state (containerd makes their parent
# 0700 itself, hence the chmod below; the rest is the caller's).
chmod 711 "$N"
p="$N"
while [[ "$p" != / ]]; do
  p="$(dirname "$p")"
  if [[ $(( $(stat -c '%#a' "$p") & 1 )) == 0 ]]; then
    log "$p is not searchable by others (mode $(stat -c %a "$p")): hostUsers: false pods could not start"
    exit 1
  fi
done

BIN="$("$HERE/build.sh")"
CP_BIN="$("$HERE/../controlplane/build.sh")"
echo "$BIN" > "$N/bin-dir"  # teardown runs kube-proxy --cleanup with it
# shellcheck source=/dev/null
source "$BIN/images.env"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
API_PORT="$(free_port)"
KUBELET_HEALTHZ_PORT="$(free_port)"
PROXY_METRICS_PORT="$(free_port)"
PROXY_HEALTHZ_PORT="$(free_port)"
DNS_HEALTH_PORT="$(free_port)"
DNS_READY_PORT="$(free_port)"
CONTAINERD_ADDRESS="$N/containerd/state/containerd.sock"
CTR="$BIN/ctr"

launch() { # launch <name> <cmd...>   (own session so a Ctrl-C of the caller does not kill it)
  local name="$1"; shift
  setsid "$@" >"$N/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$N/run/$name.pid"
}
fail() {
  log "ERROR: $*"
  local f
  for f in "$N"/logs/*.log; do
    [[ -s "$f" ]] || continue
    echo "----- tail $f" >&2; tail -n 25 "$f" >&2
  done
  "$HERE/teardown.sh" "$D" || true
  exit 1
}
wait_for() { # wait_for <name> <cmd...>  (polls until cmd succeeds; fails if the process died)
  local name="$1"; shift
  local deadline=$(( $(date +%s) + TIMEOUT ))
  local pid; pid="$(cat "$N/run/$name.pid" 2>/dev/null || true)"
  until "$@" >/dev/null 2>&1; do
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then fail "$name exited (see $N/logs/$name.log)"; fi
    if [[ $(date +%s) -ge $deadline ]]; then fail "$name not ready after ${TIMEOUT}s"; fi
    sleep 0.2
  done
  log "$name ready ($(elapsed)s)"
}

# ---------------------------------------------------------------------------------------------- network
# Paths some components create whatever they are told; teardown removes those that were not here.
for path in "${STRAY_PATHS[@]}"; do [[ -e "$path" ]] || echo "$path"; done > "$N/stray-paths"
cat /proc/sys/net/ipv4/ip_forward > "$N/ip_forward.orig"
ip link add "$BRIDGE" type bridge
ip addr add "$BRIDGE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
ip link set "$BRIDGE" up
echo 1 > /proc/sys/net/ipv4/ip_forward
# Service traffic between two pods on the bridge must pass iptables for kube-proxy's NAT.
echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables
OUT_IFACES="$(ip -o route show default | awk '{for (i=1; i<NF; i++) if ($i == "dev") print $(i+1)}' | sort -u)"
# Guard 1: nothing is forwarded out of the machine, whatever else routes or NATs it.
iptables -t mangle -N "$GUARD_FORWARD"
for iface in $OUT_IFACES; do iptables -t mangle -A "$GUARD_FORWARD" -o "$iface" -j DROP; done
iptables -t mangle -A "$GUARD_FORWARD" ! -o "$BRIDGE" -i "$BRIDGE" -j DROP
iptables -t mangle -I FORWARD 1 -j "$GUARD_FORWARD"
# Guard 2: from the bridge a pod reaches only DNS and the apiserver on the host (and replies to the
# host's own connections: probes, logs, exec), not whatever else listens on the host.
iptables -N "$GUARD_INPUT"
iptables -A "$GUARD_INPUT" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
iptables -A "$GUARD_INPUT" -d "$BRIDGE_IP" -p udp --dport 53 -j ACCEPT
iptables -A "$GUARD_INPUT" -d "$BRIDGE_IP" -p tcp --dport 53 -j ACCEPT
iptables -A "$GUARD_INPUT" -d "$BRIDGE_IP" -p tcp --dport "$API_PORT" -j ACCEPT
iptables -A "$GUARD_INPUT" -j DROP
iptables -I INPUT 1 -i "$BRIDGE" -j "$GUARD_INPUT"
log "bridge $BRIDGE $BRIDGE_IP, guards against forwarding out of: $OUT_IFACES ($(elapsed)s)"

# ---------------------------------------------------------------------------------------------- control plane
CP_STATE_DIR="$CP" CP_BIN_DIR="$CP_BIN" CP_KWOK_NODES=0 CP_BIND_ADDRESS="$BRIDGE_IP" CP_API_PORT="$API_PORT" \
  CP_TIMEOUT="$TIMEOUT" CP_WATCH_PID="${CLUSTER_WATCH_PID:-}" "$HERE/../controlplane/start.sh" >/dev/null \
  || fail "control plane did not start (logs in $CP/logs)"
# shellcheck source=/dev/null
source "$CP/env"
cp "$CP/admin.kubeconfig" "$D/kubeconfig"
KUBECTL=("$CP_BIN/kubectl" --kubeconfig "$D/kubeconfig")
API_URL="$CP_API_URL"

# ---------------------------------------------------------------------------------------------- PKI
PKI="$CP/pki"
cert() { # cert <name> <subject> <extendedKeyUsage> [subjectAltName]   (signed by the cluster CA)
  local out="$N/pki/$1"
  (
    umask 077
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out.key" 2>/dev/null
    openssl req -new -key "$out.key" -subj "$2" -out "$out.csr" 2>/dev/null
    {
      echo "basicConstraints=critical,CA:FALSE"
      echo "keyUsage=critical,digitalSignature,keyEncipherment"
      echo "extendedKeyUsage=$3"
      [[ -n "${4:-}" ]] && echo "subjectAltName=$4"
    } > "$out.ext"
    openssl x509 -req -in "$out.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -sha256 -days 3650 \
      -extfile "$out.ext" -out "$out.crt" 2>/dev/null
    rm -f "$out.csr" "$out.ext"
  )
}
kubeconfig() { # kubeconfig <name>   (for the client cert <name>)
  cat > "$N/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kubejudge
  cluster:
    server: $API_URL
    certificate-authority: $PKI/ca.crt
users:
- name: $1
  user:
    client-certificate: $N/pki/$1.crt
    client-key: $N/pki/$1.key
contexts:
- name: $1
  context: {cluster: kubejudge, user: $1}
current-context: $1
EOF
  chmod 600 "$N/$1.kubeconfig"
}
cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
cert kubelet-serving "/CN=system:node:$NODE_NAME" serverAuth "IP:$BRIDGE_IP,DNS:$NODE_NAME"
cert kube-proxy "/CN=system:kube-proxy" clientAuth
cert coredns "/CN=system:coredns" clientAuth
cert local-path-provisioner "/CN=system:local-path-provisioner" clientAuth
for c in kubelet kube-proxy coredns local-path-provisioner; do kubeconfig "$c"; done

# ---------------------------------------------------------------------------------------------- RBAC + objects
sed -e "s|@BUSYBOX_IMAGE@|$BUSYBOX_IMAGE|g" -e "s|@LOCAL_PATH_DIR@|$N/local-path|g" "$HERE/cluster-objects.yaml" \
  | "${KUBECTL[@]}" apply -f - >/dev/null || fail "could not create the node's RBAC and storage objects"

# ---------------------------------------------------------------------------------------------- containerd
cat > "$N/cni/net.d/10-kubejudge.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "kubejudge",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$N/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$BRIDGE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
EOF
mkdir -p "$N/containerd/root" "$N/containerd/state"
cat > "$N/containerd/config.toml" <<EOF
version = 3
root = "$N/containerd/root"
state = "$N/containerd/state"
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "$CONTAINERD_ADDRESS"

[ttrpc]
  address = "$CONTAINERD_ADDRESS.ttrpc"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "$PAUSE_IMAGE"

[plugins.'io.containerd.cri.v1.runtime']
  # this VM grants no CAP_SYS_RESOURCE: nobody may lower an OOM score, runc must not try
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "$BIN/runc"
        Root = "$N/containerd/runc"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$N/cni/net.d"
    max_conf_num = 1

[plugins.'io.containerd.grpc.v1.cri']
  # kubelet's exec/attach/port-forward stream server: loopback only
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
EOF
# The shim containerd starts is looked up on PATH: ours, not any other on the machine.
launch containerd env PATH="$BIN:$PATH" "$BIN/containerd" --config "$N/containerd/config.toml"
wait_for containerd "$CTR" --address "$CONTAINERD_ADDRESS" version
"$HERE/load-images.sh" --address "$CONTAINERD_ADDRESS" --ctr "$CTR" "$BIN/pause.oci.tar" "$BIN/busybox.oci.tar" \
  || fail "could not import the node's images"

# ---------------------------------------------------------------------------------------------- kubelet
echo "nameserver $BRIDGE_IP" > "$N/resolv.conf"
# kubelet's pods live under this cgroup in every hierarchy, so teardown knows what to remove.
for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
  [[ -e "$h/cgroup.procs" ]] && mkdir -p "$h/$CGROUP_ROOT"
done
# a v1 cpuset cgroup starts with no CPUs and no memory nodes: nothing could run in it
for f in cpuset.cpus cpuset.mems; do
  [[ -f "/sys/fs/cgroup/cpuset/$f" ]] && cat "/sys/fs/cgroup/cpuset/$f" > "/sys/fs/cgroup/cpuset/$CGROUP_ROOT/$f"
done
cat > "$N/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $BRIDGE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $N/pki/kubelet-serving.crt
tlsPrivateKeyFile: $N/pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true, cacheTTL: 30s}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
  webhook: {cacheAuthorizedTTL: 30s, cacheUnauthorizedTTL: 5s}
# this machine: cgroup v1 and no systemd as PID 1
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
containerRuntimeEndpoint: unix://$CONTAINERD_ADDRESS
clusterDomain: cluster.local
clusterDNS: [$BRIDGE_IP]
# pods never get the host's upstream resolver
resolvConf: $N/resolv.conf
failSwapOn: false
# images are imported, never pulled: garbage-collecting one would lose it
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%, nodefs.inodesFree: 2%}
serializeImagePulls: false
rotateCertificates: false
serverTLSBootstrap: false
nodeStatusUpdateFrequency: 4s
podLogsDir: $N/pod-logs
EOF
launch kubelet "$BIN/kubelet" \
  --config="$N/kubelet.yaml" --kubeconfig="$N/kubelet.kubeconfig" --root-dir="$N/kubelet" \
  --cert-dir="$N/pki" --hostname-override="$NODE_NAME" --node-ip="$BRIDGE_IP" --v=1
node_ready() {
  "${KUBECTL[@]}" get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True
}
wait_for kubelet node_ready

# ---------------------------------------------------------------------------------------------- kube-proxy
cat > "$N/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $N/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
bindAddress: $BRIDGE_IP
mode: iptables
clusterCIDR: $POD_CIDR
nodePortAddresses: [$POD_CIDR]
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
# leave the machine's conntrack sysctls alone
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
launch kube-proxy "$BIN/kube-proxy" --config="$N/kube-proxy.yaml" --v=1
wait_for kube-proxy curl -sf --max-time 2 "http://127.0.0.1:$PROXY_HEALTHZ_PORT/healthz"

# ---------------------------------------------------------------------------------------------- CoreDNS
cat > "$N/Corefile" <<EOF
cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {
  bind $BRIDGE_IP
  errors
  health 127.0.0.1:$DNS_HEALTH_PORT
  ready 127.0.0.1:$DNS_READY_PORT
  kubernetes cluster.local in-addr.arpa ip6.arpa {
    kubeconfig $N/coredns.kubeconfig
    pods insecure
  }
  cache 30
  loadbalance
}
EOF
launch coredns "$BIN/coredns" -conf "$N/Corefile"
wait_for coredns curl -sf --max-time 2 "http://127.0.0.1:$DNS_READY_PORT/ready"

# ---------------------------------------------------------------------------------------------- storage
launch local-path-provisioner "$BIN/local-path-provisioner" start \
  --kubeconfig "$N/local-path-provisioner.kubeconfig" --namespace local-path-storage \
  --helper-image "$BUSYBOX_IMAGE" --service-account-name local-path-provisioner-service-account
sleep 1
kill -0 "$(cat "$N/run/local-path-provisioner.pid")" 2>/dev/null || fail "local-path-provisioner exited"

# ---------------------------------------------------------------------------------------------- done
if [[ -n "${CLUSTER_WATCH_PID:-}" ]]; then
  setsid bash -c 'while kill -0 "$1" 2>/dev/null && [ -f "$2/run/kubelet.pid" ]; do sleep 1; done; exec "$3" "$4"' \
    _ "$CLUSTER_WATCH_PID" "$N" "$HERE/teardown.sh" "$D" >"$N/logs/watch.log" 2>&1 < /dev/null &
  echo $! > "$N/run/watch.pid"
fi
cat > "$D/env" <<EOF
KUBECONFIG=$D/kubeconfig
API_URL=$API_URL
CA_FILE=$PKI/ca.crt
CONTAINERD_ADDRESS=$CONTAINERD_ADDRESS
CTR=$CTR
NODE_NAME=$NODE_NAME
BRIDGE=$BRIDGE
BRIDGE_IP=$BRIDGE_IP
POD_CIDR=$POD_CIDR
SERVICE_CIDR=$CP_SERVICE_CIDR
KUBERNETES_SERVICE_IP=$CP_KUBERNETES_SERVICE_IP
PAUSE_IMAGE=$PAUSE_IMAGE
BUSYBOX_IMAGE=$BUSYBOX_IMAGE
NODE_BIN_DIR=$BIN
CP_BIN_DIR=$CP_BIN
LOAD_IMAGES=$HERE/load-images.sh
EOF
log "cluster ready in $(elapsed)s: $API_URL, node $NODE_NAME (state $D)"
echo "export KUBECONFIG=$D/kubeconfig"
