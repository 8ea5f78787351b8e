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
# Faults, on a running cluster, one COMPONENT at a time (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler or kwok-controller):
#
#   hack/local-cluster.sh stop COMPONENT      SIGTERM (a graceful stop), and wait until it exits, or
#                                             SIGKILL it after LOCAL_CLUSTER_STOP_TIMEOUT seconds (default
#                                             75: kube-apiserver waits up to its request timeout, 60 s,
#                                             for open watches to end before it exits)
#   hack/local-cluster.sh kill COMPONENT      SIGKILL (a crash), and wait until it is gone
#   hack/local-cluster.sh start COMPONENT     start it again, and wait (up to LOCAL_CLUSTER_WAIT
#                                             seconds, default 60) until it answers its health check
#   hack/local-cluster.sh restart COMPONENT   stop, then start
#   hack/local-cluster.sh compact             compact etcd at its current revision (needs curl): etcd
#                                             forgets every older revision
#
# kwokctl (v0.8) starts and stops only whole clusters. Its binary runtime runs each component as a
# detached process (its own session, stdin /dev/null) in the cluster's state folder
# ($KWOK_WORKDIR/clusters/NAME), with stdout and stderr in logs/COMPONENT.log and its pid in
# pids/COMPONENT.pid, which `kwokctl delete cluster` (down) reads to stop it. So before stopping a
# component, this script records the command line, environment and working folder of the running
# process (from /proc, into restart/COMPONENT.*; `up` records every component too), and start runs
# exactly that again, detached the same way, its output appended to the same log, its pid written
# where kwokctl reads it. Nothing restarts a component that exits on its own (status lists what
# runs); kube-controller-manager and kube-scheduler run without leader election
# (hack/local-cluster/kwokctl.yaml), so an API server outage does not make them exit.
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
    record_all
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
  # kube-controller-manager exits when the API server is not healthy within 10 s of its own
  # start, which happens on a busy machine (kwokctl starts every component at once). Nothing
  # would start it again, and without it no namespace ever gets its default ServiceAccount.
  local c
  for c in "${components[@]}"; do
    if ! component_pid "$c" >/dev/null; then
      log "$c exited while the cluster started; starting it again. The end of its log:"
      tail -n 3 "$state/logs/$c.log" >&2 || true
      quiet "$kwokctl" start cluster --name "$name" # starts the components that are not running
    fi
  done
  quiet "$kwokctl" scale node --name "$name" --replicas "$nodes"
  "${kubectl[@]}" wait --for=condition=Ready node --all --timeout=60s >/dev/null
  # Pods need the namespace's default ServiceAccount, which kube-controller-manager creates.
  for _ in $(seq 1 100); do
    "${kubectl[@]}" get serviceaccount default -n default >/dev/null 2>&1 && break
    sleep 0.2
  done
  record_all
  log "cluster $name is ready with $nodes fake node(s) in $((SECONDS - start))s"
  print_usage
}

# ---- single components: stop, kill, start, restart; etcd compaction ----

state="$KWOK_WORKDIR/clusters/$name"
components=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok-controller)

check_component() {
  local c
  for c in "${components[@]}"; do
    [[ "$1" == "$c" ]] && return
  done
  echo "local-cluster: unknown component '$1'; one of: ${components[*]}" >&2
  exit 2
}

# component_pid COMPONENT prints the pid kwokctl recorded, when that process is alive and is
# this cluster's COMPONENT (its executable is the state folder's bin/COMPONENT, so a pid reused
# by another process is never taken for it).
component_pid() {
  local pid
  pid="$(cat "$state/pids/$1.pid" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ "$( { tr '\0' '\n' <"/proc/$pid/cmdline"; } 2>/dev/null | head -n 1)" == "$state/bin/$1" ]] || return 1
  echo "$pid"
}

