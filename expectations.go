package main

import (
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"
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
