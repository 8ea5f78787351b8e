// Package httpserver runs the small plain-HTTP servers of the controller process (metrics and
// probes) for as long as a context lives.
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
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
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
	logger.Info("Serving")
	return ln.Addr().String(), nil
}
