//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"example.com/sample-controller/internal/auditlog"
)

// tourNamespace is the namespace hack/tour.sh works in by default; the paths below name it.
const tourNamespace = "tour"

// TestTour runs the API tour (hack/tour.sh, `make tour`) against the e2e cluster, as a user
// would run it, and checks that every step still shows what it is there to show. A tour that
// stops matching the API, or a step that silently shows nothing, fails here rather than in
// front of a reader.
//
// It runs the tour twice in a row on the same cluster, which also shows that a tour leaves
// nothing behind that trips the next one: first as on the local control plane (no $KUBECONFIG;
// the tour finds the e2e cluster running under its LOCAL_CLUSTER_* name), where its last
// section runs the controller for its conversion webhook; then with the cluster given as
// $KUBECONFIG, as a user's own cluster, where that section is skipped.
//
// Not parallel: the tour points the cluster's one Foo CRD at its own controller's webhook for
// a while, as the conversion tests do.
func TestTour(t *testing.T) {
	ensureCRD(t)
	clientConfig := func() string {
		return mustKubectl(t, "get", "crd", crdName, "-o", "jsonpath={.spec.conversion.webhook.clientConfig}")
	}
	before := clientConfig()

	t.Run("local control plane", func(t *testing.T) {
		out := runTour(t, "KUBECONFIG=", "LOCAL_CLUSTER_NAME="+filepath.Base(clusterDir), "LOCAL_CLUSTER_DIR="+clusterDir)
		checkTour(t, out, append(tourChecks(), tourConversionChecks...))

		// The v1 and v1alpha1 reads are of one object.
		uids := regexp.MustCompile(`/foos/versioned-foo\napiVersion: "[^"]+"\nmetadata\.uid: "([^"]+)"`).FindAllStringSubmatch(out, -1)
		if len(uids) != 2 || uids[0][1] != uids[1][1] {
			t.Errorf("the reads of versioned-foo at v1 and v1alpha1 do not show one uid: %v", uids)
		}
		// The controller is stopped, and the CRD's webhook is as it was before the tour.
		if m := regexp.MustCompile(`the controller \(pid (\d+)\) exited`).FindStringSubmatch(out); m == nil {
			t.Errorf("the tour does not say that its controller exited")
		} else if pid, _ := strconv.Atoi(m[1]); syscall.Kill(pid, 0) != syscall.ESRCH {
			t.Errorf("the tour's controller (pid %d) still runs after the tour", pid)
		}
		if after := clientConfig(); after != before {
			t.Errorf("the CRD's webhook clientConfig is not put back after the tour:\nbefore: %s\nafter:  %s", before, after)
		}
		if t.Failed() {
			t.Logf("---- the tour's output ----\n%s", out)
		}
	})

	t.Run("given kubeconfig", func(t *testing.T) {
		out := runTour(t, "KUBECONFIG="+kubeconfig, "LOCAL_CLUSTER_NAME=", "LOCAL_CLUSTER_DIR=")
		checkTour(t, out, append(tourChecks(), struct{ what, pattern string }{
			"the conversion section skipped, and why",
			`# skipped: it needs this cluster's API server to call a webhook on this machine \(127\.0\.0\.1\)`,
		}))
		if strings.Contains(out, "sample-controller --namespace") {
			t.Errorf("the tour started the controller on a cluster given as $KUBECONFIG")
		}
		if t.Failed() {
			t.Logf("---- the tour's output ----\n%s", out)
		}
	})
}

