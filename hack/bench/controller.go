package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"example.com/sample-controller/internal/process"
	"example.com/sample-controller/internal/promtext"
)

// controller is the controller binary, run for one measurement with the benchmark's flags.
type controller struct {
	*process.Process
	metrics string // the /metrics URL
	probes  string // the probes server's base URL
}

// startController starts the controller on namespace ns and waits until it is ready.
func (b *bench) startController(ns string, extra ...string) (*controller, error) {
	logFile, err := os.Create(filepath.Join(b.cfg.logDir, ns+"-"+strconv.FormatInt(time.Now().UnixNano()%1e6, 10)+".log"))
	if err != nil {
		return nil, err
	}
	args := append([]string{"--kubeconfig=" + b.cfg.kubeconfig, "--namespace=" + ns,
		"--workers=" + strconv.Itoa(b.cfg.workers), "--kube-api-qps=" + strconv.Itoa(b.cfg.qps), "--kube-api-burst=" + strconv.Itoa(b.cfg.burst),
		"--resync-period=" + b.cfg.resync.String(),
		"--metrics-bind-address=127.0.0.1:0", "--metrics-secure=false", "--health-probe-bind-address=127.0.0.1:0"}, extra...)
	proc, err := process.Start(exec.Command(b.cfg.controllerBin, args...), logFile)
	if err != nil {
		return nil, err
	}
	p := &controller{Process: proc}
	deadline := time.Now().Add(30 * time.Second)
	metrics, err := p.WaitForAddress("metrics", time.Until(deadline))
	if err != nil {
		p.stop()
		return nil, err
	}
	probes, err := p.WaitForAddress("probes", time.Until(deadline))
	if err != nil {
		p.stop()
		return nil, err
	}
	p.metrics, p.probes = "http://"+metrics+"/metrics", "http://"+probes
	for time.Now().Before(deadline) {
		if resp, err := http.Get(p.probes + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.stop()
	return nil, fmt.Errorf("the controller did not become ready; log: %s", p.LogPath())
}

// stop stops the controller with SIGTERM (SIGKILL after 30 s).
func (p *controller) stop() { _ = p.Stop(30 * time.Second) }

// cpuProfile writes a CPU profile of the controller over the next d to path.
func (p *controller) cpuProfile(d time.Duration, path string) {
	url := strings.TrimSuffix(p.metrics, "/metrics") + fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(d.Seconds()))
	resp, err := http.Get(url)
	if err != nil {
		progress("cpu profile: %v", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err == nil {
		_, err = io.Copy(f, resp.Body)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		progress("cpu profile: %v", err)
		return
	}
	progress("cpu profile of the controller written to %s", path)
}

// scrape reads the controller's /metrics.
func (p *controller) scrape() (promtext.Samples, error) { return promtext.Scrape(p.metrics) }

// waitQuiet waits until the controller has made no request for quiet (events included).
func (p *controller) waitQuiet(quiet time.Duration) error {
	deadline := time.Now().Add(5 * time.Minute)
	last, err := p.scrape()
	if err != nil {
		return err
	}
	since := time.Now()
	for time.Since(since) < quiet {
		if time.Now().After(deadline) {
			return fmt.Errorf("the controller never went quiet; log: %s", p.LogPath())
		}
		time.Sleep(500 * time.Millisecond)
		now, err := p.scrape()
		if err != nil {
			return err
		}
		if len(promtext.DeltaBy(last, now, "rest_client_requests_total", "method")) > 0 {
			since = time.Now()
		}
		last = now
	}
	return nil
}
