package webhookcert

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	testclock "k8s.io/utils/clock/testing"
)

const (
	testNS     = "sample-system"
	testSecret = "sample-controller-webhook-cert"
	testCRD    = "foos.samplecontroller.example.com"
	day        = 24 * time.Hour
	// waitTimeout is generous: the tests share two cores with -race and -count.
	waitTimeout = 30 * time.Second
)

var (
	testDNS = []string{"sample-controller-webhook.sample-system.svc", "sample-controller-webhook.sample-system.svc.cluster.local"}
	testIPs = []net.IP{net.ParseIP("127.0.0.1")}
)

func testOptions() Options {
	return Options{
		Namespace:   testNS,
		SecretName:  testSecret,
		CRDName:     testCRD,
		DNSNames:    testDNS,
		IPAddresses: testIPs,
	}
}

// testCRDObject is a CRD as the dynamic client sees it, configured for webhook conversion
// through a Service, or (webhook false) with strategy None.
func testCRDObject(webhook bool) *unstructured.Unstructured {
	conversion := map[string]interface{}{"strategy": "None"}
	if webhook {
		conversion = map[string]interface{}{
			"strategy": "Webhook",
			"webhook": map[string]interface{}{
				"conversionReviewVersions": []interface{}{"v1"},
				"clientConfig": map[string]interface{}{
					"service": map[string]interface{}{
						"namespace": testNS,
						"name":      "sample-controller-webhook",
						"path":      "/convert",
						"port":      int64(443),
					},
				},
			},
		}
	}
	return &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]interface{}{"name": testCRD},
		"spec": map[string]interface{}{
			"group": "samplecontroller.example.com",
			"scope": "Namespaced",
			"names": map[string]interface{}{"plural": "foos", "singular": "foo", "kind": "Foo", "listKind": "FooList"},
			"versions": []interface{}{
				map[string]interface{}{"name": "v1alpha1", "served": true, "storage": true},
			},
			"conversion": conversion,
		},
	}}
}

// env is a fake cluster (clientset, dynamic client), a fake clock and a logger whose output
// the test can read.
type env struct {
	t      *testing.T
	ctx    context.Context
	logger klog.Logger
	kube   *kubefake.Clientset
	dyn    *dynamicfake.FakeDynamicClient
	clock  *testclock.FakeClock
}

// newEnv makes an env holding crd (if not nil) and objs in the clientset.
func newEnv(t *testing.T, crd *unstructured.Unstructured, objs ...runtime.Object) *env {
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.BufferLogs(true)))
	var dynObjs []runtime.Object
	if crd != nil {
		dynObjs = append(dynObjs, crd)
	}
	return &env{
		t:      t,
		ctx:    klog.NewContext(context.Background(), logger),
		logger: logger,
		kube:   kubefake.NewClientset(objs...),
		dyn: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
			map[schema.GroupVersionResource]string{crdGVR: "CustomResourceDefinitionList"}, dynObjs...),
		clock: testclock.NewFakeClock(time.Now().Truncate(time.Second)),
	}
}

// logs returns what was logged so far.
func (e *env) logs() string {
	return e.logger.GetSink().(ktesting.Underlier).GetBuffer().String()
}

// start runs a Manager with opts until the test ends or stop is called (which waits for
// Run to return).
func (e *env) start(opts Options) (m *Manager, stop func()) {
	e.t.Helper()
	m, err := New(e.kube, e.dyn, opts)
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	m.clock = e.clock
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Errorf("Run: %v", err)
			}
		case <-time.After(waitTimeout):
			e.t.Errorf("Run did not return within %v of its context's end", waitTimeout)
		}
	}
	e.t.Cleanup(stop)
	return m, stop
}

// secret reads the Secret from the fake API server.
func (e *env) secret() (*corev1.Secret, error) {
	return e.kube.CoreV1().Secrets(testNS).Get(context.Background(), testSecret, metav1.GetOptions{})
}

// crd reads the CRD from the fake API server.
func (e *env) crd() (*unstructured.Unstructured, error) {
	return e.dyn.Resource(crdGVR).Get(context.Background(), testCRD, metav1.GetOptions{})
}

