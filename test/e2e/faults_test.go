//go:build e2e

package e2e

// Faults of the control plane while the controller works: the API server killed (SIGKILL) or
// stopped (SIGTERM) and started again, etcd killed and started again, and the informers' watches
// expiring (410 Gone) so that they must list again. hack/local-cluster.sh stops, kills and starts
// the single components of the local cluster (see its header).
//
// Every scenario ends with faultCheckEndState: every Foo converged, one Deployment per Foo and
// none for a Foo that is gone, the controller still the process that started (it must ride out
// the fault, not exit), and its writes, counted from the API server's audit log, within the
// bounds of correct behaviour. The figures are logged (go test -v): the time from the API
// server's return to full convergence, and the controller's requests by verb, resource and code.

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"example.com/sample-controller/internal/auditlog"
	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
)

// faultFoos is how many Foos the API server and etcd scenarios converge, with no replica: a
// Deployment and an empty ReplicaSet each, and a Foo Ready as soon as the controller has created
// its Deployment, so that the time to converge is the controller's. A Foo with a replica (a pod
// on a kwok node; a node takes 110) is Ready only once kube-controller-manager has reported the
// pod available in the Deployment's status, and at its default 20 requests/s it took 70-90 s
// here to work through 500 new Deployments twice (ReplicaSet, then availability): with 50 such
// Foos among the 500, that was most of the time to converge after the fault, whatever the
// controller did. The smaller waves (the graceful restart's, and TestFaultWatchExpiry) have
// Foos with pods, gained and lost.
const faultFoos = 500

// faultDowntime is how long a killed component stays down before it is started again: the
// fault's shape, not a wait for anything.
const faultDowntime = 5 * time.Second

// faultStopGrace is how long a SIGTERMed kube-apiserver gets before SIGKILL. It stops listening
// and drains its short requests within a second or so, but then waits up to its request timeout
// (60 s) for open watches to end; a kubelet would give it its pod's grace period.
const faultStopGrace = "5"

var faultComponents = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok-controller"}

// faultReplicas: the first withPods Foos of a batch have a replica, the others none.
func faultReplicas(i, withPods int) int32 {
	if i < withPods {
		return 1
	}
	return 0
}

// ---- the local cluster's components ----

// faultCluster runs hack/local-cluster.sh on the test cluster (stop, kill, start, restart,
// compact) with extra environment variables, logs what it said, and returns its output.
func faultCluster(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot, "hack", "local-cluster.sh"), args...)
	cmd.Dir = repoRoot
	cmd.Env = append(append(os.Environ(), "LOCAL_CLUSTER_NAME="+filepath.Base(clusterDir), "LOCAL_CLUSTER_DIR="+clusterDir), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("hack/local-cluster.sh %s (%.1fs): %s", strings.Join(args, " "), time.Since(start).Seconds(), strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("hack/local-cluster.sh %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// faultComponentRunning says whether the process kwokctl's pid file names is alive and is this
// cluster's component.
func faultComponentRunning(component string) bool {
	state := filepath.Join(clusterDir, "kwok", "clusters", filepath.Base(clusterDir))
	pid, err := os.ReadFile(filepath.Join(state, "pids", component+".pid"))
	if err != nil {
		return false
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strings.TrimSpace(string(pid)), "cmdline"))
	return err == nil && strings.HasPrefix(string(cmdline), filepath.Join(state, "bin", component)+"\x00")
}

// faultEnsureComponents reports (with t.Logf before a fault, t.Errorf after one) every
// component that is not running, and starts it again: a scenario needs the whole cluster, and so
// do the tests after it.
func faultEnsureComponents(t *testing.T, report func(format string, args ...any)) {
	t.Helper()
	for _, c := range faultComponents {
		if !faultComponentRunning(c) {
			report("%s of the local cluster is not running; starting it again", c)
			faultCluster(t, nil, "start", c)
		}
	}
}

// faultRestoreOnCleanup starts component again at the end of the test whatever happened (a
// failed test must not leave the cluster without it). start does nothing when it runs.
func faultRestoreOnCleanup(t *testing.T, component string) {
	t.Cleanup(func() {
		if !faultComponentRunning(component) {
			faultCluster(t, nil, "start", component)
		}
	})
}

// faultAPIReady is the API server's /readyz (which includes its etcd check).
func faultAPIReady() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := kubeClient.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Raw()
	return err == nil
}

func faultWaitAPIReady(t *testing.T, timeout time.Duration) time.Time {
	t.Helper()
	faultPoll(t, nil, timeout, 100*time.Millisecond, "the API server's /readyz", func() (bool, string) {
		return faultAPIReady(), "not ready"
	})
	return time.Now()
}

// ---- waiting, at a pace a 2-core machine affords (a LIST of 500 Foos is not free) ----

// faultPoll is eventually with a polling interval, and a line of progress every 15 s.
func faultPoll(t *testing.T, p *controllerProcess, timeout, interval time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	start := time.Now()
	lastReport := start
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %s waiting for %s; last seen: %s", timeout, what, last)
		}
		if p != nil {
			select {
			case <-p.Exited():
				t.Fatalf("controller exited while waiting for %s; last seen: %s", what, last)
			default:
			}
		}
		if time.Since(lastReport) > 15*time.Second {
			t.Logf("still waiting for %s (%.0fs): %s", what, time.Since(start).Seconds(), last)
			lastReport = time.Now()
		}
		time.Sleep(interval)
	}
}

