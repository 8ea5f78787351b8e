package main

import (
	"context"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
	informers "example.com/sample-controller/pkg/generated/informers/externalversions"
)

// observer watches Foos and Deployments in one namespace from the bench process and tells
// when every Foo has its Deployment and a current status.
type observer struct {
	mu          sync.Mutex
	foos        map[string]*samplev1.Foo
	deployments map[string]time.Time // name -> first seen
	stop        context.CancelFunc
}

func (b *bench) observe(ctx context.Context, ns string) (*observer, error) {
	ctx, cancel := context.WithCancel(ctx)
	o := &observer{foos: map[string]*samplev1.Foo{}, deployments: map[string]time.Time{}, stop: cancel}
	ff := informers.NewSharedInformerFactoryWithOptions(b.sample, 0, informers.WithNamespace(ns))
	kf := kubeinformers.NewSharedInformerFactoryWithOptions(b.kube, 0, kubeinformers.WithNamespace(ns))
	setFoo := func(obj any) {
		if f, ok := obj.(*samplev1.Foo); ok {
			o.mu.Lock()
			o.foos[f.Name] = f
			o.mu.Unlock()
		}
	}
	if _, err := ff.Samplecontroller().V1().Foos().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: setFoo, UpdateFunc: func(_, n any) { setFoo(n) },
	}); err != nil {
		return nil, err
	}
	if _, err := kf.Apps().V1().Deployments().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			d := obj.(*appsv1.Deployment)
			o.mu.Lock()
			if _, seen := o.deployments[d.Name]; !seen {
				o.deployments[d.Name] = time.Now()
			}
			o.mu.Unlock()
		},
	}); err != nil {
		return nil, err
	}
	ff.Start(ctx.Done())
	kf.Start(ctx.Done())
	ff.WaitForCacheSync(ctx.Done())
	kf.WaitForCacheSync(ctx.Done())
	return o, nil
}

// current: the Foo's status describes its latest spec (observedGeneration == generation) and
// reports every desired replica available.
func current(f *samplev1.Foo) bool {
	ready := meta.FindStatusCondition(f.Status.Conditions, samplev1.ConditionReady)
	return f.Generation > 0 && f.Status.ObservedGeneration == f.Generation &&
		ready != nil && ready.ObservedGeneration == f.Generation && f.Status.AvailableReplicas == *f.Spec.Replicas
}

// counts returns how many Foos have a Deployment, and how many have a current status.
func (o *observer) counts() (withDeployment, withStatus int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for name, f := range o.foos {
		if _, ok := o.deployments[name]; ok {
			withDeployment++
		}
		if current(f) {
			withStatus++
		}
	}
	return
}

// ready returns how many Foos are Ready=True.
func (o *observer) ready() (n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, f := range o.foos {
		if c := meta.FindStatusCondition(f.Status.Conditions, samplev1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue {
			n++
		}
	}
	return n
}
