//go:build e2e

package e2e

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"example.com/sample-controller/pkg/leader"
	"example.com/sample-controller/pkg/probes"
)

// refuseLeaseRenewals installs a ValidatingAdmissionPolicy that refuses every update of the
// Lease in ns by which holder would keep it (a renewal) or give it up (a release): the leader is
// cut off from its Lease while it keeps running. A takeover by another holder is still allowed.
func refuseLeaseRenewals(t *testing.T, ns, lease, holder string) {
	t.Helper()
	name := "refuse-renewals-" + ns
	policy := `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: ` + name + `}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - {apiGroups: [coordination.k8s.io], apiVersions: [v1], operations: [UPDATE], resources: [leases]}
  validations:
  - expression: >-
      !(object.metadata.name == '` + lease + `' && has(oldObject.spec.holderIdentity) &&
      oldObject.spec.holderIdentity == '` + holder + `' &&
      (!has(object.spec.holderIdentity) || object.spec.holderIdentity in ['` + holder + `', '']))
    message: "the e2e test refuses this holder's renewals"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: ` + name + `}
spec:
  policyName: ` + name + `
  validationActions: [Deny]
  matchResources:
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ` + ns + `}}
`
	if out, err := kubectlApply(policy); err != nil {
		t.Fatalf("applying the policy: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		_, _ = kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name, "--ignore-not-found")
	})
}

func leaseHolder(t *testing.T, ns, name string) string {
	t.Helper()
	lease, err := kubeClient.CoordinationV1().Leases(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return ptr.Deref(lease.Spec.HolderIdentity, "")
}

// The liveness watchdog, on the real control plane: a leader whose Lease renewals are refused
// and that is stuck (it neither stops leading nor exits: onLost here never returns, as in a
// deadlock) must fail /healthz within the lease duration plus the watchdog's timeout, so that the
// kubelet restarts it. pkg/leader is run in this test process, with the probe handler the
// controller serves.
func TestStuckLeaderFailsLiveness(t *testing.T) {
	ns := newNamespace(t)
	identity := "stuck-" + rand.String(6)
	cfg := leader.Config{LeaseName: "stuck", LeaseNamespace: ns, LeaseDuration: 6 * time.Second,
		RenewDeadline: 4 * time.Second, RetryPeriod: time.Second}
	const watchdogTimeout = 2 * time.Second
	watchdog := leaderelection.NewLeaderHealthzAdaptor(watchdogTimeout)
	healthz := httptest.NewServer(probes.Handler([]probes.Check{watchdog}, nil))
	defer healthz.Close()

	logger := ktesting.NewLogger(t, ktesting.NewConfig())
	ctx, cancel := context.WithCancel(klog.NewContext(context.Background(), logger))
	defer cancel()
	leading, lost, unstick := make(chan struct{}), make(chan struct{}), make(chan struct{})
	returned := make(chan error, 1)
	go func() {
		returned <- leader.Run(ctx, kubeClient, cfg, identity, watchdog,
			func(ctx context.Context) error { close(leading); <-ctx.Done(); return nil },
			func() { close(lost); <-unstick })
	}()
	select {
	case <-leading:
	case <-time.After(30 * time.Second):
		t.Fatal("never became the leader")
	}
	if code, body := httpGet(healthz.URL + "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz of a renewing leader = %d %q, want 200", code, body)
	}

	refuseLeaseRenewals(t, ns, cfg.LeaseName, identity)
	refused := time.Now()
	eventually(t, nil, 30*time.Second, "the leader to lose the Lease (renewals refused)", func() (bool, string) {
		select {
		case <-lost:
			return true, ""
		default:
			return false, "still leading"
		}
	})
	eventually(t, nil, 60*time.Second, "/healthz to fail", func() (bool, string) {
		code, body := httpGet(healthz.URL + "/healthz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "leaderElection failed"), body
	})
	elapsed := time.Since(refused)
	t.Logf("/healthz failed %s after the renewals began to be refused (lease %s + watchdog %s)",
		elapsed.Round(100*time.Millisecond), cfg.LeaseDuration, watchdogTimeout)
	// The policy takes a moment to be in force, and the last renewal was up to a retry period
	// before it: allow both, but no more.
	if max := cfg.LeaseDuration + watchdogTimeout + cfg.RetryPeriod + 10*time.Second; elapsed > max {
		t.Errorf("/healthz failed after %s, want within %s", elapsed, max)
	}
	if h := leaseHolder(t, ns, cfg.LeaseName); h != identity {
		t.Errorf("the Lease is held by %q, want still %q (its release was refused too)", h, identity)
	}

	close(unstick)
	cancel()
	select {
	case err := <-returned:
		if !errors.Is(err, leader.ErrLeaseLost) {
			t.Errorf("leader.Run = %v, want ErrLeaseLost", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("leader.Run did not return")
	}
}

// The controller binary as leader, cut off from its Lease: it stops leading and exits (status
// 1) within the renew deadline and a retry period, and the standby takes over once the Lease
// expires and converges new Foos.
func TestLeaderCutOffFromItsLeaseExits(t *testing.T) {
	ensureCRD(t)
	ns := newNamespace(t)
	start := func() *controllerProcess {
		return startController(t, "--namespace="+ns, "--leader-elect", "--leader-elect-namespace="+ns, "-v=2")
	}
	a := start()
	eventually(t, a, 30*time.Second, "the first process to lead", func() (bool, string) {
		return strings.Contains(a.Log(), "Became the leader"), a.LogTail(2)
	})
	b := start()
	eventually(t, b, 30*time.Second, "the second process to stand by", func() (bool, string) {
		return strings.Contains(b.Log(), "standing by"), b.LogTail(2)
	})
	holder := leaseHolder(t, ns, "sample-controller")
	if holder == "" || !strings.Contains(a.Log(), holder) {
		t.Fatalf("the Lease holder %q is not the first process", holder)
	}

	refuseLeaseRenewals(t, ns, "sample-controller", holder)
	refused := time.Now()
	select {
	case <-a.Exited():
	case <-time.After(60 * time.Second):
		t.Fatalf("the leader still runs 60s after its renewals began to be refused:\n%s", a.LogTail(10))
	}
	exitedAfter := time.Since(refused)
	t.Logf("the cut-off leader exited %s after its renewals began to be refused", exitedAfter.Round(100*time.Millisecond))
	if a.Wait() == nil {
		t.Errorf("the cut-off leader exited with status 0, want 1")
	}
	if !strings.Contains(a.Log(), "Lost the Lease while still running") {
		t.Errorf("the log does not say the Lease was lost:\n%s", a.LogTail(10))
	}
	if strings.Contains(a.Log(), "Released the Lease") {
		t.Errorf("the log claims a release that the API server refused:\n%s", a.LogTail(10))
	}
	eventually(t, b, 60*time.Second, "the standby to take over", func() (bool, string) {
		return strings.Contains(b.Log(), "Became the leader"), b.LogTail(2)
	})
	createFoo(t, newFoo(ns, "after-cutoff", "after-cutoff", 1))
	waitForFooConverged(t, b, ns, "after-cutoff", 60*time.Second)
}
