// Command soak runs sample-controller for a long time under a steady churn and fails when it
// leaks or stops keeping up: `make soak` (hack/soak.sh brings up a local cluster of its own).
//
// It starts the controller binary as a separate process over every namespace, creates --foos
// Foos (spread over --namespaces namespaces) and waits until every one has converged; then, for
// --duration, it sends --rate operations a second (churn.go: Foos scaled, deleted, created and
// re-created; their Deployments edited out of band and deleted), and afterwards waits for every
// Foo to converge again. Every --interval it samples the controller's RSS, Go heap in use,
// goroutines and workqueue depth, and the number of Foos not converged. At the end it prints a
// summary (analysis.go: first, last, min, max and the slope per hour of each series over the
// churn, after a warm-up) and exits 1 when a bound is exceeded, the controller exited, or the
// Foos did not all converge. The samples go to OUT/samples.csv as they are taken, and the
// whole run to OUT/soak.json.
//
// Flags after "--" are passed to the controller (SOAK_ARGS in hack/soak.sh). With --profiling
// among them, the controller's heap profile is saved when the slopes' window opens and at the
// end (OUT/heap-window-start.pprof, OUT/heap-end.pprof): `go tool pprof -base` tells what grew.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"example.com/sample-controller/internal/promtext"
	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
	clientset "example.com/sample-controller/pkg/generated/clientset/versioned"
)

// config is the command line.
type config struct {
	kubeconfig      string
	controllerBin   string
	controllerArgs  []string
	out             string
	foos            int
	namespaces      int
	duration        time.Duration
	rate            float64
	maxInFlight     int
	interval        time.Duration
	warmup          time.Duration
	convergeTimeout time.Duration
	seed            uint64
	bounds          Bounds
}

// soak is one run: its settings, clients and namespaces.
type soak struct {
	cfg        config
	kube       kubernetes.Interface
	sample     clientset.Interface
	namespaces []string
}

