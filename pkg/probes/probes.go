// Package probes serves the kubelet's probes: /healthz (liveness: restart me when it fails)
// and /readyz (readiness: send me traffic, or count me as up, only when it passes).
package probes

import (
	"fmt"
	"net/http"
	"strings"

	"k8s.io/klog/v2"
)

// Check is one named probe check. client-go's leaderelection.HealthzAdaptor is one.
type Check interface {
	Name() string
	Check(req *http.Request) error
}

// CheckFunc turns a function into a Check.
type CheckFunc struct {
	CheckName string
	Func      func(req *http.Request) error
}

func (c CheckFunc) Name() string                  { return c.CheckName }
func (c CheckFunc) Check(req *http.Request) error { return c.Func(req) }

// Handler serves /healthz with the liveness checks and /readyz with the readiness checks.
// A probe answers 200 "ok" when all its checks pass, and 503 with each check's name and
// ok/failed when one fails, so `curl host:port/readyz` tells a person which check fails. Why it
// fails goes to the log only, as Kubernetes' own components withhold it: the probe port needs
// no token, so anyone who reaches it reads the answer.
func Handler(liveness, readiness []Check) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/healthz", checksHandler(liveness))
	mux.Handle("/readyz", checksHandler(readiness))
	return mux
}

func checksHandler(checks []Check) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		var report strings.Builder
		failed := false
		for _, c := range checks {
			if err := c.Check(req); err != nil {
				failed = true
				fmt.Fprintf(&report, "[-] %s failed: reason withheld\n", c.Name())
				klog.FromContext(req.Context()).V(2).Info("Probe check failed", "path", req.URL.Path, "check", c.Name(), "err", err)
			} else {
				fmt.Fprintf(&report, "[+] %s ok\n", c.Name())
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if failed {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, report.String())
			return
		}
		if _, verbose := req.URL.Query()["verbose"]; verbose {
			fmt.Fprint(w, report.String())
		}
		fmt.Fprint(w, "ok")
	}
}
