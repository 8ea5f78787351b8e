package httpserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/klog/v2/ktesting"
)

func TestDisabled(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	for _, addr := range []string{Disabled, ""} {
		if got, err := Start(ctx, "x", addr, http.NotFoundHandler()); got != "" || err != nil {
			t.Errorf("Start(%q) = %q, %v; want no server", addr, got, err)
		}
	}
}

func TestServesUntilTheContextEnds(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	addr, err := Start(ctx, "x", "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") }))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello" {
		t.Errorf("body = %q, want hello", body)
	}

	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break // closed
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("still listening 10s after the context ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A port that cannot be bound is an error at start, naming the server and the address.
func TestBusyPortIsAnError(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Start(ctx, "metrics", ln.Addr().String(), http.NotFoundHandler())
	if err == nil || !strings.Contains(err.Error(), "serving metrics on "+ln.Addr().String()) {
		t.Errorf("Start on a busy port = %v, want an error naming the server and address", err)
	}
}

// shortLimits makes the limits short enough to watch them act, for one test.
func shortLimits(t *testing.T) {
	old := limits
	limits = Limits{ReadHeader: 300 * time.Millisecond, Read: 300 * time.Millisecond, Write: 300 * time.Millisecond,
		Idle: 300 * time.Millisecond, MaxHeaderBytes: 1 << 10}
	t.Cleanup(func() { limits = old })
}

// closedWithin reports whether the server closes conn within d (reading whatever it sends).
func closedWithin(conn net.Conn, d time.Duration) bool {
	conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, conn)
	return err == nil // EOF: closed by the server; a timeout is an error
}

func TestSlowAndIdleClientsAreCutOff(t *testing.T) {
	shortLimits(t)
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	addr, err := Start(ctx, "x", "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, send string }{
		{"a header never finished", "GET / HTTP/1.1\r\nHost: x\r\n"},
		{"a body never finished", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly a part"},
		{"an idle keep-alive connection", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"nothing at all", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			io.WriteString(conn, tc.send)
			if !closedWithin(conn, 5*time.Second) {
				t.Errorf("the connection is still open 5s later; limits are %+v", limits)
			}
		})
	}
	t.Run("a header too large", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr, nil)
		req.Header.Set("X-Large", strings.Repeat("x", 8<<10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("status = %d, want 431", resp.StatusCode)
		}
	})
}

// WithDeadlines gives a server that has no timeouts of its own the same read and write limits.
func TestWithDeadlines(t *testing.T) {
	shortLimits(t)
	writeErr := make(chan error, 1)
	srv := httptest.NewServer(WithDeadlines(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			io.Copy(io.Discard, r.Body) // a body that never ends: the read deadline ends it
			return
		}
		// A response far larger than socket buffers, to a client that does not read it.
		chunk := []byte(strings.Repeat("x", 1<<20))
		for {
			if _, err := w.Write(chunk); err != nil {
				writeErr <- err
				return
			}
		}
	})))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly a part")
	if !closedWithin(conn, 5*time.Second) {
		t.Error("a request body that never ends is still being read 5s later")
	}

	reader, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	io.WriteString(reader, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") // and never read the answer
	select {
	case err := <-writeErr:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Logf("the write failed with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("a response to a client that does not read is still being written 10s later")
	}
}

// selfSigned makes a certificate for 127.0.0.1, valid for an hour, and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "httpserver test"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestStartTLS(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	type key struct{}
	ctx, cancel := context.WithCancel(context.WithValue(ctx, key{}, "from ctx"))
	defer cancel()
	cert, pool := selfSigned(t)
	cfg := &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil },
		NextProtos:     []string{"h2", "http/1.1"}, // the caller's wish; StartTLS serves HTTP/1.1 regardless
	}
	addr, err := StartTLS(ctx, "webhook", "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(key{}) != "from ctx" {
			t.Error("the request's context does not carry the values of StartTLS's")
		}
		io.WriteString(w, "hello")
	}), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.NextProtos) != 2 {
		t.Errorf("StartTLS modified the caller's configuration: NextProtos = %v", cfg.NextProtos)
	}

	t.Run("a client that trusts the certificate", func(t *testing.T) {
		// A client that would take HTTP/2 if offered, as the API server's.
		client := &http.Client{Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool},
			ForceAttemptHTTP2: true,
		}}
		defer client.CloseIdleConnections()
		resp, err := client.Get("https://" + addr)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "hello" {
			t.Errorf("got %d %q, want 200 hello", resp.StatusCode, body)
		}
		if resp.Proto != "HTTP/1.1" || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "http/1.1" {
			t.Errorf("protocol %s (ALPN %q), want HTTP/1.1 only", resp.Proto, resp.TLS.NegotiatedProtocol)
		}
	})

	t.Run("a client that does not trust it", func(t *testing.T) {
		client := &http.Client{Transport: &http.Transport{}}
		defer client.CloseIdleConnections()
		if resp, err := client.Get("https://" + addr); err == nil {
			resp.Body.Close()
			t.Error("a client without the certificate in its roots connected")
		}
	})

	t.Run("plain HTTP", func(t *testing.T) {
		resp, err := http.Get("http://" + addr)
		if err != nil {
			return // refused: fine
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// net/http answers an HTTP request on a TLS port with 400, without calling the handler.
		if resp.StatusCode != http.StatusBadRequest || string(body) == "hello" {
			t.Errorf("plain HTTP got %d %q, want it refused", resp.StatusCode, body)
		}
	})

	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break // closed
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("still listening 10s after the context ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStartTLSNeedsACertificate(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	for _, cfg := range []*tls.Config{nil, {}} {
		if addr, err := StartTLS(ctx, "webhook", "127.0.0.1:0", http.NotFoundHandler(), cfg); err == nil {
			t.Errorf("StartTLS without a certificate serves on %s, want an error", addr)
		}
	}
	if addr, err := StartTLS(ctx, "webhook", Disabled, http.NotFoundHandler(), nil); addr != "" || err != nil {
		t.Errorf("StartTLS(Disabled) = %q, %v; want no server", addr, err)
	}
}
