package webhookcert

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
)

// ready waits until m is Ready and serves a certificate that the CRD's caBundle and the
// Secret's ca.crt both verify for every name, and that is the Secret's tls.crt. It returns
// the Secret and the served leaf.
func (e *env) ready(m *Manager, opts Options) (*corev1.Secret, *x509.Certificate) {
	e.t.Helper()
	var secret *corev1.Secret
	var leaf *x509.Certificate
	eventually(e.t, "manager ready and consistent", func() error {
		if err := m.Ready(); err != nil {
			return err
		}
		var err error
		if leaf, err = served(m); err != nil {
			return err
		}
		if secret, err = e.secret(); err != nil {
			return err
		}
		if !bytes.Equal(firstDER(secret.Data[tlsCertKey]), leaf.Raw) {
			return errors.New("served certificate is not the Secret's")
		}
		if err := verifyAll(leaf, secret.Data[caCertKey], e.clock.Now(), opts.DNSNames, opts.IPAddresses); err != nil {
			return fmt.Errorf("against the Secret's ca.crt: %w", err)
		}
		if opts.CRDName != "" {
			bundle, err := e.crdBundle()
			if err != nil {
				return err
			}
			if !bytes.Equal(bundle, secret.Data[caCertKey]) {
				return errors.New("CRD caBundle differs from the Secret's ca.crt")
			}
		}
		return nil
	})
	return secret, leaf
}

func TestFreshStartCreatesSecretAndInjectsCABundle(t *testing.T) {
	e := newEnv(t, testCRDObject(true))
	opts := testOptions()
	m, _ := e.start(opts)
	secret, leaf := e.ready(m, opts)

	if secret.Type != corev1.SecretTypeTLS {
		t.Errorf("Secret type %q, want %q", secret.Type, corev1.SecretTypeTLS)
	}
	if got := secret.Labels[managedByLabel]; got != managedByValue {
		t.Errorf("label %s=%q, want %q", managedByLabel, got, managedByValue)
	}
	for _, k := range []string{caCertKey, caKeyKey, tlsCertKey, tlsKeyKey} {
		if len(secret.Data[k]) == 0 {
			t.Errorf("Secret has no %s", k)
		}
	}
	bundle, err := e.crdBundle()
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyAll(leaf, bundle, e.clock.Now(), testDNS, testIPs); err != nil {
		t.Errorf("served certificate does not verify with the CRD's caBundle: %v", err)
	}

	cas := mustCerts(t, secret.Data[caCertKey])
	if len(cas) != 1 {
		t.Fatalf("bundle has %d CAs, want 1", len(cas))
	}
	ca, now := cas[0], e.clock.Now()
	checkKey := func(what string, pub interface{}) {
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k.Curve != elliptic.P256() {
			t.Errorf("%s key is %T, want ECDSA P-256", what, pub)
		}
	}
	checkKey("CA", ca.PublicKey)
	checkKey("serving", leaf.PublicKey)
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA: IsCA=%v KeyUsage=%b, want a CA with CertSign", ca.IsCA, ca.KeyUsage)
	}
	if leaf.IsCA || leaf.KeyUsage != x509.KeyUsageDigitalSignature || !reflect.DeepEqual(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("serving: IsCA=%v KeyUsage=%b ExtKeyUsage=%v, want DigitalSignature and ServerAuth", leaf.IsCA, leaf.KeyUsage, leaf.ExtKeyUsage)
	}
	for _, c := range []*x509.Certificate{ca, leaf} {
		if d := now.Sub(c.NotBefore); d < clockSkew-time.Second || d > clockSkew+time.Second {
			t.Errorf("%s: NotBefore %v is %v before now, want %v", describe(c), c.NotBefore, d, clockSkew)
		}
		if c.SerialNumber.BitLen() < 64 || c.SerialNumber.BitLen() > 128 {
			t.Errorf("%s: serial of %d bits, want a random 128-bit one", describe(c), c.SerialNumber.BitLen())
		}
	}
	if got := ca.NotAfter.Sub(now); got != DefaultCAValidity {
		t.Errorf("CA validity %v, want %v", got, DefaultCAValidity)
	}
	if got := leaf.NotAfter.Sub(now); got != DefaultCertValidity {
		t.Errorf("serving certificate validity %v, want %v", got, DefaultCertValidity)
	}

	// The patch set the caBundle and nothing else.
	var patches []k8stesting.PatchAction
	for _, a := range e.dyn.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok {
			patches = append(patches, p)
		}
	}
	// (A second, identical patch is possible: a sync may run before the CRD's watch shows the
	// first one.)
	if len(patches) == 0 {
		t.Fatal("no patch of the CRD")
	}
	caBundle := ""
	for _, p := range patches {
		if p.GetPatchType() != types.MergePatchType {
			t.Errorf("patch type %q, want a JSON merge patch", p.GetPatchType())
		}
		var patch map[string]interface{}
		if err := json.Unmarshal(p.GetPatch(), &patch); err != nil {
			t.Fatal(err)
		}
		caBundle, _, _ = unstructured.NestedString(patch, "spec", "conversion", "webhook", "clientConfig", "caBundle")
		unstructured.RemoveNestedField(patch, "spec", "conversion", "webhook", "clientConfig", "caBundle")
		for _, path := range [][]string{{"spec", "conversion", "webhook", "clientConfig"}, {"spec", "conversion", "webhook"}, {"spec", "conversion"}, {"spec"}} {
			if v, _, _ := unstructured.NestedMap(patch, path...); len(v) == 0 {
				unstructured.RemoveNestedField(patch, path...)
			}
		}
		if caBundle == "" || len(patch) != 0 {
			t.Errorf("patch %s: want only spec.conversion.webhook.clientConfig.caBundle", p.GetPatch())
		}
	}
	crd, err := e.crd()
	if err != nil {
		t.Fatal(err)
	}
	want := testCRDObject(true)
	if err := unstructured.SetNestedField(want.Object, caBundle, "spec", "conversion", "webhook", "clientConfig", "caBundle"); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(crd.Object["spec"], want.Object["spec"]) {
		t.Errorf("CRD spec after the patch:\n%v\nwant:\n%v", crd.Object["spec"], want.Object["spec"])
	}
}

