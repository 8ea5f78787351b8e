//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"
)

// Started on a cluster without the Foo CRD, the controller says so in one line that names the
// file to apply, keeps waiting, and starts working as soon as the CRD is installed.
func TestControllerStartedBeforeCRD(t *testing.T) {
	if out, err := kubectl("delete", "crd", crdName, "--ignore-not-found", "--wait=true", "--timeout=60s"); err != nil {
		t.Fatalf("deleting the CRD: %v\n%s", err, out)
	}
	ns := newNamespace(t)
	p := startController(t, "--namespace="+ns)

	const want = "install its CRD with `kubectl apply -k artifacts/crd`"
	eventually(t, p, 30*time.Second, "the controller to say the CRD is missing", func() (bool, string) {
		return strings.Contains(p.Log(), want), p.LogTail(3)
	})
	if strings.Contains(p.Log(), "could not find the requested resource") {
		t.Errorf("the log has the obscure informer error instead of only the clear message:\n%s", p.LogTail(10))
	}

	ensureCRD(t)
	eventually(t, p, 30*time.Second, "the controller to find the Foo API", func() (bool, string) {
		return strings.Contains(p.Log(), "Foo API is served") && strings.Contains(p.Log(), "Started workers"), p.LogTail(3)
	})
	createFoo(t, newFoo(ns, "late", "late", 1))
	waitForFooConverged(t, p, ns, "late", 60*time.Second)
}
