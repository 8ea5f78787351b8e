#!/usr/bin/env bash
# Runs the unit tests the way a Kubernetes user's machine would run them: with a ~/.kube/config
# and a $KUBECONFIG that point at a cluster whose certificate files are gone. Tests must not read
# either (they pass their own loading rules), so they must pass here as they do on a bare machine.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# Keep Go's caches where they are: a new HOME would otherwise mean a cold build.
export GOCACHE="$(go env GOCACHE)" GOMODCACHE="$(go env GOMODCACHE)" GOPATH="$(go env GOPATH)"
home="$(mktemp -d)"
trap 'rm -rf "$home"' EXIT
mkdir -p "$home/.kube"
cat >"$home/.kube/config" <<'KUBECONFIG'
apiVersion: v1
kind: Config
clusters: [{name: gone, cluster: {server: "https://127.0.0.1:1", certificate-authority: /nonexistent/ca.crt}}]
users: [{name: gone, user: {client-certificate: /nonexistent/user.crt, client-key: /nonexistent/user.key}}]
contexts: [{name: gone, context: {cluster: gone, user: gone}}]
current-context: gone
KUBECONFIG
cp "$home/.kube/config" "$home/other-kubeconfig"
echo "unit-foreign-env: unit tests with a broken ~/.kube/config and \$KUBECONFIG"
HOME="$home" KUBECONFIG="$home/other-kubeconfig" go test -count=1 ./...
