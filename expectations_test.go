package main

import (
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2/ktesting"

	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
)

// fakeClock lets a test move the expectations' time.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func (f *fixture) creates() int {
	n := 0
	for _, a := range f.kubeclient.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "deployments" {
			n++
		}
	}
	return n
}

// After creating a Deployment, the controller does not create it again while its cache has
// yet to show it (our own status write brings the Foo back at once, and after a reconnect the
// cache can be seconds behind): a second create would only be answered 409 AlreadyExists.
func TestNoSecondCreateWhileTheCacheCatchesUp(t *testing.T) {
	foo := newFoo("test", 1).foo
	f := newFixture(t, []*samplev1.Foo{foo}, nil)
	_, ctx := ktesting.NewTestContext(t)
	key := cache.MetaObjectToName(foo)
	if err := f.controller.syncFoo(ctx, key); err != nil {
		t.Fatal(err)
	}
	if n := f.creates(); n != 1 {
		t.Fatalf("first sync: %d creates, want 1", n)
	}
	// The status write comes back as a Foo update; the Deployment cache still lacks it.
	for range 3 {
		if err := f.controller.syncFoo(ctx, key); err != nil {
			t.Fatalf("a sync while the cache catches up = %v, want nil (nothing to retry)", err)
		}
	}
	if n := f.creates(); n != 1 {
		t.Errorf("%d creates while the cache caught up, want 1", n)
	}
}

// An AlreadyExists answer for a Deployment that carries our label means the cache is behind:
// the controller reports from the API server's copy, then waits for the Deployment's add event
// (or the expectation's deadline), not for the error backoff, and creates nothing more.
func TestAlreadyExistsWaitsForTheCache(t *testing.T) {
	foo := newFoo("test", 1).foo
	f := newFixture(t, []*samplev1.Foo{foo}, nil)
	f.addUnwatched(newDeploymentFor(foo).d)
	_, ctx := ktesting.NewTestContext(t)
	key := cache.MetaObjectToName(foo)
	for range 3 {
		if err := f.controller.syncFoo(ctx, key); err != nil {
			t.Fatalf("syncFoo = %v, want nil: the add event brings the Foo back", err)
		}
	}
	if n := f.creates(); n != 1 {
		t.Errorf("%d creates, want 1", n)
	}
	if w := describe(f.writes()); !slices.Equal(w, []string{"create deployments", "update foos/status"}) {
		t.Errorf("writes = %q, want the one create and the status from the API server's copy, nothing while we wait", w)
	}
	// The safety net: the Foo comes back by itself once the wait is over.
	if _, pending := f.controller.expectations.pending(cache.NewObjectName(foo.Namespace, foo.Spec.Deployment.Name)); !pending {
		t.Error("no expectation pending after AlreadyExists")
	}
	if f.controller.workqueue.Len() != 0 {
		t.Errorf("the key was queued at once (%d); want it queued only after the wait", f.controller.workqueue.Len())
	}
}

// The wait ends when the cache shows the Deployment, when the informer reports it deleted (a
// Deployment deleted by hand is re-created at once), or after the deadline.
func TestExpectationEnds(t *testing.T) {
	foo := newFoo("test", 1).foo
	name := cache.NewObjectName(foo.Namespace, foo.Spec.Deployment.Name)
	_, ctx := ktesting.NewTestContext(t)
	key := cache.MetaObjectToName(foo)

	t.Run("the cache shows the Deployment", func(t *testing.T) {
		f := newFixture(t, []*samplev1.Foo{foo}, nil)
		if err := f.controller.syncFoo(ctx, key); err != nil {
			t.Fatal(err)
		}
		created, _ := f.kubeclient.Tracker().Get(appsv1.SchemeGroupVersion.WithResource("deployments"), foo.Namespace, foo.Spec.Deployment.Name)
		f.addDeploymentToCache(t, created.(*appsv1.Deployment))
		if err := f.controller.syncFoo(ctx, key); err != nil {
			t.Fatal(err)
		}
		if _, pending := f.controller.expectations.pending(name); pending {
			t.Error("still waiting after the cache showed the Deployment")
		}
	})
	t.Run("deleted", func(t *testing.T) {
		f := newFixture(t, []*samplev1.Foo{foo}, nil)
		if err := f.controller.syncFoo(ctx, key); err != nil {
			t.Fatal(err)
		}
		created, _ := f.kubeclient.Tracker().Get(appsv1.SchemeGroupVersion.WithResource("deployments"), foo.Namespace, foo.Spec.Deployment.Name)
		f.controller.deploymentDeleted(ctx, created)
		if _, pending := f.controller.expectations.pending(name); pending {
			t.Error("still waiting after the informer reported the Deployment deleted")
		}
		f.controller.deploymentDeleted(ctx, cache.DeletedFinalStateUnknown{Key: name.String(), Obj: created}) // a tombstone: no panic
	})
	t.Run("the deadline passes", func(t *testing.T) {
		f := newFixture(t, []*samplev1.Foo{foo}, nil)
		clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		f.controller.expectations.now = clock.now
		f.addUnwatched(newDeploymentFor(foo).d)
		if err := f.controller.syncFoo(ctx, key); err != nil {
			t.Fatal(err)
		}
		clock.t = clock.t.Add(expectationTimeout - time.Second)
		if err := f.controller.syncFoo(ctx, key); err != nil || f.creates() != 1 {
			t.Fatalf("before the deadline: %v, %d creates; want nil, 1", err, f.creates())
		}
		clock.t = clock.t.Add(2 * time.Second)
		if err := f.controller.syncFoo(ctx, key); err != nil || f.creates() != 2 {
			t.Errorf("after the deadline: %v, %d creates; want a new create", err, f.creates())
		}
	})
}

func (f *fixture) addDeploymentToCache(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	if err := f.deploymentCache.Add(d); err != nil {
		t.Fatal(err)
	}
}
