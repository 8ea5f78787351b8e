#!/usr/bin/env bash
# Rewrites every stored Foo at the CRD's storage version (v1), then records that no other
# version is stored any more (the CRD's status.storedVersions), after which an older version
# (v1alpha1) can one day be removed from the CRD.
#
#   KUBECONFIG=... hack/migrate-storage.sh
#
# Why: etcd keeps each Foo at the version it was last written at. Upgrading the CRD to store v1
# does not rewrite existing objects; they are converted (through the webhook) each time they are
# read. storedVersions lists every version that may still be in etcd, and the API server refuses
# to drop a version from the CRD while it is listed there.
#
# How: the StorageVersionMigration API (storagemigration.k8s.io/v1): kube-controller-manager's
# migrator reads every Foo and writes it back unchanged, which stores it at the storage version.
# The conversion webhook must be up while it runs (reading a v1alpha1-stored Foo converts it).
# Only when the migration succeeded is storedVersions set to the storage version alone.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=lib/versions.sh
source hack/lib/versions.sh
# shellcheck source=lib/cluster.sh
source hack/lib/cluster.sh
find_kubectl
kubectl=("${kubectl_cmd[@]}")

crd=foos.samplecontroller.example.com
timeout="${MIGRATION_TIMEOUT:-600s}"
say() { echo "migrate-storage: $*" >&2; }

storage="$("${kubectl[@]}" get crd "$crd" -o jsonpath='{.spec.versions[?(@.storage==true)].name}')"
stored="$("${kubectl[@]}" get crd "$crd" -o jsonpath='{.status.storedVersions}')"
say "storage version: $storage; versions that may be in etcd: $stored"

name="foos-to-$storage-$(date +%s)"
say "creating StorageVersionMigration $name"
"${kubectl[@]}" create -f - <<YAML
apiVersion: storagemigration.k8s.io/v1
kind: StorageVersionMigration
metadata:
  name: $name
spec:
  resource:
    group: samplecontroller.example.com
    resource: foos
YAML

# Succeeded or Failed: wait for whichever comes first.
deadline=$((SECONDS + ${timeout%s}))
while :; do
  succeeded="$("${kubectl[@]}" get storageversionmigration "$name" -o jsonpath='{.status.conditions[?(@.type=="Succeeded")].status}')"
  failed="$("${kubectl[@]}" get storageversionmigration "$name" -o jsonpath='{.status.conditions[?(@.type=="Failed")].status}')"
  if [[ "$succeeded" == True ]]; then
    break
  fi
  if [[ "$failed" == True ]]; then
    say "the migration failed:"
    "${kubectl[@]}" get storageversionmigration "$name" -o jsonpath='{.status.conditions}' >&2
    echo >&2
    exit 1
  fi
  if ((SECONDS > deadline)); then
    say "the migration did not finish within $timeout; storedVersions left as they are"
    exit 1
  fi
  sleep 2
done
say "every Foo is stored at $storage"

"${kubectl[@]}" patch crd "$crd" --subresource=status --type=merge -p "{\"status\":{\"storedVersions\":[\"$storage\"]}}"
say "storedVersions: $("${kubectl[@]}" get crd "$crd" -o jsonpath='{.status.storedVersions}')"
