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
	"fmt"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
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

// Validate checks the durations the way client-go's elector requires them.
func (c Config) Validate() error {
	switch {
	case c.LeaseName == "":
		return fmt.Errorf("the lease name must not be empty")
	case c.LeaseDuration <= c.RenewDeadline:
		return fmt.Errorf("lease duration (%s) must be greater than the renew deadline (%s)", c.LeaseDuration, c.RenewDeadline)
	case c.RenewDeadline <= time.Duration(leaderelection.JitterFactor*float64(c.RetryPeriod)):
		return fmt.Errorf("renew deadline (%s) must be greater than %.1f x the retry period (%s)", c.RenewDeadline, leaderelection.JitterFactor, c.RetryPeriod)
	case c.RetryPeriod <= 0:
		return fmt.Errorf("retry period must be positive")
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

// Run campaigns for the Lease until ctx ends. While this process leads, run(leadingCtx) is
// called once; leadingCtx ends when ctx ends or when leadership is lost. When ctx ends, Run
// waits for run to return and then releases the Lease. If leadership is lost while ctx is
// still live, onLost is called: the process must stop working at once, since another
// replica may already lead (Kubernetes' own components exit).
//
// watchdog, when not nil, becomes a liveness check that fails when this process leads but
// has not renewed the Lease for longer than the lease duration plus its timeout.
func Run(ctx context.Context, client kubernetes.Interface, cfg Config, identity string,
	watchdog *leaderelection.HealthzAdaptor, run func(ctx context.Context), onLost func()) error {
	logger := klog.FromContext(ctx).WithValues("lease", klog.KRef(cfg.LeaseNamespace, cfg.LeaseName), "identity", identity)

	// The elector gets its own context: cancelling it releases the Lease, and that must wait
	// until run has finished.
	electorCtx, stopElector := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElector()
	started := make(chan struct{})
	finished := make(chan struct{})

	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1ObjectMeta(cfg),
			Client:     client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
		},
		LeaseDuration:   cfg.LeaseDuration,
		RenewDeadline:   cfg.RenewDeadline,
		RetryPeriod:     cfg.RetryPeriod,
		ReleaseOnCancel: true,
		WatchDog:        watchdog,
		Name:            cfg.LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leadingCtx context.Context) {
				close(started)
				defer close(finished)
				logger.Info("Became the leader; starting work")
				runCtx, cancel := context.WithCancel(ctx)
				defer cancel()
				stop := context.AfterFunc(leadingCtx, cancel)
				defer stop()
				run(runCtx)
				// Work is done: now the Lease may go to the next leader.
				stopElector()
			},
			OnStoppedLeading: func() {
				if ctx.Err() != nil {
					logger.Info("Released the Lease")
					return
				}
				logger.Error(nil, "Lost the Lease while still running")
				onLost()
			},
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

	go func() {
		<-ctx.Done()
		select {
		case <-started:
			<-finished // the leader stops the elector itself once its work is done
		default:
			stopElector() // a standby has nothing to finish
		}
	}()
	logger.Info("Campaigning for leadership")
	elector.Run(electorCtx)
	return nil
}

func metav1ObjectMeta(cfg Config) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: cfg.LeaseName, Namespace: cfg.LeaseNamespace}
}
