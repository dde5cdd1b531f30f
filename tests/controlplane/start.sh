#!/usr/bin/env bash
# Start a real Kubernetes control plane on loopback:
#   etcd -> kube-apiserver -> kube-controller-manager + kube-scheduler + kwok (fake nodes)
# All state (PKI, kubeconfigs, etcd data, logs, pid files) lives in one state dir.
#
# Usage:
#   tests/controlplane/start.sh [--state-dir] [DIR]          start (stops a previous instance in DIR first)
#   tests/controlplane/start.sh --stop [--state-dir] [DIR]   stop (same as stop.sh [DIR])
#
# Env knobs (all optional):
#   CP_STATE_DIR        state dir (default: $PWD/.controlplane)
#   CP_KUBECONFIG       where to write the admin kubeconfig (default: $CP_STATE_DIR/kubeconfig)
#   CP_BIN_DIR          dir with kube-apiserver, kube-controller-manager, kube-scheduler, etcd, kwok,
#                       kwok-stages.yaml (default: output of build.sh, which builds or reuses them)
#   CP_API_PORT CP_ETCD_PORT CP_ETCD_PEER_PORT CP_KCM_PORT CP_SCHED_PORT
#                       ports on 127.0.0.1 (default: free ports picked at start)
#   CP_KWOK_NODES       number of fake nodes (default 1; 0 = no kwok)
#   CP_NO_KCM=1 CP_NO_SCHED=1 CP_NO_KWOK=1   leave components out
#   CP_TIMEOUT          seconds to wait for each component (default 60)
#   CP_WATCH_PID        stop the control plane when this process exits (used by the pytest fixture)
#   CP_BIND_ADDRESS     the apiserver's one listening and advertised address (default 127.0.0.1); a real
#                       node's pods reach it there through the `kubernetes` Service (tests/node/start.sh)
#   CP_API_SANS         extra subjectAltNames of the apiserver's serving cert, e.g. IP:10.244.0.1
#
# On success prints "export KUBECONFIG=..." as its last stdout line; details are in $CP_STATE_DIR/env.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "[controlplane] $*" >&2; }

STOP=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --stop) STOP=1; shift ;;
    --state-dir) CP_STATE_DIR="$2"; shift 2 ;;
    --state-dir=*) CP_STATE_DIR="${1#*=}"; shift ;;
    -h|--help) sed -n '2,26p' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) log "unknown argument: $1"; exit 2 ;;
    *) CP_STATE_DIR="$1"; shift ;;  # positional state dir, same as --state-dir
  esac
done
CP_STATE_DIR="${CP_STATE_DIR:-$PWD/.controlplane}"
mkdir -p "$CP_STATE_DIR"
D="$(cd "$CP_STATE_DIR" && pwd)"