# record COMPONENT PID saves how the running process was started: argv and environment
# (NUL-separated, as /proc has them) and its working folder.
record() {
  local dir="$state/restart"
  mkdir -p "$dir"
  cat "/proc/$2/cmdline" >"$dir/$1.argv.tmp" && cat "/proc/$2/environ" >"$dir/$1.env.tmp" &&
    readlink "/proc/$2/cwd" >"$dir/$1.cwd.tmp" || { rm -f "$dir/$1".*.tmp; return 1; }
  mv "$dir/$1.argv.tmp" "$dir/$1.argv"
  mv "$dir/$1.env.tmp" "$dir/$1.env"
  mv "$dir/$1.cwd.tmp" "$dir/$1.cwd"
}

record_all() {
  local c pid
  for c in "${components[@]}"; do
    if pid="$(component_pid "$c")"; then record "$c" "$pid" || true; fi
  done
}

require_cluster() {
  [[ -f "$state/kwok.yaml" ]] || { log "cluster $name does not exist (hack/local-cluster.sh up creates it)"; exit 1; }
}

# signal_component SIGNAL COMPONENT sends SIGNAL and waits for the process to exit; a process
# that outlives SIGTERM by LOCAL_CLUSTER_STOP_TIMEOUT seconds (default 75) is killed. Like
# kwokctl, it removes the pid file afterwards.
signal_component() {
  local sig="$1" c="$2" pid
  require_cluster
  if ! pid="$(component_pid "$c")"; then
    log "$c is not running"
    rm -f "$state/pids/$c.pid"
    return
  fi
  record "$c" "$pid" || true
  local start=$SECONDS deadline=$((SECONDS + ${LOCAL_CLUSTER_STOP_TIMEOUT:-75})) how=stopped
  [[ $sig == KILL ]] && how=killed
  kill "-$sig" "$pid"
  # Gone, or a zombie its parent has yet to reap.
  while kill -0 "$pid" 2>/dev/null && [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]]; do
    if ((SECONDS >= deadline)) && [[ $how == stopped ]]; then
      log "$c (pid $pid) did not exit within ${LOCAL_CLUSTER_STOP_TIMEOUT:-75}s of SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      how="killed after the grace period"
    fi
    sleep 0.05
  done
  rm -f "$state/pids/$c.pid"
  log "$c (pid $pid) $how, gone after $((SECONDS - start))s"
}

# health_url COMPONENT prints the URL that answers 200 once the component is up, from its
# recorded command line.
health_url() {
  local arg bind=127.0.0.1 secure="" client="" server=""
  while IFS= read -r -d '' arg; do
    case "$arg" in
      --bind-address=*) bind="${arg#*=}" ;;
      --secure-port=*) secure="${arg#*=}" ;;
      --listen-client-urls=*) client="${arg#*=}" ;;
      --server-address=*) server="${arg#*=}" ;;
    esac
  done <"$state/restart/$1.argv"
  case "$1" in
    etcd) echo "${client%%,*}/health" ;;
    kube-apiserver) echo "https://$bind:$secure/readyz" ;;
    kwok-controller) echo "http://$server/healthz" ;;
    *) echo "https://$bind:$secure/healthz" ;;
  esac
}

