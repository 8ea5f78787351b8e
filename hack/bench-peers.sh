#!/usr/bin/env bash
# The side-by-side benchmark (docs/benchmarks.md, "Against controller-runtime"): this controller
# with its defaults and tuned, a controller-runtime v0.25 peer with its defaults and tuned, the
# bare client, and kubernetes/sample-controller (memory only), each on a fresh local cluster of
# its own, then one table.
#   hack/bench-peers.sh                       N = 1,000 (about 15 minutes on 2 cores)
#   PEERS_N=50 PEERS_UNRELATED=200 hack/bench-peers.sh   the CI smoke: only checks that it runs
# The peers are Go modules of their own under hack/bench-peers/, so that the product's go.mod
# never requires controller-runtime: controller-runtime/ (written here, the kubebuilder book's
# way) and kubernetes-sample-controller/ (k8s.io/sample-controller at a pinned version).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source hack/lib/versions.sh

n="${PEERS_N:-1000}"
unrelated="${PEERS_UNRELATED:-10000}"
out="$root/_output/bench-peers"
mkdir -p "$out"
rm -f "$out"/*.json

export LOCAL_CLUSTER_NAME=sample-controller-peers
export LOCAL_CLUSTER_DIR="$root/_output/bench-peers-cluster"
export LOCAL_CLUSTER_NODES="${PEERS_NODES:-12}"
export LOCAL_CLUSTER_EXTRA_ARGS="--disable-qps-limits"
trap 'hack/local-cluster.sh down >/dev/null 2>&1 || true' EXIT

start=$SECONDS
echo "bench-peers: building the controllers" >&2
# Every controller is built as the shipped image builds this one (hack/image): without the
# symbol table and DWARF, which are never loaded but shift what the pages that are loaded hold.
build=(go build -trimpath -ldflags "-s -w")
"${build[@]}" -o "$out/sample-controller" .
go build -o "$out/bench" ./hack/bench
(cd hack/bench-peers/controller-runtime && "${build[@]}" -o "$out/controller-runtime-peer" .)
(cd hack/bench-peers/kubernetes-sample-controller && "${build[@]}" -o "$out/kubernetes-sample-controller" k8s.io/sample-controller)
sample_crd="$(cd hack/bench-peers/kubernetes-sample-controller && go list -m -f '{{.Dir}}' k8s.io/sample-controller)/artifacts/examples/crd-status-subresource.yaml"

# peer NAME CRD [BENCH FLAGS...] -- COMMAND ARGS...: one run on a fresh cluster.
peer() {
  local name="$1" crd="$2"
  shift 2
  hack/local-cluster.sh down >/dev/null 2>&1 || true
  hack/local-cluster.sh up >&2
  local kubeconfig
  kubeconfig="$(hack/local-cluster.sh kubeconfig)"
  "$CLUSTER_BIN_DIR/kubectl" --kubeconfig "$kubeconfig" apply -f "$crd" >/dev/null
  "$CLUSTER_BIN_DIR/kubectl" --kubeconfig "$kubeconfig" wait --for=condition=Established crd --all --timeout=60s >/dev/null
  "$out/bench" --kubeconfig "$kubeconfig" --controller "$out/sample-controller" --n "$n" --log-dir "$out/logs" \
    --audit-log "$LOCAL_CLUSTER_DIR/kwok/clusters/$LOCAL_CLUSTER_NAME/logs/audit.log" \
    --json "$out/$name.json" --peer "$name" "$@"
}

crd=artifacts/crd/samplecontroller.example.com_foos.yaml
peer "this, defaults" "$crd" --peer-fresh --peer-unrelated "$unrelated" -- \
  "$out/sample-controller" --kubeconfig={kubeconfig} --namespace={namespace}
peer "this, 16 workers, QPS 1000" "$crd" --peer-bare -- \
  "$out/sample-controller" --kubeconfig={kubeconfig} --namespace={namespace} --workers=16 --kube-api-qps=1000 --kube-api-burst=2000
peer "controller-runtime, defaults" "$crd" -- \
  "$out/controller-runtime-peer" --kubeconfig={kubeconfig} --namespace={namespace}
peer "controller-runtime, 8 workers" "$crd" -- \
  "$out/controller-runtime-peer" --kubeconfig={kubeconfig} --namespace={namespace} --max-concurrent-reconciles=8
peer "kubernetes-sample-controller" "$sample_crd" --peer-kind kubernetes-sample --peer-agent kubernetes-sample-controller/ -- \
  "$out/kubernetes-sample-controller" -kubeconfig={kubeconfig}

echo >&2
echo "bench-peers: N = $n, $(nproc) CPUs, $(go version | cut -d' ' -f3), Kubernetes $K8S_VERSION, $(date -u +%F); done in $((SECONDS - start))s" >&2
"$out/bench" --peers-table \
  "$out/this, defaults.json" "$out/this, 16 workers, QPS 1000.json" \
  "$out/controller-runtime, defaults.json" "$out/controller-runtime, 8 workers.json" \
  "$out/kubernetes-sample-controller.json" | tee "$out/table.md"
