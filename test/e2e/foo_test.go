//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
)

// A Foo becomes a Deployment that the Foo controls, whose pods (kwok's) become Ready, and the
// Foo's status says so; `kubectl get foos` shows the printer columns.
func TestFooCreatesOwnedDeploymentAndReportsStatus(t *testing.T) {
	ensureCRD(t)
	ns := newNamespace(t)
	p := startController(t, "--namespace="+ns)
	mark := auditMark(t)
	foo := createFoo(t, newFoo(ns, "web", "web-deploy", 3))

	foo = waitForFooConverged(t, p, ns, "web", 60*time.Second)
	// What it cost, as the API server saw it: one Deployment create, a status write per real
	// change (progressing, then available as pods come up), and no Deployment updates.
	// A 409 Conflict (a write from a cache one step behind our own last write) is retried and
	// is not a change, so only accepted writes are counted.
	writes := map[string]int{}
	for _, e := range writesOf(controllerRequestsSince(t, mark, ns)) {
		if e.ResponseStatus != nil && e.ResponseStatus.Code < 300 {
			writes[e.Verb+" "+e.ObjectRef.Resource+"/"+e.ObjectRef.Subresource]++
		}
	}
	if writes["create deployments/"] != 1 || writes["update deployments/"] != 0 ||
		writes["update foos/status"] < 1 || writes["update foos/status"] > 4 || writes["create events/"] != 1 {
		t.Errorf("controller writes from creation to Ready = %v; want 1 Deployment create, 1-4 status updates, 1 event", writes)
	}
	t.Logf("controller writes from creation to Ready: %v", writesOf(controllerRequestsSince(t, mark, ns)))
	d, err := getDeployment(ns, "web-deploy")
	if err != nil {
		t.Fatal(err)
	}
	ref := metav1.GetControllerOf(d)
	// A Deployment the controller creates names its Foo at v1, the version the controller speaks.
	var refGV schema.GroupVersion
	if ref != nil {
		refGV, _ = schema.ParseGroupVersion(ref.APIVersion)
	}
	if ref == nil || ref.UID != foo.UID || ref.Kind != "Foo" ||
		refGV.Group != samplev1.SchemeGroupVersion.Group || refGV.Version != samplev1.SchemeGroupVersion.Version ||
		ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		t.Errorf("Deployment's controller ownerReference = %+v, want Foo %s (uid %s) at %s with blockOwnerDeletion",
			ref, foo.Name, foo.UID, samplev1.SchemeGroupVersion)
	}
	if d.Status.AvailableReplicas != 3 || foo.Status.AvailableReplicas != 3 {
		t.Errorf("available: Deployment %d, Foo %d; want 3 and 3", d.Status.AvailableReplicas, foo.Status.AvailableReplicas)
	}

	out := mustKubectl(t, "get", "foos", "-n", ns)
	if !regexp.MustCompile(`NAME\s+DEPLOYMENT\s+DESIRED\s+AVAILABLE\s+READY\s+AGE`).MatchString(out) ||
		!regexp.MustCompile(`web\s+web-deploy\s+3\s+3\s+True\s+\S+`).MatchString(out) {
		t.Errorf("kubectl get foos:\n%s\nwant the printer columns with web web-deploy 3 3 True", out)
	}
	out = mustKubectl(t, "get", "fo", "-n", ns, "-o", "wide")
	if !strings.Contains(out, "REASON") || !strings.Contains(out, samplev1.ReasonDeploymentAvailable) {
		t.Errorf("kubectl get fo -o wide (short name, reason column):\n%s", out)
	}
	events := mustKubectl(t, "get", "events", "-n", ns, "--field-selector", "involvedObject.kind=Foo,reason=DeploymentCreated")
	if !strings.Contains(events, "Created Deployment web-deploy") {
		t.Errorf("no DeploymentCreated event:\n%s", events)
	}
}

