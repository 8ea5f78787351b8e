# Which cluster and which kubectl: shared by hack/run.sh and hack/tour.sh.
# Source hack/lib/versions.sh first, and run from the repository root.

# use_cluster [KUBECONFIG_PATH] exports KUBECONFIG: the given kubeconfig, where nothing local is
# started, or else the local control plane's, brought up first (hack/local-cluster.sh up).
use_cluster() {
  if [[ -n "${1:-}" ]]; then
    KUBECONFIG="$1"
  else
    hack/local-cluster.sh up
    KUBECONFIG="$(hack/local-cluster.sh kubeconfig)"
  fi
  export KUBECONFIG
}

# find_kubectl sets the array kubectl_cmd: $KUBECTL when set, else the cached kubectl of the
# local control plane's version, else the one on PATH, else it builds the cached one.
find_kubectl() {
  if [[ -n "${KUBECTL:-}" ]]; then
    kubectl_cmd=("$KUBECTL")
  elif [[ -x "$CLUSTER_BIN_DIR/kubectl" ]]; then
    kubectl_cmd=("$CLUSTER_BIN_DIR/kubectl")
  elif command -v kubectl >/dev/null; then
    kubectl_cmd=(kubectl)
  else
    hack/build-cluster-bins.sh kubectl >/dev/null
    kubectl_cmd=("$CLUSTER_BIN_DIR/kubectl")
  fi
}
