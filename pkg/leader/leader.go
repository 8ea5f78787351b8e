// Package leader runs a function only while this process holds a Lease, so that several
// replicas of the controller can run and exactly one of them works (client-go's
// tools/leaderelection with a coordination.k8s.io/v1 Lease lock).
//
// What it adds to client-go's elector is the order of a graceful shutdown: on SIGTERM the
// leader first lets the function return (the controller finishes its in-flight keys), and
// only then releases the Lease, so the next leader never overlaps with unfinished work.
package leader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// Config says which Lease to hold and how.
type Config struct {
	LeaseName      string
	LeaseNamespace string
	// LeaseDuration is how long a standby waits, after the last renewal it saw, before it takes
	// the Lease over. It bounds how long the cluster goes without a leader after a crash.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps trying to renew before it gives up leading.
	RenewDeadline time.Duration
	// RetryPeriod is how often candidates try to acquire and the leader renews.
	RetryPeriod time.Duration
}

// Validate checks the durations. client-go's elector needs lease duration > renew deadline >
// 1.2 x retry period. This also asks lease duration > renew deadline + retry period: a leader
// that cannot renew stops leading at the latest a retry period plus the renew deadline after its
// last renewal, and a standby takes over a lease duration after the last renewal it saw. With
// a shorter lease the standby could start before the old leader has stopped: two leaders. The
// Lease stores whole seconds, and standbys go by what it stores.
func (c Config) Validate() error {
	switch {
	case c.LeaseName == "":
		return fmt.Errorf("the lease name must not be empty")
	case c.RetryPeriod <= 0:
		return fmt.Errorf("retry period must be positive, got %s", c.RetryPeriod)
	case c.RenewDeadline <= time.Duration(leaderelection.JitterFactor*float64(c.RetryPeriod)):
		return fmt.Errorf("renew deadline (%s) must be greater than %.1f x the retry period (%s)", c.RenewDeadline, leaderelection.JitterFactor, c.RetryPeriod)
	case c.LeaseDuration < time.Second:
		return fmt.Errorf("lease duration must be at least 1s (the Lease stores whole seconds), got %s", c.LeaseDuration)
	case c.LeaseDuration.Truncate(time.Second) <= c.RenewDeadline+c.RetryPeriod:
		return fmt.Errorf("lease duration (%s) must be greater than the renew deadline (%s) plus the retry period (%s), "+
			"or a standby could take over while the old leader still works", c.LeaseDuration, c.RenewDeadline, c.RetryPeriod)
	}
	return nil
}

// Identity names this process in the Lease's holderIdentity: the host name (the Pod's name
// in a cluster) and a unique suffix, so two processes on one host never share an identity.
func Identity() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return host + "_" + string(uuid.NewUUID())
}

// ErrLeaseLost is returned by Run when this process lost the Lease while it was not shutting
// down (after onLost, if onLost returns).
var ErrLeaseLost = errors.New("lost the leader-election Lease")

