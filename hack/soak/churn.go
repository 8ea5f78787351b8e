package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
)

// The churn's operations. Each tick of the churn (--rate a second) draws one, by these weights
// (out of 100):
//
//	foo-scale            25  spec.replicas to another of 0, 1, 2
//	foo-lifecycle        30  alternately: delete a Foo; create one (a third of the time a new
//	                         name, two thirds a deleted one's name again, perhaps while the
//	                         garbage collector still has its old Deployment): the population
//	                         stays at --foos
//	deployment-replicas  12  the Deployment's spec.replicas, out of band (reverted)
//	deployment-image     12  the container's image (reverted: a rollout there and back)
//	deployment-labels    11  one managed label changed (reverted) and a foreign label added (kept)
//	deployment-delete    10  the Deployment deleted (re-created)
//
// The Foo and the Deployment are picked at random among the Foos in the soak's cache.
var opWeights = []struct {
	kind   string
	weight int
}{
	{"foo-scale", 25},
	{"foo-lifecycle", 30},
	{"deployment-replicas", 12},
	{"deployment-image", 12},
	{"deployment-labels", 11},
	{"deployment-delete", 10},
}

// driftImage is the image the churn sets out of band.
const driftImage = "example.com/soak-drift:1"

// replicasFor draws a Foo's replicas: 0 half the time, 1 four times in ten, 2 once in ten, so
// that 1,000 Foos run about 600 pods on the fake nodes (and every Foo with pods is Ready only
// once they are available) while most changes stay cheap for the shared machine.
func replicasFor(r float64) int32 {
	switch {
	case r < 0.5:
		return 0
	case r < 0.9:
		return 1
	default:
		return 2
	}
}

// outcome classifies an operation's result: the expected races (the Foo or Deployment went
// away since the cache showed it; the name is still taken) apart from real errors.
func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case apierrors.IsNotFound(err):
		return "not found"
	case apierrors.IsAlreadyExists(err):
		return "already exists"
	case apierrors.IsConflict(err):
		return "conflict"
	default:
		return "error"
	}
}

// churner runs the churn.
type churner struct {
	s   *soak
	o   *observer
	ops *atomic.Int64 // operations started

	mu        sync.Mutex
	rng       *rand.Rand
	deleted   []string // namespace/name of deleted Foos, for re-creating
	toCreate  int      // deletions not yet balanced by a create
	nextNew   int
	touched   int
	counts    map[string]map[string]int // kind -> outcome -> count
	skipped   int                       // ticks with --max-in-flight operations still running
	errorLogs int
}

func newChurner(s *soak, o *observer, ops *atomic.Int64, seed uint64) *churner {
	return &churner{s: s, o: o, ops: ops, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), counts: map[string]map[string]int{}}
}

func (c *churner) float() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rng.Float64()
}

func (c *churner) intN(n int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rng.IntN(n)
}

// run sends operations at rate a second until ctx is done, then waits for those in flight.
func (c *churner) run(ctx context.Context, rate float64, maxInFlight int) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			c.mu.Lock()
			c.skipped++
			c.mu.Unlock()
			continue
		}
		c.ops.Add(1)
		wg.Go(func() {
			defer func() { <-sem }()
			opCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			kind, err := c.one(opCtx)
			c.record(kind, err)
		})
	}
}

func (c *churner) record(kind string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts[kind] == nil {
		c.counts[kind] = map[string]int{}
	}
	o := outcome(err)
	c.counts[kind][o]++
	if o == "error" && c.errorLogs < 20 {
		c.errorLogs++
		progress("churn: %s: %v", kind, err)
	}
}