// runTour runs hack/tour.sh with env added to the test's environment, and returns its output.
func runTour(t *testing.T, env ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(repoRoot, "hack", "tour.sh"))
	cmd.Dir = repoRoot
	cmd.Env = append(append(os.Environ(), "KUBECTL="+kubectlBin, "TOUR_NAMESPACE="+tourNamespace), env...)
	// The tour starts background processes (kubectl proxy, a watching curl, the controller). On
	// timeout, kill its whole process group, so that none of them outlives the test or holds
	// the output open.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output

	start := time.Now()
	err := cmd.Run()
	out := output.String()
	t.Logf("hack/tour.sh took %s", time.Since(start).Round(100*time.Millisecond))
	if err != nil {
		t.Fatalf("hack/tour.sh failed: %v\n---- its output ----\n%s", err, out)
	}
	return out
}

// checkTour checks each pattern against the tour's output, and that the tour's namespace is gone.
func checkTour(t *testing.T, out string, checks []struct{ what, pattern string }) {
	t.Helper()
	for _, c := range checks {
		if !regexp.MustCompile(c.pattern).MatchString(out) {
			t.Errorf("the tour's output does not show %s (no match for %s)", c.what, c.pattern)
		}
	}
	// Cleaned up: the tour's namespace is gone (the tour waits for its deletion).
	if _, err := kubeClient.CoreV1().Namespaces().Get(context.Background(), tourNamespace, metav1.GetOptions{}); !isNotFound(err) {
		t.Errorf("namespace %s still exists after the tour (err=%v)", tourNamespace, err)
	}
}

// tourConversionChecks are the checks of the tour's last section, which runs on the local
// control plane only.
var tourConversionChecks = []struct{ what, pattern string }{
	{"a v1alpha1 GET failing without the webhook", `\$ kubectl get --raw /apis/samplecontroller\.example\.com/v1alpha1/namespaces/tour/foos/versioned-foo\nError from server [^\n]*conversion webhook for samplecontroller\.example\.com/v1, Kind=Foo failed: `},
	{"the controller serving its webhook", `(?m)^I[^\n]*"Serving" server="conversion-webhook" address="127\.0\.0\.1:\d+" scheme="https"$`},
	{"the CRD pointed at the webhook", `"value":\{"url":"https://127\.0\.0\.1:\d+/convert"\}\}\]'\ncustomresourcedefinition\.apiextensions\.k8s\.io/foos\.samplecontroller\.example\.com patched`},
	{"the controller ready, its webhook included", `(?m)^\[\+\] conversion-webhook ok$`},
	{"the Foo at v1: spec.deployment with the image, no annotation", `\$ kubectl get --raw /apis/samplecontroller\.example\.com/v1/namespaces/tour/foos/versioned-foo\napiVersion: "samplecontroller\.example\.com/v1"\nmetadata\.uid: "[^"]+"\nmetadata\.annotations: \(absent\)\nspec: \{"deployment": \{"image": "registry\.example/tour:1", "name": "versioned-foo"\}, "replicas": 0\}\n`},
	{"the Foo at v1alpha1: spec.deploymentName, the image in the annotation", `\$ kubectl get --raw /apis/samplecontroller\.example\.com/v1alpha1/namespaces/tour/foos/versioned-foo\napiVersion: "samplecontroller\.example\.com/v1alpha1"\nmetadata\.uid: "[^"]+"\nmetadata\.annotations: \{"samplecontroller\.example\.com/v1-deployment-image": "registry\.example/tour:1"\}\nspec: \{"deploymentName": "versioned-foo", "replicas": 0\}\n`},
	{"the ConversionReview in the controller's log", `\$ grep '"Converted"' \S+/controller\.log\n(?:I[^\n]*\n)*I[^\n]*"Converted" server="conversion-webhook" [^\n]*desiredAPIVersion="samplecontroller\.example\.com/v1alpha1" from="v1" to="v1alpha1" objects=1 `},
	{"kubectl explain at v1alpha1", `(?m)^VERSION:\s+v1alpha1\nFIELDS:\n  deploymentName\t<string> -required-\n  replicas\t<integer>$`},
	{"kubectl explain at v1", `(?m)^VERSION:\s+v1\nFIELDS:\n  deployment\t<Object> -required-\n    image\t<string>\n    name\t<string> -required-\n  replicas\t<integer>$`},
	{"the storage version and status.storedVersions", `(?m)^storage version: v1\nstatus\.storedVersions: \["v1"\]$`},
	{"the controller stopped", `(?m)^# the controller \(pid \d+\) exited with status 0$`},
}

