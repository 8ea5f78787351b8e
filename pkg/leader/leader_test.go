package leader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"example.com/sample-controller/pkg/probes"
)

// Short timings, in the proportions client-go and Validate require.
var testConfig = Config{LeaseName: "test", LeaseNamespace: "ns", LeaseDuration: 2 * time.Second,
	RenewDeadline: time.Second, RetryPeriod: 200 * time.Millisecond}

const me = "me"

// fixture is a fake API server holding the Lease, whose Lease updates can be refused (as an
// API server that is cut off, overloaded, or refuses by policy would).
type fixture struct {
	client  *fake.Clientset
	refuse  atomic.Bool
	refused atomic.Int32
	ctx     context.Context
	logged  func() string
}

func newFixture(t *testing.T, objects ...runtime.Object) *fixture {
	f := &fixture{client: fake.NewClientset(objects...)}
	f.client.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if f.refuse.Load() {
			f.refused.Add(1)
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, "test", errors.New("refused by the test"))
		}
		return false, nil, nil
	})
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.BufferLogs(true)))
	f.ctx = klog.NewContext(context.Background(), logger)
	f.logged = func() string { return logger.GetSink().(ktesting.Underlier).GetBuffer().String() }
	return f
}

func (f *fixture) holder(t *testing.T) string {
	t.Helper()
	lease, err := f.client.CoordinationV1().Leases("ns").Get(context.Background(), "test", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ptr.Deref(lease.Spec.HolderIdentity, "")
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func receive[T any](t *testing.T, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
		panic("unreachable")
	}
}

// A leader whose renewals fail should stop leading and exit. If it is stuck instead (here onLost
// never returns, as in a deadlock), /healthz must fail once the Lease has gone unrenewed for the
// lease duration plus the watchdog's timeout, so that the kubelet restarts it.
func TestWatchdogFailsWhenTheLeaderStopsRenewing(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	const watchdogTimeout = 500 * time.Millisecond
	watchdog := leaderelection.NewLeaderHealthzAdaptor(watchdogTimeout)
	healthz := httptest.NewServer(probes.Handler([]probes.Check{watchdog}, nil))
	defer healthz.Close()
	get := func() (int, string) {
		resp, err := http.Get(healthz.URL + "/healthz?verbose")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	leading, lost, unstick := make(chan struct{}), make(chan struct{}), make(chan struct{})
	returned := make(chan error, 1)
	go func() {
		returned <- Run(ctx, f.client, testConfig, me, watchdog,
			func(ctx context.Context) error { close(leading); <-ctx.Done(); return nil },
			func() { close(lost); <-unstick })
	}()
	receive(t, leading, 10*time.Second, "leadership")

	// While renewals succeed, well past lease duration + timeout, the check passes.
	healthyUntil := time.Now().Add(testConfig.LeaseDuration + 2*watchdogTimeout)
	for time.Now().Before(healthyUntil) {
		if code, body := get(); code != http.StatusOK {
			t.Fatalf("/healthz = %d %q while the Lease is renewed, want 200", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	f.refuse.Store(true)
	refusedAt := time.Now()
	receive(t, lost, 10*time.Second, "onLost after the renewals failed")
	var body string
	waitFor(t, 10*time.Second, "/healthz to fail", func() bool {
		var code int
		code, body = get()
		return code == http.StatusServiceUnavailable
	})
	elapsed := time.Since(refusedAt)
	if !strings.Contains(body, "leaderElection failed") {
		t.Errorf("/healthz body %q does not name the leader election check", body)
	}
	// The last renewal was at most a retry period before the refusals began.
	if max := testConfig.LeaseDuration + watchdogTimeout + testConfig.RetryPeriod + time.Second; elapsed > max {
		t.Errorf("/healthz failed %s after the renewals stopped, want within %s", elapsed, max)
	}
	t.Logf("/healthz failed %s after the Lease renewals began to fail", elapsed.Round(10*time.Millisecond))

	close(unstick)
	if err := receive(t, returned, 10*time.Second, "Run to return"); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("Run = %v, want ErrLeaseLost", err)
	}
}

// SIGTERM during work: Run waits for work, then releases the Lease, and says so.
func TestRunReleasesTheLeaseOnlyAfterWork(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(f.ctx)
	leading := make(chan struct{})
	errWork := errors.New("work's own error")
	var holderDuringDrain atomic.Value
	returned := make(chan error, 1)
	go func() {
		returned <- Run(ctx, f.client, testConfig, me, nil, func(ctx context.Context) error {
			close(leading)
			<-ctx.Done()
			holderDuringDrain.Store(f.holder(t))
			return errWork
		}, func() { t.Error("onLost called on a graceful shutdown") })
	}()
	receive(t, leading, 10*time.Second, "leadership")
	cancel()
	if err := receive(t, returned, 10*time.Second, "Run to return"); !errors.Is(err, errWork) {
		t.Errorf("Run = %v, want work's error", err)
	}
	if h := holderDuringDrain.Load(); h != me {
		t.Errorf("while work drained, the Lease was held by %q, want %q (released only after work)", h, me)
	}
	if h := f.holder(t); h != "" {
		t.Errorf("after Run, the Lease is held by %q, want it released", h)
	}
	if !strings.Contains(f.logged(), "Released the Lease") {
		t.Errorf("the log does not say the Lease was released:\n%s", f.logged())
	}
}

// The Lease lost during a SIGTERM drain (renewals refused, then the release refused too): Run
// still waits for work, returns its error, and does not claim a release that did not happen.
func TestRunWaitsForWorkWhenTheLeaseIsLostDuringShutdown(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(f.ctx)
	leading, drained := make(chan struct{}), make(chan struct{})
	errWork := errors.New("work's own error")
	returned := make(chan error, 1)
	go func() {
		returned <- Run(ctx, f.client, testConfig, me, nil, func(ctx context.Context) error {
			close(leading)
			<-ctx.Done()
			<-drained // a slow drain: in-flight syncs finishing
			return errWork
		}, func() { t.Error("onLost called on a graceful shutdown") })
	}()
	receive(t, leading, 10*time.Second, "leadership")
	f.refuse.Store(true)
	cancel()

	// client-go's elector gives up after the renew deadline and returns; Run must not.
	waitFor(t, 10*time.Second, "the elector to give up renewing", func() bool {
		return strings.Contains(f.logged(), "Failed to renew lease")
	})
	select {
	case err := <-returned:
		t.Fatalf("Run returned (%v) while work was still draining", err)
	case <-time.After(time.Second):
	}
	close(drained)
	if err := receive(t, returned, 10*time.Second, "Run to return after the drain"); !errors.Is(err, errWork) {
		t.Errorf("Run = %v, want work's error", err)
	}
	if log := f.logged(); strings.Contains(log, "Released the Lease") || !strings.Contains(log, "Could not release the Lease") {
		t.Errorf("the log must say the Lease could not be released, and never that it was:\n%s", log)
	}
	if h := f.holder(t); h != me {
		t.Errorf("the Lease is held by %q, want still %q (every update was refused)", h, me)
	}
}

// A standby stopped before it ever led returns at once, without calling work.
func TestStandbyStopsWithoutWorking(t *testing.T) {
	other := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "test", Namespace: "ns"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("other"), LeaseDurationSeconds: ptr.To[int32](3600),
			RenewTime: ptr.To(metav1.NewMicroTime(time.Now())), AcquireTime: ptr.To(metav1.NewMicroTime(time.Now()))},
	}
	f := newFixture(t, other)
	ctx, cancel := context.WithCancel(f.ctx)
	returned := make(chan error, 1)
	go func() {
		returned <- Run(ctx, f.client, testConfig, me, nil,
			func(context.Context) error { t.Error("a standby worked"); return nil },
			func() { t.Error("onLost called on a standby") })
	}()
	waitFor(t, 10*time.Second, "the standby to see the leader", func() bool {
		return strings.Contains(f.logged(), "Another process leads")
	})
	cancel()
	if err := receive(t, returned, 10*time.Second, "Run to return"); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if h := f.holder(t); h != "other" {
		t.Errorf("the Lease is held by %q, want still other", h)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"defaults", Config{LeaseName: "x", LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}, ""},
		{"no name", Config{LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}, "name"},
		{"lease equal to renew + retry", Config{LeaseName: "x", LeaseDuration: 12 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}, "plus the retry period"},
		{"renew within the jitter", Config{LeaseName: "x", LeaseDuration: 15 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 2 * time.Second}, "renew deadline"},
		{"no retry period", Config{LeaseName: "x", LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second}, "retry period"},
		// The Lease stores 12 s, and standbys go by that: no more than renew + retry.
		{"lease above renew + retry only by a fraction of a second", Config{LeaseName: "x", LeaseDuration: 12500 * time.Millisecond, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}, "plus the retry period"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

// Work that returns on its own (not asked to stop, Lease not lost) is not a lost Lease: Run
// returns work's error, onLost is not called, and the Lease is released.
func TestWorkReturningOnItsOwnIsNotALoss(t *testing.T) {
	f := newFixture(t)
	errWork := errors.New("work gave up")
	err := Run(f.ctx, f.client, testConfig, me, nil,
		func(context.Context) error { return errWork },
		func() { t.Error("onLost called although work returned on its own") })
	if !errors.Is(err, errWork) || errors.Is(err, ErrLeaseLost) {
		t.Errorf("Run = %v, want work's error only", err)
	}
	if h := f.holder(t); h != "" {
		t.Errorf("the Lease is held by %q, want it released", h)
	}
}

// Asked to stop before or just as it acquires the Lease: no work is started, and Run returns.
func TestStoppedBeforeLeadingStartsNoWork(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	err := Run(ctx, f.client, testConfig, me, nil,
		func(context.Context) error { t.Error("work started after the process was asked to stop"); return nil },
		func() { t.Error("onLost called") })
	if err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

// The release never clears a Lease another process holds (it took over while this one drained).
func TestReleaseLeavesAnotherHoldersLease(t *testing.T) {
	other := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "test", Namespace: "ns"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To("other"), LeaseDurationSeconds: ptr.To[int32](15)},
	}
	f := newFixture(t, other)
	holder, err := release(f.ctx, f.client, testConfig, me)
	if err != nil || holder != "other" {
		t.Errorf("release = %q, %v; want the other holder, untouched", holder, err)
	}
	if h := f.holder(t); h != "other" {
		t.Errorf("the Lease is held by %q, want still other", h)
	}
}

// Work that stops as soon as its context ends (the controller with no key in flight) returns
// while the elector is still unwinding after failed renewals. That is still a lost Lease: onLost
// must be called, not a graceful release. (Once, on a loaded machine, this race made a cut-off
// leader log "Work returned" and wait for a SIGTERM that never came.) Several leaders run at
// once to give the race every chance.
func TestLeaseLostWhileWorkReturnsAtOnceIsALoss(t *testing.T) {
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			leading, lost := make(chan struct{}), make(chan struct{})
			returned := make(chan error, 1)
			go func() {
				returned <- Run(f.ctx, f.client, testConfig, me, nil,
					func(ctx context.Context) error { close(leading); <-ctx.Done(); return nil },
					func() { close(lost) })
			}()
			receive(t, leading, 10*time.Second, "leadership")
			f.refuse.Store(true)
			select {
			case <-lost:
			case err := <-returned:
				t.Fatalf("Run returned %v without calling onLost; log:\n%s", err, f.logged())
			case <-time.After(10 * time.Second):
				t.Fatal("timed out after 10s waiting for onLost after the renewals failed")
			}
			if err := receive(t, returned, 10*time.Second, "Run to return"); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("Run = %v, want ErrLeaseLost", err)
			}
		})
	}
}