func TestReady(t *testing.T) {
	e := newEnv(t, testCRDObject(true))
	var failPatch atomic.Bool
	failPatch.Store(true)
	e.dyn.PrependReactor("patch", "customresourcedefinitions", func(k8stesting.Action) (bool, runtime.Object, error) {
		if failPatch.Load() {
			return true, nil, apierrors.NewForbidden(crdGVR.GroupResource(), testCRD, errors.New("test says no"))
		}
		return false, nil, nil
	})
	m, err := New(e.kube, e.dyn, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Ready(); err == nil {
		t.Error("Ready before Run: nil, want an error")
	}
	if _, err := m.GetCertificate(nil); err == nil {
		t.Error("GetCertificate before Run: no error")
	}
	m.clock = e.clock
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	// A certificate is served, but the API server cannot verify it yet: not ready.
	eventually(t, "a certificate served", func() error { _, err := served(m); return err })
	eventually(t, "a failed patch retried", func() error {
		if n := countActions(e.dyn.Actions(), "patch", "customresourcedefinitions"); n < 2 {
			return fmt.Errorf("%d patches", n)
		}
		return nil
	})
	if err := m.Ready(); err == nil {
		t.Error("Ready while the CRD has no caBundle: nil, want an error")
	}
	failPatch.Store(false)
	eventually(t, "Ready once the caBundle is set", m.Ready)
}

func TestTwoManagersConvergeOnOneSecret(t *testing.T) {
	e := newEnv(t, testCRDObject(true))
	withResourceVersions(e.kube)
	// Make the race certain: each manager's first read finds no Secret, so both create
	// one, and one of them gets AlreadyExists.
	var gets atomic.Int32
	e.kube.PrependReactor("get", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		if gets.Add(1) <= 2 {
			return true, nil, apierrors.NewNotFound(corev1.Resource("secrets"), testSecret)
		}
		return false, nil, nil
	})
	opts := testOptions()
	m1, _ := e.start(opts)
	m2, _ := e.start(opts)
	secret, leaf1 := e.ready(m1, opts)
	_, leaf2 := e.ready(m2, opts)

	// The loser of the create adopted the winner's Secret rather than writing its own.
	if n := countActions(e.kube.Actions(), "update", "secrets"); n != 0 {
		t.Errorf("%d updates of the Secret, want none", n)
	}
	if n := len(mustCerts(t, secret.Data[caCertKey])); n != 1 {
		t.Errorf("bundle has %d CAs, want 1", n)
	}
	if !leaf1.Equal(leaf2) {
		t.Errorf("the managers serve different certificates: %s and %s", describe(leaf1), describe(leaf2))
	}
	bundle, err := e.crdBundle()
	if err != nil {
		t.Fatal(err)
	}
	for i, leaf := range []*x509.Certificate{leaf1, leaf2} {
		if err := verifyAll(leaf, bundle, e.clock.Now(), testDNS, testIPs); err != nil {
			t.Errorf("manager %d: served certificate does not verify with the CRD's caBundle: %v", i+1, err)
		}
	}
	if n := countActions(e.kube.Actions(), "create", "secrets"); n != 2 {
		t.Errorf("%d creates of the Secret, want 2 (one of them failing)", n)
	}
}