// tourChecks are the checks of every run of the tour. Each is a regular expression over the
// whole output ((?m): ^ and $ match at lines).
func tourChecks() []struct{ what, pattern string } {
	return []struct{ what, pattern string }{
		// Discovery.
		{"our group/version among the served ones", `(?m)^samplecontroller\.example\.com/v1$`},
		{"the CRD's versions: v1 stored", `(?m)^v1: served=true storage=true$`},
		{"the CRD's versions: v1alpha1 served, not stored", `(?m)^v1alpha1: served=true storage=false$`},
		{"the CRD's conversion strategy", `(?m)^conversion: Webhook$`},
		{"our resource in kubectl api-resources, at its preferred version", `(?m)^foos\s+fo\s+samplecontroller\.example\.com/v1\s+true\s+Foo\s`},
		{"the core group's versions from GET /api", `"kind":"APIVersions","versions":\["v1"\]`},
		{"our group in GET /apis", `groups\[name=samplecontroller\.example\.com\]: \{"name": "samplecontroller\.example\.com"`},
		{"the group/version's discovery document", `kind: "APIResourceList"\ngroupVersion: "samplecontroller\.example\.com/v1"`},
		{"the status subresource in discovery", `"name": "foos/status"`},
		{"the scale subresource, a Scale, in discovery", `"name": "foos/scale", [^\n]*"kind": "Scale"`},

		// The request path.
		{"authentication: who we are", `(?m)^Username\s+\S+`},
		{"authorization: allowed", `(?m)^yes$`},
		{"authorization: the service account is not", `(?m)^no$`},
		{"authorization: 403 for the service account", `<- HTTP 403 Forbidden\nreason: "Forbidden"`},
		{"POST created a Foo", `-X POST [^\n]*/foos\n<- HTTP 201 Created\nkind: "Foo"\nmetadata\.name: "tour-foo"`},
		{"admission defaulted spec.replicas", `spec: \{"deployment": \{"name": "tour-foo"\}, "replicas": 1\}`},
		{"schema validation rejected replicas 5000", `<- HTTP 422 Unprocessable Entity\nreason: "Invalid"\nmessage: "[^\n]*less than or equal to 1000`},
		{"CEL validation rejected a rename", `<- HTTP 422 Unprocessable Entity\nreason: "Invalid"\ndetails\.causes\[\]\.message: \["[^\n]*deployment\.name is immutable`},

		// Reads.
		{"kubectl get --raw of one Foo", `\$ kubectl get --raw /apis/samplecontroller\.example\.com/v1/namespaces/tour/foos/tour-foo\napiVersion: "samplecontroller\.example\.com/v1"\nkind: "Foo"`},
		{"kubectl get --raw of the list", `\$ kubectl get --raw /apis/samplecontroller\.example\.com/v1/namespaces/tour/foos\napiVersion: "samplecontroller\.example\.com/v1"\nkind: "FooList"`},
		{"curl through kubectl proxy, one Foo", `\$ curl -sS -X GET http://127\.0\.0\.1:\d+/apis/samplecontroller\.example\.com/v1/namespaces/tour/foos/tour-foo\n<- HTTP 200 OK\nkind: "Foo"`},
		{"curl through kubectl proxy, the list", `\$ curl -sS -X GET http://127\.0\.0\.1:\d+/apis/samplecontroller\.example\.com/v1/namespaces/tour/foos\n<- HTTP 200 OK\nkind: "FooList"`},

		// Watch.
		{"the watch saw the Foo created", `(?m)^  ADDED\s+Foo tour/watched-foo resourceVersion=\d+ generation=1 spec\.replicas=1$`},
		{"the watch saw it changed", `(?m)^  MODIFIED\s+Foo tour/watched-foo resourceVersion=\d+ generation=2 spec\.replicas=2$`},
		{"the watch saw it deleted", `(?m)^  DELETED\s+Foo tour/watched-foo `},
		{"the watch-list replayed the current Foo", `(?m)^  ADDED\s+Foo tour/tour-foo `},
		{"the watch-list ended its initial state with a bookmark", `(?m)^  BOOKMARK\s+resourceVersion=\d+ annotations=\{'k8s\.io/initial-events-end': 'true'\}$`},
		{"a too-old resourceVersion: 410 Expired", `(?m)^  ERROR\s+code=410 reason=Expired `},

		// The other writes.
		{"PUT replaced the Foo", `-X PUT [^\n]*/foos/tour-foo\n<- HTTP 200 OK\nmetadata\.resourceVersion: "\d+"\nmetadata\.generation: 2\nspec: \{"deployment": \{"name": "tour-foo"\}, "replicas": 2\}`},
		{"merge PATCH changed the Foo", `-X PATCH -H 'Content-Type: application/merge-patch\+json' --data-binary '\{"spec": \{"replicas": 3\}\}' [^\n]*/foos/tour-foo\n<- HTTP 200 OK`},
		{"server-side apply took ownership", `application/apply-patch\+yaml[^\n]*fieldManager=tour'\n<- HTTP 200 OK\nmetadata\.labels: \{"tour\.example\.com/applied": "true"\}`},
		{"server-side apply recorded its manager", `metadata\.managedFields\[\]\.operation: \["Apply", `},
		{"DELETE", `-X DELETE [^\n]*/foos/watched-foo\n<- HTTP 200 OK`},

		// Subresources.
		{"PUT /status wrote status and ignored spec", `/foos/tour-foo/status\n<- HTTP 200 OK\nmetadata\.generation: 3\nspec\.replicas: 3\nstatus\.availableReplicas: 3\nstatus\.observedGeneration: 3`},
		{"the main resource ignored status", `--data-binary '\{"status": \{"availableReplicas": 42\}\}' [^\n]*\n<- HTTP 200 OK\nmetadata\.generation: 3\nstatus\.availableReplicas: 3`},
		{"GET /scale returned a Scale", `/foos/tour-foo/scale\n<- HTTP 200 OK\napiVersion: "autoscaling/v1"\nkind: "Scale"\nmetadata\.name: "tour-foo"\nspec: \{"replicas": 3\}\nstatus: \{"replicas": 3`},
		{"PATCH /scale set spec.replicas", `/foos/tour-foo/scale\n<- HTTP 200 OK\nkind: "Scale"\nspec: \{"replicas": 5\}`},

		// Optimistic concurrency.
		{"the stale PUT got 409 Conflict", `<- HTTP 409 Conflict\nkind: "Status"\ncode: 409\nreason: "Conflict"\nmessage: "[^\n]*the object has been modified`},
		{"the conflicting write was not applied", `reason: "Conflict"\n[^\n]*\n\$ kubectl get --raw [^\n]*\nmetadata\.resourceVersion: "\d+"\nspec\.replicas: 6\n`},

		// GroupVersionKind -> GroupVersionResource.
		{"Foo resolved to foos", `(?m)^GroupVersionResource: samplecontroller\.example\.com/v1, Resource=foos$`},
		{"Foo's path", `(?m)^path:\s+/apis/samplecontroller\.example\.com/v1/namespaces/tour/foos$`},
		{"Deployment's path", `(?m)^path:\s+/apis/apps/v1/namespaces/tour/deployments$`},
		{"Namespace's path: core group, cluster-scoped", `(?m)^path:\s+/api/v1/namespaces$`},
		{"Namespace is cluster-scoped", `(?m)^scope:\s+cluster-scoped`},
		{"an unknown kind is a clear error", `resolve-gvr: no resource serves kind "Bar" in group "samplecontroller\.example\.com"`},

		// The end.
		{"the namespace was deleted", `namespace "tour" deleted`},
		{"the tour ran to its end", `The tour is over \(\d+ steps in \d+s\)`},
	}
}