// crdBundle returns the CRD's caBundle, decoded; an error if it has none.
func (e *env) crdBundle() ([]byte, error) {
	crd, err := e.crd()
	if err != nil {
		return nil, err
	}
	s, found, err := unstructured.NestedString(crd.Object, "spec", "conversion", "webhook", "clientConfig", "caBundle")
	if err != nil || !found {
		return nil, fmt.Errorf("no caBundle (%v)", err)
	}
	return base64.StdEncoding.DecodeString(s)
}

// eventually polls cond until it returns nil, and fails the test if that takes longer than
// waitTimeout.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, waitTimeout, true, func(context.Context) (bool, error) {
		last = cond()
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("%s: not within %v: %v", what, waitTimeout, last)
	}
}

// served returns the leaf GetCertificate hands out.
func served(m *Manager) (*x509.Certificate, error) {
	c, err := m.GetCertificate(nil)
	if err != nil {
		return nil, err
	}
	if c.Leaf == nil {
		return nil, errors.New("served certificate has no Leaf")
	}
	return c.Leaf, nil
}

// verifyAll checks that leaf verifies against bundle at now for each of the DNS names and IP
// addresses, as a TLS client dialling each would.
func verifyAll(leaf *x509.Certificate, bundle []byte, now time.Time, dnsNames []string, ips []net.IP) error {
	roots := x509CertPool(bundle)
	names := append([]string(nil), dnsNames...)
	for _, ip := range ips {
		names = append(names, ip.String())
	}
	var errs []error
	for _, n := range names {
		if _, err := leaf.Verify(x509.VerifyOptions{
			DNSName:     n,
			Roots:       roots,
			CurrentTime: now,
			KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

// mustCerts parses a PEM bundle and fails the test on anything but certificates.
func mustCerts(t *testing.T, b []byte) []*x509.Certificate {
	t.Helper()
	certs, junk := parseCerts(b)
	if junk > 0 || len(certs) == 0 {
		t.Fatalf("bundle has %d certificates and %d bad blocks:\n%s", len(certs), junk, b)
	}
	return certs
}

// signedBy reports whether leaf verifies with ca alone as root at now.
func signedBy(leaf, ca *x509.Certificate, now time.Time) bool {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return verify(leaf, pool, now) == nil
}

// withResourceVersions makes the fake clientset's Secrets behave like the API server's for
// optimistic concurrency: every write sets a new resourceVersion, and an update carrying
// another one than the stored object's fails with a Conflict. (The fake's tracker does
// neither by itself.) Reactors run under the fake's lock, so this is race-free.
func withResourceVersions(c *kubefake.Clientset) {
	gvr := corev1.SchemeGroupVersion.WithResource("secrets")
	next := 100
	c.PrependReactor("create", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		obj := a.(k8stesting.CreateAction).GetObject().(*corev1.Secret).DeepCopy()
		next++
		obj.ResourceVersion = strconv.Itoa(next)
		if err := c.Tracker().Create(gvr, obj, obj.Namespace); err != nil {
			return true, nil, err
		}
		return true, obj, nil
	})
	c.PrependReactor("update", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		obj := a.(k8stesting.UpdateAction).GetObject().(*corev1.Secret).DeepCopy()
		cur, err := c.Tracker().Get(gvr, obj.Namespace, obj.Name)
		if err != nil {
			return true, nil, err
		}
		if rv := cur.(*corev1.Secret).ResourceVersion; rv != obj.ResourceVersion {
			return true, nil, apierrors.NewConflict(gvr.GroupResource(), obj.Name,
				fmt.Errorf("resourceVersion %q, stored %q", obj.ResourceVersion, rv))
		}
		next++
		obj.ResourceVersion = strconv.Itoa(next)
		if err := c.Tracker().Update(gvr, obj, obj.Namespace); err != nil {
			return true, nil, err
		}
		return true, obj, nil
	})
}

// countActions counts the fake's actions with this verb on this resource.
func countActions(actions []k8stesting.Action, verb, resource string) int {
	n := 0
	for _, a := range actions {
		if a.GetVerb() == verb && a.GetResource().Resource == resource {
			n++
		}
	}
	return n
}

// containsAll reports whether s contains every one of subs, for log checks.
func containsAll(s string, subs ...string) error {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return fmt.Errorf("%q not found", sub)
		}
	}
	return nil
}