func main() {
	cfg := config{bounds: defaultBounds()}
	flag.StringVar(&cfg.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster to soak on")
	flag.StringVar(&cfg.controllerBin, "controller", "bin/sample-controller", "the controller binary")
	flag.StringVar(&cfg.out, "out", "_output/soak", "where the samples (samples.csv), the results (soak.json) and the controller's log go")
	flag.IntVar(&cfg.foos, "foos", 1000, "Foos created at the start; the churn keeps their number")
	flag.IntVar(&cfg.namespaces, "namespaces", 4, "namespaces the Foos are spread over")
	flag.DurationVar(&cfg.duration, "duration", 30*time.Minute, "how long the churn runs")
	flag.Float64Var(&cfg.rate, "rate", 4, "churn operations a second, all kinds together")
	flag.IntVar(&cfg.maxInFlight, "max-in-flight", 16, "churn operations running at once at most; a tick finding that many is skipped (and counted)")
	flag.DurationVar(&cfg.interval, "interval", 10*time.Second, "time between samples")
	flag.DurationVar(&cfg.warmup, "warmup", 5*time.Minute, "the start of the churn left out of the slopes (at most a third of --duration)")
	flag.DurationVar(&cfg.convergeTimeout, "converge-timeout", 15*time.Minute, "give up when the first Foos have not all converged after this long")
	flag.DurationVar(&cfg.bounds.SettleTimeout, "settle-timeout", cfg.bounds.SettleTimeout, "after the churn, every Foo must have converged within this long")
	flag.Float64Var(&cfg.bounds.RSSMiBPerHour, "max-rss-slope", cfg.bounds.RSSMiBPerHour, "bound on RSS growth, MiB/hour")
	flag.Float64Var(&cfg.bounds.HeapMiBPerHour, "max-heap-slope", cfg.bounds.HeapMiBPerHour, "bound on Go heap-in-use growth, MiB/hour")
	flag.Float64Var(&cfg.bounds.LiveHeapMiBPerHour, "max-live-heap-slope", cfg.bounds.LiveHeapMiBPerHour, "bound on the growth of the Go heap live after GC, MiB/hour")
	flag.Float64Var(&cfg.bounds.GoroutinesPerHour, "max-goroutine-slope", cfg.bounds.GoroutinesPerHour, "bound on goroutine growth, per hour")
	flag.Float64Var(&cfg.bounds.NotConvergedPerHour, "max-not-converged-slope", cfg.bounds.NotConvergedPerHour, "bound on the growth of Foos not converged during the churn, per hour")
	flag.Float64Var(&cfg.bounds.EndQueueDepth, "max-end-queue-depth", cfg.bounds.EndQueueDepth, "the workqueue's depth at the end, at most")
	flag.DurationVar(&cfg.bounds.MinWindow, "min-window", cfg.bounds.MinWindow, "slopes over a shorter window (churn minus warm-up) are reported, not checked")
	flag.Uint64Var(&cfg.seed, "seed", 0, "seed of the churn's choices (0: from the clock; the seed used is printed)")
	flag.Parse()
	cfg.controllerArgs = flag.Args()
	if cfg.foos < 1 || cfg.namespaces < 1 || cfg.rate <= 0 || cfg.maxInFlight < 1 || cfg.interval <= 0 || cfg.duration <= 0 {
		fail(errors.New("--foos, --namespaces, --rate, --max-in-flight, --interval and --duration must be positive"))
	}
	if cfg.seed == 0 {
		cfg.seed = uint64(time.Now().UnixNano())
	}
	ok, err := run(cfg)
	if err != nil {
		fail(err)
	}
	if !ok {
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "soak:", err)
	os.Exit(1)
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// Results is what OUT/soak.json holds.
type Results struct {
	Date           string    `json:"date"`
	Machine        string    `json:"machine"`
	LoadAvgStart   string    `json:"loadAverageAtStart"`
	LoadAvgEnd     string    `json:"loadAverageAtEnd"`
	Foos           int       `json:"foos"`
	Namespaces     []string  `json:"namespaces"`
	Duration       string    `json:"churnDuration"`
	Rate           float64   `json:"churnRatePerSecond"`
	Seed           uint64    `json:"seed"`
	ControllerArgs []string  `json:"controllerExtraArgs"`
	Bounds         Bounds    `json:"bounds"`
	ConvergeSecs   float64   `json:"initialConvergenceSeconds"`
	ChurnStart     float64   `json:"churnStartSeconds"`
	ChurnEnd       float64   `json:"churnEndSeconds"`
	Ops            OpCounts  `json:"churnOps"`
	Report         Report    `json:"report"`
	Samples        []Sample  `json:"samples"`
	Ending         EndingDoc `json:"ending"`
}

// EndingDoc is Ending as JSON.
type EndingDoc struct {
	ControllerExited string  `json:"controllerExited,omitempty"`
	ConvergedAfter   float64 `json:"convergedSecondsAfterChurn"`
	EndQueueDepth    float64 `json:"endQueueDepth"`
	StopError        string  `json:"stopError,omitempty"`
	Aborted          string  `json:"aborted,omitempty"`
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func run(cfg config) (bool, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.kubeconfig)
	if err != nil {
		return false, err
	}
	// The soak's own client must never be what limits the churn.
	rc.QPS, rc.Burst = 5000, 10000
	s := &soak{cfg: cfg, kube: kubernetes.NewForConfigOrDie(rc), sample: clientset.NewForConfigOrDie(rc)}
	if _, err := s.kube.Discovery().ServerResourcesForGroupVersion(samplev1.SchemeGroupVersion.String()); err != nil {
		return false, fmt.Errorf("the cluster does not serve %s (create the CRD first: kubectl apply -k artifacts/crd): %w", samplev1.SchemeGroupVersion, err)
	}
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return false, err
	}
	host, _ := os.Hostname()
	res := &Results{
		Date:         time.Now().UTC().Format(time.RFC3339),
		Machine:      fmt.Sprintf("%s, %d CPUs, %s/%s, %s", host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version()),
		LoadAvgStart: loadAvg(), Foos: cfg.foos, Duration: cfg.duration.String(), Rate: cfg.rate, Seed: cfg.seed,
		ControllerArgs: cfg.controllerArgs, Bounds: cfg.bounds,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The first SIGINT or SIGTERM cuts the run short but still prints and saves what it has;
	// a second one ends the program at once.
	var interrupted atomic.Bool
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		if sig, ok := <-sigs; ok {
			interrupted.Store(true)
			signal.Stop(sigs)
			progress("soak: %v: stopping; the summary of what ran follows (again to quit at once)", sig)
			cancel()
		}
	}()

	runID := fmt.Sprintf("%d", time.Now().Unix()%100000)
	for i := range cfg.namespaces {
		ns := fmt.Sprintf("soak-%s-%d", runID, i)
		if _, err := s.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return false, err
		}
		s.namespaces = append(s.namespaces, ns)
	}
	res.Namespaces = s.namespaces
	o, err := s.observe(ctx)
	if err != nil {
		return false, err
	}
	progress("soak: starting %s %s", cfg.controllerBin, strings.Join(cfg.controllerArgs, " "))
	p, err := s.startController()
	if err != nil {
		return false, err
	}
	// The controller must not exit before the soak stops it: when it does, every phase ends.
	var stopping atomic.Bool
	var exited atomic.Value // string
	exitWatch := make(chan struct{})
	go func() {
		defer close(exitWatch)
		<-p.Exited()
		if !stopping.Load() {
			err := p.Wait()
			msg := fmt.Sprintf("exited (%v) at %s; log %s ends:\n%s", err, time.Now().Format("15:04:05"), p.LogPath(), p.LogTail(10))
			exited.Store(msg)
			progress("soak: the controller %s", msg)
			cancel()
		}
	}()
	var ops atomic.Int64
	sm, err := newSampler(p, o, &ops, filepath.Join(cfg.out, "samples.csv"))
	if err != nil {
		_ = p.Stop(30 * time.Second)
		return false, err
	}
	stopSampling := make(chan struct{})
	var sampling sync.WaitGroup
	sampling.Go(func() { sm.run(cfg.interval, stopSampling) })

	end := Ending{ConvergedAfter: -1, EndQueueDepth: -1}
	since := func() float64 { return time.Since(sm.start).Seconds() }
	c := newChurner(s, o, &ops, cfg.seed)

	// 1. The first Foos, until every one has converged.
	progress("soak: creating %d Foos in %d namespaces (%s)", cfg.foos, cfg.namespaces, strings.Join(s.namespaces, ", "))
	start := time.Now()
	if err := s.createFoos(ctx, c); err != nil {
		end.Aborted = "creating the Foos: " + err.Error()
	} else if err := waitConverged(ctx, o, cfg.foos, cfg.convergeTimeout); err != nil {
		end.Aborted = "the first Foos: " + err.Error()
	} else {
		res.ConvergeSecs = time.Since(start).Seconds()
		progress("soak: %d Foos converged after %.0fs", cfg.foos, res.ConvergeSecs)
	}

	// 2. The churn.
	if end.Aborted == "" && ctx.Err() == nil {
		progress("soak: churn for %s at %.1f operations a second (seed %d)", cfg.duration, cfg.rate, cfg.seed)
		sm.phase.Store(phaseChurn)
		res.ChurnStart = since()
		churnCtx, stopChurn := context.WithTimeout(ctx, cfg.duration)
		if s.profiling() {
			// What the heap holds when the slopes' window opens, and (below) at the end.
			warm := time.Duration(effectiveWarmup(cfg.warmup, cfg.duration.Seconds()) * float64(time.Second))
			t := time.AfterFunc(warm, func() { p.heapProfile(filepath.Join(cfg.out, "heap-window-start.pprof")) })
			defer t.Stop()
		}
		c.run(churnCtx, cfg.rate, cfg.maxInFlight)
		stopChurn()
		res.ChurnEnd = since()
		sm.phase.Store(phaseSettle)
		res.Ops = c.summary()
		progress("soak: churn done: %d operations sent; waiting up to %s for every Foo to converge", res.Ops.Sent, cfg.bounds.SettleTimeout)

		// 3. Every Foo converged again, and the workqueue empty.
		churnEnd := time.Now()
		if ctx.Err() == nil {
			if err := waitConverged(ctx, o, -1, cfg.bounds.SettleTimeout); err == nil {
				end.ConvergedAfter = time.Since(churnEnd).Seconds()
				progress("soak: every Foo converged %.0fs after the churn", end.ConvergedAfter)
				end.EndQueueDepth = waitQueue(ctx, p, cfg.bounds.EndQueueDepth, time.Minute)
			}
			st := o.state()
			end.NotConverged, end.Stray = st.notConverged, st.stray
		}
	}
	if ctx.Err() == nil {
		sm.take() // the last word
		if s.profiling() {
			p.heapProfile(filepath.Join(cfg.out, "heap-end.pprof"))
		}
	}
	close(stopSampling)
	sampling.Wait()
	if err := sm.close(); err != nil {
		progress("soak: writing the samples: %v", err)
	}

	// 4. Stop the controller: SIGTERM, and a clean exit expected.
	stopping.Store(true)
	if msg, _ := exited.Load().(string); msg != "" {
		end.ControllerExited = msg
	} else if err := p.Stop(30 * time.Second); err != nil {
		end.StopError = err.Error()
	}
	<-exitWatch
	if msg, _ := exited.Load().(string); msg != "" { // it exited between the two looks
		end.ControllerExited, end.StopError = msg, ""
	}
	if interrupted.Load() {
		end.Aborted = "interrupted by a signal"
	}
	if end.Aborted == "" && end.ControllerExited == "" && res.ChurnEnd == 0 {
		end.Aborted = "the churn did not run"
	}

	res.LoadAvgEnd = loadAvg()
	res.Samples = sm.all()
	if res.ChurnEnd == 0 {
		res.ChurnStart, res.ChurnEnd = since(), since()
	}
	res.Report = analyze(res.Samples, res.ChurnStart, res.ChurnEnd, cfg.warmup, cfg.bounds, end)
	res.Ending = EndingDoc{ControllerExited: end.ControllerExited, ConvergedAfter: end.ConvergedAfter, EndQueueDepth: end.EndQueueDepth,
		StopError: end.StopError, Aborted: end.Aborted}
	if res.Ops.Counts == nil {
		res.Ops = c.summary()
	}

	printHeader(os.Stdout, res)
	printOps(os.Stdout, res.Ops, res.ChurnEnd-res.ChurnStart)
	fmt.Println()
	printSummary(os.Stdout, res.Report)
	jsonPath := filepath.Join(cfg.out, "soak.json")
	if err := writeJSON(res, jsonPath); err != nil {
		return false, err
	}
	progress("soak: samples in %s, results in %s, the controller's log in %s", filepath.Join(cfg.out, "samples.csv"), jsonPath, p.LogPath())
	if !res.Report.OK {
		return false, nil
	}
	// Only a run that passed removes its namespaces (a failed one is kept for a look, with
	// SOAK_KEEP_CLUSTER).
	for _, ns := range s.namespaces {
		_ = s.kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	}
	return true, nil
}