// Scaling through spec, through the scale subresource (kubectl scale), and down to zero.
func TestScale(t *testing.T) {
	ensureCRD(t)
	ns := newNamespace(t)
	p := startController(t, "--namespace="+ns)
	createFoo(t, newFoo(ns, "scaled", "scaled", 1))
	waitForFooConverged(t, p, ns, "scaled", 60*time.Second)

	mustKubectl(t, "patch", "foo", "scaled", "-n", ns, "--type=merge", "-p", `{"spec":{"replicas":4}}`)
	waitForDeploymentReplicas(t, p, ns, "scaled", 4)
	if foo := waitForFooConverged(t, p, ns, "scaled", 60*time.Second); foo.Generation != 2 {
		t.Errorf("generation = %d after one spec change, want 2", foo.Generation)
	}

	mustKubectl(t, "scale", "foo/scaled", "-n", ns, "--replicas=2")
	waitForDeploymentReplicas(t, p, ns, "scaled", 2)
	waitForFooConverged(t, p, ns, "scaled", 60*time.Second)
	scale := mustKubectl(t, "get", "--raw", "/apis/samplecontroller.example.com/v1/namespaces/"+ns+"/foos/scaled/scale")
	if !strings.Contains(scale, `"kind":"Scale"`) || !strings.Contains(scale, `"replicas":2`) {
		t.Errorf("GET .../foos/scaled/scale = %s, want a Scale with replicas 2", scale)
	}

	mustKubectl(t, "scale", "foo/scaled", "-n", ns, "--replicas=0")
	waitForDeploymentReplicas(t, p, ns, "scaled", 0)
	foo := waitForFooConverged(t, p, ns, "scaled", 60*time.Second)
	if foo.Status.AvailableReplicas != 0 {
		t.Errorf("availableReplicas = %d at zero replicas", foo.Status.AvailableReplicas)
	}
	eventually(t, p, 30*time.Second, "the pods to be gone", func() (bool, string) {
		pods, err := kubeClient.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(pods.Items) == 0, fmt.Sprint(len(pods.Items))
	})
}

// Out-of-band changes to the fields the controller manages are reverted; a deleted Deployment
// is recreated.
func TestDriftIsReverted(t *testing.T) {
	ensureCRD(t)
	ns := newNamespace(t)
	p := startController(t, "--namespace="+ns)
	createFoo(t, newFoo(ns, "drift", "drift", 2))
	waitForFooConverged(t, p, ns, "drift", 60*time.Second)

	mustKubectl(t, "scale", "deployment/drift", "-n", ns, "--replicas=5")
	waitForDeploymentReplicas(t, p, ns, "drift", 2)

	mustKubectl(t, "set", "image", "deployment/drift", "-n", ns, "nginx=evil:latest")
	eventually(t, p, 30*time.Second, "the image to be restored", func() (bool, string) {
		d, err := getDeployment(ns, "drift")
		if err != nil {
			return false, err.Error()
		}
		img := d.Spec.Template.Spec.Containers[0].Image
		return img == samplev1.DefaultImage, img // the image of a Foo without spec.deployment.image
	})
	mustKubectl(t, "label", "deployment/drift", "-n", ns, "samplecontroller.example.com/foo-")
	eventually(t, p, 30*time.Second, "the label to be restored", func() (bool, string) {
		d, err := getDeployment(ns, "drift")
		if err != nil {
			return false, err.Error()
		}
		return d.Labels["samplecontroller.example.com/foo"] == "drift", fmt.Sprint(d.Labels)
	})

	before, err := getDeployment(ns, "drift")
	if err != nil {
		t.Fatal(err)
	}
	mustKubectl(t, "delete", "deployment/drift", "-n", ns, "--wait=true")
	var recreated *appsv1.Deployment
	eventually(t, p, 30*time.Second, "the Deployment to be recreated", func() (bool, string) {
		recreated, err = getDeployment(ns, "drift")
		if err != nil {
			return false, err.Error()
		}
		return recreated.UID != before.UID, string(recreated.UID)
	})
	waitForFooConverged(t, p, ns, "drift", 60*time.Second)
	events := mustKubectl(t, "get", "events", "-n", ns, "--field-selector", "involvedObject.kind=Foo,reason=DeploymentUpdated")
	if !strings.Contains(events, "Updated Deployment drift") {
		t.Errorf("no DeploymentUpdated event:\n%s", events)
	}
}

