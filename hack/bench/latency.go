package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Latency is how long a Foo waits for its Deployment, at a steady rate of new Foos.
type Latency struct {
	Rate  int     `json:"foosPerSecond"`
	Count int     `json:"count"`
	P50ms float64 `json:"p50ms"`
	P99ms float64 `json:"p99ms"`
	MaxMs float64 `json:"maxMs"`
}

// latency creates Foos at a steady rate with the controller running and measures, for each,
// the time from the create call's return to the Deployment's first appearance in a watch.
func (b *bench) latency(ctx context.Context, ns string) (*Latency, error) {
	if err := b.createNamespace(ctx, ns); err != nil {
		return nil, err
	}
	p, err := b.startController(ns)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	o, err := b.observe(ctx, ns)
	if err != nil {
		return nil, err
	}
	defer o.stop()
	rate := b.cfg.latencyRate
	total := rate * int(b.cfg.latencyFor.Seconds())
	progress("latency: %d Foos at %d/s", total, rate)
	created := make([]time.Time, total)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	var firstErr atomic.Value
	for i := range total {
		<-tick.C
		wg.Go(func() {
			if _, err := b.sample.SamplecontrollerV1().Foos(ns).Create(ctx, foo(ns, i, 0), metav1.CreateOptions{}); err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
			created[i] = time.Now()
		})
	}
	tick.Stop()
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if d, _ := o.counts(); d == total {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("latency: not every Deployment appeared; log: %s", p.LogPath())
		}
		time.Sleep(50 * time.Millisecond)
	}
	o.mu.Lock()
	var ms []float64
	for i := range total {
		d := o.deployments[foo(ns, i, 0).Name].Sub(created[i]).Seconds() * 1000
		ms = append(ms, max(d, 0))
	}
	o.mu.Unlock()
	sort.Float64s(ms)
	return &Latency{Rate: rate, Count: total, P50ms: percentile(ms, 50), P99ms: percentile(ms, 99), MaxMs: ms[len(ms)-1]}, nil
}

func percentile(sorted []float64, p float64) float64 {
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}