func TestServingCertRenewedAtTwoThirds(t *testing.T) {
	e := newEnv(t, testCRDObject(true))
	opts := testOptions()
	m, _ := e.start(opts)
	secret, leaf := e.ready(m, opts)
	due := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 3 * 2)

	// Just before two thirds: nothing changes.
	e.clock.SetTime(due.Add(-time.Minute))
	if err := m.sync(e.ctx); err != nil {
		t.Fatal(err)
	}
	if cur, _ := served(m); !cur.Equal(leaf) {
		t.Fatalf("certificate replaced at %v, before its renewal time %v", e.clock.Now(), due)
	}

	// Past two thirds (still well before expiry): the timer wakes, a new certificate is
	// made by the same CA and served at once.
	e.clock.SetTime(due.Add(time.Minute))
	if !e.clock.Now().Before(leaf.NotAfter) {
		t.Fatal("test is wrong: the clock is past the old certificate's expiry")
	}
	eventually(t, "a new certificate served", func() error {
		cur, err := served(m)
		if err != nil {
			return err
		}
		if cur.Equal(leaf) {
			return errors.New("still the old certificate")
		}
		return nil
	})
	secret2, leaf2 := e.ready(m, opts)
	if !bytes.Equal(secret2.Data[caCertKey], secret.Data[caCertKey]) || !bytes.Equal(secret2.Data[caKeyKey], secret.Data[caKeyKey]) {
		t.Error("the CA changed with a serving certificate renewal")
	}
	if !leaf2.NotBefore.After(leaf.NotBefore) || !leaf2.NotAfter.After(leaf.NotAfter) {
		t.Errorf("new certificate valid %v–%v, old %v–%v: want a later one", leaf2.NotBefore, leaf2.NotAfter, leaf.NotBefore, leaf.NotAfter)
	}
}

