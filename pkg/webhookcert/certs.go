package webhookcert

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/util/keyutil"
)

// The Secret's keys. tls.crt and tls.key are those of the kubernetes.io/tls type, so the Secret
// can be mounted or inspected like any other TLS Secret; ca.crt is the bundle the clients
// trust (the CRD's caBundle is a copy of it), ca.key the key of the CA that signs new serving
// certificates.
const (
	caCertKey  = "ca.crt"
	caKeyKey   = "ca.key"
	tlsCertKey = corev1.TLSCertKey       // "tls.crt"
	tlsKeyKey  = corev1.TLSPrivateKeyKey // "tls.key"
)

const (
	// clockSkew backdates every certificate's NotBefore, so that a verifier whose clock is
	// a little behind ours (another node, the API server) does not see it as not yet valid.
	// (Certificates shorter-lived than 50 minutes, for tests, are backdated a tenth of
	// their validity instead, see backdate.)
	clockSkew = 5 * time.Minute

	// caPropagationDelay is how long a new CA must have been in the bundle, and (when a CRD
	// is managed) seen in the CRD's caBundle, before the serving certificate is re-issued by
	// it. The API servers learn a CRD's new caBundle through their own watch; this leaves
	// them time to, so that none of them is ever served a certificate it cannot verify.
	caPropagationDelay = 2 * time.Minute
)

// renewAt is when a certificate is due for renewal: once two thirds of its validity have
// passed, which leaves a third of it for retries if the API server is unreachable then.
func renewAt(c *x509.Certificate) time.Time {
	return c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) / 3 * 2)
}

// backdate is how far before now a certificate valid for validity starts: clockSkew, but
// no more than a tenth of its validity, lest a short-lived one be due for renewal (2/3 of
// its NotBefore–NotAfter span) as soon as it is made.
func backdate(validity time.Duration) time.Duration {
	return min(clockSkew, validity/10)
}

// switchAt is the earliest time the serving certificate may be re-issued by the CA ca while
// a certificate signed by a previous CA is still good: caPropagationDelay after ca was made.
// (Its NotBefore was backdated; backdate of its whole span is that or a little more, so
// this errs on the late, safe side.)
func switchAt(ca *x509.Certificate) time.Time {
	return ca.NotBefore.Add(backdate(ca.NotAfter.Sub(ca.NotBefore)) + caPropagationDelay)
}

// plan is the decision about the Secret's content: what it should hold at now, why it
// differs from what it holds, and when the clock alone will call for another decision.
type plan struct {
	data     map[string][]byte // ca.crt, ca.key, tls.crt, tls.key as they should be
	changed  bool              // data differs from the input
	reasons  []string          // why, for the log
	deadline time.Time         // the next renewal, switch or expiry after now; zero if none
}

// certSpec is what the serving certificate must cover, and how long the certificates live.
type certSpec struct {
	dnsNames     []string
	ipAddresses  []net.IP
	caValidity   time.Duration
	certValidity time.Duration
	caName       string // the CA's Subject CommonName prefix
}