// A Deployment of the wanted name that the Foo does not own is left alone: a Warning event,
// Ready=False with reason DeploymentNotOwned, and no retry storm, even across resyncs. It has no
// label of ours, so the controller's informer never shows it: the controller finds it through its
// refused create, and looks again after 5s, 10s, 20s, ... (a GET of the Foo, a refused create
// and a GET of the Deployment each time, nothing written). When it goes away, the Foo gets its own Deployment at the next look.
func TestDeploymentNotOwnedIsLeftAlone(t *testing.T) {
	ensureCRD(t)
	ns := newNamespace(t)
	ctx := context.Background()
	replicas := int32(1)
	theirs := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "taken", Namespace: ns, Labels: map[string]string{"owner": "someone-else"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "theirs"}},
		},
	}
	theirs.Spec.Template.Labels = map[string]string{"app": "theirs"}
	theirs.Spec.Template.Spec.Containers = []corev1.Container{{Name: "app", Image: "theirs:1"}}
	theirs, err := kubeClient.AppsV1().Deployments(ns).Create(ctx, theirs, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// A short resync: a retry storm or a write on every resync would show within seconds.
	p := startController(t, "--namespace="+ns, "--resync-period=2s")
	createFoo(t, newFoo(ns, "wants-taken", "taken", 2))
	cond := waitForReadyReason(t, p, ns, "wants-taken", metav1.ConditionFalse, samplev1.ReasonDeploymentNotOwned)
	if !strings.Contains(cond.Message, "taken") {
		t.Errorf("Ready message %q does not name the Deployment", cond.Message)
	}
	eventually(t, p, 10*time.Second, "a Warning event", func() (bool, string) {
		out, _ := kubectl("get", "events", "-n", ns, "--field-selector", "type=Warning,reason=DeploymentNotOwned")
		return strings.Contains(out, "not controlled by this Foo"), out
	})

	mark := auditMark(t)
	time.Sleep(8 * time.Second) // four resync periods
	var rechecks int
	for _, r := range controllerRequestsSince(t, mark, ns) {
		switch {
		case r.Verb == "get" && (r.ObjectRef.Resource == "deployments" || r.ObjectRef.Resource == "foos"):
		case r.Verb == "create" && r.ObjectRef.Resource == "deployments" && r.ResponseStatus != nil && r.ResponseStatus.Code == http.StatusConflict:
			rechecks++
		default:
			t.Errorf("while the conflict persisted the controller made a request other than a re-check (GETs, a refused create): %v", r)
		}
	}
	// The look-agains of the first 8s: at 5s and perhaps 15s after the first (the window starts a
	// little after it); a resync every 2s would make four.
	if rechecks > 2 {
		t.Errorf("%d re-checks of the taken name in 8s, want at most 2 (backing off from 5s)", rechecks)
	}
	now, err := getDeployment(ns, "taken")
	if err != nil {
		t.Fatal(err)
	}
	if now.Generation != theirs.Generation {
		t.Errorf("their Deployment was modified: generation %d -> %d", theirs.Generation, now.Generation)
	}
	if metav1.GetControllerOf(now) != nil || *now.Spec.Replicas != 1 || now.Spec.Template.Spec.Containers[0].Image != "theirs:1" {
		t.Errorf("their Deployment was touched: %+v", now.Spec)
	}
	events := mustKubectl(t, "get", "events", "-n", ns, "--field-selector", "reason=DeploymentNotOwned", "-o", "jsonpath={range .items[*]}{.count}{\"\\n\"}{end}")
	if strings.TrimSpace(events) != "1" {
		t.Errorf("DeploymentNotOwned event counts = %q, want one event, recorded once", events)
	}

	// The name is freed: the Foo gets its own Deployment at its next look (within 20s here).
	mustKubectl(t, "delete", "deployment/taken", "-n", ns, "--wait=true")
	foo := waitForFooConverged(t, p, ns, "wants-taken", 60*time.Second)
	d, err := getDeployment(ns, "taken")
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(d); ref == nil || ref.UID != foo.UID {
		t.Errorf("the new Deployment is not controlled by the Foo: %+v", ref)
	}
}

// A Deployment the API server refuses (here a ValidatingAdmissionPolicy capping replicas, as a
// platform team might) is reported on the Foo and in one Warning Event, retried with backoff
// rather than in a loop, and fixed by fixing the Foo; the refusal of one Foo holds up no other.
func TestRefusedDeploymentIsReportedOnTheFoo(t *testing.T) {
	ensureCRD(t)
	ns := newNamespace(t)
	mustKubectl(t, "label", "namespace", ns, "e2e-replica-cap="+ns)
	policy := `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: ` + ns + `}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}
  validations:
  - expression: "!has(object.spec.replicas) || object.spec.replicas <= 5"
    # Worded differently on every request, as some webhooks are: the Foo must not rewrite its
    # status on every attempt (each write would bring the key back at once, past the backoff).
    messageExpression: "'at most 5 replicas per Deployment in this namespace (uid ' + object.metadata.uid + ')'"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: ` + ns + `}
spec:
  policyName: ` + ns + `
  validationActions: [Deny]
  matchResources:
    namespaceSelector: {matchLabels: {e2e-replica-cap: ` + ns + `}}
`
	if out, err := kubectlApply(policy); err != nil {
		t.Fatalf("applying the policy: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		_, _ = kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", ns, "--ignore-not-found")
	})
	// A policy takes effect a moment after it is created: wait until it refuses a dry run.
	probe := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"probe","namespace":"` + ns + `"},