// TestWalkthrough follows one Foo the way docs/walkthrough.md does, and checks in the API
// server's audit log that the requests the walkthrough describes happen, in its order. The
// walkthrough's account of what goes over the wire then cannot drift from what does.
func TestWalkthrough(t *testing.T) {
	ensureCRD(t)
	ns := newNamespace(t)
	mark := auditMark(t)
	p := startController(t, "--namespace="+ns)

	// Section 2: kubectl apply of a Foo without spec.replicas.
	foo := "apiVersion: samplecontroller.example.com/v1\nkind: Foo\nmetadata:\n  name: walk\nspec:\n  deployment:\n    name: walk\n"
	if out, err := kubectlApply(foo, "-n", ns); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	// Section 5: the Deployment's status comes back as the Foo's, with the defaulted replica.
	converged := waitForFooConverged(t, p, ns, "walk", 60*time.Second)
	if *converged.Spec.Replicas != 1 {
		t.Errorf("spec.replicas = %d, want 1, the CRD's default", *converged.Spec.Replicas)
	}
	// Section 5: deleting the Foo; the garbage collector deletes the Deployment, then its ReplicaSet.
	mustKubectl(t, "delete", "foo", "walk", "-n", ns)
	eventually(t, p, 60*time.Second, "the garbage collector to delete the Deployment and its ReplicaSet", func() (bool, string) {
		records := auditRecordsSince(t, mark, ns)
		gone := func(resource string) bool {
			return indexOf(records, 0, func(r auditRecord) bool {
				return r.by("kube-controller-manager/") && r.Verb == "delete" && r.ObjectRef.Resource == resource && r.code() == 200
			}) >= 0
		}
		return gone("deployments") && gone("replicasets"), fmt.Sprintf("%d requests in %s so far", len(records), ns)
	})

	records := auditRecordsSince(t, mark, ns)
	defer func() {
		if t.Failed() {
			var lines []string
			for _, r := range records {
				lines = append(lines, r.String())
			}
			t.Logf("requests in namespace %s, in the audit log's order:\n%s", ns, strings.Join(lines, "\n"))
		}
	}()

	// Section 3: each informer starts with a watch-list (one WATCH with sendInitialEvents=true),
	// not with a LIST.
	for _, resource := range []string{"foos", "deployments"} {
		i := indexOf(records, 0, func(r auditRecord) bool {
			return r.by("sample-controller/") && r.ObjectRef.Resource == resource && (r.Verb == "watch" || r.Verb == "list")
		})
		if i < 0 {
			t.Errorf("the controller never watched %s", resource)
			continue
		}
		if r := records[i]; r.Verb != "watch" || !strings.Contains(r.RequestURI, "sendInitialEvents=true") {
			t.Errorf("the controller's first request for %s is %s %s, want a WATCH with sendInitialEvents=true", resource, r.Verb, r.RequestURI)
		}
	}
	if i := indexOf(records, 0, func(r auditRecord) bool { return r.by("sample-controller/") && r.Verb == "list" }); i >= 0 {
		t.Errorf("the controller LISTed (%s); the walkthrough says its informers start with a watch-list", records[i])
	}

	// The order of one Foo's life, each step after the one before it.
	steps := []struct {
		what  string
		match func(auditRecord) bool
	}{
		{"kubectl asks whether the Foo exists: 404", func(r auditRecord) bool {
			return r.by("kubectl/") && r.Verb == "get" && r.ObjectRef.Resource == "foos" && r.code() == 404
		}},
		{"kubectl POSTs it, with strict field validation: 201", func(r auditRecord) bool {
			return r.by("kubectl/") && r.Verb == "create" && r.ObjectRef.Resource == "foos" && r.code() == 201 &&
				strings.Contains(r.RequestURI, "fieldValidation=Strict")
		}},
		{"the controller POSTs the Deployment: 201", func(r auditRecord) bool {
			return r.by("sample-controller/") && r.Verb == "create" && r.ObjectRef.Resource == "deployments" && r.code() == 201
		}},
		{"kube-controller-manager creates its ReplicaSet", func(r auditRecord) bool {
			return r.by("kube-controller-manager/") && r.Verb == "create" && r.ObjectRef.Resource == "replicasets" && r.code() == 201
		}},
		{"kube-controller-manager updates the Deployment's status", func(r auditRecord) bool {
			return r.by("kube-controller-manager/") && r.Verb == "update" && r.ObjectRef.Resource == "deployments" &&
				r.ObjectRef.Subresource == "status" && r.code() == 200
		}},
		{"the controller PUTs foos/NAME/status: 200", func(r auditRecord) bool {
			return r.by("sample-controller/") && r.Verb == "update" && r.ObjectRef.Resource == "foos" &&
				r.ObjectRef.Subresource == "status" && r.code() == 200
		}},
		{"kubectl deletes the Foo", func(r auditRecord) bool {
			return r.by("kubectl/") && r.Verb == "delete" && r.ObjectRef.Resource == "foos" && r.code() == 200
		}},
		{"the garbage collector deletes the Deployment", func(r auditRecord) bool {
			return r.by("kube-controller-manager/") && r.Verb == "delete" && r.ObjectRef.Resource == "deployments" && r.code() == 200
		}},
		{"then its ReplicaSet", func(r auditRecord) bool {
			return r.by("kube-controller-manager/") && r.Verb == "delete" && r.ObjectRef.Resource == "replicasets" && r.code() == 200
		}},
	}
	at := 0
	for _, step := range steps {
		i := indexOf(records, at, step.match)
		if i < 0 {
			t.Errorf("no request after #%d shows that %s", at, step.what)
			return
		}
		t.Logf("#%d %s: %s", i, step.what, records[i])
		at = i + 1
	}
}

