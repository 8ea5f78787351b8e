# Versions of the local control plane and where its binaries are cached.
# Sourced by the hack/ scripts; the Go side (test/e2e) reads the same
# values from the environment these scripts export.

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.7.3}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"

# The cache lives outside the repository (so every clone on a machine shares it) and is keyed
# by every version that goes into it, so a version bump builds into a fresh folder.
CLUSTER_BIN_DIR="${CLUSTER_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sample-controller/cluster-bin/k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}}"
export K8S_VERSION ETCD_VERSION KWOK_VERSION CLUSTER_BIN_DIR