// decide computes the plan for a Secret holding in (nil or empty for a new Secret).
// published reports whether a CA certificate is known to every client of the webhook (in
// the CRD's caBundle); it is only asked about the CA that signs new certificates.
//
// It never fails on bad input: whatever cannot be parsed is replaced (the reasons say so).
// It fails only if a key or certificate cannot be generated.
func decide(in map[string][]byte, now time.Time, spec certSpec, published func(*x509.Certificate) bool) (plan, error) {
	var reasons []string
	p := plan{data: map[string][]byte{}}

	// The current CA: the bundle's certificate whose key is ca.key.
	bundle, junk := parseCerts(in[caCertKey])
	if junk > 0 {
		reasons = append(reasons, fmt.Sprintf("ca.crt: dropping %d PEM block(s) that are not certificates", junk))
	}
	var ca *x509.Certificate
	caKey, keyErr := parseSigner(in[caKeyKey])
	if keyErr == nil {
		for _, c := range bundle {
			if c.IsCA && publicKeyEqual(c.PublicKey, caKey.Public()) {
				ca = c
				break
			}
		}
	}
	caPEM, caKeyPEM := in[caCertKey], in[caKeyKey]
	switch {
	case len(in[caCertKey]) == 0 && len(in[caKeyKey]) == 0:
		reasons = append(reasons, "no CA yet")
	case keyErr != nil:
		reasons = append(reasons, "ca.key: "+keyErr.Error())
	case ca == nil:
		reasons = append(reasons, "ca.crt has no CA certificate for ca.key")
	case !now.Before(renewAt(ca)):
		reasons = append(reasons, fmt.Sprintf("CA %s is past 2/3 of its validity (expires %s)", describe(ca), ca.NotAfter.Format(time.RFC3339)))
	}
	if ca == nil || !now.Before(renewAt(ca)) {
		var err error
		ca, caKey, caKeyPEM, err = newCA(now, spec)
		if err != nil {
			return plan{}, err
		}
		reasons = append(reasons, "new CA "+describe(ca))
	}

	// The bundle: the current CA first, then every other CA certificate until it expires,
	// so that clients which only know an older one keep verifying serving certificates it
	// signed (and a new CA can be trusted everywhere before it is used).
	kept := []*x509.Certificate{ca}
	for _, c := range bundle {
		switch {
		case c.Equal(ca):
		case !c.IsCA:
			reasons = append(reasons, fmt.Sprintf("ca.crt: dropping %s, not a CA", describe(c)))
		case !now.Before(c.NotAfter):
			reasons = append(reasons, fmt.Sprintf("ca.crt: dropping expired CA %s", describe(c)))
		case containsCert(kept, c):
		default:
			kept = append(kept, c)
		}
	}
	caPEM = encodeCerts(kept)
	roots := x509.NewCertPool()
	for _, c := range kept {
		roots.AddCert(c)
	}
	current := x509.NewCertPool()
	current.AddCert(ca)

	// The serving certificate.
	tlsPEM, tlsKeyPEM := in[tlsCertKey], in[tlsKeyKey]
	leaf, leafErr := parseServing(tlsPEM, tlsKeyPEM)
	reissue := ""
	switch {
	case leafErr != nil:
		reissue = "serving certificate: " + leafErr.Error()
	case !now.Before(leaf.NotAfter):
		reissue = fmt.Sprintf("serving certificate %s expired at %s", describe(leaf), leaf.NotAfter.Format(time.RFC3339))
	case len(missingSANs(leaf, spec)) > 0:
		reissue = fmt.Sprintf("serving certificate %s lacks %s", describe(leaf), strings.Join(missingSANs(leaf, spec), ", "))
	case verify(leaf, roots, now) != nil:
		reissue = fmt.Sprintf("serving certificate %s is not signed by a CA in ca.crt: %v", describe(leaf), verify(leaf, roots, now))
	case verify(leaf, current, now) == nil:
		if !now.Before(renewAt(leaf)) {
			reissue = fmt.Sprintf("serving certificate %s is past 2/3 of its validity (expires %s)", describe(leaf), leaf.NotAfter.Format(time.RFC3339))
		}
	default:
		// Good, but signed by an older CA that is still in the bundle: keep serving it (even
		// past its renewal time, it is still valid) until the current CA has reached every
		// client, then switch. Switching at once would break clients that still have the
		// old bundle.
		if !now.Before(switchAt(ca)) && published(ca) {
			reissue = fmt.Sprintf("serving certificate %s is signed by a previous CA; the current CA %s is published", describe(leaf), describe(ca))
		}
	}
	if reissue != "" {
		reasons = append(reasons, reissue)
		var err error
		leaf, tlsPEM, tlsKeyPEM, err = newServingCert(now, spec, ca, caKey)
		if err != nil {
			return plan{}, err
		}
	}

	p.data[caCertKey], p.data[caKeyKey], p.data[tlsCertKey], p.data[tlsKeyKey] = caPEM, caKeyPEM, tlsPEM, tlsKeyPEM
	for _, k := range []string{caCertKey, caKeyKey, tlsCertKey, tlsKeyKey} {
		if !bytes.Equal(p.data[k], in[k]) {
			p.changed = true
		}
	}
	if p.changed {
		if len(reasons) == 0 { // only the encoding differs (say, duplicate CAs in ca.crt)
			reasons = []string{"rewriting ca.crt in canonical form"}
		}
		p.reasons = reasons
	}

	// The deadline: the earliest time after now at which the clock alone changes a decision.
	// A condition that has already passed but waits for something else (the CRD to show the
	// new CA) is left out: the CRD's watch brings that, and a deadline in the past would
	// only make the timer spin.
	candidates := []time.Time{renewAt(ca), leaf.NotAfter}
	for _, c := range kept[1:] {
		candidates = append(candidates, c.NotAfter)
	}
	if verify(leaf, current, now) == nil {
		candidates = append(candidates, renewAt(leaf))
	} else {
		candidates = append(candidates, switchAt(ca))
	}
	for _, t := range candidates {
		if t.After(now) && (p.deadline.IsZero() || t.Before(p.deadline)) {
			p.deadline = t
		}
	}
	return p, nil
}

