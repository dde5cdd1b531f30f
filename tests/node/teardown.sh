#!/usr/bin/env bash
# Stop the cluster of tests/node/start.sh in state dir DIR and remove everything it put on the
# machine: processes, pod processes and their cgroups, mounts, the bridge, iptables chains
# (kube-proxy's and the guards), sysctls it changed, stray paths. Safe to run any number of times,
# also after a crash or a half-finished start. Usage: teardown.sh DIR
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "[node teardown] $*" >&2; }
[[ $# == 1 ]] || { log "usage: $0 DIR"; exit 2; }
[[ -d "$1" ]] || exit 0
D="$(cd "$1" && pwd)"
N="$D/node"
# shellcheck source=tests/node/node.env
source "$HERE/node.env"

# Processes we started, by pid file, only while they still run with this state dir on their
# command line (a recycled pid belongs to someone else).
stop_pids() { # stop_pids <pid>...
  local pid i alive
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null; done
  for i in $(seq 1 50); do
    alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ $alive == 0 ]] && return 0
    sleep 0.1
  done
  for pid in "$@"; do kill -KILL "$pid" 2>/dev/null; done
}
ours() { [[ -r "/proc/$1/cmdline" ]] && tr '\0' ' ' < "/proc/$1/cmdline" | grep -qF "$N"; }
daemons=()
for name in watch local-path-provisioner coredns kube-proxy kubelet; do
  f="$N/run/$name.pid"
  [[ -f "$f" ]] || continue
  pid="$(cat "$f")"
  [[ "$pid" != "$$" && "$pid" != "$PPID" ]] && ours "$pid" && daemons+=("$pid")
  rm -f "$f"
done
[[ ${#daemons[@]} -gt 0 ]] && stop_pids "${daemons[@]}"

# Pod processes: everything in the cgroups under kubelet's root, in every hierarchy.
pod_cgroups() { find /sys/fs/cgroup/*/"$CGROUP_ROOT" /sys/fs/cgroup/"$CGROUP_ROOT" -depth -type d 2>/dev/null; }
for _ in $(seq 1 50); do
  pids="$(pod_cgroups | while read -r cg; do cat "$cg/cgroup.procs" 2>/dev/null; done | sort -u)"
  [[ -z "$pids" ]] && break
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null
  sleep 0.1
done
# containerd's shims (named after its socket), then containerd itself
shims=()
for p in /proc/[0-9]*; do
  pid="${p#/proc/}"
  [[ "$pid" == "$$" ]] && continue
  if tr '\0' ' ' 2>/dev/null < "$p/cmdline" | grep -q "containerd-shim.*$N/containerd/"; then shims+=("$pid"); fi
done
[[ ${#shims[@]} -gt 0 ]] && stop_pids "${shims[@]}"
if [[ -f "$N/run/containerd.pid" ]]; then
  pid="$(cat "$N/run/containerd.pid")"
  ours "$pid" && stop_pids "$pid"
  rm -f "$N/run/containerd.pid"
fi

# Mounts under the state dir (kubelet's volumes, containerd's rootfs and network namespaces),
# deepest first.
for _ in 1 2 3; do
  mounts="$(awk -v d="$D/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r)"
  [[ -z "$mounts" ]] && break
  while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done <<< "$mounts"
done
pod_cgroups | while read -r cg; do rmdir "$cg" 2>/dev/null; done

# Network: kube-proxy's chains, the guards, the bridge, the sysctl.
if [[ -s "$N/bin-dir" && -x "$(cat "$N/bin-dir")/kube-proxy" ]]; then
  "$(cat "$N/bin-dir")/kube-proxy" --cleanup >/dev/null 2>&1
fi
# kubelet's own chains, which kube-proxy --cleanup leaves
for ipt in iptables ip6tables; do
  while "$ipt" -D INPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
  while "$ipt" -D OUTPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
  for table in filter nat mangle; do
    for chain in KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
      "$ipt" -t "$table" -F "$chain" 2>/dev/null && "$ipt" -t "$table" -X "$chain"
    done
  done
done
while iptables -t mangle -D FORWARD -j "$GUARD_FORWARD" 2>/dev/null; do :; done
iptables -t mangle -F "$GUARD_FORWARD" 2>/dev/null && iptables -t mangle -X "$GUARD_FORWARD"
while iptables -D INPUT -i "$BRIDGE" -j "$GUARD_INPUT" 2>/dev/null; do :; done
iptables -F "$GUARD_INPUT" 2>/dev/null && iptables -X "$GUARD_INPUT"
ip link show "$BRIDGE" >/dev/null 2>&1 && ip link del "$BRIDGE"
command -v conntrack >/dev/null && conntrack -D -s "$POD_CIDR" >/dev/null 2>&1
[[ -s "$N/ip_forward.orig" ]] && cat "$N/ip_forward.orig" > /proc/sys/net/ipv4/ip_forward && rm -f "$N/ip_forward.orig"
if [[ -s "$N/stray-paths" ]]; then
  while read -r path; do rm -rf "$path"; done < "$N/stray-paths"
  rm -f "$N/stray-paths"
fi

[[ -d "$D/controlplane" ]] && "$HERE/../controlplane/stop.sh" "$D/controlplane" >/dev/null 2>&1
OWNER="$MACHINE_LOCK_DIR/owner"
[[ -f "$OWNER" && "$(cat "$OWNER")" == "$D" ]] && rm -f "$OWNER"
exit 0