start_component() {
  local c="$1" pid
  require_cluster
  if pid="$(component_pid "$c")"; then
    log "$c is already running (pid $pid)"
    return
  fi
  local rec="$state/restart/$c"
  if [[ ! -f "$rec.argv" ]]; then
    log "no record of how $c was started (the cluster predates this script?): 'KWOK_WORKDIR=$KWOK_WORKDIR $kwokctl start cluster --name $name' starts every stopped component"
    exit 1
  fi
  local argv env cwd setsid_bin logfile="$state/logs/$c.log"
  mapfile -d '' -t argv <"$rec.argv"
  mapfile -d '' -t env <"$rec.env"
  cwd="$(cat "$rec.cwd")"
  setsid_bin="$(command -v setsid)"
  echo "==== hack/local-cluster.sh: $c started again at $(date -u +%Y-%m-%dT%H:%M:%SZ) ====" >>"$logfile"
  # The same argv, environment (and nothing else), working folder and log file; a session of
  # its own and stdin from /dev/null, as kwokctl's binary runtime detaches it. This shell has no
  # job control, so the background subshell is not a process group leader: setsid(1) then
  # calls setsid() itself instead of forking, and $! is the component's own pid.
  (cd "$cwd" && exec env -i "${env[@]}" "$setsid_bin" "${argv[@]}" </dev/null >>"$logfile" 2>&1) &
  pid=$!
  printf '%s' "$pid" >"$state/pids/$c.pid" # no newline: kwokctl parses it with strconv.Atoi
  local url start=$SECONDS deadline=$((SECONDS + ${LOCAL_CLUSTER_WAIT:-60}))
  url="$(health_url "$c")"
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$c (pid $pid) exited at start; the end of $logfile:"
      tail -n 20 "$logfile" >&2
      rm -f "$state/pids/$c.pid"
      exit 1
    fi
    # The executable swap (env, setsid, the component) takes a moment.
    if [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$(readlink -f "${argv[0]}")" ]] &&
      curl -fsk --max-time 2 -o /dev/null "$url" 2>/dev/null; then
      break
    fi
    if ((SECONDS >= deadline)); then
      log "$c (pid $pid) runs but $url did not answer within ${LOCAL_CLUSTER_WAIT:-60}s (is what it needs up?); see $logfile"
      exit 1
    fi
    sleep 0.1
  done
  log "$c started (pid $pid), healthy after $((SECONDS - start))s"
}

# compact compacts etcd's key space at its current revision, through etcd's JSON gateway on
# its client URL: older revisions are gone (a read or watch at one of them fails with
# "mvcc: required revision has been compacted", which the API server answers as 410 Gone). The
# API server serves watches from its watch cache, which keeps its own window whatever etcd
# keeps: compaction alone does not end them (test/e2e/faults_test.go, TestFaultWatchExpiry).
compact() {
  require_cluster
  local pid url rev
  pid="$(component_pid etcd)" || { log "etcd is not running"; exit 1; }
  record etcd "$pid"
  url="$(health_url etcd)"
  url="${url%/health}"
  rev="$(curl -fsS --max-time 10 -X POST "$url/v3/kv/range" -d '{"key":"AA==","limit":1}' |
    sed -n 's/.*"revision":"\([0-9]*\)".*/\1/p')"
  [[ -n "$rev" ]] || { log "could not read etcd's revision from $url"; exit 1; }
  curl -fsS --max-time 60 -X POST "$url/v3/kv/compaction" -d "{\"revision\":\"$rev\",\"physical\":true}" >/dev/null
  log "etcd compacted at revision $rev"
  echo "$rev"
}

component_status() {
  local c pid
  for c in "${components[@]}"; do
    if pid="$(component_pid "$c")"; then log "  $c: running (pid $pid)"; else log "  $c: not running"; fi
  done
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
    if healthy; then
      log "cluster $name is running; kubeconfig: $kubeconfig"
      component_status
    else
      log "cluster $name is not running"
      [[ -f "$state/kwok.yaml" ]] && component_status
      exit 1
    fi ;;
  kubeconfig) echo "$kubeconfig" ;;
  stop | kill | start | restart)
    [[ $# -eq 2 ]] || { echo "usage: $0 $1 COMPONENT (${components[*]})" >&2; exit 2; }
    check_component "$2"
    case "$1" in
      stop) signal_component TERM "$2" ;;
      kill) signal_component KILL "$2" ;;
      start) start_component "$2" ;;
      restart) signal_component TERM "$2"; start_component "$2" ;;
    esac ;;
  compact) compact ;;
  *) echo "usage: $0 up|down|status|kubeconfig|stop|kill|start|restart COMPONENT|compact" >&2; exit 2 ;;
esac