"spec":{"replicas":6,"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"c"}]}}}}`
	eventually(t, nil, 30*time.Second, "the policy to be in force", func() (bool, string) {
		out, err := kubectlApply(probe, "--dry-run=server")
		return err != nil && strings.Contains(out, "at most 5 replicas"), out
	})

	p := startController(t, "--namespace="+ns)
	mark, start := auditMark(t), time.Now()
	createFoo(t, newFoo(ns, "big", "big", 9))
	createFoo(t, newFoo(ns, "small", "small", 2))
	cond := waitForReadyReason(t, p, ns, "big", metav1.ConditionFalse, samplev1.ReasonDeploymentRejected)
	if !strings.Contains(cond.Message, "refused creating Deployment big") || !strings.Contains(cond.Message, "at most 5 replicas") {
		t.Errorf("Ready message %q does not give the API server's answer", cond.Message)
	}
	waitForFooConverged(t, p, ns, "small", 60*time.Second)
	eventually(t, p, 10*time.Second, "a Warning event", func() (bool, string) {
		out, _ := kubectl("get", "events", "-n", ns, "--field-selector", "type=Warning,reason=DeploymentRejected")
		return strings.Contains(out, "at most 5 replicas"), out
	})

	// Backoff, not a hot loop: 5 ms doubling gives about a dozen attempts in the first 20 s.
	time.Sleep(time.Until(start.Add(20 * time.Second)))
	creates, statusWrites := 0, 0
	for _, e := range controllerRequestsSince(t, mark, ns) {
		if e.Verb == "create" && e.ObjectRef.Resource == "deployments" && e.ObjectRef.Name == "big" {
			creates++
		}
		if e.Verb == "update" && e.ObjectRef.Resource == "foos" && e.ObjectRef.Subresource == "status" && e.ObjectRef.Name == "big" {
			statusWrites++
		}
	}
	if creates < 2 || creates > 20 {
		t.Errorf("the controller tried to create the refused Deployment %d times in 20 s, want a few retries with backoff", creates)
	}
	if statusWrites < 1 || statusWrites > 2 {
		t.Errorf("the controller wrote Foo big's status %d times in 20 s, want once (twice at most, after a conflict)", statusWrites)
	}
	if _, err := getDeployment(ns, "big"); !isNotFound(err) {
		t.Errorf("Deployment big: %v, want NotFound", err)
	}

	// Fixing the Foo fixes it at once, without waiting out the backoff.
	mustKubectl(t, "patch", "foo", "big", "-n", ns, "--type=merge", "-p", `{"spec":{"replicas":4}}`)
	waitForFooConverged(t, p, ns, "big", 60*time.Second)

	// An update the policy refuses: the Deployment keeps its 4 replicas, the Foo says why and
	// still reports what is available.
	mustKubectl(t, "scale", "foo/big", "-n", ns, "--replicas=8")
	cond = waitForReadyReason(t, p, ns, "big", metav1.ConditionFalse, samplev1.ReasonDeploymentRejected)
	if !strings.Contains(cond.Message, "refused updating Deployment big") {
		t.Errorf("Ready message %q, want the refused update", cond.Message)
	}
	if foo := getFoo(t, ns, "big"); foo.Status.AvailableReplicas != 4 || foo.Status.ObservedGeneration != foo.Generation {
		t.Errorf("status = %+v, want 4 available at generation %d", foo.Status, foo.Generation)
	}
	if d, err := getDeployment(ns, "big"); err != nil || *d.Spec.Replicas != 4 {
		t.Errorf("Deployment big: %v, err %v; want it unchanged at 4 replicas", d, err)
	}
	mustKubectl(t, "scale", "foo/big", "-n", ns, "--replicas=3")
	waitForFooConverged(t, p, ns, "big", 60*time.Second)
}

