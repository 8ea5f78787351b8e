package main

import (
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
)

// deploymentExpectations remembers the Deployments this controller has just created (or was
// told already exist) until its lagging cache shows them, so that a sync in between waits for
// the add event instead of creating again (docs/walkthrough.md, "Expectations"). One ends when
// the cache shows the Deployment, when it is reported deleted, or after ttl.
type deploymentExpectations struct {
	ttl time.Duration
	now func() time.Time // time.Now; tests move it

	mu       sync.Mutex
	deadline map[cache.ObjectName]time.Time // Deployment -> when to stop waiting for the cache
}

func newDeploymentExpectations(ttl time.Duration) *deploymentExpectations {
	return &deploymentExpectations{ttl: ttl, now: time.Now, deadline: map[cache.ObjectName]time.Time{}}
}

// expect records that the Deployment exists in the API server, whatever the cache says.
func (e *deploymentExpectations) expect(deployment cache.ObjectName) {
	e.expectFor(deployment, e.ttl)
}

// expectFor is expect for a time of the caller's: for a Deployment the cache will never show
// (see existingDeployment), until the name is worth checking again.
func (e *deploymentExpectations) expectFor(deployment cache.ObjectName, ttl time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.deadline[deployment] = e.now().Add(ttl)
}

// pending says whether the cache has yet to show a Deployment we know exists, and for how much
// longer we wait for it.
func (e *deploymentExpectations) pending(deployment cache.ObjectName) (time.Duration, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	deadline, ok := e.deadline[deployment]
	if !ok {
		return 0, false
	}
	left := deadline.Sub(e.now())
	if left <= 0 {
		delete(e.deadline, deployment)
		return 0, false
	}
	return left, true
}

// observed ends the wait: the cache shows the Deployment, or reported it deleted.
func (e *deploymentExpectations) observed(deployment cache.ObjectName) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.deadline, deployment)
}

// ownWrites remembers, for each object this controller has just updated, the resourceVersion
// its write replaced, until the cache shows another. A sync that reads the object at that
// version from the cache is looking at the past: the workqueue hands a key out again right
// after a sync when an event came in meanwhile, and that is usually before the watch event of
// the sync's own write. Acting on the past would repeat the write with a resourceVersion the
// API server has moved past, a certain 409 Conflict; the sync waits for the event instead.
// A record ends when the cache shows another version, when the object is deleted, or after ttl.
type ownWrites struct {
	ttl time.Duration
	now func() time.Time // time.Now; tests move it

	mu       sync.Mutex
	replaced map[ownWriteKey]replacedVersion
}

// The resources whose writes ownWrites remembers.
var (
	deploymentResource = appsv1.Resource("deployments")
	fooResource        = samplev1.Resource("foos")
)

// ownWriteKey names an object: its resource (deployments.apps, foos.samplecontroller...) and
// namespace/name.
type ownWriteKey struct {
	resource schema.GroupResource
	name     cache.ObjectName
}

type replacedVersion struct {
	resourceVersion string
	deadline        time.Time
}

func newOwnWrites(ttl time.Duration) *ownWrites {
	return &ownWrites{ttl: ttl, now: time.Now, replaced: map[ownWriteKey]replacedVersion{}}
}

// wrote records that our write replaced the object's version replaced with written.
// A write that changed nothing keeps the object's version and brings no event: not recorded.
func (w *ownWrites) wrote(resource schema.GroupResource, name cache.ObjectName, replaced, written string) {
	if replaced == "" || replaced == written {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.replaced[ownWriteKey{resource, name}] = replacedVersion{resourceVersion: replaced, deadline: w.now().Add(w.ttl)}
}

// cacheIsBehind says whether the cache, showing the object at version cached, has yet to show
// our last write of it. Versions are compared for equality only (a resourceVersion is opaque):
// any version other than the one our write replaced means the cache has caught up, or that
// someone wrote after us, and either way the sync acts on what it shows.
func (w *ownWrites) cacheIsBehind(resource schema.GroupResource, name cache.ObjectName, cached string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := ownWriteKey{resource, name}
	r, ok := w.replaced[key]
	if !ok {
		return false
	}
	if r.resourceVersion != cached || !w.now().Before(r.deadline) {
		delete(w.replaced, key)
		return false
	}
	return true
}

// forget ends the record of a deleted object.
func (w *ownWrites) forget(resource schema.GroupResource, name cache.ObjectName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.replaced, ownWriteKey{resource, name})
}

func (w *ownWrites) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.replaced)
}
