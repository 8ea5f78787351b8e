#!/usr/bin/env bash
# The local control plane: a real etcd, kube-apiserver, kube-controller-manager and
# kube-scheduler, plus kwok's fake nodes (pods on them become Running and Ready without
# containers), all as processes on 127.0.0.1, run by kwokctl from binaries built by
# hack/build-cluster-bins.sh.
#
#   hack/local-cluster.sh up      create it (or reuse it when it is already running)
#   hack/local-cluster.sh down    delete it: no process, port or state is left behind
#   hack/local-cluster.sh status  say whether it runs, and where its kubeconfig is
#   hack/local-cluster.sh kubeconfig   print the kubeconfig's path
#
# Settings (environment): LOCAL_CLUSTER_NAME (default sample-controller), LOCAL_CLUSTER_DIR
# (default _output/local-cluster: kubeconfig, kwokctl state, logs, audit log), LOCAL_CLUSTER_NODES
# (fake nodes, default 1; each takes 110 pods).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/hack/lib/versions.sh"

name="${LOCAL_CLUSTER_NAME:-sample-controller}"
dir="${LOCAL_CLUSTER_DIR:-$root/_output/local-cluster}"
nodes="${LOCAL_CLUSTER_NODES:-1}"
kubeconfig="$dir/kubeconfig"

export KWOK_WORKDIR="$dir/kwok"
export KWOK_KUBE_VERSION="$K8S_VERSION"
export KWOK_KUBECTL_BINARY="$CLUSTER_BIN_DIR/kubectl"
kwokctl="$CLUSTER_BIN_DIR/kwokctl"
kubectl=("$CLUSTER_BIN_DIR/kubectl" --kubeconfig "$kubeconfig")

log() { echo "local-cluster: $*" >&2; }

# kwokctl logs JSON lines; keep only their messages, and everything when it fails.
quiet() {
  local out
  if ! out="$("$@" 2>&1)"; then
    echo "$out" >&2
    return 1
  fi
}

healthy() {
  [[ -f "$kubeconfig" ]] && "${kubectl[@]}" get --raw /readyz --request-timeout=3s >/dev/null 2>&1
}

# Processes started for this cluster carry its state folder in their command line.
cluster_pids() {
  pgrep -f -- "$KWOK_WORKDIR/clusters/$name/" || true
}

down() {
  if [[ -x "$kwokctl" ]]; then
    quiet "$kwokctl" delete cluster --name "$name" || true
  fi
  local pids
  for _ in $(seq 1 50); do
    pids="$(cluster_pids)"
    [[ -z "$pids" ]] && break
    sleep 0.2
  done
  pids="$(cluster_pids)"
  if [[ -n "$pids" ]]; then
    log "killing leftover processes: $pids"
    kill -9 $pids 2>/dev/null || true
  fi
  rm -rf "$dir"
  log "cluster $name deleted"
}

up() {
  if healthy; then
    log "cluster $name is already running"
    print_usage
    return
  fi
  "$root/hack/build-cluster-bins.sh"
  # Whatever is left of an earlier run (a killed process, a reboot) is cleaned up first.
  down >/dev/null 2>&1 || true
  mkdir -p "$dir"
  local start=$SECONDS
  log "creating cluster $name (Kubernetes $K8S_VERSION, kwok $KWOK_VERSION) in $dir"
  quiet "$kwokctl" create cluster \
    --name "$name" \
    --runtime binary \
    --config "$root/hack/local-cluster/kwokctl.yaml" \
    --kubeconfig "$kubeconfig" \
    --kube-audit-policy "$root/hack/local-cluster/audit-policy.yaml" \
    --etcd-binary "$CLUSTER_BIN_DIR/etcd" \
    --kube-apiserver-binary "$CLUSTER_BIN_DIR/kube-apiserver" \
    --kube-controller-manager-binary "$CLUSTER_BIN_DIR/kube-controller-manager" \
    --kube-scheduler-binary "$CLUSTER_BIN_DIR/kube-scheduler" \
    --kwok-controller-binary "$CLUSTER_BIN_DIR/kwok" \
    ${LOCAL_CLUSTER_EXTRA_ARGS:-} \
    --wait 120s
  quiet "$kwokctl" scale node --name "$name" --replicas "$nodes"
  "${kubectl[@]}" wait --for=condition=Ready node --all --timeout=60s >/dev/null
  # Pods need the namespace's default ServiceAccount, which kube-controller-manager creates.
  for _ in $(seq 1 100); do
    "${kubectl[@]}" get serviceaccount default -n default >/dev/null 2>&1 && break
    sleep 0.2
  done
  log "cluster $name is ready with $nodes fake node(s) in $((SECONDS - start))s"
  print_usage
}

print_usage() {
  cat >&2 <<USAGE
local-cluster: kubeconfig: $kubeconfig
local-cluster:   kubectl --kubeconfig $kubeconfig get nodes
local-cluster:   export KUBECONFIG=$kubeconfig   (kubectl: $CLUSTER_BIN_DIR/kubectl)
local-cluster: tear it down with: hack/local-cluster.sh down   (or: make cluster-down)
USAGE
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status)
    if healthy; then log "cluster $name is running; kubeconfig: $kubeconfig"; else log "cluster $name is not running"; exit 1; fi ;;
  kubeconfig) echo "$kubeconfig" ;;
  *) echo "usage: $0 up|down|status|kubeconfig" >&2; exit 2 ;;
esac
