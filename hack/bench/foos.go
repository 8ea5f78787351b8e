package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
)

func (b *bench) createNamespace(ctx context.Context, ns string) error {
	_, err := b.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	return err
}

// foo is the i-th Foo of a run; its Deployment has its name.
func foo(ns string, i int, replicas int32) *samplev1.Foo {
	name := fmt.Sprintf("foo-%05d", i)
	return &samplev1.Foo{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       samplev1.FooSpec{Deployment: samplev1.FooDeployment{Name: name}, Replicas: ptr.To(replicas)},
	}
}

// createFoos creates n Foos with many goroutines, as fast as the API server takes them. When
// created is not nil, each Foo the API server returned is sent to it (the floor's input).
func (b *bench) createFoos(ctx context.Context, ns string, n int, replicas int32, created chan<- *samplev1.Foo) error {
	err := inParallel(n, 32, func(i int) error {
		f, err := b.sample.SamplecontrollerV1().Foos(ns).Create(ctx, foo(ns, i, replicas), metav1.CreateOptions{})
		if err == nil && created != nil {
			created <- f
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("creating Foos: %w", err)
	}
	return nil
}

// inParallel calls do(0) ... do(n-1) from the given number of goroutines, each taking the next
// index as it finishes one, and returns the first error; a goroutine that meets an error stops.
func inParallel(n, goroutines int, do func(i int) error) error {
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if err := do(i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	err, _ := firstErr.Load().(error)
	return err
}
