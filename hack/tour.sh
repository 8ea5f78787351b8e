#!/usr/bin/env bash
# A live tour of the Kubernetes API, as this controller sees it (`make tour`).
#
# Each step prints one line saying what it shows, then the exact command, then what came back
# (trimmed to the fields that matter). It is about the API itself: only its last section runs
# the controller, for its conversion webhook. docs/walkthrough.md explains the same concepts,
# with the code that uses them.
#
#   discovery    api-versions, the CRD's versions (v1 stored, v1alpha1 served too), api-resources,
#                GET /api, /apis, /apis/GROUP/VERSION
#   requests     who we are (authentication), what we may do (authorization), defaulting while
#                decoding, schema and CEL validation
#   reads        GET one Foo and the list, with kubectl get --raw and with curl via kubectl proxy
#   watch        a raw ?watch=true stream while a Foo is created, changed and deleted; the
#                watch-list an informer starts with (client-go v0.37); 410 Gone for a too-old resourceVersion
#   writes       POST, PUT, merge PATCH, server-side apply, DELETE
#   subresources /status and /scale
#   concurrency  409 Conflict for a write based on a stale resourceVersion
#   mapping      GroupVersionKind -> GroupVersionResource -> URL path (hack/resolve-gvr)
#   versions     one Foo read at v1 and at v1alpha1, converted by the controller's webhook (the
#                ConversionReview in its log); each version's schema (kubectl explain); the
#                storage version and status.storedVersions; where conversion sits in a request
#
# Cluster: $KUBECONFIG when set; otherwise the local control plane (hack/local-cluster.sh up,
# which honours LOCAL_CLUSTER_NAME and LOCAL_CLUSTER_DIR), left running afterwards.
# kubectl: $KUBECTL, else the local cluster's ($CLUSTER_BIN_DIR/kubectl), else the one on PATH.
# It installs the Foo CRD unless the cluster already serves Foo v1 (and leaves it), works in its
# own namespace ($TOUR_NAMESPACE, default "tour"), and deletes that namespace at the end.
# Everything listens on 127.0.0.1 only. Until its last section the tour speaks v1 only, the
# version etcd stores, which needs no conversion.
#
# The last section needs the API server to call a webhook on this machine, so it runs on the
# local control plane only ($KUBECONFIG unset, or the local control plane's): there it builds the
# controller (_output/tour-bin/sample-controller), runs it in the background with the webhook on
# a free port of 127.0.0.1 (its certificate's Secret in the tour's namespace), points the CRD's
# webhook URL at it, and afterwards stops it (SIGTERM) and puts the CRD's clientConfig back as it
# was. (Not while `make run` serves the webhook on the same cluster: the two controllers would
# each write their own CA into the CRD.) On any other cluster it says why it skips that section.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source hack/lib/versions.sh
source hack/lib/cluster.sh

namespace="${TOUR_NAMESPACE:-tour}"
group=samplecontroller.example.com
version=v1
gv="$group/$version"
foos="/apis/$gv/namespaces/$namespace/foos" # the collection's path; one Foo is $foos/NAME
crd_name="foos.$group"
# The other version the CRD serves, which the last section reads through the conversion webhook.
alpha_version=v1alpha1
alpha_foos="/apis/$group/$alpha_version/namespaces/$namespace/foos"

if [[ -t 1 ]]; then
  bold=$'\033[1m' dim=$'\033[2m' reset=$'\033[0m'
else
  bold='' dim='' reset=''
fi

# ---- presentation --------------------------------------------------------------------------

step_no=0
# step prints the one-line explanation that comes before each step.
step() {
  step_no=$((step_no + 1))
  printf '\n%s%d. %s%s\n' "$bold" "$step_no" "$*" "$reset"
}
section() { printf '\n%s==== %s ====%s\n' "$bold" "$*" "$reset"; }
say() { printf '%s# %s%s\n' "$dim" "$*" "$reset"; }

# show_cmd prints a command as one could paste it into a shell.
show_cmd() {
  local out='' arg
  for arg in "$@"; do
    if [[ "$arg" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
      out+=" $arg"
    else
      out+=" '${arg//\'/\'\\\'\'}'"
    fi
  done
  printf '$%s\n' "$out"
}

# run shows a command, then runs it.
run() {
  show_cmd "$@"
  "$@"
}

# kubectl is the real one; the wrapper only keeps the shown commands short.
kubectl() { "${kubectl_bin[@]}" "$@"; }

# http EXPECTED_CODE METHOD PATH [CURL_ARGS...] sends one request through kubectl proxy, shows
# the command and the status line, and keeps the response body in $body. An unexpected status
# code ends the tour: every step's outcome is part of what it teaches.
body=''
http() {
  local want="$1" method="$2" path="$3" code
  shift 3
  show_cmd curl -sS -X "$method" "$@" "$proxy$path"
  code="$(curl -sS -o "$tmp/body" -w '%{http_code}' -X "$method" "$@" "$proxy$path")"
  body="$(cat "$tmp/body")"
  printf '<- HTTP %s %s\n' "$code" "$(status_text "$code")"
  if [[ "$code" != "$want" ]]; then
    printf 'tour: expected HTTP %s from %s %s, got %s:\n%s\n' "$want" "$method" "$path" "$code" "$body" >&2
    exit 1
  fi
}

status_text() {
  case "$1" in
    200) echo OK ;; 201) echo Created ;; 403) echo Forbidden ;; 404) echo "Not Found" ;;
    409) echo Conflict ;; 410) echo Gone ;; 422) echo "Unprocessable Entity" ;; *) echo ;;
  esac
}