// faultConverged counts the Foos in ns and those converged (fooConverged: the newest
// generation observed, Ready, every replica available), and describes the first few others.
func faultConverged(ns string) (total, converged int, others string, err error) {
	foos, err := sampleClient.SamplecontrollerV1().Foos(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return 0, 0, "", err
	}
	var sample []string
	for i := range foos.Items {
		if ok, state := fooConverged(&foos.Items[i]); ok {
			converged++
		} else if len(sample) < 3 {
			sample = append(sample, foos.Items[i].Name+": "+state)
		}
	}
	return len(foos.Items), converged, strings.Join(sample, "; "), nil
}

// faultWaitConverged waits until ns holds want Foos, all converged, and returns when that was.
func faultWaitConverged(t *testing.T, p *controllerProcess, ns string, want int, timeout time.Duration) time.Time {
	t.Helper()
	faultPoll(t, p, timeout, time.Second, fmt.Sprintf("all %d Foos to converge", want), func() (bool, string) {
		total, converged, others, err := faultConverged(ns)
		if err != nil {
			return false, err.Error()
		}
		return total == want && converged == want, fmt.Sprintf("%d of %d Foos converged (want %d); not: %s", converged, total, want, others)
	})
	return time.Now()
}

func faultDeployments(ns string) (int, error) {
	list, err := kubeClient.AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	return len(list.Items), nil
}

// faultWaitDeployments waits until ns holds at least n Deployments: the point, mid-way
// through convergence, where the scenarios strike.
func faultWaitDeployments(t *testing.T, p *controllerProcess, ns string, n int) {
	t.Helper()
	faultPoll(t, p, 2*time.Minute, 200*time.Millisecond, fmt.Sprintf("%d Deployments", n), func() (bool, string) {
		have, err := faultDeployments(ns)
		if err != nil {
			return false, err.Error()
		}
		return have >= n, fmt.Sprintf("%d Deployments", have)
	})
}

// ---- fixtures ----

// faultCreateFoos creates prefix-000 ... in parallel (16 at once), the first withPods with a
// replica.
func faultCreateFoos(t *testing.T, ns, prefix string, n, withPods int) {
	t.Helper()
	inParallel(t, "creating Foos", n, func(i int) error {
		name := fmt.Sprintf("%s-%03d", prefix, i)
		_, err := sampleClient.SamplecontrollerV1().Foos(ns).Create(context.Background(),
			newFoo(ns, name, name, faultReplicas(i, withPods)), metav1.CreateOptions{})
		return err
	})
}

