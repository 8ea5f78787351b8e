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

// A sync that runs before the cache shows this controller's own last write (the workqueue hands
// a key out again right after a sync when an event came in meanwhile, which is usually before
// the watch event of that sync's write) reads the version the write replaced. Acting on it
// would repeat the write with a resourceVersion the API server has moved past: a certain 409
// Conflict. It waits for the event instead, and acts on what the event brings.
func TestNoWriteFromACacheThatHasNotSeenOurLastWrite(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	scaled := newFoo("test", 2).generation(2).foo // replicas 1 -> 2: the Deployment must be updated
	stale := newDeploymentFor(newFoo("test", 1).foo).available().d

	t.Run("Deployment update", func(t *testing.T) {
		f := newFixture(t, []*samplev1.Foo{scaled}, []*appsv1.Deployment{stale})
		newAPIServer(f, faultNone) // new resourceVersions, 409 for a stale one
		key := cache.MetaObjectToName(scaled)
		if err := f.controller.syncFoo(ctx, key); err != nil {
			t.Fatal(err)
		}
		if w := describe(f.writes()); !slices.Equal(w, []string{"update deployments", "update foos/status"}) {
			t.Fatalf("first sync wrote %q, want the Deployment update and the status", w)
		}
		f.kubeclient.ClearActions()
		f.client.ClearActions()

		// Neither cache has the writes yet: the same Foo, the same Deployment.
		if err := f.controller.syncFoo(ctx, key); err != nil {
			t.Fatalf("a sync before the cache caught up = %v, want nil: the write's event brings the key back", err)
		}
		if w := describe(f.writes()); len(w) != 0 {
			t.Errorf("a sync on the cache of before our update wrote %q, want nothing (each would be a 409)", w)
		}
		f.kubeclient.ClearActions()
		f.client.ClearActions()

		// The Foo's event arrives, the Deployment's not yet: still nothing to do.
		catchUp(t, f, key, "")
		if err := f.controller.syncFoo(ctx, key); err != nil {
			t.Fatal(err)
		}
		if w := describe(f.writes()); len(w) != 0 {
			t.Errorf("after the Foo's event, with the Deployment's not yet in: wrote %q, want nothing", w)
		}
		// Both caches have caught up: the sync acts on them, and finds the Deployment as the
		// Foo wants it and the status as it is.
		catchUp(t, f, key, scaled.Spec.Deployment.Name)
		if err := f.controller.syncFoo(ctx, key); err != nil {
			t.Fatal(err)
		}
		if w := describe(f.writes()); len(w) != 0 {
			t.Errorf("with both caches caught up: wrote %q, want nothing", w)
		}
		if n := f.controller.ownWrites.len(); n != 0 {
			t.Errorf("%d writes still remembered once the cache showed them, want 0", n)
		}
	})

	t.Run("status update", func(t *testing.T) {
		foo := newFoo("test", 1).foo // never reported on
		f := newFixture(t, []*samplev1.Foo{foo}, []*appsv1.Deployment{newDeploymentFor(foo).available().d})
		newAPIServer(f, faultNone) // new resourceVersions, 409 for a stale one
		key := cache.MetaObjectToName(foo)
		if err := f.controller.syncFoo(ctx, key); err != nil {
			t.Fatal(err)
		}
		if w := describe(f.writes()); !slices.Equal(w, []string{"update foos/status"}) {
			t.Fatalf("first sync wrote %q, want the status", w)
		}
		f.client.ClearActions()
		if err := f.controller.syncFoo(ctx, key); err != nil {
			t.Fatal(err)
		}
		if w := describe(f.writes()); len(w) != 0 {
			t.Errorf("a sync on the Foo of before our status write wrote %q, want nothing (it would be a 409)", w)
		}
		f.client.ClearActions()
		// The Foo's event: converged, nothing to write.
		catchUp(t, f, key, "")
		if err := f.controller.syncFoo(ctx, key); err != nil {
			t.Fatal(err)
		}
		if w := describe(f.writes()); len(w) != 0 {
			t.Errorf("after the status write's event: wrote %q, want nothing", w)
		}
	})

	t.Run("someone else changed the object since", func(t *testing.T) {
		// The cache shows a version other than the one we replaced: not ours to wait for.
		f := newFixture(t, []*samplev1.Foo{scaled}, []*appsv1.Deployment{stale})
		newAPIServer(f, faultNone) // new resourceVersions, 409 for a stale one
		key := cache.MetaObjectToName(scaled)
		if err := f.controller.syncFoo(ctx, key); err != nil {
			t.Fatal(err)
		}
		f.kubeclient.ClearActions()
		catchUp(t, f, key, "") // our status write is in the Foo cache
		edited := stale.DeepCopy()
		edited.ResourceVersion = "999" // someone's write, after ours, scaled it back
		if err := f.kubeclient.Tracker().Update(deploymentsResource, edited, edited.Namespace); err != nil {
			t.Fatal(err)
		}
		f.addDeploymentToCache(t, edited)
		if err := f.controller.syncFoo(ctx, key); err != nil {
			t.Fatal(err)
		}
		if w := describe(f.kubeclient.Actions()); !slices.Equal(w, []string{"update deployments"}) {
			t.Errorf("drift after our write: requests %q, want the repair", w)
		}
	})

	t.Run("the cache never catches up", func(t *testing.T) {
		f := newFixture(t, []*samplev1.Foo{scaled}, []*appsv1.Deployment{stale})
		newAPIServer(f, faultNone) // new resourceVersions, 409 for a stale one
		clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		f.controller.ownWrites.now = clock.now
		key := cache.MetaObjectToName(scaled)
		if err := f.controller.syncFoo(ctx, key); err != nil {
			t.Fatal(err)
		}
		f.kubeclient.ClearActions()
		clock.t = clock.t.Add(expectationTimeout + time.Second)
		_ = f.controller.syncFoo(ctx, key) // answered 409, as the API server would: the cache really is stale
		if w := describe(f.kubeclient.Actions()); !slices.Equal(w, []string{"update deployments"}) {
			t.Errorf("after the deadline: requests %q, want the update tried again", w)
		}
	})

	t.Run("a write that changed nothing is not waited for", func(t *testing.T) {
		// The API server keeps the resourceVersion of a write that changes nothing, and sends no
		// event for it: waiting for one would stall the Foo until the deadline.
		f := newFixture(t, []*samplev1.Foo{scaled}, []*appsv1.Deployment{stale}) // no bump: the fake keeps the version
		key := cache.MetaObjectToName(scaled)
		if err := f.controller.syncFoo(ctx, key); err != nil {
			t.Fatal(err)
		}
		f.kubeclient.ClearActions()
		if err := f.controller.syncFoo(ctx, key); err != nil {
			t.Fatal(err)
		}
		if w := describe(f.kubeclient.Actions()); !slices.Equal(w, []string{"update deployments"}) {
			t.Errorf("requests %q, want the sync to act on the cache as it is", w)
		}
	})
}

// The record of a write ends with the object: a deleted Foo or Deployment leaves nothing behind.
func TestOwnWritesEndWithTheObject(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	scaled := newFoo("test", 2).generation(2).foo
	f := newFixture(t, []*samplev1.Foo{scaled}, []*appsv1.Deployment{newDeploymentFor(newFoo("test", 1).foo).available().d})
	newAPIServer(f, faultNone) // new resourceVersions, 409 for a stale one
	if err := f.controller.syncFoo(ctx, cache.MetaObjectToName(scaled)); err != nil {
		t.Fatal(err)
	}
	if n := f.controller.ownWrites.len(); n != 2 {
		t.Fatalf("%d writes remembered, want 2 (the Deployment, the Foo's status)", n)
	}
	d, _ := f.controller.deploymentsLister.Deployments(scaled.Namespace).Get(scaled.Spec.Deployment.Name)
	f.controller.deploymentDeleted(ctx, d)
	f.controller.fooDeleted(ctx, cache.DeletedFinalStateUnknown{Key: cache.MetaObjectToName(scaled).String(), Obj: scaled})
	if n := f.controller.ownWrites.len(); n != 0 {
		t.Errorf("%d writes remembered after both objects were deleted, want 0", n)
	}
}
