#!/usr/bin/env bash
# Runs the soak (hack/soak) on a local cluster of its own, then deletes the cluster.
#   hack/soak.sh                                  1,000 Foos, 30 minutes of churn (about 40 minutes in all)
#   SOAK_DURATION=3m SOAK_FOOS=200 hack/soak.sh   a short development run (slopes reported, not checked)
#   SOAK_ARGS="--workers=8 -v=2"                  extra flags for the controller
#   SOAK_FLAGS="--rate=8 --seed=42"               extra flags for hack/soak itself (go run ./hack/soak -help)
#   SOAK_NODES=20                                 fake nodes (default SOAK_FOOS/100 + 2; each takes 110 pods)
#   SOAK_KEEP_CLUSTER=1                           keep the cluster afterwards (hack/local-cluster.sh with
#                                                 LOCAL_CLUSTER_NAME=sample-controller-soak LOCAL_CLUSTER_DIR=_output/soak-cluster)
# It exits with hack/soak's status: non-zero when the controller leaked, exited, or did not
# converge (docs/reliability.md, "Soak"). Samples, results and the controller's log go to
# _output/soak/. As for the benchmark, the cluster runs with kwokctl's --disable-qps-limits, so
# that kube-controller-manager, kube-scheduler and kwok keep up with the churn's pods.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

foos="${SOAK_FOOS:-1000}"
export LOCAL_CLUSTER_NAME=sample-controller-soak
export LOCAL_CLUSTER_DIR="$root/_output/soak-cluster"
export LOCAL_CLUSTER_NODES="${SOAK_NODES:-$((foos / 100 + 2))}"
export LOCAL_CLUSTER_EXTRA_ARGS="--disable-qps-limits"

start=$SECONDS
# The controller is built without -race (the race detector's own memory would be what grows),
# and into _output/soak/ so that a `make build` meanwhile does not swap it.
mkdir -p _output/soak
go build -o _output/soak/sample-controller .
go build -o _output/soak/soak ./hack/soak

hack/local-cluster.sh down >/dev/null 2>&1 || true
hack/local-cluster.sh up
if [[ -z "${SOAK_KEEP_CLUSTER:-}" ]]; then
  trap 'hack/local-cluster.sh down' EXIT
fi
kubeconfig="$(hack/local-cluster.sh kubeconfig)"
source hack/lib/versions.sh
"$CLUSTER_BIN_DIR/kubectl" --kubeconfig "$kubeconfig" apply -f artifacts/crd/samplecontroller.example.com_foos.yaml >/dev/null
"$CLUSTER_BIN_DIR/kubectl" --kubeconfig "$kubeconfig" wait --for=condition=Established crd/foos.samplecontroller.example.com --timeout=60s >/dev/null

status=0
# SOAK_FLAGS and SOAK_ARGS are split on spaces on purpose.
# shellcheck disable=SC2086
_output/soak/soak --kubeconfig "$kubeconfig" --controller _output/soak/sample-controller --out _output/soak \
  --foos "$foos" --duration "${SOAK_DURATION:-30m}" ${SOAK_FLAGS:-} -- ${SOAK_ARGS:-} || status=$?
echo "soak: done in $((SECONDS - start))s (cluster start included), status $status" >&2
exit "$status"