func faultSetReplicas(t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas)
	if _, err := sampleClient.SamplecontrollerV1().Foos(ns).Patch(context.Background(), name, types.MergePatchType,
		[]byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("setting Foo %s's replicas to %d: %v", name, replicas, err)
	}
}

// ---- the end state, and what it cost ----

// faultExpected is what one phase of a scenario asked of the controller, from which the
// bounds on its writes follow.
type faultExpected struct {
	foos    int      // Foos in the namespace at the end
	creates int      // Deployments the phase needed created (its new Foos)
	updates int      // Deployments whose spec the phase changed (Foos whose replicas it changed)
	touched int      // Foos whose status had to change (new or changed)
	gone    []string // Foos deleted during the phase (Foo name = Deployment name here)
	// exact: no request of the controller can have been lost from the audit log (no SIGKILL
	// of the API server while the controller worked), so that what happened exactly once
	// must be counted exactly once.
	exact bool
}

// The bounds. Correct behaviour is one successful create per new Foo and one update per changed
// Foo; a reconnect may cost a few more (a 409 AlreadyExists from a create the cache had not
// shown yet, a 409 Conflict from writing with a cached resourceVersion that a newer write
// replaced), so the totals may exceed it by 5% and 5 more. A Foo's status goes through at most
// three values on the way to Ready (progressing, pods coming up, available), so at most three
// status writes per Foo the phase touched, 409s included, and 10 more.
//
// Updates get more room: after two API server restarts within two minutes, client-go's re-list
// backoff can leave the Deployment cache stale for up to a minute, and an update written from
// it meets a 409 Conflict once, and again if the controller's 30 s safety net fires before the
// cache has caught up (the newer version's event is what normally brings the key back). So at
// most two attempts per changed Foo, and 5 more.
const (
	faultWriteSlackRatio  = 1.05
	faultWriteSlack       = 5
	faultUpdatesPerChange = 2
	faultStatusPerFoo     = 3
	faultStatusSlack      = 10
)

