package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"example.com/sample-controller/internal/process"
	"example.com/sample-controller/internal/promtext"
)

// controller is the controller binary under soak.
type controller struct {
	*process.Process
	metrics string // the /metrics URL
}

// startController starts the controller over every namespace with the soak's flags, then
// extra, and waits until it is ready.
func (s *soak) startController() (*controller, error) {
	logFile, err := os.Create(filepath.Join(s.cfg.out, "controller.log"))
	if err != nil {
		return nil, err
	}
	args := append([]string{"--kubeconfig=" + s.cfg.kubeconfig,
		"--metrics-bind-address=127.0.0.1:0", "--metrics-secure=false", "--health-probe-bind-address=127.0.0.1:0"}, s.cfg.controllerArgs...)
	proc, err := process.Start(exec.Command(s.cfg.controllerBin, args...), logFile)
	if err != nil {
		return nil, err
	}
	p := &controller{Process: proc}
	deadline := time.Now().Add(60 * time.Second)
	metrics, err := p.WaitForAddress("metrics", time.Until(deadline))
	if err == nil {
		var probes string
		if probes, err = p.WaitForAddress("probes", time.Until(deadline)); err == nil {
			p.metrics = "http://" + metrics + "/metrics"
			for time.Now().Before(deadline) {
				if resp, err := http.Get("http://" + probes + "/readyz"); err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						return p, nil
					}
				}
				time.Sleep(100 * time.Millisecond)
			}
			err = fmt.Errorf("the controller did not become ready within 60s; log: %s", p.LogPath())
		}
	}
	_ = p.Stop(30 * time.Second)
	return nil, err
}

// profiling says whether the controller serves Go's profiles (SOAK_ARGS=--profiling).
func (s *soak) profiling() bool {
	for _, a := range s.cfg.controllerArgs {
		if a == "--profiling" || a == "-profiling" || a == "--profiling=true" || a == "-profiling=true" {
			return true
		}
	}
	return false
}

// heapProfile saves the controller's heap profile (after a garbage collection) to path, for
// `go tool pprof -base START END` to tell what grew.
func (p *controller) heapProfile(path string) {
	url := strings.TrimSuffix(p.metrics, "/metrics") + "/debug/pprof/heap?gc=1"
	resp, err := http.Get(url)
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
	}
	var f *os.File
	if err == nil {
		if f, err = os.Create(path); err == nil {
			_, err = io.Copy(f, resp.Body)
			err = errors.Join(err, f.Close())
		}
	}
	if err != nil {
		progress("soak: heap profile: %v", err)
		return
	}
	progress("soak: heap profile of the controller written to %s", path)
}

// sampler reads the controller and the observer every interval, keeps the samples and appends
// each to a CSV file as it is taken (a run cut short still leaves them).
type sampler struct {
	p     *controller
	o     *observer
	ops   *atomic.Int64
	start time.Time
	phase atomic.Value // string

	mu      sync.Mutex
	samples []Sample
	file    *os.File
	csv     *csv.Writer
}

var csvHeader = []string{"time", "elapsed_s", "phase", "rss_mib", "heap_inuse_mib", "heap_live_mib", "goroutines", "queue_depth",
	"foos", "not_converged", "stray_deployments", "churn_ops", "error"}

func newSampler(p *controller, o *observer, ops *atomic.Int64, path string) (*sampler, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	sm := &sampler{p: p, o: o, ops: ops, start: time.Now(), file: f, csv: csv.NewWriter(f)}
	sm.phase.Store(phaseConverge)
	if err := sm.csv.Write(csvHeader); err != nil {
		return nil, err
	}
	sm.csv.Flush()
	return sm, sm.csv.Error()
}

// take reads one sample, keeps it and writes it out.
func (sm *sampler) take() Sample {
	now := time.Now()
	s := Sample{Time: now.UTC(), Elapsed: now.Sub(sm.start).Seconds(), Phase: sm.phase.Load().(string), Ops: sm.ops.Load()}
	if kib, err := sm.p.StatusKiB("VmRSS"); err != nil {
		s.RSSError = err.Error()
	} else {
		s.RSSMiB = kib / 1024
	}
	if m, err := promtext.Scrape(sm.p.metrics); err != nil {
		s.ScrapeError = err.Error()
	} else {
		heap, ok1 := m.Sum("go_memstats_heap_inuse_bytes")
		gor, ok2 := m.Sum("go_goroutines")
		depth, ok3 := m.Sum(`workqueue_depth{name="foos"}`)
		if !ok1 || !ok2 || !ok3 {
			s.ScrapeError = "a series is missing from /metrics (go_memstats_heap_inuse_bytes, go_goroutines, workqueue_depth{name=\"foos\"})"
		}
		s.HeapInuseMiB, s.Goroutines, s.QueueDepth = heap/(1<<20), gor, depth
		live, _ := m.Sum("go_gc_heap_live_bytes")
		s.HeapLiveMiB = live / (1 << 20)
	}
	st := sm.o.state()
	s.Foos, s.NotConverged, s.StrayDeployments = st.foos, st.notConverged, st.stray

	sm.mu.Lock()
	defer sm.mu.Unlock()
	sm.samples = append(sm.samples, s)
	errText := s.ScrapeError
	if s.RSSError != "" {
		errText = s.RSSError + " " + errText
	}
	_ = sm.csv.Write([]string{s.Time.Format(time.RFC3339), f1(s.Elapsed), s.Phase, f1(s.RSSMiB), f1(s.HeapInuseMiB), f1(s.HeapLiveMiB), f1(s.Goroutines), f1(s.QueueDepth),
		strconv.Itoa(s.Foos), strconv.Itoa(s.NotConverged), strconv.Itoa(s.StrayDeployments), strconv.FormatInt(s.Ops, 10), errText})
	sm.csv.Flush()
	return s
}

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// run samples every interval until stop is closed; the first sample at once.
func (sm *sampler) run(interval time.Duration, stop <-chan struct{}) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; ; i++ {
		s := sm.take()
		if i%6 == 0 || s.ScrapeError != "" || s.RSSError != "" {
			progress("  sample [%s] RSS %.1f MiB, heap in use %.1f MiB (live %.1f), %.0f goroutines, queue %.0f, %d Foos (%d not converged, %d stray Deployments), %d ops%s",
				s.Phase, s.RSSMiB, s.HeapInuseMiB, s.HeapLiveMiB, s.Goroutines, s.QueueDepth, s.Foos, s.NotConverged, s.StrayDeployments, s.Ops, errSuffix(s))
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

func errSuffix(s Sample) string {
	if s.ScrapeError == "" && s.RSSError == "" {
		return ""
	}
	return fmt.Sprintf(" (%s%s)", s.RSSError, s.ScrapeError)
}

// all returns the samples taken so far.
func (sm *sampler) all() []Sample {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	return append([]Sample(nil), sm.samples...)
}

func (sm *sampler) close() error {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	sm.csv.Flush()
	return sm.file.Close()
}
