// Package httpserver runs the small HTTP servers of the controller process (probes, metrics
// when they are served without TLS, the conversion webhook over TLS) for as long as a context
// lives, with the limits every server of the process shares.
package httpserver

import (
	"context"
	"crypto/tls"
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
	return start(ctx, name, addr, h, nil)
}

// StartTLS is Start over TLS: it serves h with cfg (which has the certificate, GetCertificate
// typically, so that a renewed one is served without a restart) until ctx ends, with the same
// limits, and returns the address it listens on or "" when addr is Disabled.
//
// It serves HTTP/1.1 only, whatever cfg.NextProtos says (cfg is not modified: a clone is). A
// client such as the API server, which calls webhooks over HTTP/2 when it is offered, then
// speaks HTTP/1.1. HTTP/2 brings nothing to a few requests a second, and costs: its stream
// multiplexing is what the "rapid reset" attack (CVE-2023-44487) abuses, as well as a slow
// client's many streams on one connection; with one request at a time per connection, the
// server's read and write timeouts and a handler's bounded body are all the limits a request
// needs. (The metrics port is served the same way, for the same reasons.)
func StartTLS(ctx context.Context, name, addr string, h http.Handler, cfg *tls.Config) (string, error) {
	if addr == Disabled || addr == "" {
		return "", nil
	}
	if cfg == nil || (len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil) {
		return "", fmt.Errorf("serving %s on %s: the TLS configuration has no certificate", name, addr)
	}
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	return start(ctx, name, addr, h, cfg)
}

// start serves h on addr, over TLS with tlsCfg unless it is nil.
func start(ctx context.Context, name, addr string, h http.Handler, tlsCfg *tls.Config) (string, error) {
	if addr == Disabled || addr == "" {
		return "", nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("serving %s on %s: %w", name, addr, err)
	}
	logger := klog.FromContext(ctx).WithValues("server", name, "address", ln.Addr().String())
	// HTTP/1.1 only: see StartTLS. (Without TLS, net/http serves HTTP/2 only when told to.)
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: limits.ReadHeader,
		ReadTimeout:       limits.Read,
		WriteTimeout:      limits.Write,
		IdleTimeout:       limits.Idle,
		MaxHeaderBytes:    limits.MaxHeaderBytes,
		TLSConfig:         tlsCfg,
		Protocols:         &protocols,
		// Requests carry ctx's values (the logger, for klog.FromContext(r.Context())) but not
		// its end: a request in flight when ctx ends is given Shutdown's grace to finish.
		BaseContext: func(net.Listener) context.Context { return klog.NewContext(context.WithoutCancel(ctx), logger) },
	}
	scheme := "http"
	serve := func() error { return srv.Serve(ln) }
	if tlsCfg != nil {
		scheme = "https"
		serve = func() error { return srv.ServeTLS(ln, "", "") } // the certificate is in tlsCfg
	}
	go func() {
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error(err, "HTTP server stopped")
		}
	}()
	context.AfterFunc(ctx, func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	})
	logger.Info("Serving", "scheme", scheme)
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