# pick FIELD... prints chosen fields of the JSON on stdin, one "field: value" line each.
# A field is a dotted path; "name[]" maps the rest of the path over a list (at the end of the
# path: one line per element); "name[key=value]" picks the list element whose key is value.
pick() { "$python" "$tmp/tour_json.py" pick "$@"; }
# value FIELD prints one field of the JSON on stdin as plain text.
value() { "$python" "$tmp/tour_json.py" value "$1"; }
# events summarizes a watch stream (one JSON event per line) on stdin.
events() { "$python" "$tmp/tour_json.py" events; }

# ---- the controller of the last section ----------------------------------------------------

# stop_controller stops the background controller, if it runs: SIGTERM (it finishes in-flight
# work, then exits), SIGKILL after 15 s. It sets controller_status to its exit status.
controller_status=''
stop_controller() {
  [[ -n "$controller_pid" ]] || return 0
  kill -TERM "$controller_pid" 2>/dev/null || true
  for _ in $(seq 1 150); do
    kill -0 "$controller_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$controller_pid" 2>/dev/null || true
  controller_status=0
  wait "$controller_pid" 2>/dev/null || controller_status=$?
  controller_pid=''
}

# crd_webhook_patch CLIENT_CONFIG_JSON is the JSON patch that sets the CRD's webhook clientConfig.
crd_webhook_patch() {
  printf '[{"op":"replace","path":"/spec/conversion/webhook/clientConfig","value":%s}]' "$1"
}

# restore_crd_webhook puts back the CRD's webhook clientConfig (URL and caBundle) as it was
# before the last section pointed it at the tour's controller.
restore_crd_webhook() {
  [[ -n "$crd_client_config" ]] || return 0
  kubectl patch crd "$crd_name" --type=json -p "$(crd_webhook_patch "$crd_client_config")"
  crd_client_config=''
}

# controller_failed MESSAGE ends the tour, with the end of the controller's log.
controller_failed() {
  printf 'tour: %s\nthe controller'"'"'s log (%s) ends with:\n' "$1" "$controller_log" >&2
  tail -n 20 "$controller_log" >&2
  exit 1
}

# ---- setup ---------------------------------------------------------------------------------

for tool in go python3 curl; do
  command -v "$tool" >/dev/null || { echo "tour: $tool is needed and is not on PATH" >&2; exit 1; }
