#!/usr/bin/env bash
# The main job in one command (`make run`): run the controller and show a Foo reconciled.
#
# With a kubeconfig given ($KUBECONFIG, or --kubeconfig=PATH in ARGS), it runs against that
# cluster and starts nothing local. Without one, it builds what is missing (the first time,
# about 12 minutes for the cluster binaries), brings up the local control plane
# (hack/local-cluster.sh), and runs there.
#
# Then: install the CRD, start the controller, apply artifacts/examples/foo.yaml, wait for the
# Foo to be Ready, show `kubectl get foos,deployments,pods`, and follow the controller's log
# until Ctrl-C, which stops the controller gracefully.
#
# Extra controller flags: ARGS="--workers=8 -v=4" make run
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source hack/lib/versions.sh
source hack/lib/cluster.sh

args=(${ARGS:-})
kubeconfig="${KUBECONFIG:-}"
for a in "${args[@]}"; do
  case "$a" in --kubeconfig=*) kubeconfig="${a#--kubeconfig=}" ;; esac
done

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

if [[ -n "$kubeconfig" ]]; then
  say "Using the cluster in $kubeconfig (nothing local is started)"
else
  say "No kubeconfig given: bringing up the local control plane (first time: ~12 min to build it)"
fi
use_cluster "$kubeconfig"
kubeconfig="$KUBECONFIG"
find_kubectl
kubectl=("${kubectl_cmd[@]}")
run_dir="$root/_output/run"
mkdir -p "$run_dir" bin

say "Building the controller"
go build -o bin/sample-controller .

webhook_args=()
if [[ "$kubeconfig" == "$(hack/local-cluster.sh kubeconfig)" ]]; then
  # The local API server runs on this machine: it can call the controller's conversion webhook
  # on 127.0.0.1 (v1alpha1 requests are converted to v1, the stored version, and back).
  say "Installing the Foo CRD: kubectl apply -k hack/local-cluster/crd (conversion webhook on 127.0.0.1:9443)"
  "${kubectl[@]}" apply -k hack/local-cluster/crd
  webhook_args=(--conversion-webhook-bind-address=127.0.0.1:9443 --conversion-webhook-hosts=127.0.0.1,localhost)
else
  # Another cluster's API server cannot reach a webhook on this machine: the CRD without
  # webhook conversion, and only v1 works (deploy the controller in the cluster for v1alpha1).
  say "Installing the Foo CRD: kubectl apply -f artifacts/crd/samplecontroller.example.com_foos.yaml"
  "${kubectl[@]}" apply -f artifacts/crd/samplecontroller.example.com_foos.yaml
fi
"${kubectl[@]}" wait --for=condition=Established crd/foos.samplecontroller.example.com --timeout=60s >/dev/null

say "Starting the controller (log: $run_dir/controller.log)"
# setsid: a Ctrl-C in the terminal reaches this script, not the controller directly, so the
# controller gets exactly one SIGTERM (a second signal would make it exit at once).
setsid bin/sample-controller --kubeconfig="$kubeconfig" -v=2 "${webhook_args[@]}" "${args[@]}" >"$run_dir/controller.log" 2>&1 &
controller=$!

stop() {
  trap - INT TERM
  kill "${tailer:-}" 2>/dev/null || true
  if kill -0 "$controller" 2>/dev/null; then
    say "Stopping the controller (SIGTERM: it finishes in-flight work, then exits)"
    kill -TERM "$controller" 2>/dev/null || true
    wait "$controller" 2>/dev/null || true
    tail -n 3 "$run_dir/controller.log"
  fi
  if [[ "$kubeconfig" == "$(hack/local-cluster.sh kubeconfig)" ]]; then
    cat <<MSG

The local cluster keeps running, with your Foo in it:
  export KUBECONFIG=$kubeconfig
  $CLUSTER_BIN_DIR/kubectl get foos,deployments,pods
Tear it down with:  make cluster-down   (hack/local-cluster.sh down)
MSG
  fi
  exit 0
}
trap stop INT TERM

say "Applying the example Foo: kubectl apply -f artifacts/examples/foo.yaml"
"${kubectl[@]}" apply -f artifacts/examples/foo.yaml

say "Waiting for the Foo to be Ready"
if ! "${kubectl[@]}" wait --for=condition=Ready foo/example-foo --timeout=120s; then
  echo "The Foo did not become Ready. The controller's log ends with:" >&2
  tail -n 30 "$run_dir/controller.log" >&2
  kill -0 "$controller" 2>/dev/null || { echo "The controller exited." >&2; exit 1; }
fi

say "kubectl get foos,deployments,pods"
"${kubectl[@]}" get foos,deployments,pods -o wide
say "The Foo's Ready condition and status"
"${kubectl[@]}" get foo example-foo -o jsonpath='{range .status.conditions[*]}{.type}={.status} reason={.reason} message="{.message}"{"\n"}{end}availableReplicas={.status.availableReplicas} observedGeneration={.status.observedGeneration}{"\n"}'
say "Events of the Foo"
"${kubectl[@]}" get events --field-selector involvedObject.kind=Foo,involvedObject.name=example-foo

cat <<MSG

Try it (in another terminal, with export KUBECONFIG=$kubeconfig):
  kubectl scale foo example-foo --replicas=4        # the controller scales the Deployment
  kubectl delete deployment example-foo             # the controller recreates it
  kubectl delete foo example-foo                    # the garbage collector deletes the Deployment

Following the controller's log. Ctrl-C stops the controller.
MSG
tail -n 0 -f "$run_dir/controller.log" &
tailer=$!
wait "$controller" || true
echo "The controller exited; its log: $run_dir/controller.log" >&2
kill "$tailer" 2>/dev/null || true
exit 1
