//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"example.com/sample-controller/internal/auditlog"
	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
)

// The faults other actors bring: a controller killed in the middle of its writes, clients that
// edit and delete what it owns, one that fights it over a field, a namespace deleted under it, a
// Foo re-created while the garbage collector still removes its predecessor's Deployment.

// ---- end state ----

// actorsWant says what a converged Foo's Ready condition must be in a scenario: its status,
// and one of the reasons.
type actorsWant struct {
	status  metav1.ConditionStatus
	reasons []string
}

func (w actorsWant) matches(c *metav1.Condition) bool {
	return c != nil && c.Status == w.status && slices.Contains(w.reasons, c.Reason)
}

// actorsConverged checks, in ns, that every Foo's status is current (observedGeneration, and
// the Ready condition wanted), that each has exactly one Deployment, controlled by its UID and
// with the replicas it asks for, and that no Deployment exists for a Foo that does not.
func actorsConverged(ns string, want actorsWant) (bool, string) {
	ctx := context.Background()
	foos, err := sampleClient.SamplecontrollerV1().Foos(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err.Error()
	}
	deployments, err := kubeClient.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err.Error()
	}
	byName := map[string]*appsv1.Deployment{}
	for i := range deployments.Items {
		byName[deployments.Items[i].Name] = &deployments.Items[i]
	}
	var problems []string
	wanted := map[string]bool{}
	for _, foo := range foos.Items {
		wanted[foo.Spec.Deployment.Name] = true
		ready := meta.FindStatusCondition(foo.Status.Conditions, samplev1.ConditionReady)
		switch {
		case foo.Status.ObservedGeneration != foo.Generation:
			problems = append(problems, fmt.Sprintf("%s: observedGeneration %d of %d", foo.Name, foo.Status.ObservedGeneration, foo.Generation))
		case !want.matches(ready) || ready.ObservedGeneration != foo.Generation:
			problems = append(problems, fmt.Sprintf("%s: Ready %+v", foo.Name, ready))
		}
		d := byName[foo.Spec.Deployment.Name]
		switch {
		case d == nil:
			problems = append(problems, foo.Name+": no Deployment")
		case !metav1.IsControlledBy(d, &foo):
			problems = append(problems, fmt.Sprintf("%s: Deployment controlled by %+v", foo.Name, metav1.GetControllerOf(d)))
		case *d.Spec.Replicas != *foo.Spec.Replicas:
			problems = append(problems, fmt.Sprintf("%s: Deployment replicas %d, want %d", foo.Name, *d.Spec.Replicas, *foo.Spec.Replicas))
		case d.Spec.Template.Spec.Containers[0].Image != "nginxinc/nginx-unprivileged:1.27":
			problems = append(problems, fmt.Sprintf("%s: Deployment image %s", foo.Name, d.Spec.Template.Spec.Containers[0].Image))
		}
	}
	for name := range byName {
		if !wanted[name] {
			problems = append(problems, "Deployment "+name+" has no Foo")
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return false, fmt.Sprintf("%d problems, first: %s", len(problems), strings.Join(problems[:min(5, len(problems))], "; "))
	}
	return true, fmt.Sprintf("%d Foos", len(foos.Items))
}

// actorsStillRunning fails the test if the controller process exited (it is never restarted by
// these scenarios unless the scenario kills it).
func actorsStillRunning(t *testing.T, p *controllerProcess) {
	t.Helper()
	select {
	case <-p.Exited():
		t.Fatalf("the controller exited: %v", p.Wait())
	default:
	}
}

// actorsCount counts the controller's requests by "verb resource[/sub] -> code".
func actorsCount(events []auditlog.Event) map[string]int {
	out := map[string]int{}
	for _, e := range events {
		if e.ObjectRef == nil || e.ResponseStatus == nil {
			continue
		}
		k := e.Verb + " " + e.ObjectRef.Resource
		if e.ObjectRef.Subresource != "" {
			k += "/" + e.ObjectRef.Subresource
		}
		out[fmt.Sprintf("%s -> %d", k, e.ResponseStatus.Code)]++
	}
	return out
}