# ---------------------------------------------------------------------------------------------- stop
stop_all() {
  local pids=() f pid
  # reverse start order
  for f in watch kwok scheduler kcm apiserver etcd; do
    [[ -f "$D/run/$f.pid" ]] || continue
    pid="$(cat "$D/run/$f.pid")"
    [[ "$pid" == "$$" ]] && { rm -f "$D/run/$f.pid"; continue; }
    # only signal processes that still run the binary we started (pid reuse guard)
    if kill -0 "$pid" 2>/dev/null && grep -q "$D" "/proc/$pid/cmdline" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
    rm -f "$D/run/$f.pid"
  done
  local i
  for i in $(seq 1 50); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ $alive == 0 ]] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  [[ ${#pids[@]} -gt 0 ]] && log "stopped ${#pids[@]} process(es) in $D"
  return 0
}

if [[ $STOP == 1 ]]; then
  stop_all
  exit 0
fi

# ---------------------------------------------------------------------------------------------- start
T_START=$(date +%s.%N)
stop_all
rm -rf "$D/pki" "$D/etcd" "$D/run" "$D/logs" "$D/env"
mkdir -p "$D/pki" "$D/etcd" "$D/run" "$D/logs"
chmod 700 "$D/etcd"

BIN="${CP_BIN_DIR:-}"
if [[ -z "$BIN" ]]; then
  BIN="$("$HERE/build.sh")"
fi
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kwok; do
  [[ -x "$BIN/$b" ]] || { log "missing $BIN/$b"; exit 1; }
done

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
API_PORT="${CP_API_PORT:-$(free_port)}"
ETCD_PORT="${CP_ETCD_PORT:-$(free_port)}"
ETCD_PEER_PORT="${CP_ETCD_PEER_PORT:-$(free_port)}"
KCM_PORT="${CP_KCM_PORT:-$(free_port)}"
SCHED_PORT="${CP_SCHED_PORT:-$(free_port)}"
KWOK_NODES="${CP_KWOK_NODES:-1}"
[[ "${CP_NO_KWOK:-}" == 1 ]] && KWOK_NODES=0
TIMEOUT="${CP_TIMEOUT:-60}"
KUBECONFIG_OUT="${CP_KUBECONFIG:-$D/kubeconfig}"
BIND_ADDRESS="${CP_BIND_ADDRESS:-127.0.0.1}"
API_URL="https://$BIND_ADDRESS:$API_PORT"
SERVICE_CIDR=10.0.0.0/24
# The `kubernetes` Service's ClusterIP is the first address of the range.
KUBERNETES_SERVICE_IP=10.0.0.1
# Loopback is not reachable from a pod, so publishing it as the `kubernetes` endpoint would be a lie.
ENDPOINT_RECONCILER=lease
[[ "$BIND_ADDRESS" == 127.* ]] && ENDPOINT_RECONCILER=none

# ---------------------------------------------------------------------------------------------- PKI
P="$D/pki"
(
  cd "$P"
  umask 077
  key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
  key ca.key
  openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=kubejudge-test-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out ca.crt 2>/dev/null
  cert() { # cert <name> <subject> <extendedKeyUsage> [subjectAltName] [ca basename]
    local ca="${5:-ca}"
    key "$1.key"
    openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
    {
      echo "basicConstraints=critical,CA:FALSE"
      echo "keyUsage=critical,digitalSignature,keyEncipherment"
      echo "extendedKeyUsage=$3"
      [[ -n "${4:-}" ]] && echo "subjectAltName=$4"
    } > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial -sha256 -days 3650 \
      -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
  }
  cert apiserver "/CN=kube-apiserver" serverAuth \
    "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:$KUBERNETES_SERVICE_IP,IP:$BIND_ADDRESS${CP_API_SANS:+,$CP_API_SANS}"
  cert admin "/O=system:masters/CN=kubejudge-admin" clientAuth
  cert kcm "/CN=system:kube-controller-manager" clientAuth
  cert scheduler "/CN=system:kube-scheduler" clientAuth
  cert kwok "/O=system:masters/CN=kwok" clientAuth
  # what the apiserver shows a kubelet (logs, exec, port-forward); RBAC allows it system:kubelet-api-admin
  cert apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client" clientAuth
  # front proxy (aggregation layer): its own CA, as kubeadm does
  key front-proxy-ca.key
  openssl req -x509 -new -key front-proxy-ca.key -sha256 -days 3650 -subj "/CN=kubejudge-front-proxy-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out front-proxy-ca.crt 2>/dev/null
  cert front-proxy-client "/CN=front-proxy-client" clientAuth "" front-proxy-ca
  # apiserver -> etcd is plain http on loopback; the serving cert of kcm/scheduler is self-signed by them.
  key sa.key
  openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
  chmod 644 ca.crt front-proxy-ca.crt
)

b64() { base64 -w0 < "$1"; }
kubeconfig() { # kubeconfig <out> <user> <cert> <key>
  cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kubejudge-test
  cluster:
    server: $API_URL
    certificate-authority-data: $(b64 "$P/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(b64 "$3")
    client-key-data: $(b64 "$4")
contexts:
- name: $2@kubejudge-test
  context:
    cluster: kubejudge-test
    user: $2
    namespace: default
current-context: $2@kubejudge-test
EOF
  chmod 600 "$1"
}
kubeconfig "$D/admin.kubeconfig" admin "$P/admin.crt" "$P/admin.key"
kubeconfig "$D/kcm.kubeconfig" system:kube-controller-manager "$P/kcm.crt" "$P/kcm.key"
kubeconfig "$D/scheduler.kubeconfig" system:kube-scheduler "$P/scheduler.crt" "$P/scheduler.key"
kubeconfig "$D/kwok.kubeconfig" kwok "$P/kwok.crt" "$P/kwok.key"
if [[ "$KUBECONFIG_OUT" != "$D/admin.kubeconfig" ]]; then
  mkdir -p "$(dirname "$KUBECONFIG_OUT")"
  cp "$D/admin.kubeconfig" "$KUBECONFIG_OUT"
fi

# ---------------------------------------------------------------------------------------------- helpers
launch() { # launch <name> <cmd...>   (own session so a Ctrl-C of the caller does not kill it)
  local name="$1"; shift
  setsid "$@" >"$D/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$D/run/$name.pid"
}
fail() {
  log "ERROR: $*"
  local f
  for f in "$D"/logs/*.log; do
    [[ -s "$f" ]] || continue
    echo "----- tail $f" >&2; tail -n 25 "$f" >&2
  done
  stop_all
  exit 1
}
wait_for() { # wait_for <name> <cmd...>  (polls until cmd succeeds; fails if the process died)
  local name="$1"; shift
  local deadline=$(( $(date +%s) + TIMEOUT ))
  local pid; pid="$(cat "$D/run/$name.pid" 2>/dev/null || true)"
  until "$@" >/dev/null 2>&1; do
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then fail "$name exited (see $D/logs/$name.log)"; fi
    if [[ $(date +%s) -ge $deadline ]]; then fail "$name not healthy after ${TIMEOUT}s"; fi
    sleep 0.2
  done
  log "$name ready ($(elapsed)s)"
}
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.1f}')" "$T_START" "$(date +%s.%N)"; }
ADMIN_CURL=(curl -sf --max-time 5 --cacert "$P/ca.crt" --cert "$P/admin.crt" --key "$P/admin.key")

# ---------------------------------------------------------------------------------------------- etcd
launch etcd "$BIN/etcd" --name=kubejudge --data-dir="$D/etcd" \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="kubejudge=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state=new \
  --unsafe-no-fsync=true --auto-compaction-retention=1 --quota-backend-bytes=4294967296 --log-level=warn
wait_for etcd sh -c "curl -sf --max-time 2 http://127.0.0.1:$ETCD_PORT/health | grep -q '\"health\":\"true\"'"

# ---------------------------------------------------------------------------------------------- apiserver
launch apiserver "$BIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address="$BIND_ADDRESS" --secure-port="$API_PORT" \
  --advertise-address="$BIND_ADDRESS" --endpoint-reconciler-type="$ENDPOINT_RECONCILER" \
  --cert-dir="$P" --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" \
  --client-ca-file="$P/ca.crt" \
  --service-account-issuer="$API_URL" \
  --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --kubelet-client-certificate="$P/apiserver-kubelet-client.crt" --kubelet-client-key="$P/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$P/ca.crt" --kubelet-preferred-address-types=InternalIP \
  --requestheader-client-ca-file="$P/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$P/front-proxy-client.crt" --proxy-client-key-file="$P/front-proxy-client.key" \
  --authorization-mode=Node,RBAC --allow-privileged=true \
  --profiling=false --v=1
wait_for apiserver "${ADMIN_CURL[@]}" "$API_URL/readyz"

# ---------------------------------------------------------------------------------------------- kcm / scheduler / kwok
if [[ "${CP_NO_KCM:-}" != 1 ]]; then
  launch kcm "$BIN/kube-controller-manager" \
    --kubeconfig="$D/kcm.kubeconfig" \
    --authentication-kubeconfig="$D/kcm.kubeconfig" --authorization-kubeconfig="$D/kcm.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --cert-dir="$D/run/kcm-certs" \
    --leader-elect=false --controllers='*' --use-service-account-credentials=true \
    --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" \
    --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --profiling=false --v=1
fi
if [[ "${CP_NO_SCHED:-}" != 1 ]]; then
  cat > "$D/scheduler.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $D/scheduler.kubeconfig
leaderElection:
  leaderElect: false
EOF
  launch scheduler "$BIN/kube-scheduler" --config="$D/scheduler.yaml" \
    --authentication-kubeconfig="$D/scheduler.kubeconfig" --authorization-kubeconfig="$D/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --cert-dir="$D/run/scheduler-certs" --v=1
fi
if [[ "$KWOK_NODES" -gt 0 ]]; then
  launch kwok "$BIN/kwok" --kubeconfig="$D/kwok.kubeconfig" --config="$BIN/kwok-stages.yaml" \
    --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-lease-duration-seconds=40 --cidr=10.244.0.0/16 --node-ip=127.0.0.1
  for i in $(seq 0 $((KWOK_NODES - 1))); do
    node_json='{"apiVersion":"v1","kind":"Node","metadata":{"name":"kwok-node-'$i'",
 "annotations":{"node.alpha.kubernetes.io/ttl":"0","kwok.x-k8s.io/node":"fake"},
 "labels":{"kubernetes.io/hostname":"kwok-node-'$i'","kubernetes.io/os":"linux","kubernetes.io/arch":"amd64","type":"kwok"}},
 "status":{"allocatable":{"cpu":"32","memory":"256Gi","pods":"110"},"capacity":{"cpu":"32","memory":"256Gi","pods":"110"}}}'
    if ! "${ADMIN_CURL[@]}" -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary "$node_json" \
         "$API_URL/api/v1/nodes"; then
      fail "could not create node kwok-node-$i"
    fi
  done
fi
node_ready() {
  "${ADMIN_CURL[@]}" "$API_URL/api/v1/nodes/$1" | python3 -c '
import json, sys
n = json.load(sys.stdin)
sys.exit(0 if any(c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", [])) else 1)'
}
[[ "${CP_NO_KCM:-}" != 1 ]] && wait_for kcm curl -skf --max-time 2 "https://127.0.0.1:$KCM_PORT/healthz"
[[ "${CP_NO_SCHED:-}" != 1 ]] && wait_for scheduler curl -skf --max-time 2 "https://127.0.0.1:$SCHED_PORT/healthz"
if [[ "$KWOK_NODES" -gt 0 ]]; then
  for i in $(seq 0 $((KWOK_NODES - 1))); do wait_for kwok node_ready "kwok-node-$i"; done
fi
if [[ "${CP_NO_KCM:-}" != 1 ]]; then
  # the ServiceAccount controller must have run before pods can be created in "default"
  wait_for kcm "${ADMIN_CURL[@]}" "$API_URL/api/v1/namespaces/default/serviceaccounts/default"
fi

if [[ -n "${CP_WATCH_PID:-}" ]]; then
  # tear everything down if the owning process (e.g. pytest) dies without calling stop
  setsid bash -c 'while kill -0 "$1" 2>/dev/null && [ -f "$2/run/apiserver.pid" ]; do sleep 1; done; exec "$3" --stop --state-dir "$2"' \
    _ "$CP_WATCH_PID" "$D" "$HERE/start.sh" >"$D/logs/watch.log" 2>&1 < /dev/null &
  echo $! > "$D/run/watch.pid"
fi

cat > "$D/env" <<EOF
CP_STATE_DIR=$D
CP_BIN_DIR=$BIN
CP_KUBECONFIG=$KUBECONFIG_OUT
CP_API_URL=$API_URL
CP_CA_FILE=$P/ca.crt
CP_API_PORT=$API_PORT
CP_ETCD_PORT=$ETCD_PORT
CP_SERVICE_CIDR=$SERVICE_CIDR
CP_KUBERNETES_SERVICE_IP=$KUBERNETES_SERVICE_IP
CP_KCM_PORT=$KCM_PORT
CP_SCHED_PORT=$SCHED_PORT
EOF
log "control plane ready in $(elapsed)s: $API_URL (state $D, bin $BIN)"
echo "export KUBECONFIG=$KUBECONFIG_OUT"