func TestCARotation(t *testing.T) {
	e := newEnv(t, testCRDObject(true))
	opts := testOptions()
	opts.CAValidity, opts.CertValidity = 300*day, 90*day
	m, _ := e.start(opts)
	secret, _ := e.ready(m, opts)
	ca1 := mustCerts(t, secret.Data[caCertKey])[0]
	t0 := e.clock.Now()

	// Day 199: the CA is not due yet (day 200); the serving certificate was (and is
	// replaced by the same CA).
	e.clock.SetTime(t0.Add(199 * day))
	eventually(t, "a serving certificate valid on day 199", func() error {
		leaf, err := served(m)
		if err != nil {
			return err
		}
		if !leaf.NotAfter.After(e.clock.Now()) {
			return errors.New("expired")
		}
		return nil
	})
	_, leaf2 := e.ready(m, opts)
	if !signedBy(leaf2, ca1, e.clock.Now()) {
		t.Fatal("the serving certificate is not signed by the first CA")
	}

	// Day 201: a new CA, in the bundle next to the old one, in the CRD too. The serving
	// certificate (signed by the old CA, good until day 289) stays for now: an API server
	// that still has the old caBundle must keep verifying it.
	e.clock.SetTime(t0.Add(201 * day))
	var ca2 *x509.Certificate
	eventually(t, "a second CA in the Secret and the CRD", func() error {
		secret, err := e.secret()
		if err != nil {
			return err
		}
		cas, _ := parseCerts(secret.Data[caCertKey])
		if len(cas) != 2 {
			return fmt.Errorf("%d CAs in the bundle", len(cas))
		}
		if !cas[1].Equal(ca1) {
			return errors.New("the old CA is not in the bundle")
		}
		ca2 = cas[0]
		if b, err := e.crdBundle(); err != nil || !bytes.Equal(b, secret.Data[caCertKey]) {
			return fmt.Errorf("CRD caBundle not the new bundle (%v)", err)
		}
		return nil
	})
	if err := m.sync(e.ctx); err != nil { // decide once more, now that the CRD shows it
		t.Fatal(err)
	}
	if cur, _ := served(m); !cur.Equal(leaf2) {
		t.Fatalf("serving certificate replaced before the new CA could propagate: %s", describe(cur))
	}
	if !signedBy(leaf2, ca1, e.clock.Now()) {
		t.Error("the served certificate no longer verifies with the old bundle")
	}
	if err := m.Ready(); err != nil {
		t.Errorf("Ready during the rotation: %v", err)
	}

	// caPropagationDelay later, the serving certificate is re-issued by the new CA.
	e.clock.Step(caPropagationDelay + time.Minute)
	eventually(t, "a serving certificate signed by the new CA", func() error {
		leaf, err := served(m)
		if err != nil {
			return err
		}
		if !signedBy(leaf, ca2, e.clock.Now()) {
			return fmt.Errorf("%s is not signed by the new CA", describe(leaf))
		}
		return nil
	})
	secret, _ = e.ready(m, opts)
	if n := len(mustCerts(t, secret.Data[caCertKey])); n != 2 {
		t.Errorf("%d CAs in the bundle after the switch, want 2 (the old one until it expires)", n)
	}

	// Day 301: the old CA has expired (day 300) and is dropped from the bundle and the CRD.
	e.clock.SetTime(t0.Add(301 * day))
	eventually(t, "the expired CA dropped", func() error {
		secret, _ := e.ready(m, opts)
		cas, _ := parseCerts(secret.Data[caCertKey])
		if len(cas) != 1 || !cas[0].Equal(ca2) {
			return fmt.Errorf("bundle of %d CAs, want only the new one", len(cas))
		}
		return nil
	})
}

func TestDeletedSecretIsRecreated(t *testing.T) {
	e := newEnv(t, testCRDObject(true))
	opts := testOptions()
	m, _ := e.start(opts)
	secret, leaf := e.ready(m, opts)

	if err := e.kube.CoreV1().Secrets(testNS).Delete(context.Background(), testSecret, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Secret re-created and served", func() error {
		s, err := e.secret()
		if err != nil {
			return err
		}
		if bytes.Equal(s.Data[caCertKey], secret.Data[caCertKey]) {
			return errors.New("not re-created yet")
		}
		cur, err := served(m)
		if err != nil {
			return err
		}
		if cur.Equal(leaf) {
			return errors.New("still serving the old certificate")
		}
		return nil
	})
	// The CRD gets the new CA.
	e.ready(m, opts)
}

func TestWipedCABundleIsRestored(t *testing.T) {
	e := newEnv(t, testCRDObject(true))
	opts := testOptions()
	m, _ := e.start(opts)
	secret, _ := e.ready(m, opts)

	// Re-apply the CRD as kubectl apply would: without the caBundle, with a new label.
	crd := testCRDObject(true)
	crd.SetLabels(map[string]string{"reapplied": "yes"})
	if _, err := e.dyn.Resource(crdGVR).Update(context.Background(), crd, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the caBundle restored", func() error {
		b, err := e.crdBundle()
		if err != nil {
			return err
		}
		if !bytes.Equal(b, secret.Data[caCertKey]) {
			return errors.New("caBundle differs from the Secret's ca.crt")
		}
		return nil
	})
	got, err := e.crd()
	if err != nil {
		t.Fatal(err)
	}
	if got.GetLabels()["reapplied"] != "yes" {
		t.Errorf("the patch lost the re-applied CRD's label: %v", got.GetLabels())
	}
}

