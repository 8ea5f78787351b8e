package main

import (
	"context"
	"fmt"
	"maps"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	kubeinformers "k8s.io/client-go/informers"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/cache"

	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
	informers "example.com/sample-controller/pkg/generated/informers/externalversions"
	listers "example.com/sample-controller/pkg/generated/listers/samplecontroller/v1"
)

// fooLabel is the label the controller puts on a Foo's Deployment, its value the Foo's name
// (README: "Foo names are at most 63 characters").
const fooLabel = "samplecontroller.example.com/foo"

// reference is what every Deployment of a Foo is made of, whatever the Foo: its container's
// image and the labels other than fooLabel. It is read off the first Deployment the controller
// creates, before the churn edits any, so the soak needs no copy of the controller's template.
type reference struct {
	image  string
	labels map[string]string
}

// observer watches Foos and Deployments from the soak's own process (all namespaces, the soak's
// counted) and tells how many Foos have not converged.
type observer struct {
	namespaces  map[string]bool
	foos        listers.FooLister
	deployments appslisters.DeploymentLister

	mu  sync.Mutex
	ref *reference
}

func (s *soak) observe(ctx context.Context) (*observer, error) {
	o := &observer{namespaces: map[string]bool{}}
	for _, ns := range s.namespaces {
		o.namespaces[ns] = true
	}
	ff := informers.NewSharedInformerFactory(s.sample, 0)
	kf := kubeinformers.NewSharedInformerFactory(s.kube, 0)
	fi, di := ff.Samplecontroller().V1().Foos(), kf.Apps().V1().Deployments()
	o.foos, o.deployments = fi.Lister(), di.Lister()
	if _, err := di.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: o.learn}); err != nil {
		return nil, err
	}
	ff.Start(ctx.Done())
	kf.Start(ctx.Done())
	for typ, ok := range ff.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil, fmt.Errorf("the %v cache did not sync", typ)
		}
	}
	for typ, ok := range kf.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil, fmt.Errorf("the %v cache did not sync", typ)
		}
	}
	return o, nil
}

// learn takes the reference from the first Deployment a Foo controls.
func (o *observer) learn(obj any) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok || !o.namespaces[d.Namespace] || len(d.Spec.Template.Spec.Containers) == 0 {
		return
	}
	if ref := metav1.GetControllerOf(d); ref == nil || ref.Kind != "Foo" {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ref == nil {
		r := &reference{image: d.Spec.Template.Spec.Containers[0].Image, labels: maps.Clone(d.Labels)}
		delete(r.labels, fooLabel)
		o.ref = r
	}
}

func (o *observer) reference() *reference {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ref
}

// state counts the soak's Foos, those not converged, and the stray Deployments.
type state struct {
	foos, notConverged, stray int
}

func (o *observer) state() state {
	var st state
	ref := o.reference()
	foos, _ := o.foos.List(labels.Everything())
	byUID := map[string]bool{}
	for _, f := range foos {
		if !o.namespaces[f.Namespace] {
			continue
		}
		st.foos++
		byUID[string(f.UID)] = true
		d, err := o.deployments.Deployments(f.Namespace).Get(f.Spec.Deployment.Name)
		if err != nil {
			d = nil
		}
		if !converged(f, d, ref) {
			st.notConverged++
		}
	}
	deployments, _ := o.deployments.List(labels.Everything())
	for _, d := range deployments {
		if !o.namespaces[d.Namespace] {
			continue
		}
		if c := metav1.GetControllerOf(d); c == nil || !byUID[string(c.UID)] {
			st.stray++
		}
	}
	return st
}

// fooList lists the soak's Foos in the cache.
func (o *observer) fooList() []*samplev1.Foo {
	all, _ := o.foos.List(labels.Everything())
	out := all[:0:0]
	for _, f := range all {
		if o.namespaces[f.Namespace] {
			out = append(out, f)
		}
	}
	return out
}

// deployment is the cached Deployment of a Foo, or nil.
func (o *observer) deployment(f *samplev1.Foo) *appsv1.Deployment {
	d, err := o.deployments.Deployments(f.Namespace).Get(f.Spec.Deployment.Name)
	if err != nil {
		return nil
	}
	return d
}

// converged: the Foo's status describes its current spec (observedGeneration), says Ready with
// every desired replica available, and its Deployment d exists, is controlled by this Foo (its
// UID: not an earlier Foo of the same name), and is what the Foo asks for: its replicas, and
// (once ref is known) the reference's image and labels, with fooLabel naming the Foo. So a
// Deployment edited out of band is not converged until the controller has put it back.
func converged(f *samplev1.Foo, d *appsv1.Deployment, ref *reference) bool {
	want := int32(1)
	if f.Spec.Replicas != nil {
		want = *f.Spec.Replicas
	}
	ready := meta.FindStatusCondition(f.Status.Conditions, samplev1.ConditionReady)
	if f.Generation == 0 || f.Status.ObservedGeneration != f.Generation || ready == nil ||
		ready.Status != metav1.ConditionTrue || ready.ObservedGeneration != f.Generation || f.Status.AvailableReplicas != want {
		return false
	}
	if d == nil {
		return false
	}
	if c := metav1.GetControllerOf(d); c == nil || c.UID != f.UID {
		return false
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != want || d.Status.AvailableReplicas != want {
		return false
	}
	if ref == nil {
		return true
	}
	if len(d.Spec.Template.Spec.Containers) != 1 || d.Spec.Template.Spec.Containers[0].Image != ref.image || d.Labels[fooLabel] != f.Name {
		return false
	}
	for k, v := range ref.labels {
		if d.Labels[k] != v {
			return false
		}
	}
	return true
}