// one draws an operation and runs it. It returns the operation's kind ("... skipped" when the
// cache had nothing to run it on) and its error.
func (c *churner) one(ctx context.Context) (string, error) {
	n := c.intN(100)
	kind := opWeights[len(opWeights)-1].kind
	for _, w := range opWeights {
		if n < w.weight {
			kind = w.kind
			break
		}
		n -= w.weight
	}
	if kind == "foo-lifecycle" {
		return c.lifecycle(ctx)
	}
	foos := c.o.fooList()
	if len(foos) == 0 {
		return kind + " skipped", nil
	}
	f := foos[c.intN(len(foos))]
	if kind == "foo-scale" {
		cur := int32(1)
		if f.Spec.Replicas != nil {
			cur = *f.Spec.Replicas
		}
		want := replicasFor(c.float())
		if want == cur {
			want = (cur + 1) % 3
		}
		return kind, c.patch(ctx, "foos", f.Namespace, f.Name, types.MergePatchType, map[string]any{"spec": map[string]any{"replicas": want}})
	}
	d := c.o.deployment(f)
	if d == nil {
		return kind + " skipped", nil
	}
	switch kind {
	case "deployment-replicas":
		cur := int32(1)
		if d.Spec.Replicas != nil {
			cur = *d.Spec.Replicas
		}
		return kind, c.patch(ctx, "deployments", d.Namespace, d.Name, types.MergePatchType,
			map[string]any{"spec": map[string]any{"replicas": (cur + 1) % 3}})
	case "deployment-image":
		if len(d.Spec.Template.Spec.Containers) == 0 {
			return kind + " skipped", nil
		}
		return kind, c.patch(ctx, "deployments", d.Namespace, d.Name, types.StrategicMergePatchType,
			map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
				"containers": []any{map[string]any{"name": d.Spec.Template.Spec.Containers[0].Name, "image": driftImage}}}}}})
	case "deployment-labels":
		ref := c.o.reference()
		if ref == nil || len(ref.labels) == 0 {
			return kind + " skipped", nil
		}
		keys := make([]string, 0, len(ref.labels))
		for k := range ref.labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		c.mu.Lock()
		c.touched++
		touched := c.touched
		c.mu.Unlock()
		return kind, c.patch(ctx, "deployments", d.Namespace, d.Name, types.MergePatchType,
			map[string]any{"metadata": map[string]any{"labels": map[string]any{
				keys[c.intN(len(keys))]: "soak-drift", "soak.example.com/touched": strconv.Itoa(touched)}}})
	default: // deployment-delete
		return kind, c.s.kube.AppsV1().Deployments(d.Namespace).Delete(ctx, d.Name,
			metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground), Preconditions: metav1.NewUIDPreconditions(string(d.UID))})
	}
}

// lifecycle deletes a Foo, or creates one when a deletion is not yet balanced.
func (c *churner) lifecycle(ctx context.Context) (string, error) {
	c.mu.Lock()
	create := c.toCreate > 0
	if create {
		c.toCreate--
	} else {
		c.toCreate++
	}
	c.mu.Unlock()
	if !create {
		foos := c.o.fooList()
		if len(foos) == 0 {
			c.mu.Lock()
			c.toCreate-- // nothing to balance
			c.mu.Unlock()
			return "foo-delete skipped", nil
		}
		f := foos[c.intN(len(foos))]
		err := c.s.sample.SamplecontrollerV1().Foos(f.Namespace).Delete(ctx, f.Name, metav1.DeleteOptions{})
		c.mu.Lock()
		if err == nil {
			c.deleted = append(c.deleted, f.Namespace+"/"+f.Name)
		} else {
			c.toCreate-- // nothing to balance
		}
		c.mu.Unlock()
		return "foo-delete", err
	}
	kind := "foo-create"
	c.mu.Lock()
	var ns, name string
	if len(c.deleted) > 0 && c.rng.IntN(3) < 2 {
		kind = "foo-recreate"
		i := c.rng.IntN(len(c.deleted))
		key := c.deleted[i]
		c.deleted[i] = c.deleted[len(c.deleted)-1]
		c.deleted = c.deleted[:len(c.deleted)-1]
		ns, name, _ = strings.Cut(key, "/")
	} else {
		ns = c.s.namespaces[c.nextNew%len(c.s.namespaces)]
		name = fmt.Sprintf("foo-new-%06d", c.nextNew)
		c.nextNew++
	}
	replicas := replicasFor(c.rng.Float64())
	c.mu.Unlock()
	_, err := c.s.sample.SamplecontrollerV1().Foos(ns).Create(ctx, newFoo(ns, name, replicas), metav1.CreateOptions{})
	if err != nil {
		c.mu.Lock()
		c.toCreate++ // still to balance
		c.mu.Unlock()
	}
	return kind, err
}

func (c *churner) patch(ctx context.Context, resource, ns, name string, pt types.PatchType, body map[string]any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	switch resource {
	case "foos":
		_, err = c.s.sample.SamplecontrollerV1().Foos(ns).Patch(ctx, name, pt, data, metav1.PatchOptions{})
	default:
		_, err = c.s.kube.AppsV1().Deployments(ns).Patch(ctx, name, pt, data, metav1.PatchOptions{})
	}
	return err
}

// OpCounts is what the churn did: per kind, per outcome.
type OpCounts struct {
	Counts  map[string]map[string]int `json:"byKindAndOutcome"`
	Skipped int                       `json:"ticksSkippedBusy"`
	Sent    int64                     `json:"sent"`
}

func (c *churner) summary() OpCounts {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := OpCounts{Counts: map[string]map[string]int{}, Skipped: c.skipped, Sent: c.ops.Load()}
	for k, v := range c.counts {
		out.Counts[k] = map[string]int{}
		for o, n := range v {
			out.Counts[k][o] = n
		}
	}
	return out
}

// newFoo is a Foo whose Deployment has its name.
func newFoo(ns, name string, replicas int32) *samplev1.Foo {
	return &samplev1.Foo{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       samplev1.FooSpec{Deployment: samplev1.FooDeployment{Name: name}, Replicas: ptr.To(replicas)},
	}
}
