// Package httpserver runs the small HTTP servers of the controller process (probes, and metrics
// when they are served without TLS) for as long as a context lives, with the limits every
// server of the process shares.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"k8s.io/klog/v2"
)

// Disabled is the address that turns a server off.
const Disabled = "0"

// Limits are what every server of the process allows a client. A client that connects and
// sends nothing, sends slowly, reads slowly or never closes an idle connection holds a
// goroutine and a socket; these bound how long.
type Limits struct {
	ReadHeader, Read, Write, Idle time.Duration
	MaxHeaderBytes                int
}

// limits is a variable only so that tests can shorten it. Write leaves room for a 60-second
// CPU profile or execution trace.
var limits = Limits{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Write: 90 * time.Second,
	Idle: 90 * time.Second, MaxHeaderBytes: 64 << 10}

// Start listens on addr (host:port; port 0 picks a free port) and serves h until ctx ends,
// then shuts down gracefully. It returns the address it listens on, which it also logs, or ""
// when addr is Disabled. A port that cannot be bound is an error at once, not a log line later.
func Start(ctx context.Context, name, addr string, h http.Handler) (string, error) {
	if addr == Disabled || addr == "" {
		return "", nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("serving %s on %s: %w", name, addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: limits.ReadHeader,
		ReadTimeout:       limits.Read,
		WriteTimeout:      limits.Write,
		IdleTimeout:       limits.Idle,
		MaxHeaderBytes:    limits.MaxHeaderBytes,
	}
	logger := klog.FromContext(ctx).WithValues("server", name, "address", ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error(err, "HTTP server stopped")
		}
	}()
	context.AfterFunc(ctx, func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	})
	logger.Info("Serving", "scheme", "http")
	return ln.Addr().String(), nil
}

// WithDeadlines gives each request the read and write deadlines that Start's servers have, for
// servers built elsewhere that cannot be given them directly (k8s.io/apiserver's secure
// serving sets its own header, idle and header-size limits, but no read or write timeout).
func WithDeadlines(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		now := time.Now()
		// Errors mean the connection cannot take deadlines (not one of net/http's own); the
		// server's other limits still hold.
		_ = rc.SetReadDeadline(now.Add(limits.Read))
		_ = rc.SetWriteDeadline(now.Add(limits.Write))
		h.ServeHTTP(w, r)
	})
}
