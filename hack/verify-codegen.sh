#!/usr/bin/env bash
# Fails when generated code or the CRD is stale: regenerates into a scratch copy of the
# repository and compares it with the tree.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# Copy the sources (not .git, not build output) so the check never touches the working tree.
tar -C "$root" --exclude=./.git --exclude=./bin --exclude=./_output -cf - . | tar -C "$scratch" -xf -
"$scratch/hack/update-codegen.sh" >/dev/null

status=0
for dir in pkg/apis pkg/generated artifacts/crd; do
  if ! diff -ruN "$root/$dir" "$scratch/$dir"; then
    status=1
  fi
done
if [[ $status -ne 0 ]]; then
  echo "verify-codegen: generated files are out of date; run hack/update-codegen.sh" >&2
  exit 1
fi
echo "verify-codegen: generated files are up to date"
