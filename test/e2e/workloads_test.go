//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"example.com/sample-controller/internal/promtext"
	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
)

// The pods a Foo runs comply with the restricted Pod Security Standard: a Foo in a namespace
// that enforces it becomes Ready (Pod Security admission would refuse non-compliant pods, and the
// Foo would never have any).
func TestFooInARestrictedNamespaceBecomesReady(t *testing.T) {
	ensureCRD(t)
	ns := newNamespace(t)
	mustKubectl(t, "label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/enforce-version=latest")
	p := startController(t, "--namespace="+ns)
	createFoo(t, newFoo(ns, "restricted", "restricted", 2))
	waitForFooConverged(t, p, ns, "restricted", 90*time.Second)
	pods, err := kubeClient.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil || len(pods.Items) != 2 {
		t.Fatalf("pods in %s: %d, %v; want the Foo's 2", ns, len(pods.Items), err)
	}
}

// Pods that cannot be created (here a ResourceQuota of 0 pods) are reported on the Foo as soon as
// the Deployment says so, not after its ten-minute progress deadline; lifting the quota heals it.
func TestPodsThatCannotBeCreatedAreReported(t *testing.T) {
	ensureCRD(t)
	ns := newNamespace(t)
	if _, err := kubeClient.CoreV1().ResourceQuotas(ns).Create(context.Background(), &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "no-pods"},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := startController(t, "--namespace="+ns)
	createFoo(t, newFoo(ns, "quota", "quota", 1))
	cond := waitForReadyReasonWithin(t, p, ns, "quota", metav1.ConditionFalse, samplev1.ReasonDeploymentReplicaFailure, 60*time.Second)
	if !strings.Contains(cond.Message, "exceeded quota") || !strings.Contains(cond.Message, "no-pods") {
		t.Errorf("Ready message %q does not carry the Deployment's explanation (the quota)", cond.Message)
	}
	eventually(t, p, 15*time.Second, "a Warning event with the reason", func() (bool, string) {
		out, _ := kubectl("get", "events", "-n", ns, "--field-selector", "type=Warning,reason="+samplev1.ReasonDeploymentReplicaFailure)
		return strings.Contains(out, "exceeded quota"), out
	})

	if err := kubeClient.CoreV1().ResourceQuotas(ns).Delete(context.Background(), "no-pods", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForFooConverged(t, p, ns, "quota", 3*time.Minute)
}

// A Deployment the Foo owns but whose (immutable) selector is not the Foo's is never written
// (every update would be refused with 422), and the Foo says what to do; deleting the Deployment
// as it says brings the right one back.
func TestSelectorMismatchIsReportedNotRepaired(t *testing.T) {
	ensureCRD(t)
	ns := newNamespace(t)
	foo := createFoo(t, newFoo(ns, "sel", "sel", 1))
	labels := map[string]string{"app": "from-an-older-version"}
	if _, err := kubeClient.AppsV1().Deployments(ns).Create(context.Background(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "sel", OwnerReferences: []metav1.OwnerReference{{
			APIVersion: samplev1.SchemeGroupVersion.String(), Kind: "Foo", Name: foo.Name, UID: foo.UID, Controller: ptr.To(true)}}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "c"}}},
			},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	mark := auditMark(t)
	p := startController(t, "--namespace="+ns)
	cond := waitForReadyReason(t, p, ns, "sel", metav1.ConditionFalse, samplev1.ReasonDeploymentSelectorMismatch)
	if !strings.Contains(cond.Message, "app=from-an-older-version") || !strings.Contains(cond.Message, "delete the Deployment") {
		t.Errorf("Ready message %q does not name the selector and what to do", cond.Message)
	}
	for _, e := range writesOf(controllerRequestsSince(t, mark, ns)) {
		// A create refused with 409 is how the controller finds the name taken by a Deployment
		// its informer does not show (this one lacks the controller's label), and how its
		// backing-off re-checks see whether it is gone yet; it changes nothing.
		refusedCreate := e.Verb == "create" && e.ResponseStatus != nil && e.ResponseStatus.Code == http.StatusConflict
		if e.ObjectRef.Resource == "deployments" && !refusedCreate {
			t.Errorf("the controller wrote the Deployment it cannot fix: %s", e)
		}
	}

	if err := kubeClient.AppsV1().Deployments(ns).Delete(context.Background(), "sel", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// No event says the name is free (the Deployment was not in the informer's cache); the
	// re-check, 5s then 10s, 20s... after the report, finds it so, well before a resync would.
	waitForFooConverged(t, p, ns, "sel", 90*time.Second)
	d, err := getDeployment(ns, "sel")
	if err != nil || d.Spec.Selector.MatchLabels["samplecontroller.example.com/foo"] != "sel" {
		t.Errorf("the re-created Deployment: %v, %v; want the Foo's selector", d, err)
	}
}

