package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
	clientset "example.com/sample-controller/pkg/generated/clientset/versioned"
)

// Floor is the controller against the floor at one N, over the rounds.
type Floor struct {
	N      int          `json:"n"`
	Rounds []FloorRound `json:"rounds"`
	// Medians over the rounds of controller time / floor time.
	Ratio           float64 `json:"controllerOverFloor"`
	PrecreatedRatio float64 `json:"controllerOverPrecreatedFloor"`
}

// FloorRound is one controller convergence run and the floors measured right after it.
type FloorRound struct {
	ControllerSeconds float64 `json:"controllerSeconds"`
	// The floor timed like the controller: first Foo create -> every status seen current.
	Seconds float64 `json:"floorSeconds"`
	// The writes alone, for Foos created before the clock starts: first write -> every status seen current.
	PrecreatedSeconds float64 `json:"precreatedFloorSeconds"`
}

func (r FloorRound) ratio() float64           { return r.ControllerSeconds / r.Seconds }
func (r FloorRound) precreatedRatio() float64 { return r.ControllerSeconds / r.PrecreatedSeconds }

// medians are the medians over the rounds of controller / floor and controller / writes alone.
func (f Floor) medians() (ratio, precreatedRatio float64) {
	var ratios, precreatedRatios []float64
	for _, rd := range f.Rounds {
		ratios = append(ratios, rd.ratio())
		precreatedRatios = append(precreatedRatios, rd.precreatedRatio())
	}
	return median(ratios), median(precreatedRatios)
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// floor does the necessary writes of n Foos (a Deployment create and a status write each) with a
// bare client: the controller's QPS budget and parallelism, no informers, no queue. It is timed
// exactly as a convergence run: the clock starts with the first Foo create, the Foos are created
// by the same 32 goroutines and handed over as each create returns (the controller, too, starts on
// a Foo while the others are still being created), and it stops when the same observer has seen
// every Foo's status current. With precreated, the Foos are all created before the clock starts:
// the writes alone, a stricter figure that leaves out the load of creating the Foos. The
// Deployments it creates are the controller's own, made from template.
func (b *bench) floor(ctx context.Context, ns string, n int, precreated bool, template *floorTemplate) (seconds float64, err error) {
	if err := b.createNamespace(ctx, ns); err != nil {
		return 0, err
	}
	o, err := b.observe(ctx, ns)
	if err != nil {
		return 0, err
	}
	defer o.stop()
	rc, err := clientcmd.BuildConfigFromFlags("", b.cfg.kubeconfig)
	if err != nil {
		return 0, err
	}
	rc.QPS, rc.Burst = float32(b.cfg.qps), b.cfg.burst
	rc = rest.AddUserAgent(rc, "bench-floor")
	// Two clientsets, each with its own rate limiter, as the controller has.
	kc := kubernetes.NewForConfigOrDie(rc)
	sc := clientset.NewForConfigOrDie(rc)
	created := make(chan *samplev1.Foo, n)
	if precreated {
		if err := b.createFoos(ctx, ns, n, 0, created); err != nil {
			return 0, err
		}
		progress("floor: %d Deployment creates + %d status writes for existing Foos, QPS %d, burst %d, %d goroutines", n, n, b.cfg.qps, b.cfg.burst, b.cfg.workers)
	} else {
		progress("floor: %d Deployment creates + %d status writes as the Foos are created, QPS %d, burst %d, %d goroutines", n, n, b.cfg.qps, b.cfg.burst, b.cfg.workers)
	}
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range b.cfg.workers {
		wg.Go(func() {
			for fo := range created {
				if _, err := kc.AppsV1().Deployments(ns).Create(ctx, template.deploymentFor(fo), metav1.CreateOptions{}); err != nil {
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				fo.Status.ObservedGeneration = fo.Generation
				meta.SetStatusCondition(&fo.Status.Conditions, metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue,
					Reason: "DeploymentAvailable", Message: "floor", ObservedGeneration: fo.Generation})
				if _, err := sc.SamplecontrollerV1().Foos(ns).UpdateStatus(ctx, fo, metav1.UpdateOptions{}); err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	if !precreated {
		err = b.createFoos(ctx, ns, n, 0, created)
	}
	close(created)
	wg.Wait()
	if err == nil {
		err, _ = firstErr.Load().(error)
	}
	if err != nil {
		return 0, fmt.Errorf("floor: %w", err)
	}
	for {
		if _, withStatus := o.counts(); withStatus == n {
			return time.Since(start).Seconds(), nil
		}
		if time.Since(start) > b.cfg.timeout {
			return 0, fmt.Errorf("floor: not every status seen current after %s", b.cfg.timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// floorTemplate is a Deployment the controller created for one Foo, as the controller sent it.
//
// The floor must write the Deployment the controller writes, and the controller's newDeployment
// is in package main at the repository's root, which a command cannot import. So the floor
// copies, in each round, one that the controller made in the convergence round just before it,
// for a Foo with the same spec as the floor's (foo(), replicas 0), and makes it another Foo's by
// changing only what names the Foo: its name and namespace, the label values that are the Foo's
// name, and the Foo's name and UID in the controller ownerReference. What the controller sets
// (labels, selector, pod template, replicas, the ownerReference's controller and
// blockOwnerDeletion) the floor thus sets alike, and stays alike when the controller changes.
//
// What others set is left out: the API server's metadata (uid, resourceVersion, generation,
// creationTimestamp, managedFields), the status, and the revision annotation the Deployment
// controller adds. The fields the API server filled in with defaults (strategy,
// revisionHistoryLimit, the pod's restartPolicy, ...) stay, as no field tells them apart from
// the controller's: the server defaults them either way, and the floor's request is a few
// hundred bytes longer.
type floorTemplate struct {
	deployment *appsv1.Deployment
	foo        string    // the name of the Foo it was made for
	fooUID     types.UID // and its UID
}

// floorTemplate reads the Deployment the controller made for the first Foo in namespace ns.
func (b *bench) floorTemplate(ctx context.Context, ns string) (*floorTemplate, error) {
	source := foo(ns, 0, 0)
	d, err := b.kube.AppsV1().Deployments(ns).Get(ctx, source.Spec.Deployment.Name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("floor: the controller's Deployment to copy: %w", err)
	}
	owner := metav1.GetControllerOf(d)
	if owner == nil || owner.Kind != "Foo" || owner.Name != source.Name {
		return nil, fmt.Errorf("floor: Deployment %s/%s is not controlled by Foo %s: %+v", ns, d.Name, source.Name, owner)
	}
	annotations := d.Annotations
	delete(annotations, "deployment.kubernetes.io/revision")
	if len(annotations) == 0 {
		annotations = nil
	}
	return &floorTemplate{
		deployment: &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Labels: d.Labels, Annotations: annotations, Finalizers: d.Finalizers, OwnerReferences: d.OwnerReferences},
			Spec:       d.Spec,
		},
		foo:    owner.Name,
		fooUID: owner.UID,
	}, nil
}

// deploymentFor is the template made Foo f's.
func (t *floorTemplate) deploymentFor(f *samplev1.Foo) *appsv1.Deployment {
	d := t.deployment.DeepCopy()
	d.Name, d.Namespace = f.Spec.Deployment.Name, f.Namespace
	for _, labels := range []map[string]string{d.Labels, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels} {
		for k, v := range labels {
			if v == t.foo {
				labels[k] = f.Name
			}
		}
	}
	for i, ref := range d.OwnerReferences {
		if ref.UID == t.fooUID {
			d.OwnerReferences[i].Name, d.OwnerReferences[i].UID = f.Name, f.UID
		}
	}
	return d
}