done
# The interpreter itself, resolved once: a version manager's python3 shim can take most of a
# second per start, and the tour starts it a few dozen times.
python="$(python3 -c 'import sys; print(sys.executable)')"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/tour.XXXXXX")"
controller_log="$tmp/controller.log"
proxy_pid=''
watch_pid=''
controller_pid=''     # the controller of the last section, while it runs
crd_client_config=''  # the CRD's webhook clientConfig (JSON) before that section changed it
namespace_created=''
cleanup() {
  local status=$?
  [[ -n "$watch_pid" ]] && kill "$watch_pid" 2>/dev/null || true
  [[ -n "$proxy_pid" ]] && kill "$proxy_pid" 2>/dev/null || true
  stop_controller
  restore_crd_webhook >/dev/null 2>&1 || true
  if [[ -n "$namespace_created" ]]; then
    # Reached only when the tour stopped early: do not make a failure wait for the deletion.
    kubectl delete namespace "$namespace" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$tmp/tour_json.py" <<'PY'
import json, re, sys

def compact(v, limit=1000):
    s = json.dumps(v, separators=(", ", ": "))
    return s if len(s) <= limit else s[: limit - 1] + "…"

def split(path):
    """a.b[k=x.y].c -> ["a", "b[k=x.y]", "c"]: dots inside brackets do not split."""
    return re.findall(r"(?:[^.\[]|\[[^\]]*\])+", path)

def walk(v, segs):
    """Follow segs into v; [] maps over a list, [k=v] selects an element."""
    for i, seg in enumerate(segs):
        if v is None:
            return None
        name, _, sel = seg.partition("[")
        if name:
            v = v.get(name) if isinstance(v, dict) else None
        if not sel or v is None:
            continue
        sel = sel.rstrip("]")
        if not isinstance(v, list):
            return None
        if sel == "":
            return [walk(e, segs[i + 1:]) for e in v]
        key, _, want = sel.partition("=")
        v = next((e for e in v if isinstance(e, dict) and str(e.get(key)) == want), None)
    return v

def pick(fields):
    doc = json.load(sys.stdin)
    for f in fields:
        segs = split(f)
        v = walk(doc, segs)
        if segs[-1].endswith("[]") and isinstance(v, list):
            for i, e in enumerate(v):
                print(f"{f[:-2]}[{i}]: {compact(e)}")
        else:
            print(f"{f}: {'(absent)' if v is None else compact(v)}")

def events():
    lines = [l for l in sys.stdin.read().splitlines() if l.strip()]
    if not lines:
        print("(no events)")
        return
    print(f"{len(lines)} event(s); the first, raw:")
    print("  " + compact(json.loads(lines[0]), 200))
    print("all of them, one per line:")
    for l in lines:
        e = json.loads(l)
        t, o = e["type"], e["object"]
        m = o.get("metadata", {})
        if t == "ERROR":
            detail = f"code={o.get('code')} reason={o.get('reason')} message={o.get('message')!r}"
        elif t == "BOOKMARK":
            detail = f"resourceVersion={m.get('resourceVersion')} annotations={m.get('annotations', {})}"
        else:
            detail = (f"{o.get('kind')} {m.get('namespace')}/{m.get('name')} "
                      f"resourceVersion={m.get('resourceVersion')} generation={m.get('generation')} "
                      f"spec.replicas={o.get('spec', {}).get('replicas')}")
        print(f"  {t:<9} {detail}")

def status_update(src, dst):
    """The Foo in src with spec.replicas=99 and a hand-written status, into dst."""
    from datetime import datetime, timezone
    o = json.load(open(src))
    gen = o["metadata"]["generation"]
    o["spec"]["replicas"] = 99
    o["status"] = {"observedGeneration": gen, "availableReplicas": 3, "conditions": [{
        "type": "Ready", "status": "True", "reason": "DeploymentAvailable",
        "message": "written by hand by hack/tour.sh", "observedGeneration": gen,
        "lastTransitionTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}]}
    json.dump(o, open(dst, "w"))

def set_replicas(src, dst, n):
    o = json.load(open(src))
    o["spec"]["replicas"] = int(n)
    json.dump(o, open(dst, "w"))

if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "pick":
        pick(args)
    elif mode == "value":
        v = walk(json.load(sys.stdin), split(args[0]))
        print(v if isinstance(v, str) else json.dumps(v))
    elif mode == "events":
        events()
    elif mode == "status-update":
        status_update(*args)
    elif mode == "set-replicas":
        set_replicas(*args)
    else:
        sys.exit("tour_json.py: unknown mode " + mode)
PY

start=$SECONDS
section "Setup"
# The local control plane, as hack/run.sh tells it: no kubeconfig given, or its own. Its API
# server runs on this machine, so it can call a webhook served here on 127.0.0.1.
local_cluster=''
if [[ -z "${KUBECONFIG:-}" ]]; then
  local_cluster=1
  say "no \$KUBECONFIG: using the local control plane (hack/local-cluster.sh up)"
elif [[ "$KUBECONFIG" -ef "$(hack/local-cluster.sh kubeconfig)" ]]; then
  local_cluster=1
  say "using the cluster in \$KUBECONFIG ($KUBECONFIG): the local control plane"
else
  say "using the cluster in \$KUBECONFIG ($KUBECONFIG)"
fi
# The CRD, as hack/run.sh installs it: on the local control plane, with the conversion webhook
# called by URL on 127.0.0.1 (where make run serves it); elsewhere, as a user installs it.
if [[ -n "$local_cluster" ]]; then
  crd=hack/local-cluster/crd
else
  crd=artifacts/crd
fi
use_cluster "${KUBECONFIG:-}"
find_kubectl
kubectl_bin=("${kubectl_cmd[@]}")
say "kubectl is ${kubectl_bin[*]}"

bin_dir=_output/tour-bin
resolve_gvr="$root/$bin_dir/resolve-gvr"
controller_bin="$bin_dir/sample-controller"
if [[ -n "$local_cluster" ]]; then
  say "building hack/resolve-gvr (the GroupVersionKind -> resource program) and the controller (the last section runs it)"
  go build -o "$bin_dir/" ./hack/resolve-gvr .
else
  say "building hack/resolve-gvr (the GroupVersionKind -> resource program)"
  go build -o "$resolve_gvr" ./hack/resolve-gvr
fi

# An installed CRD that serves v1 is left as it is: its conversion webhook settings (where the
# webhook is, its CA bundle) are those of whoever installed it, and applying ours would undo them.
if [[ "$(kubectl get crd "$crd_name" -o jsonpath="{.spec.versions[?(@.name==\"$version\")].served}" 2>/dev/null)" == true ]]; then
  say "the Foo CRD is installed and serves $gv: the tour leaves it as it is"
else
  run kubectl apply -k "$crd"
fi
run kubectl wait --for=condition=Established "crd/$crd_name" --timeout=60s
if kubectl get namespace "$namespace" >/dev/null 2>&1; then
  say "namespace $namespace is left from an earlier tour: deleting it first"
  kubectl delete namespace "$namespace" --wait=true --timeout=120s >/dev/null
fi
run kubectl create namespace "$namespace"
namespace_created=1

# kubectl proxy serves the API on 127.0.0.1 and adds our credentials to each request, so that
# curl needs none. Port 0 picks a free port; the proxy prints which.
"${kubectl_bin[@]}" proxy --address=127.0.0.1 --port=0 >"$tmp/proxy.log" 2>&1 &
proxy_pid=$!
for _ in $(seq 1 100); do
  port="$(sed -n 's/^Starting to serve on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$tmp/proxy.log")"
  [[ -n "$port" ]] && break
  kill -0 "$proxy_pid" 2>/dev/null || { cat "$tmp/proxy.log" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$port" ]] || { echo "tour: kubectl proxy did not start:" >&2; cat "$tmp/proxy.log" >&2; exit 1; }
proxy="http://127.0.0.1:$port"
say "kubectl proxy --address=127.0.0.1 --port=0   -> serving on $proxy"

# ---- 1. discovery --------------------------------------------------------------------------

section "What the server serves: discovery"

step "The group/versions served: the core group has no name (plain v1, under /api/v1); every other group is under /apis/GROUP/VERSION, ours among them."
run kubectl api-versions

step "Our group serves two versions of Foo, as the CRD lists them: v1, the one etcd stores, and v1alpha1, which the API server converts to and from v1 by calling the controller's conversion webhook. Until its last section the tour speaks v1 only, which needs no controller; kubectl uses the preferred version, v1."
run kubectl get crd "$crd_name" -o 'jsonpath={range .spec.versions[*]}{.name}: served={.served} storage={.storage}{"\n"}{end}conversion: {.spec.conversion.strategy}{"\n"}'

step "The resources: a lower-case plural per kind, in a group, namespaced or not, with its verbs (kubectl reads them from discovery; first lines, then our group)."
show_cmd kubectl api-resources
kubectl api-resources >"$tmp/api-resources" # whole, then trimmed: head must not cut kubectl's pipe
head -n 12 "$tmp/api-resources"
say "... (trimmed)"
run kubectl api-resources --api-group=$group -o wide

step "Discovery, raw: GET /api lists the core group's versions, GET /apis every named group with its preferred version (a client asking for aggregated discovery gets every resource from these same two requests)."
run kubectl get --raw /api
echo
show_cmd kubectl get --raw /apis
kubectl get --raw /apis | pick kind "groups[].name" "groups[name=$group]"

step "The discovery document of our group/version: one entry per resource and subresource (foos, foos/status, foos/scale), with kind, scope and verbs."
show_cmd kubectl get --raw "/apis/$gv"
kubectl get --raw "/apis/$gv" | pick kind groupVersion "resources[]"

# ---- 2. the request path -------------------------------------------------------------------

section "Who may ask: authentication and authorization"

step "Authentication: who the API server says we are (a SelfSubjectReview; our kubeconfig presents a client certificate)."
run kubectl auth whoami

step "Authorization (RBAC): we may create Foos here; the namespace's default service account may not, and gets 403 Forbidden (we impersonate it)."
run kubectl auth can-i create foos.$group -n "$namespace"
show_cmd kubectl auth can-i create foos.$group -n "$namespace" --as=system:serviceaccount:$namespace:default
kubectl auth can-i create foos.$group -n "$namespace" --as=system:serviceaccount:$namespace:default || true
http 403 GET "$foos" -H "Impersonate-User: system:serviceaccount:$namespace:default"
pick reason message code <<<"$body"

# ---- 3. create: defaults and validation --------------------------------------------------------

section "Writing: POST, defaults and validation"

step "POST creates a Foo. Decoding fills in the schema's default for spec.replicas (we send none), before admission; the registry sets uid and generation, and the write's etcd revision is the resourceVersion."
cat >"$tmp/foo.json" <<JSON
{"apiVersion": "$gv", "kind": "Foo", "metadata": {"name": "tour-foo"}, "spec": {"deployment": {"name": "tour-foo"}}}
JSON
say "body: $(cat "$tmp/foo.json")"
http 201 POST "$foos" -H 'Content-Type: application/json' --data-binary @"$tmp/foo.json"
pick kind metadata.name metadata.uid metadata.resourceVersion metadata.generation spec <<<"$body"

step "Validation (the registry's, after mutating and before validating admission) rejects what the CRD's OpenAPI schema forbids (replicas above 1000): 422, nothing stored."
http 422 POST "$foos" -H 'Content-Type: application/json' \
  --data-binary '{"apiVersion": "'"$gv"'", "kind": "Foo", "metadata": {"name": "too-big"}, "spec": {"deployment": {"name": "too-big"}, "replicas": 5000}}'
pick reason message <<<"$body"

step "...and what its CEL rules forbid (self == oldSelf: spec.deployment.name is immutable): 422."
http 422 PATCH "$foos/tour-foo" -H 'Content-Type: application/merge-patch+json' --data-binary '{"spec": {"deployment": {"name": "renamed"}}}'
pick reason "details.causes[].message" <<<"$body"

# ---- 4. reads ------------------------------------------------------------------------------

section "Reading: GET and LIST"

step "GET one Foo with kubectl get --raw: a plain GET, with kubectl's credentials."
show_cmd kubectl get --raw "$foos/tour-foo"
kubectl get --raw "$foos/tour-foo" | pick apiVersion kind metadata.name metadata.namespace metadata.resourceVersion spec status

step "GET the collection (a LIST): a FooList; its own resourceVersion is the moment the list is a snapshot of."
show_cmd kubectl get --raw "$foos"
kubectl get --raw "$foos" | pick apiVersion kind metadata.resourceVersion "items[].metadata.name"

step "The same two through kubectl proxy with plain curl (the proxy adds the credentials)."
http 200 GET "$foos/tour-foo"
pick kind metadata.name metadata.resourceVersion <<<"$body"
http 200 GET "$foos"
pick kind metadata.resourceVersion "items[].metadata.name" <<<"$body"
list_rv="$(value metadata.resourceVersion <<<"$body")"
say "response headers: an audit ID, and the API Priority and Fairness flow schema that admitted the request:"
show_cmd curl -sS -i "$proxy$foos/tour-foo"
curl -sS -i "$proxy$foos/tour-foo" >"$tmp/headers"
tr -d '\r' <"$tmp/headers" | sed -n '1,/^$/p' | grep -E '^(HTTP|Audit-Id|Content-Type|X-Kubernetes-Pf)' || true

# ---- 5. watch ------------------------------------------------------------------------------

section "Watching: a stream of changes"

step "WATCH from the list's resourceVersion ($list_rv): curl streams for 4 s while a Foo is created, changed and deleted; events after $list_rv are all delivered, even ones before the stream connected."
watch_url="$proxy$foos?watch=true&resourceVersion=$list_rv&timeoutSeconds=4"
show_cmd curl -sSN "$watch_url"
say "(in the background; timeoutSeconds=4 makes the server end the stream)"
curl -sSN "$watch_url" >"$tmp/watch.out" &
watch_pid=$!
http 201 POST "$foos" -H 'Content-Type: application/json' \
  --data-binary '{"apiVersion": "'"$gv"'", "kind": "Foo", "metadata": {"name": "watched-foo"}, "spec": {"deployment": {"name": "watched-foo"}}}'
http 200 PATCH "$foos/watched-foo" -H 'Content-Type: application/merge-patch+json' --data-binary '{"spec": {"replicas": 2}}'
http 200 DELETE "$foos/watched-foo"
for _ in $(seq 1 100); do kill -0 "$watch_pid" 2>/dev/null || break; sleep 0.1; done
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true
watch_pid=''
say "what the stream carried (tour-foo is not in it: it was created before $list_rv):"
events <"$tmp/watch.out"

step "How an informer starts (as of client-go v0.37), with no LIST: a watch-list (sendInitialEvents=true) replays the current objects as ADDED, then a BOOKMARK marks the end of that initial state, and the same stream goes on."
watchlist_url="$proxy$foos?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=2"
run_watch() {
  show_cmd curl -sSN "$1"
  curl -sSN "$1" | events
}
run_watch "$watchlist_url"

step "A resourceVersion older than the server still remembers: one ERROR event, 410 Gone (Expired). A Reflector answers it with a new watch-list from the last resourceVersion it saw, which replays the current state."
run_watch "$proxy$foos?watch=true&resourceVersion=1&timeoutSeconds=2"

# ---- 6. the other writes -------------------------------------------------------------------

section "Writing: PUT, merge PATCH, server-side apply"

step "PUT replaces the whole object: we send back what we read, replicas changed, with the resourceVersion we read. A spec change bumps generation."
http 200 GET "$foos/tour-foo"
"$python" "$tmp/tour_json.py" set-replicas "$tmp/body" "$tmp/put.json" 2
say "body: what GET returned (metadata.resourceVersion $(value metadata.resourceVersion <"$tmp/put.json")), with spec.replicas=2"
http 200 PUT "$foos/tour-foo" -H 'Content-Type: application/json' --data-binary @"$tmp/put.json"
pick metadata.resourceVersion metadata.generation spec <<<"$body"

step "Merge PATCH (RFC 7386): only the fields to change; without a resourceVersion in it, no conflict check."
http 200 PATCH "$foos/tour-foo" -H 'Content-Type: application/merge-patch+json' --data-binary '{"spec": {"replicas": 3}}'
pick metadata.resourceVersion metadata.generation spec <<<"$body"

step "Server-side apply: PATCH with our whole intent and a field manager; the server merges it and records who owns which field (managedFields)."
cat >"$tmp/apply.yaml" <<YAML
apiVersion: $gv
kind: Foo
metadata:
  name: tour-foo
  labels:
    tour.example.com/applied: "true"
spec:
  deployment:
    name: tour-foo
  replicas: 3
YAML
say "body (YAML):"
sed 's/^/    /' "$tmp/apply.yaml"
http 200 PATCH "$foos/tour-foo?fieldManager=tour" -H 'Content-Type: application/apply-patch+yaml' --data-binary @"$tmp/apply.yaml"
pick metadata.labels metadata.generation "metadata.managedFields[].manager" "metadata.managedFields[].operation" <<<"$body"

# ---- 7. subresources -----------------------------------------------------------------------

section "Subresources: /status and /scale"

step "PUT on /status changes status only: the spec.replicas=99 we also send is ignored, and generation stays (status is not spec). This is how the controller reports."
http 200 GET "$foos/tour-foo/status"
"$python" "$tmp/tour_json.py" status-update "$tmp/body" "$tmp/status.json"
say "body: the Foo with spec.replicas=99 and a status with availableReplicas=3 and a Ready condition"
http 200 PUT "$foos/tour-foo/status" -H 'Content-Type: application/json' --data-binary @"$tmp/status.json"
pick metadata.generation spec.replicas status.availableReplicas status.observedGeneration "status.conditions[].reason" <<<"$body"

step "The other way round: the main resource ignores status. This PATCH is accepted, and status.availableReplicas stays 3."
http 200 PATCH "$foos/tour-foo" -H 'Content-Type: application/merge-patch+json' --data-binary '{"status": {"availableReplicas": 42}}'
pick metadata.generation status.availableReplicas <<<"$body"

step "/scale: an autoscaling/v1 Scale, the one shape kubectl scale and the HorizontalPodAutoscaler know; the CRD maps spec.replicas and status.availableReplicas into it."
http 200 GET "$foos/tour-foo/scale"
pick apiVersion kind metadata.name spec status <<<"$body"
http 200 PATCH "$foos/tour-foo/scale" -H 'Content-Type: application/merge-patch+json' --data-binary '{"spec": {"replicas": 5}}'
pick kind spec <<<"$body"
show_cmd kubectl get foo tour-foo -n "$namespace"
kubectl get foo tour-foo -n "$namespace"

# ---- 8. optimistic concurrency -------------------------------------------------------------

section "Optimistic concurrency: 409 Conflict"

step "Read a Foo, let someone else change it, then PUT the stale copy: 409 Conflict, nothing overwritten (the controller syncs the key again when the newer version reaches its cache)."
http 200 GET "$foos/tour-foo"
cp "$tmp/body" "$tmp/stale.json"
stale_rv="$(value metadata.resourceVersion <"$tmp/stale.json")"
say "we keep this copy, resourceVersion $stale_rv"
http 200 PATCH "$foos/tour-foo" -H 'Content-Type: application/merge-patch+json' --data-binary '{"spec": {"replicas": 6}}'
pick metadata.resourceVersion spec.replicas <<<"$body"
"$python" "$tmp/tour_json.py" set-replicas "$tmp/stale.json" "$tmp/stale-put.json" 7
say "now PUT our copy, spec.replicas=7, still carrying resourceVersion $stale_rv:"
http 409 PUT "$foos/tour-foo" -H 'Content-Type: application/json' --data-binary @"$tmp/stale-put.json"
pick kind code reason message <<<"$body"
show_cmd kubectl get --raw "$foos/tour-foo"
kubectl get --raw "$foos/tour-foo" | pick metadata.resourceVersion spec.replicas

# ---- 9. GroupVersionKind -> GroupVersionResource -------------------------------------------

section "From a kind to a URL: the RESTMapper"

step "hack/resolve-gvr asks a discovery-backed RESTMapper which resource serves a kind, and its scope, which give the URL path. A Foo:"
run "$resolve_gvr" --group=$group --version=$version --kind=Foo --namespace="$namespace"
say "the path works:"
show_cmd kubectl get --raw "/apis/$gv/namespaces/$namespace/foos"
kubectl get --raw "/apis/$gv/namespaces/$namespace/foos" | pick kind "items[].metadata.name"

step "A Deployment (group apps, at the server's preferred version) and a Namespace (core group, so /api/v1; cluster-scoped, so no namespace in its path)."
run "$resolve_gvr" --group=apps --kind=Deployment --namespace="$namespace"
run "$resolve_gvr" --kind=Namespace --namespace="$namespace"

step "A kind nothing serves is an error, not a guess: the controller waits on this same error until its CRD is installed."
show_cmd "$resolve_gvr" --group=$group --kind=Bar
if "$resolve_gvr" --group=$group --kind=Bar 2>&1; then
  echo "tour: resolve-gvr resolved a kind that does not exist" >&2
  exit 1
fi

# ---- 10. versions and conversion -----------------------------------------------------------

section "Versions: one Foo at v1 and at v1alpha1, converted by a webhook"

# conversion_steps runs the section. The controller it starts is stopped, and the CRD's webhook
# put back as it was, at its end (or by cleanup, when the tour stops before).
conversion_steps() {
  local webhook_addr='' probes_addr='' deadline mark pid no_webhook_step

  # Saved before the controller starts: it writes its CA into the CRD's caBundle at once.
  crd_client_config="$(kubectl get crd "$crd_name" -o 'jsonpath={.spec.conversion.webhook.clientConfig}')"

  say "tour-foo is done with: deleted, so that the controller this section runs (it reconciles the Foos of $namespace) has only this section's Foo"
  run kubectl delete foo tour-foo -n "$namespace" --wait=true

  step "A Foo created at v1 needs no conversion: v1 is what etcd stores. Read at $alpha_version, it must be converted by the webhook the CRD names (spec.conversion.webhook.clientConfig), and nothing answers there yet: an error."
  no_webhook_step=$step_no
  http 201 POST "$foos" -H 'Content-Type: application/json' \
    --data-binary '{"apiVersion": "'"$gv"'", "kind": "Foo", "metadata": {"name": "versioned-foo"}, "spec": {"deployment": {"name": "versioned-foo", "image": "registry.example/tour:1"}, "replicas": 0}}'
  pick apiVersion metadata.name spec <<<"$body"
  show_cmd kubectl get --raw "$alpha_foos/versioned-foo"
  if kubectl get --raw "$alpha_foos/versioned-foo" >/dev/null 2>"$tmp/alpha.err"; then
    say "(it worked: a webhook already answers at the CRD's URL, $(kubectl get crd "$crd_name" -o 'jsonpath={.spec.conversion.webhook.clientConfig.url}'); make run's?)"
  else
    cat "$tmp/alpha.err"
  fi

  step "The controller serves the webhook. Start it in the background, with the webhook on a free port of 127.0.0.1 and its probes on another, and read from its log where they listen."
  controller_args=(--namespace="$namespace" --conversion-webhook-bind-address=127.0.0.1:0 --conversion-webhook-hosts=127.0.0.1
    --conversion-webhook-secret-namespace="$namespace" --health-probe-bind-address=127.0.0.1:0 -v=4)
  printf '%s >%s 2>&1 &\n' "$(show_cmd "$controller_bin" "${controller_args[@]}")" "$controller_log"
  "$controller_bin" "${controller_args[@]}" >"$controller_log" 2>&1 &
  controller_pid=$!
  say "the controller runs as pid $controller_pid, with \$KUBECONFIG's cluster"
  deadline=$((SECONDS + 30))
  while [[ -z "$webhook_addr" || -z "$probes_addr" ]]; do
    kill -0 "$controller_pid" 2>/dev/null || controller_failed "the controller exited before serving its webhook and probes"
    ((SECONDS < deadline)) || controller_failed "the controller did not log the addresses of its webhook and probes within 30 s"
    sleep 0.1
    webhook_addr="$(sed -n 's/.*"Serving" server="conversion-webhook" address="\([^"]*\)".*/\1/p' "$controller_log" | head -n 1)"
    probes_addr="$(sed -n 's/.*"Serving" server="probes" address="\([^"]*\)".*/\1/p' "$controller_log" | head -n 1)"
  done
  show_cmd grep '"Serving"' "$controller_log"
  grep '"Serving"' "$controller_log"

  step "Point the CRD's webhook at it. The API server calls webhooks over HTTPS only: the controller made a CA and a serving certificate (kept in a Secret in $namespace), and writes the CA into the CRD's caBundle, with which the API server verifies it. /readyz passes once it has."
  say "the clientConfig before the controller started, saved to be put back at the end of the section (caBundle left out here): $("$python" -c 'import json, sys; c = json.load(sys.stdin); c.pop("caBundle", None); print(json.dumps(c))' <<<"$crd_client_config")"
  run kubectl patch crd "$crd_name" --type=json -p "$(crd_webhook_patch '{"url":"https://'"$webhook_addr"'/convert"}')"
  say "waiting (up to 60 s) for /readyz, then for the API server to call the webhook there, with the new CA (the GET at $alpha_version succeeds)"
  deadline=$((SECONDS + 60))
  until [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$probes_addr/readyz")" == 200 ]]; do
    kill -0 "$controller_pid" 2>/dev/null || controller_failed "the controller exited"
    ((SECONDS < deadline)) || controller_failed "/readyz still fails after 60 s: $(curl -s "http://$probes_addr/readyz?verbose")"
    sleep 0.2
  done
  until kubectl get --raw "$alpha_foos/versioned-foo" >/dev/null 2>"$tmp/alpha.err"; do
    kill -0 "$controller_pid" 2>/dev/null || controller_failed "the controller exited"
    ((SECONDS < deadline)) || controller_failed "the GET at $alpha_version still fails 60 s after the CRD was pointed at the webhook: $(cat "$tmp/alpha.err")"
    sleep 0.2
  done
  run curl -sS "http://$probes_addr/readyz?verbose"
  echo
  show_cmd grep "Set the CRD's caBundle" "$controller_log"
  grep "Set the CRD's caBundle" "$controller_log" | tail -n 1 || true
  # Quiet before the next steps: every change to a Foo (here, the controller's status writes) is
  # converted for the API server's v1alpha1 watch cache, and would show in the log beside the GET's.
  kubectl wait --for=condition=Ready "foo/versioned-foo" -n "$namespace" --timeout=60s >/dev/null ||
    controller_failed "versioned-foo did not become Ready within 60 s"

  step "The same Foo at both versions. At v1 it is as etcd has it; at $alpha_version the webhook converted it: spec.deployment.name is spec.deploymentName, and the image, for which $alpha_version has no field, travels in an annotation (so that an update at $alpha_version keeps it). Same object: same uid."
  mark="$(wc -l <"$controller_log")"
  show_cmd kubectl get --raw "$foos/versioned-foo"
  kubectl get --raw "$foos/versioned-foo" | pick apiVersion metadata.uid metadata.annotations spec
  show_cmd kubectl get --raw "$alpha_foos/versioned-foo"
  kubectl get --raw "$alpha_foos/versioned-foo" | pick apiVersion metadata.uid metadata.annotations spec

  step "For the GET at $alpha_version, the API server sent the webhook one ConversionReview: a uid, the desiredAPIVersion, and the objects to convert as etcd has them (v1); the webhook answered with them converted. The controller logs each review it answers at -v=4; those since the two GETs (the one at v1 needed none):"
  show_cmd grep '"Converted"' "$controller_log"
  tail -n +"$((mark + 1))" "$controller_log" | grep '"Converted"' ||
    controller_failed "the controller logged no conversion for the GET at $alpha_version"

  step "Each version has its own schema, which the API server publishes (OpenAPI) and kubectl explain reads: one spec, two shapes (the fields only)."
  for v in "$alpha_version" "$version"; do
    show_cmd kubectl explain foo.spec --recursive --api-version="$group/$v"
    kubectl explain foo.spec --recursive --api-version="$group/$v" >"$tmp/explain"
    sed -n -e '/^VERSION:/p' -e '/^FIELDS:/,/^$/{/^$/!p;}' "$tmp/explain"
  done

  step "etcd keeps every Foo at the one version marked storage, whatever version it was written at. status.storedVersions lists each version objects may still be stored at: a version can leave the CRD only once every object is rewritten at the storage version and it is dropped from that list."
  run kubectl get crd "$crd_name" -o 'jsonpath=storage version: {.spec.versions[?(@.storage==true)].name}{"\n"}status.storedVersions: {.status.storedVersions}{"\n"}'

  step "Where conversion sits in a request. The handler of a CRD's version works on objects at that version, and converts only on the way to and from etcd; the webhook is called only when the versions differ:"
  say "write at $alpha_version: decode the body, default, admission, validation, all at $alpha_version -> convert to $version -> etcd (and the object stored back to $alpha_version for the response)"
  say "read at $alpha_version:  etcd ($version) -> convert to $alpha_version -> the response"
  say "read or write at $version: no conversion, no webhook call; so without the webhook, $version still works and $alpha_version fails (step $no_webhook_step)"
  say "the API server also keeps a watch cache per version: the $alpha_version one converts every change to a Foo as etcd reports it, read at $alpha_version or not; a LIST or WATCH at $alpha_version is served from it, converted already"

  say "stopping the controller (SIGTERM) and putting the CRD's webhook clientConfig back as it was"
  pid=$controller_pid
  show_cmd kill -TERM "$pid"
  stop_controller
  say "the controller (pid $pid) exited with status $controller_status"
  restore_crd_webhook >/dev/null
}

if [[ -z "$local_cluster" ]]; then
  say "skipped: it needs this cluster's API server to call a webhook on this machine (127.0.0.1), which only the local control plane's can (run the tour without \$KUBECONFIG)"
elif [[ "$(kubectl get crd "$crd_name" -o 'jsonpath={.spec.conversion.strategy}')" != Webhook ]]; then
  say "skipped: the installed Foo CRD does not convert by webhook (kubectl apply -k hack/local-cluster/crd installs the one that does)"
else
  conversion_steps
fi

# ---- cleanup -------------------------------------------------------------------------------

section "Cleanup"
run kubectl delete namespace "$namespace" --wait=true --timeout=120s
namespace_created=''
say "the CRD stays installed (kubectl delete crd $crd_name removes it)"
kill "$proxy_pid" 2>/dev/null || true
wait "$proxy_pid" 2>/dev/null || true
proxy_pid=''
printf '\n%sThe tour is over (%d steps in %ds). docs/walkthrough.md explains each concept, with the code that uses it.%s\n' \
  "$bold" "$step_no" "$((SECONDS - start))" "$reset"