func TestCRDWithoutWebhookConversionIsNotPatched(t *testing.T) {
	e := newEnv(t, testCRDObject(false))
	opts := testOptions()
	m, _ := e.start(opts)
	const msg = "not configured for webhook conversion"
	eventually(t, "the CRD's conversion strategy logged", func() error { return containsAll(e.logs(), msg) })
	noCRD := opts
	noCRD.CRDName = "" // e.ready is not to look for a caBundle
	e.ready(m, noCRD)  // m.Ready: nothing calls the webhook, nothing to wait for

	// More syncs, as a Secret change or the timer would cause.
	for range 3 {
		if err := m.sync(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := countActions(e.dyn.Actions(), "patch", "customresourcedefinitions"); n != 0 {
		t.Errorf("%d patches of a CRD without webhook conversion", n)
	}
	crd, err := e.crd()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(crd.Object, testCRDObject(false).Object) {
		t.Errorf("CRD changed:\n%v", crd.Object)
	}
	if n := strings.Count(e.logs(), msg); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, e.logs())
	}
}

func TestGarbageSecretIsReplaced(t *testing.T) {
	garbage := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: testSecret, Namespace: testNS},
		Type:       corev1.SecretTypeTLS,
		Data: map[string][]byte{
			caCertKey:  []byte("-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE-----\n"),
			caKeyKey:   []byte("not a key"),
			tlsCertKey: []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
			tlsKeyKey:  []byte{0xff, 0x00, 0x13},
			"other":    []byte("kept"),
		},
	}
	e := newEnv(t, testCRDObject(true), garbage)
	opts := testOptions()
	m, _ := e.start(opts)
	secret, _ := e.ready(m, opts)
	if string(secret.Data["other"]) != "kept" {
		t.Errorf("a key the manager does not own was changed: %q", secret.Data["other"])
	}
	if err := containsAll(e.logs(), "Updated the Secret", "ca.key: ", "dropping 1 PEM block", "serving certificate: "); err != nil {
		t.Errorf("the replacement is not logged with its reasons: %v\n%s", err, e.logs())
	}
}

func TestUpdateConflictIsReread(t *testing.T) {
	stale := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: testSecret, Namespace: testNS},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{tlsCertKey: []byte("x"), tlsKeyKey: []byte("y")},
	}
	e := newEnv(t, testCRDObject(true), stale)
	var conflicted atomic.Bool
	e.kube.PrependReactor("update", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if conflicted.CompareAndSwap(false, true) {
			return true, nil, apierrors.NewConflict(corev1.Resource("secrets"), testSecret, errors.New("test"))
		}
		return false, nil, nil
	})
	opts := testOptions()
	m, _ := e.start(opts)
	e.ready(m, opts)
	// After the Conflict: the Secret read again, and the update made anew.
	var verbs []string
	for _, a := range e.kube.Actions() {
		if a.GetResource().Resource == "secrets" && (a.GetVerb() == "get" || a.GetVerb() == "update") {
			verbs = append(verbs, a.GetVerb())
		}
	}
	if want := []string{"get", "update", "get", "update"}; len(verbs) < len(want) || !reflect.DeepEqual(verbs[:len(want)], want) {
		t.Errorf("Secret gets and updates: %v, want %v (the first update conflicts)", verbs, want)
	}
}

func TestSecretChangedElsewhereIsServed(t *testing.T) {
	e := newEnv(t, testCRDObject(true))
	opts := testOptions()
	m, _ := e.start(opts)
	secret, leaf := e.ready(m, opts)

	// Another replica renews the serving certificate with the same CA.
	cas := mustCerts(t, secret.Data[caCertKey])
	caKey, err := parseSigner(secret.Data[caKeyKey])
	if err != nil {
		t.Fatal(err)
	}
	spec := m.spec
	newLeaf, certPEM, keyPEM, err := newServingCert(e.clock.Now(), spec, cas[0], caKey)
	if err != nil {
		t.Fatal(err)
	}
	secret = secret.DeepCopy()
	secret.Data[tlsCertKey], secret.Data[tlsKeyKey] = certPEM, keyPEM
	if _, err := e.kube.CoreV1().Secrets(testNS).Update(context.Background(), secret, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the other replica's certificate served", func() error {
		cur, err := served(m)
		if err != nil {
			return err
		}
		if !cur.Equal(newLeaf) {
			return fmt.Errorf("serving %s, want %s (old %s)", describe(cur), describe(newLeaf), describe(leaf))
		}
		return nil
	})
}