// faultCheckEndState asserts the end state every scenario must reach, and that the controller's
// writes since mark stayed within the bounds of exp; it logs the controller's requests by verb,
// resource and response code.
func faultCheckEndState(t *testing.T, p *controllerProcess, ns string, mark int64, exp faultExpected) {
	t.Helper()
	ctx := context.Background()

	// Every Foo converged.
	total, converged, others, err := faultConverged(ns)
	if err != nil {
		t.Fatal(err)
	}
	if total != exp.foos || converged != exp.foos {
		t.Errorf("%d of %d Foos converged, want all of %d; not converged: %s", converged, total, exp.foos, others)
	}

	// One Deployment per Foo, controlled by that Foo (by UID), and none left of a Foo that is
	// gone: the garbage collector removes those, and the controller must not re-create them.
	var problems []string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		if problems = faultDeploymentProblems(ns); len(problems) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(problems) > 0 {
		t.Errorf("a minute after convergence, %d problems with the Deployments in %s, first: %v", len(problems), ns, problems[:min(10, len(problems))])
	}

	// The controller rode out the fault: still the process that started, which started once.
	select {
	case <-p.Exited():
		t.Errorf("the controller exited: %v", p.Wait())
	default:
	}
	log := p.Log()
	if n := strings.Count(log, `"Starting sample-controller"`); n != 1 {
		t.Errorf("the controller's log shows %d starts, want 1", n)
	}
	for _, bad := range []string{"DATA RACE", "panic:", "Observed a panic"} {
		if strings.Contains(log, bad) {
			t.Errorf("the controller's log has %q", bad)
		}
	}

	// What it cost.
	events := controllerRequestsSince(t, mark, ns)
	counts := map[string]int{}
	count := func(verb, resource string, code int) int {
		n := 0
		for _, e := range events {
			if e.Verb == verb && faultResource(e) == resource && (code == 0 || faultCode(e) == code) {
				n++
			}
		}
		return n
	}
	for _, e := range events {
		counts[fmt.Sprintf("%s %s %d", e.Verb, faultResource(e), faultCode(e))]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var table strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&table, "\n  %-40s %6d", k, counts[k])
	}
	creates, created, alreadyExists := count("create", "deployments", 0), count("create", "deployments", 201), count("create", "deployments", 409)
	updates, updated, updateConflicts := count("update", "deployments", 0), count("update", "deployments", 200), count("update", "deployments", 409)
	statuses, statusConflicts := count("update", "foos/status", 0), count("update", "foos/status", 409)
	t.Logf("the controller's requests in %s (verb, resource, code: count):%s", ns, table.String())
	if list, err := kubeClient.CoreV1().Events(ns).List(ctx, metav1.ListOptions{}); err == nil {
		reasons := map[string]int32{}
		for _, e := range list.Items {
			if e.Source.Component == "sample-controller" {
				reasons[e.Type+" "+e.Reason] += max(e.Count, 1)
			}
		}
		t.Logf("the controller's Events in %s since it started (type reason: count, repeats included): %v", ns, reasons)
	}
	t.Logf("writes: Deployment creates %d (201: %d, 409 AlreadyExists: %d) for %d new Foos; Deployment updates %d (200: %d, 409 Conflict: %d) for %d changed; "+
		"status writes %d (409 Conflict: %d) for %d Foos touched: %.2f per Foo",
		creates, created, alreadyExists, exp.creates, updates, updated, updateConflicts, exp.updates,
		statuses, statusConflicts, exp.touched, float64(statuses)/float64(max(exp.touched, 1)))

	bound := func(n int) int { return int(math.Ceil(float64(n)*faultWriteSlackRatio)) + faultWriteSlack }
	atMost := "at most "
	if exp.exact {
		atMost = ""
	}
	if created > exp.creates || (exp.exact && created != exp.creates) {
		t.Errorf("%d Deployments created (201), want %s%d: one per new Foo", created, atMost, exp.creates)
	}
	if creates > bound(exp.creates) {
		t.Errorf("%d Deployment creates for %d new Foos (%d answered 409 AlreadyExists): want at most %d (%.0f%% + %d)",
			creates, exp.creates, alreadyExists, bound(exp.creates), (faultWriteSlackRatio-1)*100, faultWriteSlack)
	}
	if exp.exact && alreadyExists > 0 {
		t.Errorf("%d Deployment creates answered 409 AlreadyExists: a Deployment was created twice", alreadyExists)
	}
	if updated > exp.updates || (exp.exact && updated != exp.updates) {
		t.Errorf("%d Deployments updated (200), want %s%d: one per changed Foo", updated, atMost, exp.updates)
	}
	if updates > faultUpdatesPerChange*exp.updates+faultWriteSlack {
		t.Errorf("%d Deployment updates for %d changed Foos (%d answered 409 Conflict): want at most %d",
			updates, exp.updates, updateConflicts, faultUpdatesPerChange*exp.updates+faultWriteSlack)
	}
	if n := count("delete", "deployments", 0) + count("patch", "deployments", 0); n > 0 {
		t.Errorf("the controller deleted or patched Deployments %d times, want never (it creates and updates)", n)
	}
	// Accepted status writes and conflicts are bounded apart: a conflict waits for the newer
	// version's watch event or the 30 s safety net, so while the caches are stale after a second
	// restart (client-go's re-list backoff: up to a minute and more) a Foo can meet a few; a
	// write loop would meet hundreds.
	if accepted := statuses - statusConflicts; accepted > faultStatusPerFoo*exp.touched+faultStatusSlack {
		t.Errorf("%d status writes accepted (and %d answered 409 Conflict) for %d Foos touched: want at most %d (%d per Foo + %d)",
			accepted, statusConflicts, exp.touched, faultStatusPerFoo*exp.touched+faultStatusSlack, faultStatusPerFoo, faultStatusSlack)
	}
	if statusConflicts > faultStatusPerFoo*exp.touched+faultStatusSlack {
		t.Errorf("%d status writes answered 409 Conflict for %d Foos touched: want at most %d (%d per Foo + %d)",
			statusConflicts, exp.touched, faultStatusPerFoo*exp.touched+faultStatusSlack, faultStatusPerFoo, faultStatusSlack)
	}
	for _, e := range events {
		if slices.Contains(exp.gone, e.ObjectRef.Name) && (e.Verb == "create" || e.Verb == "update") &&
			(e.ObjectRef.Resource == "deployments" || (exp.exact && e.ObjectRef.Resource == "foos")) {
			t.Errorf("a write for a Foo deleted in this phase: %s", e)
		}
	}
}

