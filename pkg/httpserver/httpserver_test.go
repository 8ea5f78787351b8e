package httpserver

import (
	"context"
	"io"
	"net"
	"net/http"
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
