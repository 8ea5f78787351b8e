package main

import (
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"
)

// deploymentExpectations remembers the Deployments this controller has just created, or was
// told already exist when it tried, until its Deployment cache shows them. Kubernetes' own
// ReplicaSet controller keeps such "expectations" of its creates, for the same reason.
//
// The cache is always a little behind the API server, and after a reconnect (an API server
// restart, a watch that expired) it can be seconds behind. A sync in that window finds no
// Deployment in the cache and would create it again, only to be answered 409 AlreadyExists,
// once for every event that brings the Foo back (our own status write is one). While an
// expectation is pending, the sync waits for the Deployment's add event instead. A pending
// expectation ends when a sync finds the Deployment in the cache, when the informer reports it
// deleted, or after ttl: should the cache never show it (a create and delete both missed by a
// relist), the Foo is synced again then and the Deployment created anew.
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
	e.mu.Lock()
	defer e.mu.Unlock()
	e.deadline[deployment] = e.now().Add(e.ttl)
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
