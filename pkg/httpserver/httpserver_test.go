package httpserver

import (
	"context"
	"errors"
	"io"
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