func actorsSum(counts map[string]int, prefix string) int {
	n := 0
	for k, v := range counts {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

// actorsPodQuota makes the namespace refuse every Pod: the Foos' Deployments and ReplicaSets
// are real, but no Pod is created, so hundreds of Foos cost the local cluster little. Their
// Deployments then report ReplicaFailure (and the Foos DeploymentReplicaFailure) once scaled up.
func actorsPodQuota(t *testing.T, ns string) {
	t.Helper()
	if _, err := kubeClient.CoreV1().ResourceQuotas(ns).Create(context.Background(), &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "no-pods"},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// actorsScaleAll sets every Foo's spec.replicas, 16 at a time.
func actorsScaleAll(t *testing.T, ns string, n int, replicas int32) {
	t.Helper()
	inParallel(t, "scaling Foos", n, func(i int) error {
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			foo, err := sampleClient.SamplecontrollerV1().Foos(ns).Get(context.Background(), fooName(i), metav1.GetOptions{})
			if err != nil {
				return err
			}
			foo.Spec.Replicas = ptr.To(replicas)
			_, err = sampleClient.SamplecontrollerV1().Foos(ns).Update(context.Background(), foo, metav1.UpdateOptions{})
			return err
		})
	})
}

// ---- the scenarios ----

// SIGKILL while the controller updates 500 Deployments and writes 500 statuses (every Foo
// scaled at once), then a restart: every Foo converges, with one Deployment each, and the
// writes stay close to one Deployment update and one or two status writes per Foo.
func TestFaultKilledDuringUpdatesAndStatusWrites(t *testing.T) {
	ensureCRD(t)
	ns := newNamespace(t)
	actorsPodQuota(t, ns)
	const n = 500
	p := startController(t, "--namespace="+ns)
	createFoosInParallel(t, ns, n)
	eventually(t, p, 3*time.Minute, fmt.Sprintf("%d Foos at replicas 0", n), func() (bool, string) {
		return actorsConverged(ns, actorsWant{metav1.ConditionTrue, []string{samplev1.ReasonDeploymentAvailable}})
	})
	p.stop()

	// Slow (QPS 20) so that the kill lands with hundreds of updates still to make.
	slow := startController(t, "--namespace="+ns, "--kube-api-qps=20", "--kube-api-burst=1")
	eventually(t, slow, 60*time.Second, "the caches", func() (bool, string) {
		return strings.Contains(slow.Log(), "Started workers"), slow.LogTail(2)
	})
	mark := auditMark(t)
	actorsScaleAll(t, ns, n, 1)
	eventually(t, slow, 60*time.Second, "the first Deployment updates and status writes", func() (bool, string) {
		c := actorsCount(controllerRequestsSince(t, mark, ns))
		return actorsSum(c, "update deployments ") >= 20 && actorsSum(c, "update foos/status ") >= 20, fmt.Sprint(c)
	})
	slow.Kill()
	before := actorsCount(controllerRequestsSince(t, mark, ns))
	updated := actorsSum(before, "update deployments -> 200")
	if updated >= n {
		t.Fatalf("all %d Deployments were updated before the kill; the test did not kill mid-work", n)
	}
	t.Logf("killed after %d Deployment updates and %d status writes", updated, actorsSum(before, "update foos/status -> 200"))

	restarted := time.Now()
	p2 := startController(t, "--namespace="+ns)
	// Not Ready: the quota refuses the pods. Whether the Foo already says ReplicaFailure depends
	// on when kube-controller-manager's ReplicaSet controller (20 requests a second) got to it.
	notReady := actorsWant{metav1.ConditionFalse, []string{samplev1.ReasonDeploymentProgressing, samplev1.ReasonDeploymentReplicaFailure}}
	eventually(t, p2, 3*time.Minute, fmt.Sprintf("%d Foos scaled to 1 (pods refused by the quota)", n), func() (bool, string) {
		return actorsConverged(ns, notReady)
	})
	t.Logf("converged %s after the restart", time.Since(restarted).Round(100*time.Millisecond))
	actorsStillRunning(t, p2)

	counts := actorsCount(controllerRequestsSince(t, mark, ns))
	t.Logf("the controller's writes, both processes: %v", counts)
	// One update per Deployment, plus the few that both processes made or retried. An update
	// in flight when the first process was killed is audited with 504 (its client went away),
	// yet it may have been stored: the restarted process then finds that Deployment as wanted
	// and leaves it alone. Those count towards "every Deployment updated", not as successes.
	got, cut := actorsSum(counts, "update deployments -> 200"), actorsSum(counts, "update deployments -> 504")
	if got+cut < n || got > n+n/20 {
		t.Errorf("%d successful Deployment updates (and %d cut off by the kill) for %d Foos, want between %d and %d", got, cut, n, n, n+n/20)
	}
	if got := actorsSum(counts, "create deployments"); got != 0 {
		t.Errorf("%d Deployment creates, want none: every Deployment existed", got)
	}
	// Status: the new generation, then ReplicaFailure when the ReplicaSet reports it: at most
	// about three writes per Foo, conflicts included.
	if got := actorsSum(counts, "update foos/status"); got > 3*n {
		t.Errorf("%d status writes for %d Foos, want at most %d", got, n, 3*n)
	}
}

// Another client edits the Foos' Deployments at random for a minute (replicas, image, labels,
// annotations) and deletes some, while a second writer fights the controller over one
// Deployment's replicas every second. The controller puts everything back, makes a bounded
// number of writes per edit, does not spin on the fought Deployment, and Foos created during
// the fight converge as fast as before it.
func TestFaultEditStormAndFight(t *testing.T) {
	ensureCRD(t)
	ns := newNamespace(t)
	actorsPodQuota(t, ns) // replicas edits would otherwise start pods
	const n = 50
	p := startController(t, "--namespace="+ns)
	createFoosInParallel(t, ns, n)
	want := actorsWant{metav1.ConditionTrue, []string{samplev1.ReasonDeploymentAvailable}}
	eventually(t, p, 2*time.Minute, "the Foos", func() (bool, string) { return actorsConverged(ns, want) })

	// Baseline: how long a new Foo takes, before the storm.
	baseline := actorsTimeToConverge(t, p, ns, "before", 5)

	mark := auditMark(t)
	ctx, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	var wg sync.WaitGroup
	var stormEdits, stormDeletes, fightWrites int
	wg.Go(func() { stormEdits, stormDeletes = actorsEditStorm(ctx, ns, n, 1000) })
	const fought = "foo-000"
	wg.Go(func() { fightWrites = actorsFight(ctx, ns, fought) })
	time.Sleep(20 * time.Second) // the storm and the fight are under way
	during := actorsTimeToConverge(t, p, ns, "during", 5)
	wg.Wait()
	t.Logf("the storm made %d edits and %d deletes; the fight %d writes to %s; a new Foo converged in %s before, %s during",
		stormEdits, stormDeletes, fightWrites, fought, baseline.Round(10*time.Millisecond), during.Round(10*time.Millisecond))

	eventually(t, p, 2*time.Minute, "every Deployment put back", func() (bool, string) { return actorsConverged(ns, want) })
	actorsStillRunning(t, p)
	// A hot loop or a starved queue would take minutes; the margin is for a loaded machine.
	if during > 4*baseline+10*time.Second {
		t.Errorf("a new Foo took %s to converge during the storm and fight, %s before (bound: 4x + 10s): the others were slowed", during, baseline)
	}

	events := controllerRequestsSince(t, mark, ns)
	counts := actorsCount(events)
	t.Logf("the controller's writes: %v", counts)
	// Each edit or delete changes at most one managed thing, put back with one write (an update,
	// or a create after a delete), plus a retry when the write met a newer version (409).
	deploymentWrites := actorsSum(counts, "update deployments") + actorsSum(counts, "create deployments")
	if bound := 2 * (stormEdits + stormDeletes + fightWrites + 10); deploymentWrites > bound {
		t.Errorf("%d Deployment writes for %d edits, %d deletes and %d fight writes, want at most %d", deploymentWrites, stormEdits, stormDeletes, fightWrites, bound)
	}
	if got := actorsSum(counts, "create deployments -> 201"); got < stormDeletes {
		t.Errorf("%d Deployments re-created after %d deletes", got, stormDeletes)
	}
	// The fight: at most two writes of ours per write of theirs (a revert, and its retry after
	// a conflict), which at one write a second is 120 a minute; never a hot loop.
	var foughtWrites int
	for _, e := range writesOf(events) {
		if e.ObjectRef.Resource == "deployments" && e.ObjectRef.Name == fought {
			foughtWrites++
		}
	}
	t.Logf("the controller wrote %s %d times against %d writes of the other writer", fought, foughtWrites, fightWrites)
	if foughtWrites > 2*fightWrites+4 {
		t.Errorf("the controller wrote the fought Deployment %d times against %d writes of the other writer, want at most %d", foughtWrites, fightWrites, 2*fightWrites+4)
	}
}

// actorsTimeToConverge creates k new Foos and returns how long until all have converged.
func actorsTimeToConverge(t *testing.T, p *controllerProcess, ns, label string, k int) time.Duration {
	t.Helper()
	start := time.Now()
	for i := range k {
		createFoo(t, newFoo(ns, fmt.Sprintf("%s-%d", label, i), fmt.Sprintf("%s-%d", label, i), 0))
	}
	for i := range k {
		waitForFooConverged(t, p, ns, fmt.Sprintf("%s-%d", label, i), 60*time.Second)
	}
	return time.Since(start)
}

// actorsEditStorm makes about total random edits and deletes of the Foos' Deployments, spread
// over ctx's lifetime by 8 writers, and returns how many edits and deletes the API server
// accepted.
func actorsEditStorm(ctx context.Context, ns string, n, total int) (edits, deletes int) {
	deadline, _ := ctx.Deadline()
	ticks := make(chan int)
	go func() {
		defer close(ticks)
		ticker := time.NewTicker(time.Until(deadline) / time.Duration(total))
		defer ticker.Stop()
		for i := range total {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			select {
			case ticks <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(1, uint64(w)))
			for range ticks {
				edited, deleted := actorsEditOne(ctx, ns, fooName(1+rng.IntN(n-1)), rng) // foo-000 is the fight's
				mu.Lock()
				if edited {
					edits++
				}
				if deleted {
					deletes++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return edits, deletes
}

// actorsEditOne deletes the named Deployment (one time in 20) or makes one random edit to it.
func actorsEditOne(ctx context.Context, ns, name string, rng *rand.Rand) (edited, deleted bool) {
	deployments := kubeClient.AppsV1().Deployments(ns)
	if rng.IntN(20) == 0 {
		return false, deployments.Delete(ctx, name, metav1.DeleteOptions{}) == nil
	}
	d, err := deployments.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, false
	}
	switch rng.IntN(4) {
	case 0:
		d.Spec.Replicas = ptr.To(int32(1 + rng.IntN(3)))
	case 1:
		d.Spec.Template.Spec.Containers[0].Image = fmt.Sprintf("example.com/other:%d", rng.IntN(100))
	case 2:
		d.Labels["app.kubernetes.io/name"] = fmt.Sprintf("other-%d", rng.IntN(100))
	case 3:
		if d.Annotations == nil {
			d.Annotations = map[string]string{}
		}
		d.Annotations["example.com/note"] = fmt.Sprint(rng.IntN(1000)) // not managed: left alone
	}
	_, err = deployments.Update(ctx, d, metav1.UpdateOptions{})
	return err == nil, false
}

// actorsFight sets the Deployment's replicas to 3 every second until ctx ends, and returns how
// many of its writes the API server accepted.
func actorsFight(ctx context.Context, ns, name string) int {
	writes := 0
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return writes
		case <-ticker.C:
		}
		_, err := kubeClient.AppsV1().Deployments(ns).Patch(ctx, name, types.MergePatchType, []byte(`{"spec":{"replicas":3}}`), metav1.PatchOptions{})
		if err == nil {
			writes++
		}
	}
}

// A namespace deleted with converged Foos in it: the controller re-creates nothing, writes
// nothing more than the odd status, and keeps running; a Foo re-created with the same name
// while the old one's Deployment is still being deleted ends with a Deployment of its own.
func TestFaultNamespaceDeletedAndFooRecreated(t *testing.T) {
	ensureCRD(t)
	doomed := newNamespace(t)
	other := newNamespace(t)
	p := startController(t) // all namespaces
	for i := range 20 {
		createFoo(t, newFoo(doomed, fooName(i), fooName(i), 1))
	}
	want := actorsWant{metav1.ConditionTrue, []string{samplev1.ReasonDeploymentAvailable}}
	eventually(t, p, 2*time.Minute, "the doomed namespace's Foos", func() (bool, string) { return actorsConverged(doomed, want) })

	// The namespace goes; the namespace controller deletes its Foos and Deployments in no order.
	mark := auditMark(t)
	if err := kubeClient.CoreV1().Namespaces().Delete(context.Background(), doomed, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, p, 3*time.Minute, "the namespace to be gone", func() (bool, string) {
		_, err := kubeClient.CoreV1().Namespaces().Get(context.Background(), doomed, metav1.GetOptions{})
		return isNotFound(err), fmt.Sprint(err)
	})
	counts := actorsCount(controllerRequestsSince(t, mark, doomed))
	t.Logf("the controller's requests in the deleted namespace: %v", counts)
	if got := actorsSum(counts, "create deployments -> 201"); got != 0 {
		t.Errorf("%d Deployments created in a namespace being deleted", got)
	}
	// What it may write: a Foo's status, as its Deployment's pods go (availability drops), and,
	// when the namespace controller deletes a Deployment before its Foo, one create the API
	// server refuses because the namespace is terminating, never retried.
	if got := actorsSum(counts, "create deployments -> 403"); got > 20 {
		t.Errorf("%d creates refused in a terminating namespace (20 Foos), want at most one each: such a refusal is not retried", got)
	}
	if got := len(writesOf(controllerRequestsSince(t, mark, doomed))); got > 60 {
		t.Errorf("%d writes to a namespace being deleted (20 Foos), want at most three each", got)
	}

	// Same name, new Foo, while the old Deployment lingers (a finalizer holds it, as a slow
	// garbage collection or another controller's cleanup would).
	old := createFoo(t, newFoo(other, "again", "again", 1))
	waitForFooConverged(t, p, other, "again", 60*time.Second)
	if _, err := kubeClient.AppsV1().Deployments(other).Patch(context.Background(), "again", types.MergePatchType,
		[]byte(`{"metadata":{"finalizers":["example.com/hold"]}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := sampleClient.SamplecontrollerV1().Foos(other).Delete(context.Background(), "again", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, p, 60*time.Second, "the old Deployment to be terminating", func() (bool, string) {
		d, err := getDeployment(other, "again")
		return err == nil && d.DeletionTimestamp != nil, fmt.Sprint(err)
	})
	renewed := createFoo(t, newFoo(other, "again", "again", 1))
	if renewed.UID == old.UID {
		t.Fatal("the re-created Foo has the old UID")
	}
	// While the old one holds the name, the new Foo says so.
	waitForReadyReason(t, p, other, "again", metav1.ConditionFalse, samplev1.ReasonDeploymentNotOwned)
	if _, err := kubeClient.AppsV1().Deployments(other).Patch(context.Background(), "again", types.MergePatchType,
		[]byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForFooConverged(t, p, other, "again", 60*time.Second)
	d, err := getDeployment(other, "again")
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(d); ref == nil || ref.UID != renewed.UID {
		t.Errorf("the Deployment is controlled by %+v, want the new Foo %s", ref, renewed.UID)
	}
	actorsStillRunning(t, p)
}