// faultDeploymentProblems lists what is wrong with the Deployments in ns: one that no existing
// Foo controls, or that its Foo does not want, or a Foo that controls other than one.
func faultDeploymentProblems(ns string) []string {
	ctx := context.Background()
	foos, err := sampleClient.SamplecontrollerV1().Foos(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return []string{err.Error()}
	}
	deployments, err := kubeClient.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return []string{err.Error()}
	}
	byUID := map[types.UID]*samplev1.Foo{}
	for i := range foos.Items {
		byUID[foos.Items[i].UID] = &foos.Items[i]
	}
	owned := map[types.UID]int{}
	var problems []string
	for i := range deployments.Items {
		d := &deployments.Items[i]
		ref := metav1.GetControllerOf(d)
		var foo *samplev1.Foo
		if ref != nil && ref.Kind == "Foo" {
			foo = byUID[ref.UID]
		}
		switch {
		case foo == nil:
			problems = append(problems, fmt.Sprintf("Deployment %s is controlled by no existing Foo (%+v)", d.Name, ref))
		case foo.Spec.Deployment.Name != d.Name:
			problems = append(problems, fmt.Sprintf("Deployment %s is controlled by Foo %s, which wants %s", d.Name, foo.Name, foo.Spec.Deployment.Name))
		default:
			owned[foo.UID]++
		}
	}
	for _, foo := range byUID {
		if owned[foo.UID] != 1 {
			problems = append(problems, fmt.Sprintf("Foo %s controls %d Deployments, want 1", foo.Name, owned[foo.UID]))
		}
	}
	slices.Sort(problems)
	return problems
}

func faultResource(e auditlog.Event) string {
	if e.ObjectRef == nil {
		return ""
	}
	if e.ObjectRef.Subresource != "" {
		return e.ObjectRef.Resource + "/" + e.ObjectRef.Subresource
	}
	return e.ObjectRef.Resource
}

func faultCode(e auditlog.Event) int {
	if e.ResponseStatus == nil {
		return 0
	}
	return e.ResponseStatus.Code
}

// faultRelists counts the informers' lists in the controller's log after offset ("Caches
// populated": -v=2 and up), by type.
func faultRelists(p *controllerProcess, offset int) string {
	log := p.Log()[offset:]
	return fmt.Sprintf("Foo %d, Deployment %d", strings.Count(log, `"Caches populated" type="*v1.Foo"`),
		strings.Count(log, `"Caches populated" type="*v1.Deployment"`))
}

// ---- the scenarios ----

