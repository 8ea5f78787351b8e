// Package metrics holds the controller's Prometheus metrics and serves them.
//
// Importing it also installs component-base's providers for client-go's own metrics, which
// client-go then reports without further code:
//   - workqueue_*             (depth, adds, queue latency, work duration, retries, unfinished
//     and longest-running work) for every *named* workqueue, labelled name="foos";
//   - rest_client_*           (requests by method, host and code; latency; rate-limiter wait);
//   - leader_election_master_status and leader_election_slowpath_total.
//
// Providers must be installed before a queue or client is created; an import does that, since
// package init runs before main.
package metrics

import (
	"net/http"
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	_ "k8s.io/component-base/metrics/prometheus/clientgo/leaderelection" // leader_election_* metrics
	_ "k8s.io/component-base/metrics/prometheus/restclient"              // rest_client_* metrics
	_ "k8s.io/component-base/metrics/prometheus/workqueue"               // workqueue_* metrics
)

// Results of one sync, the values of the result label.
const (
	ResultSuccess  = "success"  // synced; the key's backoff is reset
	ResultError    = "error"    // failed; requeued with backoff
	ResultConflict = "conflict" // a write hit a 409 Conflict; requeued
	ResultDropped  = "dropped"  // failed maxRetries times; dropped until the next change or resync
)

const subsystem = "samplecontroller"

var (
	// ReconcileTotal counts syncs of a Foo by result.
	ReconcileTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      subsystem,
		Name:           "reconcile_total",
		Help:           "Syncs of a Foo, by result: success, error (requeued), conflict (requeued), dropped (after too many retries).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"})

	// ReconcileDuration is how long one sync takes, whatever its result.
	ReconcileDuration = metrics.NewHistogram(&metrics.HistogramOpts{
		Subsystem:      subsystem,
		Name:           "reconcile_duration_seconds",
		Help:           "How long one sync of a Foo takes, in seconds.",
		Buckets:        []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		StabilityLevel: metrics.ALPHA,
	})
)

var registerOnce sync.Once

// Register adds the controller's own metrics to the registry that Handler serves.
func Register() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(ReconcileTotal, ReconcileDuration)
		// Initialise every result so that the series exist (at 0) before the first sync.
		for _, r := range []string{ResultSuccess, ResultError, ResultConflict, ResultDropped} {
			ReconcileTotal.WithLabelValues(r)
		}
	})
}

// Handler serves every registered metric in the Prometheus text format.
func Handler() http.Handler {
	return legacyregistry.Handler()
}