func TestSANChangeReissues(t *testing.T) {
	e := newEnv(t, testCRDObject(true))
	opts := testOptions()
	opts.DNSNames, opts.IPAddresses = testDNS[:1], nil
	m, stop := e.start(opts)
	secret, leaf := e.ready(m, opts)
	stop()

	// One more DNS name, and 127.0.0.1, given as Hosts (as main's flag does).
	opts2 := testOptions()
	opts2.DNSNames, opts2.IPAddresses = nil, nil
	opts2.Hosts = []string{testDNS[0], testDNS[1], "127.0.0.1", testDNS[0]}
	m2, _ := e.start(opts2)
	opts2.DNSNames, opts2.IPAddresses = testDNS, testIPs // for the checks below
	eventually(t, "a certificate for the new names served", func() error {
		cur, err := served(m2)
		if err != nil {
			return err
		}
		return verifyAll(cur, secret.Data[caCertKey], e.clock.Now(), opts2.DNSNames, opts2.IPAddresses)
	})
	secret2, leaf2 := e.ready(m2, opts2)
	if leaf2.Equal(leaf) {
		t.Fatal("same certificate")
	}
	if !bytes.Equal(secret2.Data[caCertKey], secret.Data[caCertKey]) {
		t.Error("the CA changed with the names")
	}
}

func TestNewValidatesOptions(t *testing.T) {
	e := newEnv(t, nil)
	for name, tc := range map[string]struct {
		mutate func(*Options)
		want   string // in the error; "" for none
	}{
		"valid":                  {func(*Options) {}, ""},
		"valid without CRD":      {func(o *Options) { o.CRDName = "" }, ""},
		"IP only":                {func(o *Options) { o.DNSNames = nil }, ""},
		"no namespace":           {func(o *Options) { o.Namespace = "" }, "Namespace"},
		"bad secret name":        {func(o *Options) { o.SecretName = "Not_A_Name" }, "SecretName"},
		"bad CRD name":           {func(o *Options) { o.CRDName = "foos..x" }, "CRDName"},
		"no SANs":                {func(o *Options) { o.DNSNames, o.IPAddresses = nil, nil }, "at least one"},
		"bad DNS name":           {func(o *Options) { o.DNSNames = []string{"a b"} }, "DNSNames"},
		"bad IP":                 {func(o *Options) { o.IPAddresses = []net.IP{{1, 2}} }, "IPAddresses"},
		"negative CA validity":   {func(o *Options) { o.CAValidity = -time.Hour }, "CAValidity"},
		"short cert validity":    {func(o *Options) { o.CertValidity = 30 * time.Second }, "CertValidity"},
		"hosts only":             {func(o *Options) { o.DNSNames, o.IPAddresses, o.Hosts = nil, nil, []string{"a.b.svc", "::1"} }, ""},
		"bad host":               {func(o *Options) { o.Hosts = []string{"a.b.svc", "not a host"} }, "Hosts"},
		"cert outliving its CA":  {func(o *Options) { o.CAValidity, o.CertValidity = 24*time.Hour, 48*time.Hour }, "longer than CAValidity"},
		"default CA, long certs": {func(o *Options) { o.CertValidity = 20 * 365 * day }, "longer than CAValidity"},
	} {
		t.Run(name, func(t *testing.T) {
			opts := testOptions()
			tc.mutate(&opts)
			_, err := New(e.kube, e.dyn, opts)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("New: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("New: %v, want an error about %q", err, tc.want)
			}
		})
	}
	if _, err := New(e.kube, nil, testOptions()); err == nil || !strings.Contains(err.Error(), "dynamic client") {
		t.Errorf("New without a dynamic client but with a CRD: %v", err)
	}
	if _, err := New(nil, e.dyn, testOptions()); err == nil {
		t.Error("New without a Kubernetes client: no error")
	}
	m, err := New(e.kube, e.dyn, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if m.opts.CAValidity != DefaultCAValidity || m.opts.CertValidity != DefaultCertValidity {
		t.Errorf("defaults: CAValidity %v, CertValidity %v", m.opts.CAValidity, m.opts.CertValidity)
	}
}
