package webhookcert

import (
	"bytes"
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

func testSpec() certSpec {
	return certSpec{dnsNames: testDNS, ipAddresses: testIPs, caValidity: 30 * day, certValidity: 20 * day, caName: "test-ca"}
}

func always(*x509.Certificate) bool { return true }

// mustDecide runs decide and fails the test on an error.
func mustDecide(t *testing.T, in map[string][]byte, now time.Time, spec certSpec, published func(*x509.Certificate) bool) plan {
	t.Helper()
	p, err := decide(in, now, spec, published)
	if err != nil {
		t.Fatalf("decide: %v", err)
	}
	return p
}

func mustLeaf(t *testing.T, data map[string][]byte) *x509.Certificate {
	t.Helper()
	leaf, err := parseServing(data[tlsCertKey], data[tlsKeyKey])
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

func TestDecideIsStableUntilRenewal(t *testing.T) {
	short := testSpec()
	short.caValidity, short.certValidity = time.Hour, MinValidity
	for name, spec := range map[string]certSpec{"days": testSpec(), "shortest": short} {
		t.Run(name, func(t *testing.T) { testDecideIsStableUntilRenewal(t, spec) })
	}
}

func testDecideIsStableUntilRenewal(t *testing.T, spec certSpec) {
	t0 := time.Now().Truncate(time.Second)
	p := mustDecide(t, nil, t0, spec, always)
	if !p.changed || len(p.reasons) == 0 {
		t.Fatalf("new Secret: changed=%v reasons=%v", p.changed, p.reasons)
	}
	leaf := mustLeaf(t, p.data)
	due := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 3 * 2)
	if p.deadline != due || !due.After(t0) {
		t.Errorf("deadline %v, want the serving certificate's renewal %v, after now %v", p.deadline, due, t0)
	}
	if again := mustDecide(t, p.data, t0, spec, always); again.changed {
		t.Errorf("deciding again changes %v", again.reasons)
	}
	if before := mustDecide(t, p.data, due.Add(-time.Second), spec, always); before.changed {
		t.Errorf("changed before the renewal time: %v", before.reasons)
	}
	after := mustDecide(t, p.data, due, spec, always)
	if !after.changed || bytes.Equal(after.data[tlsCertKey], p.data[tlsCertKey]) {
		t.Fatal("not renewed at 2/3 of its validity")
	}
	if !bytes.Equal(after.data[caCertKey], p.data[caCertKey]) || !bytes.Equal(after.data[caKeyKey], p.data[caKeyKey]) {
		t.Error("the CA changed with the serving certificate")
	}
}

// A new CA is added to the bundle at once, but signs the serving certificate only once it
// is published (in the CRD) and has had caPropagationDelay to reach the API servers.
func TestDecideSwitchesToNewCAOnlyOncePublished(t *testing.T) {
	t0 := time.Now().Truncate(time.Second)
	spec := testSpec() // CA 30 days (due on day 20), serving certificate 20 days
	p := mustDecide(t, nil, t0, spec, always)
	ca1 := mustCerts(t, p.data[caCertKey])[0]

	// Day 19: the serving certificate (due on day ~13) is renewed by the first CA; it is
	// capped at the CA's expiry, day 30.
	p = mustDecide(t, p.data, t0.Add(19*day), spec, always)
	leaf := mustLeaf(t, p.data)
	if !signedBy(leaf, ca1, t0.Add(19*day)) || !leaf.NotAfter.Equal(ca1.NotAfter) {
		t.Fatalf("day 19: %s valid until %v, want signed by the first CA, until %v", describe(leaf), leaf.NotAfter, ca1.NotAfter)
	}

	// Day 20 and a bit: a new CA.
	now := t0.Add(20*day + time.Hour)
	var asked []*x509.Certificate
	notYet := func(ca *x509.Certificate) bool { asked = append(asked, ca); return false }
	p = mustDecide(t, p.data, now, spec, notYet)
	cas := mustCerts(t, p.data[caCertKey])
	if len(cas) != 2 || !cas[1].Equal(ca1) {
		t.Fatalf("bundle of %d CAs, want the new one and the old one", len(cas))
	}
	ca2 := cas[0]
	if !bytes.Equal(firstDER(p.data[tlsCertKey]), leaf.Raw) {
		t.Fatal("serving certificate replaced in the same step as the CA")
	}
	if want := switchAt(ca2); !p.deadline.Equal(want) {
		t.Errorf("deadline %v, want the switch time %v", p.deadline, want)
	}
	data := p.data

	for _, tc := range []struct {
		name      string
		at        time.Time
		published bool
		switched  bool
	}{
		{"published, before the delay", switchAt(ca2).Add(-time.Second), true, false},
		{"after the delay, not published", switchAt(ca2).Add(time.Hour), false, false},
		{"after the delay, published", switchAt(ca2), true, true},
	} {
		asked = nil
		p := mustDecide(t, data, tc.at, spec, func(ca *x509.Certificate) bool { notYet(ca); return tc.published })
		for _, ca := range asked {
			if !ca.Equal(ca2) {
				t.Errorf("%s: asked whether %s is published, want the new CA", tc.name, describe(ca))
			}
		}
		if switched := p.changed && !bytes.Equal(p.data[tlsCertKey], data[tlsCertKey]); switched != tc.switched {
			t.Errorf("%s: serving certificate re-issued: %v, want %v (%v)", tc.name, switched, tc.switched, p.reasons)
			continue
		}
		if tc.switched {
			if l := mustLeaf(t, p.data); !signedBy(l, ca2, tc.at) {
				t.Errorf("%s: new certificate not signed by the new CA", tc.name)
			}
			if !bytes.Equal(p.data[caCertKey], data[caCertKey]) {
				t.Errorf("%s: bundle changed with the switch", tc.name)
			}
		}
	}

	// Once the old certificate expires it is replaced whatever the CRD shows.
	p = mustDecide(t, data, leaf.NotAfter, spec, func(*x509.Certificate) bool { return false })
	if l := mustLeaf(t, p.data); !signedBy(l, ca2, leaf.NotAfter) {
		t.Error("an expired certificate signed by the old CA was not replaced")
	}
	// ... and the old CA, expired too, has left the bundle.
	if cas := mustCerts(t, p.data[caCertKey]); len(cas) != 1 || !cas[0].Equal(ca2) {
		t.Errorf("bundle of %d CAs after the old one expired, want only the new one", len(cas))
	}
}

// Extra names are tolerated (replicas of two versions must not re-issue in turn); a
// missing one is added at once.
func TestDecideSANs(t *testing.T) {
	t0 := time.Now().Truncate(time.Second)
	spec := testSpec()
	p := mustDecide(t, nil, t0, spec, always)

	fewer := spec
	fewer.dnsNames, fewer.ipAddresses = spec.dnsNames[:1], nil
	if q := mustDecide(t, p.data, t0, fewer, always); q.changed {
		t.Errorf("fewer names: changed (%v)", q.reasons)
	}
	more := spec
	more.dnsNames = append(append([]string(nil), spec.dnsNames...), "localhost")
	q := mustDecide(t, p.data, t0, more, always)
	if !q.changed || !strings.Contains(strings.Join(q.reasons, " "), "DNS:localhost") {
		t.Fatalf("a new name: changed=%v reasons=%v", q.changed, q.reasons)
	}
	if err := verifyAll(mustLeaf(t, q.data), q.data[caCertKey], t0, more.dnsNames, more.ipAddresses); err != nil {
		t.Error(err)
	}
	if !bytes.Equal(q.data[caCertKey], p.data[caCertKey]) {
		t.Error("the CA changed with the names")
	}
}

// A serving certificate that does not chain to the bundle (a CA swapped by hand, say) is
// replaced, and so is a CA certificate whose key is not ca.key.
func TestDecideRepairsMismatches(t *testing.T) {
	t0 := time.Now().Truncate(time.Second)
	spec := testSpec()
	a := mustDecide(t, nil, t0, spec, always).data
	b := mustDecide(t, nil, t0, spec, always).data

	mixed := map[string][]byte{caCertKey: a[caCertKey], caKeyKey: a[caKeyKey], tlsCertKey: b[tlsCertKey], tlsKeyKey: b[tlsKeyKey]}
	p := mustDecide(t, mixed, t0, spec, always)
	if !p.changed || !bytes.Equal(p.data[caCertKey], a[caCertKey]) {
		t.Fatalf("foreign serving certificate: changed=%v, CA kept=%v", p.changed, bytes.Equal(p.data[caCertKey], a[caCertKey]))
	}
	if err := verifyAll(mustLeaf(t, p.data), a[caCertKey], t0, spec.dnsNames, spec.ipAddresses); err != nil {
		t.Error(err)
	}

	wrongKey := map[string][]byte{caCertKey: a[caCertKey], caKeyKey: b[caKeyKey], tlsCertKey: a[tlsCertKey], tlsKeyKey: a[tlsKeyKey]}
	p = mustDecide(t, wrongKey, t0, spec, always)
	cas := mustCerts(t, p.data[caCertKey])
	if !p.changed || len(cas) != 2 || bytes.Equal(p.data[caKeyKey], b[caKeyKey]) {
		t.Fatalf("CA without its key: changed=%v, %d CAs, want a new CA (and the old certificate kept until it expires)", p.changed, len(cas))
	}
}