// auditRecord is an audit event with the request's URI (and so its query).
type auditRecord struct {
	auditlog.Event
	RequestURI string `json:"requestURI"`
}

func (r auditRecord) by(userAgentPrefix string) bool {
	return strings.HasPrefix(r.UserAgent, userAgentPrefix)
}

func (r auditRecord) code() int {
	if r.ResponseStatus == nil {
		return 0
	}
	return r.ResponseStatus.Code
}

func (r auditRecord) String() string {
	agent, _, _ := strings.Cut(r.UserAgent, " ")
	return agent + " " + r.Event.String() + " " + r.RequestURI
}

// auditRecordsSince returns every user's requests in namespace ns after mark, in the log's
// order. A finished request is logged when its response completes; a watch, which lasts, when
// its response starts.
func auditRecordsSince(t *testing.T, mark int64, ns string) []auditRecord {
	t.Helper()
	var out []auditRecord
	forEachAuditLineSince(t, mark, func(line []byte) {
		var r auditRecord
		if err := json.Unmarshal(line, &r); err != nil {
			return // a line still being written
		}
		if r.ObjectRef == nil || r.ObjectRef.Namespace != ns {
			return
		}
		if (r.Verb == "watch" && r.Stage == "ResponseStarted") || (r.Verb != "watch" && r.Stage == "ResponseComplete") {
			out = append(out, r)
		}
	})
	return out
}

// indexOf is the index of the first record at or after from that matches, or -1.
func indexOf(records []auditRecord, from int, match func(auditRecord) bool) int {
	for i := from; i < len(records); i++ {
		if match(records[i]) {
			return i
		}
	}
	return -1
}
