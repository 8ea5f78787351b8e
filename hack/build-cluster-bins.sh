#!/usr/bin/env bash
# Builds the local control plane's binaries from Go modules into a cache folder keyed by version:
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok, kwokctl.
# Binaries already in the cache are skipped, so a warm run takes a second.
# A cold build takes about 12 minutes on 2 cores (kube-apiserver alone about 5, peaking near 3 GB RAM).
#   hack/build-cluster-bins.sh            build all of them
#   hack/build-cluster-bins.sh kubectl    build only the ones named
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/hack/lib/versions.sh"
tools="$root/hack/cluster-tools"

mkdir -p "$CLUSTER_BIN_DIR"

# Without these, the binaries report v0.0.0-master; kubectl and kwokctl compare versions, so stamp them.
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  stamp+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

wanted=("$@")
build() { # name package [ldflags]
  local name="$1" pkg="$2" ldflags="-s -w ${3:-}"
  if [[ ${#wanted[@]} -gt 0 && " ${wanted[*]} " != *" $name "* ]]; then
    return
  fi
  if [[ -x "$CLUSTER_BIN_DIR/$name" ]]; then
    echo "cluster-bin: $name cached"
    return
  fi
  echo "cluster-bin: building $name (cold builds take minutes; see hack/build-cluster-bins.sh)"
  local start=$SECONDS
  (cd "$tools" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$CLUSTER_BIN_DIR/$name.tmp" "$pkg")
  mv "$CLUSTER_BIN_DIR/$name.tmp" "$CLUSTER_BIN_DIR/$name"
  echo "cluster-bin: built $name in $((SECONDS - start))s"
}

build etcd go.etcd.io/etcd/server/v3
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$stamp"
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$stamp"
build kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler "$stamp"
build kubectl k8s.io/kubernetes/cmd/kubectl "$stamp"
build kwok sigs.k8s.io/kwok/cmd/kwok
build kwokctl sigs.k8s.io/kwok/cmd/kwokctl
echo "cluster-bin: binaries in $CLUSTER_BIN_DIR"