// createFoos creates the first Foos with many goroutines, spread over the namespaces, their
// replicas drawn as the churn draws them.
func (s *soak) createFoos(ctx context.Context, c *churner) error {
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < s.cfg.foos; i = int(next.Add(1)) - 1 {
				ns := s.namespaces[i%len(s.namespaces)]
				if _, err := s.sample.SamplecontrollerV1().Foos(ns).Create(ctx, newFoo(ns, fmt.Sprintf("foo-%05d", i), replicasFor(c.float())), metav1.CreateOptions{}); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	return nil
}

// waitConverged waits until every Foo (and, when n >= 0, n of them) has converged and no stray
// Deployment is left.
func waitConverged(ctx context.Context, o *observer, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := time.Now()
	for {
		st := o.state()
		if st.notConverged == 0 && st.stray == 0 && (n < 0 || st.foos == n) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %d Foos, %d not converged, %d stray Deployments", timeout, st.foos, st.notConverged, st.stray)
		}
		if time.Since(last) >= 15*time.Second {
			progress("  %d Foos, %d not converged, %d stray Deployments", st.foos, st.notConverged, st.stray)
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// waitQueue waits up to timeout for the workqueue to hold at most bound keys (a resync can
// fill it for a moment), and returns its depth then; -1 when it cannot be read.
func waitQueue(ctx context.Context, p *controller, bound float64, timeout time.Duration) float64 {
	deadline := time.Now().Add(timeout)
	depth := -1.0
	for {
		if m, err := promtext.Scrape(p.metrics); err == nil {
			if d, ok := m.Sum(`workqueue_depth{name="foos"}`); ok {
				depth = d
			}
		}
		if (depth >= 0 && depth <= bound) || time.Now().After(deadline) || ctx.Err() != nil {
			return depth
		}
		time.Sleep(time.Second)
	}
}

func writeJSON(r *Results, path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func printHeader(w io.Writer, r *Results) {
	fmt.Fprintf(w, "\nsample-controller soak, %s, %s (load average %s at the start, %s at the end)\n", r.Date, r.Machine, r.LoadAvgStart, r.LoadAvgEnd)
	fmt.Fprintf(w, "%d Foos in %d namespaces converged in %.0fs; churn %s at %.1f operations/s (seed %d); controller extra flags: %q\n",
		r.Foos, len(r.Namespaces), r.ConvergeSecs, r.Duration, r.Rate, r.Seed, r.ControllerArgs)
}

// printOps prints what the churn did, per kind and outcome.
func printOps(w io.Writer, ops OpCounts, seconds float64) {
	outcomes := []string{"ok", "not found", "conflict", "already exists", "error"}
	kinds := make([]string, 0, len(ops.Counts))
	var total int
	for k, v := range ops.Counts {
		kinds = append(kinds, k)
		for _, n := range v {
			total += n
		}
	}
	sort.Strings(kinds)
	names := padRight(append([]string{"operation"}, kinds...))
	rate := 0.0
	if seconds > 0 {
		rate = float64(total) / seconds
	}
	fmt.Fprintf(w, "\nChurn: %d operations done in %.0fs (%.2f/s), %d ticks skipped with %s in flight\n", total, seconds, rate, ops.Skipped, "--max-in-flight")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\t%s\t\n", names[0], strings.Join(outcomes, "\t"))
	for i, k := range kinds {
		row := []string{names[i+1]}
		for _, o := range outcomes {
			row = append(row, fmt.Sprint(ops.Counts[k][o]))
		}
		fmt.Fprintf(tw, "%s\t\n", strings.Join(row, "\t"))
	}
	tw.Flush()
}