// Run campaigns for the Lease until ctx ends, calling work(leadingCtx) once while leading. It
// never returns before work has, and returns work's error. When ctx ends it waits for work,
// then releases the Lease (no overlap with the next leader); a Lease lost while ctx lives calls
// onLost at once (another replica may lead). watchdog, if set, fails liveness when a leader
// has not renewed for the lease duration plus its timeout.
func Run(ctx context.Context, client kubernetes.Interface, cfg Config, identity string,
	watchdog *leaderelection.HealthzAdaptor, work func(ctx context.Context) error, onLost func()) error {
	logger := klog.FromContext(ctx).WithValues("lease", klog.KRef(cfg.LeaseNamespace, cfg.LeaseName), "identity", identity)

	// The elector gets its own context: cancelling it stops the renewals, and that must wait
	// until work has finished.
	electorCtx, stopElector := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElector()
	var (
		mu       sync.Mutex
		leading  bool // work was started; finished will be closed
		stopping bool // Run is ending: a late OnStartedLeading must not start work
		workDone bool // work returned on its own: ctx live and the Lease still held
		workErr  error
	)
	finished := make(chan struct{}) // closed when work has returned; workErr is set before

	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Name: cfg.LeaseName, Namespace: cfg.LeaseNamespace},
			Client:     client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
		},
		LeaseDuration: cfg.LeaseDuration,
		RenewDeadline: cfg.RenewDeadline,
		RetryPeriod:   cfg.RetryPeriod,
		// Not client-go's release: it also runs after failed renewals, keeping a cut-off leader
		// at work for up to another renew deadline, and it can clear a Lease a standby has taken
		// meanwhile. Run releases the Lease itself, and only on a graceful shutdown.
		ReleaseOnCancel: false,
		Name:            cfg.LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leadingCtx context.Context) {
				mu.Lock()
				// ctx is checked too: the AfterFunc below that sets stopping runs in a goroutine
				// of its own, and may not have run yet.
				if stopping || ctx.Err() != nil {
					mu.Unlock()
					return // acquired just as the process was asked to stop: do no work
				}
				leading = true
				mu.Unlock()
				defer close(finished)
				logger.Info("Became the leader; starting work")
				workCtx, cancel := context.WithCancel(ctx)
				defer cancel()
				stop := context.AfterFunc(leadingCtx, cancel)
				defer stop()
				workErr = work(workCtx)
				mu.Lock()
				// Returned on its own only if neither a shutdown nor a lost Lease asked it to:
				// work that stops at once when its context ends would otherwise pass for
				// finished while the elector is still unwinding after failed renewals.
				workDone = ctx.Err() == nil && leadingCtx.Err() == nil
				mu.Unlock()
				// Work is done: now the renewals stop, and the Lease may go to the next leader.
				stopElector()
			},
			// Called however the elector ends; what happened is sorted out after Run returns.
			OnStoppedLeading: func() {},
			OnNewLeader: func(holder string) {
				if holder != identity {
					logger.Info("Another process leads; standing by with warm caches", "leader", holder)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("setting up leader election: %w", err)
	}
	if watchdog != nil {
		// client-go's RunOrDie does this; the elector's own Run does not. Without it the
		// watchdog has no elector to ask and always passes.
		watchdog.SetLeaderElection(elector)
	}

	// On SIGTERM a standby stops at once; a leader stops the elector itself once work is done.
	stopWatching := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !leading {
			stopping = true
			stopElector()
		}
	})
	defer stopWatching()
	logger.Info("Campaigning for leadership")
	elector.Run(electorCtx)

	mu.Lock()
	stopping = true
	wasLeading := leading
	mu.Unlock()
	if !wasLeading {
		return nil // stopped while standing by
	}
	mu.Lock()
	returnedOnItsOwn := workDone // set before work stopped the elector, so already known here
	mu.Unlock()
	if ctx.Err() == nil && !returnedOnItsOwn {
		// The renewals failed for the renew deadline, or another process took the Lease: stop at
		// once, without waiting for in-flight work (another leader may already be at work).
		logger.Error(nil, "Lost the Lease while still running", "holder", elector.GetLeader())
		onLost()
		<-finished // onLost normally exits the process; if it returns, work is stopping too
		return errors.Join(ErrLeaseLost, workErr)
	}
	<-finished // shutting down: work has finished its in-flight keys, or is about to
	if returnedOnItsOwn {
		logger.Info("Work returned; giving up the Lease", "err", workErr)
	}
	switch holder, err := release(ctx, client, cfg, identity); {
	case err != nil:
		logger.Error(err, "Could not release the Lease; a standby takes over when it expires", "leaseDuration", cfg.LeaseDuration)
	case holder == "":
		logger.Info("Released the Lease")
	default:
		logger.Info("The Lease was lost before it could be released", "holder", holder)
	}
	return workErr
}

// release gives up the Lease if this process still holds it, as client-go's elector would (an
// empty holder, a one-second duration), with a write that is conditional on the Lease's
// resourceVersion: a Lease another process took meanwhile is never touched. It returns the
// Lease's holder afterwards ("" when released).
func release(ctx context.Context, client kubernetes.Interface, cfg Config, identity string) (string, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.RenewDeadline)
	defer cancel()
	leases := client.CoordinationV1().Leases(cfg.LeaseNamespace)
	for {
		lease, err := leases.Get(ctx, cfg.LeaseName, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		if holder := ptr.Deref(lease.Spec.HolderIdentity, ""); holder != identity {
			return holder, nil
		}
		now := metav1.NewMicroTime(time.Now())
		lease.Spec.HolderIdentity = ptr.To("")
		lease.Spec.LeaseDurationSeconds = ptr.To[int32](1)
		lease.Spec.AcquireTime, lease.Spec.RenewTime = &now, &now
		_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue // a renewal in flight when the elector stopped: read the Lease again
		}
		if err != nil {
			return "", err
		}
		return "", nil
	}
}