// The API server dies (SIGKILL) while the controller is a third of the way through 500 new
// Foos, and comes back 5 s later; then, with those converged, it is stopped gracefully
// (SIGTERM, then SIGKILL after 5 s) a third of the way through a wave of 100 new Foos and 50
// replica changes. After each, the controller converges every Foo without exiting, without a
// second Deployment for any Foo, and with its writes within the bounds.
func TestFaultAPIServerKilledAndRestarted(t *testing.T) {
	ensureCRD(t)
	faultEnsureComponents(t, t.Logf)
	faultRestoreOnCleanup(t, "kube-apiserver")
	ns := newNamespace(t)

	// The Foos exist before the controller starts, so it is certainly mid-way when the API
	// server dies: a third of their Deployments exist, statuses are being written.
	mark := auditMark(t)
	faultCreateFoos(t, ns, "foo", faultFoos, 0)
	p := startController(t, "--namespace="+ns, "-v=2")
	faultWaitDeployments(t, p, ns, faultFoos/3)
	logOffset := len(p.Log())
	faultCluster(t, nil, "kill", "kube-apiserver")
	time.Sleep(faultDowntime)
	started := time.Now()
	faultCluster(t, nil, "start", "kube-apiserver")
	faultReport(t, "kube-apiserver SIGKILL", p, ns, faultFoos, started, logOffset)
	faultCheckEndState(t, p, ns, mark, faultExpected{foos: faultFoos, creates: faultFoos, touched: faultFoos})
	if t.Failed() {
		return
	}

	// Graceful: a wave of work (100 new Foos, 10 of them with a pod; 50 Foos given a pod),
	// queued while the controller is paused so that it is certainly mid-way when SIGTERM comes.
	mark = auditMark(t)
	logOffset = len(p.Log())
	const added, changed = 100, 50
	resume := faultPause(t, p)
	faultCreateFoos(t, ns, "bar", added, 10)
	for i := range changed {
		faultSetReplicas(t, ns, fooName(i), 1)
	}
	resume()
	faultWaitDeployments(t, p, ns, faultFoos+added/3)
	faultCluster(t, []string{"LOCAL_CLUSTER_STOP_TIMEOUT=" + faultStopGrace}, "stop", "kube-apiserver")
	started = time.Now()
	faultCluster(t, nil, "start", "kube-apiserver")
	faultReport(t, "kube-apiserver SIGTERM", p, ns, faultFoos+added, started, logOffset)
	faultCheckEndState(t, p, ns, mark, faultExpected{foos: faultFoos + added, creates: added, updates: changed, touched: added + changed})
}