// newCA makes a self-signed CA that lives spec.caValidity.
func newCA(now time.Time, spec certSpec) (*x509.Certificate, crypto.Signer, []byte, error) {
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// The time in the name tells CAs apart in a bundle that holds several.
		Subject:               pkix.Name{CommonName: fmt.Sprintf("%s@%d", spec.caName, now.Unix())},
		NotBefore:             now.Add(-backdate(spec.caValidity)),
		NotAfter:              now.Add(spec.caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// It signs serving certificates only, never another CA.
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("creating the CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("parsing the new CA certificate: %w", err)
	}
	return cert, key, keyPEM, nil
}

// newServingCert makes a serving certificate for spec's names, signed by ca. It lives
// spec.certValidity, but never past the CA: a certificate that outlives its issuer would
// fail verification from then on anyway.
func newServingCert(now time.Time, spec certSpec, ca *x509.Certificate, caKey crypto.Signer) (*x509.Certificate, []byte, []byte, error) {
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, nil, err
	}
	notAfter := now.Add(spec.certValidity)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	cn := ""
	if len(spec.dnsNames) > 0 {
		cn = spec.dnsNames[0]
	} else {
		cn = spec.ipAddresses[0].String()
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     spec.dnsNames,
		IPAddresses:  spec.ipAddresses,
		NotBefore:    now.Add(-backdate(spec.certValidity)),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("creating the serving certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("parsing the new serving certificate: %w", err)
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// newKey makes an ECDSA P-256 key: small, fast to make, and accepted by every TLS client
// the API server uses.
func newKey() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating a key: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding a key: %w", err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: keyutil.ECPrivateKeyBlockType, Bytes: der}), nil
}

// newSerial returns a random 128-bit serial number (RFC 5280 allows up to 20 octets; random
// serials make two certificates from concurrent replicas distinguishable).
func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generating a serial number: %w", err)
	}
	return serial, nil
}

// parseCerts returns the certificates of a PEM bundle, and how many blocks were not
// certificates (or did not parse).
func parseCerts(b []byte) (certs []*x509.Certificate, junk int) {
	for len(b) > 0 {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			if len(bytes.TrimSpace(b)) > 0 {
				junk++
			}
			break
		}
		if block.Type != "CERTIFICATE" {
			junk++
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			junk++
			continue
		}
		certs = append(certs, c)
	}
	return certs, junk
}

func encodeCerts(certs []*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

func containsCert(certs []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range certs {
		if x.Equal(c) {
			return true
		}
	}
	return false
}

// parseSigner parses a PEM private key (EC, PKCS#1 or PKCS#8).
func parseSigner(b []byte) (crypto.Signer, error) {
	if len(b) == 0 {
		return nil, errors.New("missing")
	}
	k, err := keyutil.ParsePrivateKeyPEM(b)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported key type %T", k)
	}
	return s, nil
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// parseServing parses tls.crt and tls.key as a pair (the key must match the certificate)
// and returns the leaf certificate.
func parseServing(certPEM, keyPEM []byte) (*x509.Certificate, error) {
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return nil, errors.New("missing")
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	if pair.Leaf != nil {
		return pair.Leaf, nil
	}
	return x509.ParseCertificate(pair.Certificate[0])
}

// missingSANs lists the names and addresses of spec that leaf does not cover. Extra ones
// are tolerated on purpose: during a rolling update that changes the names, old and new
// replicas would otherwise re-issue the certificate in turn, forever. An added name is
// picked up at once; a removed one at the next renewal.
func missingSANs(leaf *x509.Certificate, spec certSpec) []string {
	var missing []string
	for _, n := range spec.dnsNames {
		found := false
		for _, m := range leaf.DNSNames {
			if strings.EqualFold(n, m) {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, "DNS:"+n)
		}
	}
	for _, ip := range spec.ipAddresses {
		found := false
		for _, m := range leaf.IPAddresses {
			if ip.Equal(m) {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, "IP:"+ip.String())
		}
	}
	return missing
}

// verify checks that leaf chains to roots at now, for server authentication.
func verify(leaf *x509.Certificate, roots *x509.CertPool, now time.Time) error {
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

// describe names a certificate in logs and reasons.
func describe(c *x509.Certificate) string {
	return fmt.Sprintf("%q (serial %s)", c.Subject.CommonName, c.SerialNumber.Text(16))
}
