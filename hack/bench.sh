#!/usr/bin/env bash
# Runs the benchmark (hack/bench) on a local cluster of its own, then deletes the cluster.
#   hack/bench.sh                       the default run: N=1000, 3 rounds (about 5 minutes on 2 cores)
#   BENCH_ARGS="--n=100,1000,5000 --memory-n=1000,10000" BENCH_NODES=12 hack/bench.sh
#   make bench-smoke                    a small run (N=50) that only checks it still works
# The cluster runs with kwokctl's --disable-qps-limits so that kube-controller-manager,
# kube-scheduler and kwok keep up with the pods of the replicas-1 runs (at their default QPS of
# 20, the cluster itself needs about 4 minutes to make 1,000 Deployments available).
# BENCH_NODES fake nodes take 110 pods each: use about N/100 + 2 for the largest --pods-n.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

export LOCAL_CLUSTER_NAME=sample-controller-bench
export LOCAL_CLUSTER_DIR="$root/_output/bench-cluster"
export LOCAL_CLUSTER_NODES="${BENCH_NODES:-12}"
export LOCAL_CLUSTER_EXTRA_ARGS="--disable-qps-limits"

start=$SECONDS
hack/local-cluster.sh down >/dev/null 2>&1 || true
hack/local-cluster.sh up
if [[ -z "${BENCH_KEEP_CLUSTER:-}" ]]; then
  trap 'hack/local-cluster.sh down' EXIT
fi
kubeconfig="$(hack/local-cluster.sh kubeconfig)"
source hack/lib/versions.sh
"$CLUSTER_BIN_DIR/kubectl" --kubeconfig "$kubeconfig" apply -f artifacts/crd/samplecontroller.example.com_foos.yaml >/dev/null
"$CLUSTER_BIN_DIR/kubectl" --kubeconfig "$kubeconfig" wait --for=condition=Established crd/foos.samplecontroller.example.com --timeout=60s >/dev/null

go build -o bin/sample-controller .
go run ./hack/bench --kubeconfig "$kubeconfig" --controller bin/sample-controller \
  --audit-log "$LOCAL_CLUSTER_DIR/kwok/clusters/$LOCAL_CLUSTER_NAME/logs/audit.log" ${BENCH_ARGS:-}
echo "bench: done in $((SECONDS - start))s (cluster start included)" >&2
