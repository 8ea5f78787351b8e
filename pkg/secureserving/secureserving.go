// Package secureserving serves a handler over HTTPS to callers the Kubernetes API server vouches
// for, the way kube-controller-manager serves its metrics and profiles: the caller's bearer
// token is checked with a TokenReview, and its request (a GET of a non-resource URL such as
// /metrics) with a SubjectAccessReview, both answers cached (delegation.go).
//
// It is written on client-go and the standard library alone. k8s.io/apiserver has all of this
// (kube-controller-manager's own secure serving, delegating authenticator and authorizer), and an
// earlier version of this package used it; but its packages bring in most of an API server's code
// (admission, CEL, storage): measured, the binary went from 48 to 106 MB and the controller's
// resident memory at rest from 36 to 62 MB, for some 300 lines of logic.
package secureserving

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/klog/v2"

	"example.com/sample-controller/pkg/httpserver"
)

// Config says where and how to serve.
type Config struct {
	// Name names the server in logs ("metrics").
	Name string
	// Address is host:port; port 0 picks a free port.
	Address string
	// CertFile and KeyFile are the serving certificate and its key, PEM. Both empty: a
	// self-signed certificate is generated in memory at start (clients must then skip
	// verification, or pin it). The files are re-read when they change, so a certificate
	// renewed on disk (by cert-manager, say) is served without a restart.
	CertFile, KeyFile string
	// Client asks the API server the TokenReviews and SubjectAccessReviews; the controller's
	// own identity needs create on both (the system:auth-delegator ClusterRole has exactly that).
	Client kubernetes.Interface
}

// The answers of the API server are cached, as kube-controller-manager does, so that a
// scrape every few seconds costs the API server one review per token and path per TTL.
const (
	tokenReviewTTL = 10 * time.Second
	allowTTL       = 10 * time.Second
	reviewTimeout  = 10 * time.Second
)

// Start serves h on cfg.Address until ctx ends, to authenticated and authorized callers only,
// and returns the address it listens on (also logged, with server=cfg.Name). Errors in the
// configuration or a port that cannot be bound are returned at once.
func Start(ctx context.Context, cfg Config, h http.Handler) (string, error) {
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return "", fmt.Errorf("serving %s: give both a certificate and its key, or neither", cfg.Name)
	}
	getCertificate, err := servingCertificate(cfg)
	if err != nil {
		return "", fmt.Errorf("serving %s: %w", cfg.Name, err)
	}
	// HTTP/1.1 only (HTTP/2 off, as kubebuilder's scaffold has it since the HTTP/2 "rapid
	// reset" attacks: a scrape needs nothing HTTP/2 brings), with the read, write and header
	// limits of every server here (pkg/httpserver).
	addr, err := httpserver.StartTLS(ctx, cfg.Name, cfg.Address, newDelegation(cfg.Client).wrap(h),
		&tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: getCertificate})
	if err != nil {
		return "", err
	}
	klog.FromContext(ctx).V(2).Info("Serving certificate", "server", cfg.Name, "selfSigned", cfg.CertFile == "")
	return addr, nil
}

// servingCertificate is the certificate to serve: cfg's files, or a self-signed one made in
// memory (no file: the container's file system is read-only, and a key on disk is one more
// thing to protect).
func servingCertificate(cfg Config) (func(*tls.ClientHelloInfo) (*tls.Certificate, error), error) {
	if cfg.CertFile == "" {
		host, _ := os.Hostname() // the Pod's name in a cluster
		certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey(host, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, []string{"localhost"})
		if err != nil {
			return nil, fmt.Errorf("making a self-signed certificate: %w", err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, err
		}
		return func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &pair, nil }, nil
	}
	files := &certificateFiles{certFile: cfg.CertFile, keyFile: cfg.KeyFile}
	if _, err := files.current(); err != nil { // missing or mismatched files are an error at start
		return nil, err
	}
	return func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return files.current() }, nil
}

// certificateFiles serves the certificate in two files, read again when either changes (a
// Secret volume's update replaces them). A handshake costs two stats; a change, a re-read.
// While a renewal is half written (the certificate new, the key old), the last good pair is
// served.
type certificateFiles struct {
	certFile, keyFile string

	mu      sync.Mutex
	stamp   string // the files' sizes and modification times when last read
	lastPEM []byte
	last    *tls.Certificate
}

func (f *certificateFiles) current() (*tls.Certificate, error) {
	stamp, err := fileStamp(f.certFile, f.keyFile)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil && stamp == f.stamp && f.last != nil {
		return f.last, nil
	}
	certPEM, certErr := os.ReadFile(f.certFile)
	keyPEM, keyErr := os.ReadFile(f.keyFile)
	var pair tls.Certificate
	if err = certErr; err == nil {
		if err = keyErr; err == nil {
			pair, err = tls.X509KeyPair(certPEM, keyPEM)
		}
	}
	if err != nil {
		if f.last != nil {
			return f.last, nil
		}
		return nil, fmt.Errorf("loading the serving certificate %s and key %s: %w", f.certFile, f.keyFile, err)
	}
	if f.last == nil || !bytes.Equal(certPEM, f.lastPEM) {
		f.lastPEM, f.last = certPEM, &pair
	}
	f.stamp = stamp
	return f.last, nil
}

func fileStamp(paths ...string) (string, error) {
	var stamp string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		stamp += fmt.Sprintf("%s:%d:%d;", p, fi.Size(), fi.ModTime().UnixNano())
	}
	return stamp, nil
}
