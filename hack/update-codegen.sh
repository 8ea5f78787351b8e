#!/usr/bin/env bash
# Regenerates everything that is derived from the Go types in pkg/apis:
#   pkg/apis/**/zz_generated.deepcopy.go        deepcopy-gen   (DeepCopy, DeepCopyObject)
#   pkg/generated/clientset, listers, informers  client-gen, lister-gen, informer-gen
#   artifacts/crd/*.yaml                         controller-gen (the CRD and its OpenAPI schema)
# Every generator's version comes from this project's go.mod, and everything it needs comes
# through the Go module proxy: no vendor/ folder and no sibling checkout of code-generator.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

module="example.com/sample-controller"
go mod download k8s.io/code-generator
codegen_dir="$(go list -m -f '{{.Dir}}' k8s.io/code-generator)"
# kube_codegen.sh `go install`s the generators from that directory into GOBIN.
# shellcheck source=/dev/null
source "$codegen_dir/kube_codegen.sh"

kube::codegen::gen_helpers \
  --boilerplate "$root/hack/boilerplate.go.txt" \
  "$root/pkg/apis"

kube::codegen::gen_client \
  --with-watch \
  --output-dir "$root/pkg/generated" \
  --output-pkg "$module/pkg/generated" \
  --boilerplate "$root/hack/boilerplate.go.txt" \
  "$root/pkg/apis"

# controller-gen is a `tool` in go.mod, so `go tool` runs the pinned version.
rm -f "$root"/artifacts/crd/samplecontroller.example.com_*.yaml
go tool controller-gen crd:crdVersions=v1 paths=./pkg/apis/... output:crd:dir=artifacts/crd