// faultPause stops the controller (SIGSTOP) until the returned function is called, or the test
// ends.
func faultPause(t *testing.T, p *controllerProcess) (resume func()) {
	t.Helper()
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	resume = func() {
		once.Do(func() {
			if err := p.Signal(syscall.SIGCONT); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(resume)
	return resume
}

// faultReport waits for the API server's /readyz and then for want Foos to converge, and logs
// how long each took, and the informers' lists meanwhile.
func faultReport(t *testing.T, fault string, p *controllerProcess, ns string, want int, started time.Time, logOffset int) {
	t.Helper()
	back := faultWaitAPIReady(t, 2*time.Minute)
	done := faultWaitConverged(t, p, ns, want, 3*time.Minute)
	t.Logf("%s: %d Foos converged %.1fs after the API server's /readyz was ok again (%.1fs after the component was started again); informer lists since the fault: %s",
		fault, want, done.Sub(back).Seconds(), done.Sub(started).Seconds(), faultRelists(p, logOffset))
	faultEnsureComponents(t, t.Errorf)
}

// etcd dies (SIGKILL) while the controller is a third of the way through 500 new Foos, and
// comes back 5 s later. The API server stays up, answering errors meanwhile (its /readyz fails
// on its etcd check), and rebuilds its watch cache from etcd afterwards.
func TestFaultEtcdKilledAndRestarted(t *testing.T) {
	ensureCRD(t)
	faultEnsureComponents(t, t.Logf)
	faultRestoreOnCleanup(t, "etcd")
	ns := newNamespace(t)

	mark := auditMark(t)
	faultCreateFoos(t, ns, "foo", faultFoos, 0)
	p := startController(t, "--namespace="+ns, "-v=2")
	faultWaitDeployments(t, p, ns, faultFoos/3)
	logOffset := len(p.Log())
	faultCluster(t, nil, "kill", "etcd")
	time.Sleep(faultDowntime)
	started := time.Now()
	faultCluster(t, nil, "start", "etcd")
	faultReport(t, "etcd SIGKILL", p, ns, faultFoos, started, logOffset)
	faultCheckEndState(t, p, ns, mark, faultExpected{foos: faultFoos, creates: faultFoos, touched: faultFoos})
}

// The informers' watches expire: the controller is paused (SIGSTOP), the API server is
// restarted, and Foos are created, changed and deleted through the new API server, which the
// paused controller has no connection to; then etcd is compacted at its newest revision. On
// resuming, each informer holds a resourceVersion older than anything the new API server's
// watch cache holds, and older than etcd's history: it cannot resume its watch and must list
// again. It must then do each change once: nothing missed, nothing twice, and nothing for the
// deleted Foos (the garbage collector removes their Deployments).
//
// Why restart before the changes: compaction alone does not expire a watch. The API server
// serves watches from its watch cache, which keeps its own window of events whatever etcd keeps,
// and a paused client's watch stays open; on SIGCONT it reads the events that waited in its
// socket (tried: no 410, no re-list). Restarting after the changes is no better: the old API
// server has already written them into the paused controller's socket. A new API server's cache
// starts at the current revision, so every older resourceVersion is too old, and the changes
// made after it started reach the controller only through the list.
//
// client-go's reflector takes one of two roads back, depending on how it saw its connection
// die: it re-opens the watch from its resourceVersion and gets 410 Gone ("too old resource
// version"), then lists; or it starts over at once with a list (a watch-list stream, which
// serves the current state for any older resourceVersion, so no 410 is ever sent). Either is
// correct; the test requires a list, and logs the road taken.
func TestFaultWatchExpiry(t *testing.T) {
	ensureCRD(t)
	faultEnsureComponents(t, t.Logf)
	faultRestoreOnCleanup(t, "kube-apiserver")
	ns := newNamespace(t)
	const n, withPods, added, changed, deleted = 100, 25, 20, 20, 20

	faultCreateFoos(t, ns, "foo", n, withPods)
	p := startController(t, "--namespace="+ns, "-v=4") // -v=4: the reflectors' "Watch closed"
	faultWaitConverged(t, p, ns, n, 2*time.Minute)

	mark := auditMark(t)
	logOffset := len(p.Log())
	resume := faultPause(t, p)
	faultCluster(t, []string{"LOCAL_CLUSTER_STOP_TIMEOUT=" + faultStopGrace}, "stop", "kube-apiserver")
	faultCluster(t, nil, "start", "kube-apiserver")
	faultWaitAPIReady(t, 2*time.Minute)

	faultCreateFoos(t, ns, "new", added, added/4)
	for i := withPods - changed/2; i < withPods+changed/2; i++ { // foo-015..024 lose their pod, foo-025..034 get one
		faultSetReplicas(t, ns, fooName(i), 1-faultReplicas(i, withPods))
	}
	var gone []string
	for i := n - deleted; i < n; i++ {
		if err := sampleClient.SamplecontrollerV1().Foos(ns).Delete(context.Background(), fooName(i), metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		gone = append(gone, fooName(i))
	}
	faultCluster(t, nil, "compact")
	resumed := time.Now()
	resume()

	done := faultWaitConverged(t, p, ns, n+added-deleted, 2*time.Minute)
	t.Logf("%d Foos converged %.1fs after the controller resumed", n+added-deleted, done.Sub(resumed).Seconds())

	// The re-list, as the controller's reflectors logged it (-v=4).
	log := p.Log()[logOffset:]
	for _, typ := range []string{"*v1.Foo", "*v1.Deployment"} {
		road := "started over with a list after its watch ended"
		for _, line := range strings.Split(log, "\n") {
			if strings.Contains(line, `"Watch closed"`) && strings.Contains(line, `type="`+typ+`"`) && strings.Contains(line, "too old resource version") {
				road = "re-opened its watch and got 410 Gone: " + line[strings.Index(line, `"Watch closed"`):]
				break
			}
		}
		if !strings.Contains(log, `"Caches populated" type="`+typ+`"`) {
			t.Errorf("the %s informer did not list again after its resourceVersion expired", typ)
			continue
		}
		t.Logf("the %s informer listed again; it %s", typ, road)
	}
	faultEnsureComponents(t, t.Errorf)
	faultCheckEndState(t, p, ns, mark, faultExpected{
		foos: n + added - deleted, creates: added, updates: changed, touched: added + changed, gone: gone, exact: true,
	})
}