// Deleting a Foo deletes its Deployment through the garbage collector.
func TestFooDeletionGarbageCollectsDeployment(t *testing.T) {
	ensureCRD(t)
	ns := newNamespace(t)
	p := startController(t, "--namespace="+ns)
	// Background (the default): the Foo goes at once, its Deployment after it. Foreground: the
	// Foo stays, with a finalizer, until the collector has deleted the Deployment, and the
	// controller must not recreate it meanwhile.
	for _, policy := range []metav1.DeletionPropagation{metav1.DeletePropagationBackground, metav1.DeletePropagationForeground} {
		name := "doomed-" + strings.ToLower(string(policy))
		createFoo(t, newFoo(ns, name, name, 1))
		waitForFooConverged(t, p, ns, name, 60*time.Second)
		mark := auditMark(t)
		if err := sampleClient.SamplecontrollerV1().Foos(ns).Delete(context.Background(), name,
			metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil {
			t.Fatal(err)
		}
		// kube-controller-manager's garbage collector finds a new CRD's resources on a 30s cycle, so
		// right after the CRD was (re)installed this can take about 40s; usually it is sub-second.
		eventually(t, p, 90*time.Second, string(policy)+" deletion of the Foo and its Deployment", func() (bool, string) {
			_, errD := getDeployment(ns, name)
			_, errF := sampleClient.SamplecontrollerV1().Foos(ns).Get(context.Background(), name, metav1.GetOptions{})
			return isNotFound(errD) && isNotFound(errF), fmt.Sprintf("Deployment: %v; Foo: %v", errD, errF)
		})
		for _, e := range writesOf(controllerRequestsSince(t, mark, ns)) {
			if e.ObjectRef.Name == name && e.ObjectRef.Resource == "deployments" {
				t.Errorf("%s deletion: the controller wrote the Deployment while the Foo was being deleted: %v", policy, e)
			}
		}
	}
}

// Killed with SIGKILL in the middle of creating Deployments and started again, the controller
// converges with exactly one owned Deployment per Foo: nothing duplicated, nothing orphaned.
func TestKilledAndRestartedConverges(t *testing.T) {
	ensureCRD(t)
	ns := newNamespace(t)
	const n = 40
	for i := range n {
		createFoo(t, newFoo(ns, fooName(i), fooName(i), 1))
	}
	// Slow enough (QPS 10) that the kill lands mid-work.
	p := startController(t, "--namespace="+ns, "--kube-api-qps=10", "--kube-api-burst=1")
	eventually(t, p, 60*time.Second, "the first Deployments", func() (bool, string) {
		list, err := kubeClient.AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(list.Items) >= 5, fmt.Sprint(len(list.Items))
	})
	p.Kill()
	list, _ := kubeClient.AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{})
	if len(list.Items) == n {
		t.Fatalf("all %d Deployments existed before the kill; the test did not kill mid-work", n)
	}
	t.Logf("killed with %d of %d Deployments created", len(list.Items), n)

	p2 := startController(t, "--namespace="+ns)
	for i := range n {
		waitForFooConverged(t, p2, ns, fooName(i), 60*time.Second)
	}
	list, err := kubeClient.AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	uids := map[types.UID]string{}
	for i := range n {
		uids[getFoo(t, ns, fooName(i)).UID] = fooName(i)
	}
	if len(list.Items) != n {
		t.Errorf("%d Deployments, want exactly %d", len(list.Items), n)
	}
	for _, d := range list.Items {
		ref := metav1.GetControllerOf(&d)
		if ref == nil || uids[ref.UID] != d.Name {
			t.Errorf("Deployment %s is not controlled by its Foo: %+v", d.Name, ref)
		}
	}
}

func fooName(i int) string { return fmt.Sprintf("foo-%03d", i) }

// Once everything is converged, the controller makes no writes at all, across resyncs.
func TestConvergedClusterCostsNoWrites(t *testing.T) {
	ensureCRD(t)
	ns := newNamespace(t)
	p := startController(t, "--namespace="+ns, "--resync-period=4s", "-v=4")
	for i := range 5 {
		createFoo(t, newFoo(ns, fooName(i), fooName(i), int32(i%3)))
	}
	for i := range 5 {
		waitForFooConverged(t, p, ns, fooName(i), 60*time.Second)
	}
	time.Sleep(time.Second) // let the last status write's watch event come back
	mark := auditMark(t)
	resyncsBefore := strings.Count(p.Log(), `event="resync"`)
	time.Sleep(10 * time.Second) // two and a half resync periods
	reqs := controllerRequestsSince(t, mark, ns)
	if w := writesOf(reqs); len(w) > 0 {
		t.Errorf("a converged cluster got %d writes from the controller across two resyncs, want 0: %v", len(w), w)
	}
	if len(reqs) > 0 {
		t.Errorf("the controller made %d requests at rest, want none (it reads from its cache): %v", len(reqs), reqs)
	}
	if resyncs := strings.Count(p.Log(), `event="resync"`) - resyncsBefore; resyncs < 10 {
		t.Errorf("only %d resync syncs happened in the window, want at least 10 (2 periods x 5 Foos): the test measured nothing", resyncs)
	}
}
