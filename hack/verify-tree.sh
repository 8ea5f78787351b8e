#!/usr/bin/env bash
# Fails when the repository tracks a build output: any ELF binary, or any file over 1 MiB
# (the largest source file here is a few tens of KiB; generated code and manifests are small).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
max=$((1024 * 1024))
status=0
while IFS= read -r -d '' f; do
  [[ -f "$f" ]] || continue # deleted in the work tree, not yet committed
  size=$(stat -c %s -- "$f")
  if (( size > max )); then
    echo "verify-tree: $f is $size bytes (over $max): build outputs and binaries are not committed" >&2
    status=1
  fi
  if [[ "$(head -c 4 -- "$f" | od -An -tx1 | tr -d ' \n')" == "7f454c46" ]]; then
    echo "verify-tree: $f is an ELF binary: build outputs are not committed" >&2
    status=1
  fi
done < <(git ls-files -z)
if [[ $status -eq 0 ]]; then
  echo "verify-tree: no binaries or oversized files tracked"
fi
exit $status