// Foos deleted in background mode (the default): the garbage collector deletes each Deployment
// right after its Foo, and the Deployment's delete event can reach the controller before the
// Foo's (two watches, no order between them), while the cache still holds the Foo. The controller
// must not re-create any of those Deployments. The controller is paused (SIGSTOP) across the
// deletion so that both watches deliver their events at once on resume, the case where the
// Deployment informer is most likely to run ahead of the Foo informer.
func TestBackgroundDeletionRecreatesNoDeployment(t *testing.T) {
	ensureCRD(t)
	ns := newNamespace(t)
	const n = 300
	// Plain HTTP, no token: the insecure mode for local debugging still serves the same metrics.
	p := startController(t, "--namespace="+ns, "--metrics-bind-address=127.0.0.1:0", "--metrics-secure=false")
	metricsURL := "http://" + servedAddress(t, p, "metrics") + "/metrics"
	createFoosInParallel(t, ns, n)
	eventually(t, p, 3*time.Minute, fmt.Sprintf("all %d Foos to be Ready", n), func() (bool, string) {
		foos, err := sampleClient.SamplecontrollerV1().Foos(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for i := range foos.Items {
			if ok, _ := fooConverged(&foos.Items[i]); ok {
				ready++
			}
		}
		return ready == n, fmt.Sprintf("%d of %d ready", ready, n)
	})

	mark := auditMark(t)
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			_ = p.Signal(syscall.SIGCONT)
		}
	}()
	if err := sampleClient.SamplecontrollerV1().Foos(ns).DeleteCollection(context.Background(),
		metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	noDeployments := func() (bool, string) {
		list, err := kubeClient.AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(list.Items) == 0, fmt.Sprintf("%d Deployments left", len(list.Items))
	}
	eventually(t, nil, 3*time.Minute, "the garbage collector to delete every Deployment", noDeployments)
	if err := p.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false

	// Done when the controller has worked through every event: its queue is empty and nothing
	// is in progress, and the Deployments are all gone.
	eventually(t, p, 2*time.Minute, "the controller's queue to drain with no Deployment left", func() (bool, string) {
		_, text := httpGet(metricsURL)
		samples := promtext.Parse(text)
		depth, ok1 := samples.Sum(`workqueue_depth{name="foos"}`)
		busy, ok2 := samples.Sum(`workqueue_unfinished_work_seconds{name="foos"}`)
		gone, state := noDeployments()
		return ok1 && ok2 && depth == 0 && busy == 0 && gone, fmt.Sprintf("depth %v, unfinished %v, %s", depth, busy, state)
	})
	var creates []string
	for _, e := range controllerRequestsSince(t, mark, ns) {
		if e.Verb == "create" && e.ObjectRef.Resource == "deployments" {
			creates = append(creates, e.String())
		}
	}
	if len(creates) > 0 {
		t.Errorf("the controller re-created %d Deployments of deleted Foos: %v", len(creates), creates)
	}
}

func createFoosInParallel(t *testing.T, ns string, n int) {
	t.Helper()
	inParallel(t, "creating Foos", n, func(i int) error {
		_, err := sampleClient.SamplecontrollerV1().Foos(ns).Create(context.Background(),
			newFoo(ns, fooName(i), fooName(i), 0), metav1.CreateOptions{})
		return err
	})
}

// inParallel calls do(0) ... do(n-1), 16 at a time, and fails the test (saying what it was
// doing) on the first error.
func inParallel(t *testing.T, what string, n int, do func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				if err := do(i); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("%s: %v", what, err)
	}
}
