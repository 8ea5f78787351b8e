package main

import (
	"context"
	"fmt"
	"time"

	"example.com/sample-controller/internal/auditlog"
	"example.com/sample-controller/internal/promtext"
)

// Convergence is one convergence run.
type Convergence struct {
	N                int                `json:"n"`
	Replicas         int32              `json:"replicas"`
	CreateSeconds    float64            `json:"createSeconds"`
	DeploymentsSecs  float64            `json:"allDeploymentsSeconds"`
	StatusSecs       float64            `json:"allStatusCurrentSeconds"`
	ReadySecs        float64            `json:"allReadySeconds"`
	RequestsByMethod map[string]float64 `json:"controllerRequestsByMethod"`
	Reconciles       map[string]float64 `json:"reconcilesByResult"`
	CallsPerFoo      map[string]float64 `json:"apiCallsPerFoo,omitempty"`
}

// convergence creates n Foos with the controller running and measures how long until every
// Foo has its Deployment and a current status; with untilRest, also until every Foo is Ready
// and the controller has gone quiet. With cpuProfile, it writes a 20 s CPU profile of the
// controller there, from the first Foo create. The controller keeps running for the caller.
func (b *bench) convergence(ctx context.Context, ns string, n int, replicas int32, untilRest bool, cpuProfile string) (Convergence, *controller, error) {
	c := Convergence{N: n, Replicas: replicas}
	if err := b.createNamespace(ctx, ns); err != nil {
		return c, nil, err
	}
	var extra []string
	if cpuProfile != "" {
		extra = append(extra, "--profiling") // serves /debug/pprof
	}
	p, err := b.startController(ns, extra...)
	if err != nil {
		return c, nil, err
	}
	o, err := b.observe(ctx, ns)
	if err != nil {
		p.stop()
		return c, nil, err
	}
	defer o.stop()
	before, err := p.scrape()
	if err != nil {
		p.stop()
		return c, nil, err
	}
	mark := b.auditMark()
	profiled := make(chan struct{})
	if cpuProfile != "" {
		go func() { defer close(profiled); p.cpuProfile(20*time.Second, cpuProfile) }()
	} else {
		close(profiled)
	}
	defer func() { <-profiled }()
	progress("convergence: creating %d Foos with replicas %d in %s", n, replicas, ns)
	start := time.Now()
	if err := b.createFoos(ctx, ns, n, replicas, nil); err != nil {
		p.stop()
		return c, nil, err
	}
	c.CreateSeconds = time.Since(start).Seconds()
	lastReport := time.Now()
	for {
		withDeployment, withStatus := o.counts()
		if withDeployment == n && c.DeploymentsSecs == 0 {
			c.DeploymentsSecs = time.Since(start).Seconds()
		}
		if withStatus == n {
			c.StatusSecs = time.Since(start).Seconds()
			break
		}
		if time.Since(start) > b.cfg.timeout {
			p.stop()
			return c, nil, fmt.Errorf("N=%d replicas=%d: not converged after %s (%d with Deployment, %d current); controller log: %s",
				n, replicas, b.cfg.timeout, withDeployment, withStatus, p.LogPath())
		}
		if time.Since(lastReport) > 5*time.Second {
			progress("  %5.0fs: %d/%d Foos have a Deployment, %d/%d a current status", time.Since(start).Seconds(), withDeployment, n, withStatus, n)
			lastReport = time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Then until every Foo is Ready (for replicas 0, the Deployment controller has reported on
	// each Deployment) and the controller has stopped writing: only then is it at rest.
	for untilRest && o.ready() < n {
		if time.Since(start) > b.cfg.timeout {
			p.stop()
			return c, nil, fmt.Errorf("N=%d: not every Foo Ready after %s; controller log: %s", n, b.cfg.timeout, p.LogPath())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if untilRest {
		c.ReadySecs = time.Since(start).Seconds()
		if err := p.waitQuiet(3 * time.Second); err != nil {
			p.stop()
			return c, nil, err
		}
	} else {
		time.Sleep(time.Second) // let the last requests show in the metrics and the audit log
	}
	after, err := p.scrape()
	if err != nil {
		p.stop()
		return c, nil, err
	}
	c.RequestsByMethod = promtext.DeltaBy(before, after, "rest_client_requests_total", "method")
	c.Reconciles = promtext.DeltaBy(before, after, "samplecontroller_reconcile_total", "result")
	if calls := b.auditCalls(mark, ns); calls != nil {
		c.CallsPerFoo = map[string]float64{}
		for k, v := range calls {
			c.CallsPerFoo[k] = v / float64(n)
		}
	}
	if untilRest {
		progress("  converged: all Deployments after %.1fs, all statuses current after %.1fs, all Ready after %.1fs", c.DeploymentsSecs, c.StatusSecs, c.ReadySecs)
	} else {
		progress("  converged: all Deployments after %.1fs, all statuses current after %.1fs", c.DeploymentsSecs, c.StatusSecs)
	}
	return c, p, nil
}

// auditMark is the audit log's current end (0 without an audit log).
func (b *bench) auditMark() int64 {
	if b.cfg.auditLog == "" {
		return 0
	}
	mark, _ := auditlog.Mark(b.cfg.auditLog)
	return mark
}

// auditCalls counts the controller's completed requests in ns after mark, by
// "verb resource[/subresource]"; nil without an audit log.
func (b *bench) auditCalls(mark int64, ns string) map[string]float64 {
	if b.cfg.auditLog == "" {
		return nil
	}
	events, err := auditlog.ControllerRequestsSince(b.cfg.auditLog, mark, ns)
	if err != nil {
		return nil
	}
	out := map[string]float64{}
	for _, e := range events {
		key := e.Verb + " " + e.ObjectRef.Resource
		if e.ObjectRef.Subresource != "" {
			key += "/" + e.ObjectRef.Subresource
		}
		if e.ResponseStatus != nil && e.ResponseStatus.Code == 409 {
			key += " (409 conflict)"
		}
		out[key]++
	}
	return out
}
