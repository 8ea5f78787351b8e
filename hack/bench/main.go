// Command bench measures sample-controller against a real cluster, with the controller as a
// separate process, and prints a table (and writes JSON) of:
//
//   - convergence: N Foos created as fast as the API allows; time until every Foo has its
//     Deployment, and until every Foo's status is current (replicas 0, and replicas 1 with pods);
//   - the floor: the same necessary writes (N Deployment creates + N status writes) by a bare
//     parallel client with the controller's QPS budget and parallelism, timed like the
//     controller, and the writes alone for Foos created beforehand; the ratios are medians
//     over --rounds runs of both;
//   - steady state: the controller's requests over two resync periods after convergence;
//   - API calls per Foo by verb and resource (from the API server's audit log, when given);
//   - memory: peak RSS and Go heap with N Foos and their Deployments, with and without the
//     informer transform that drops managedFields;
//   - latency: Foo created -> Deployment created, p50/p99, at a steady rate;
//   - growth: convergence time per Foo across N.
//
// hack/bench.sh brings up a local cluster for it; see docs/benchmarks.md.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	samplev1alpha1 "example.com/sample-controller/pkg/apis/samplecontroller/v1alpha1"
	clientset "example.com/sample-controller/pkg/generated/clientset/versioned"
	informers "example.com/sample-controller/pkg/generated/informers/externalversions"
)

type config struct {
	kubeconfig    string
	controllerBin string
	ns            []int
	podsN         []int
	workers       int
	qps, burst    int
	resync        time.Duration
	memoryN       []int
	latencyRate   int
	latencyFor    time.Duration
	auditLog      string
	jsonOut       string
	logDir        string
	timeout       time.Duration
	cpuProfile    string
	rounds        int
}

// Results is what the JSON file holds.
type Results struct {
	Machine     string             `json:"machine"`
	Date        string             `json:"date"`
	Controller  map[string]any     `json:"controllerFlags"`
	Convergence []Convergence      `json:"convergence"`
	Floor       []Floor            `json:"floor"`
	Steady      *Steady            `json:"steadyState,omitempty"`
	Memory      []Memory           `json:"memory"`
	Latency     *Latency           `json:"latency,omitempty"`
	Growth      []GrowthPoint      `json:"growth"`
	CallsPerFoo map[string]float64 `json:"apiCallsPerFoo,omitempty"`
}

type Convergence struct {
	N                int                `json:"n"`
	Replicas         int32              `json:"replicas"`
	CreateSeconds    float64            `json:"createSeconds"`
	DeploymentsSecs  float64            `json:"allDeploymentsSeconds"`
	StatusSecs       float64            `json:"allStatusCurrentSeconds"`
	ReadySecs        float64            `json:"allReadySeconds"`
	RequestsByMethod map[string]float64 `json:"controllerRequestsByMethod"`
	Reconciles       map[string]float64 `json:"reconcilesByResult"`
	CallsPerFoo      map[string]float64 `json:"apiCallsPerFoo,omitempty"`
}

type Floor struct {
	N      int          `json:"n"`
	Rounds []FloorRound `json:"rounds"`
	// Medians over the rounds of controller time / floor time.
	Ratio           float64 `json:"controllerOverFloor"`
	PrecreatedRatio float64 `json:"controllerOverPrecreatedFloor"`
}

// FloorRound is one controller convergence run and the floors measured right after it.
type FloorRound struct {
	ControllerSeconds float64 `json:"controllerSeconds"`
	// The floor timed like the controller: first Foo create -> every status seen current.
	Seconds float64 `json:"floorSeconds"`
	// The writes alone, for Foos created before the clock starts: first write -> every status seen current.
	PrecreatedSeconds float64 `json:"precreatedFloorSeconds"`
}

func (r FloorRound) ratio() float64           { return r.ControllerSeconds / r.Seconds }
func (r FloorRound) precreatedRatio() float64 { return r.ControllerSeconds / r.PrecreatedSeconds }

type Steady struct {
	N             int                `json:"n"`
	WindowSeconds float64            `json:"windowSeconds"`
	Requests      map[string]float64 `json:"controllerRequestsByMethod"`
	Writes        float64            `json:"writes"`
	Reconciles    float64            `json:"reconciles"`
}

type Memory struct {
	N                 int     `json:"n"`
	DropManagedFields bool    `json:"dropManagedFields"`
	PeakRSSMiB        float64 `json:"peakRSSMiB"`
	HeapMiB           float64 `json:"goHeapMiB"`
}

type Latency struct {
	Rate  int     `json:"foosPerSecond"`
	Count int     `json:"count"`
	P50ms float64 `json:"p50ms"`
	P99ms float64 `json:"p99ms"`
	MaxMs float64 `json:"maxMs"`
}

type GrowthPoint struct {
	N             int     `json:"n"`
	Seconds       float64 `json:"seconds"`
	MillisPerFoo  float64 `json:"msPerFoo"`
	RelativeToMin float64 `json:"perFooRelativeToSmallestN"`
}

var (
	kube   kubernetes.Interface
	sample clientset.Interface
	cfg    config
)

func main() {
	flag.StringVar(&cfg.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster to measure on")
	flag.StringVar(&cfg.controllerBin, "controller", "bin/sample-controller", "the controller binary")
	nList := flag.String("n", "1000", "comma-separated numbers of Foos for the convergence runs (replicas 0)")
	podsList := flag.String("pods-n", "1000", "comma-separated numbers of Foos for convergence runs with replicas 1 (real pods on kwok nodes); empty for none")
	flag.IntVar(&cfg.workers, "workers", 4, "controller --workers")
	flag.IntVar(&cfg.qps, "qps", 100, "controller --kube-api-qps (and the floor's client)")
	flag.IntVar(&cfg.burst, "burst", 200, "controller --kube-api-burst (and the floor's client)")
	flag.DurationVar(&cfg.resync, "resync", 20*time.Second, "controller --resync-period; steady state is measured over two of them")
	memList := flag.String("memory-n", "1000", "comma-separated numbers of Foos to measure memory at")
	flag.IntVar(&cfg.latencyRate, "latency-rate", 20, "Foos per second in the latency run")
	flag.DurationVar(&cfg.latencyFor, "latency-duration", 15*time.Second, "how long the latency run creates Foos")
	flag.StringVar(&cfg.auditLog, "audit-log", "", "the API server's audit log (JSON lines), for API calls per Foo by verb and resource")
	flag.StringVar(&cfg.jsonOut, "json", "_output/bench/results.json", "where to write the results as JSON")
	flag.StringVar(&cfg.logDir, "log-dir", "_output/bench", "where the controllers' logs go")
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "give up on one convergence after this long")
	flag.IntVar(&cfg.rounds, "rounds", 3, "controller and floor runs per N in --n; the ratios reported are the medians")
	flag.StringVar(&cfg.cpuProfile, "cpu-profile", "", "write a 20 s CPU profile of the controller, taken from the start of the first convergence run, to this file (go tool pprof FILE)")
	flag.Parse()
	var err error
	if cfg.ns, err = parseInts(*nList); err == nil {
		if cfg.podsN, err = parseInts(*podsList); err == nil {
			cfg.memoryN, err = parseInts(*memList)
		}
	}
	if err == nil && cfg.rounds < 1 {
		err = fmt.Errorf("--rounds must be at least 1, got %d", cfg.rounds)
	}
	if err != nil {
		fail(err)
	}
	if err := run(); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("not a positive number: %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run() error {
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.kubeconfig)
	if err != nil {
		return err
	}
	// The bench's own client must never be the bottleneck.
	rc.QPS, rc.Burst = 5000, 10000
	kube = kubernetes.NewForConfigOrDie(rc)
	sample = clientset.NewForConfigOrDie(rc)
	if _, err := kube.Discovery().ServerResourcesForGroupVersion(samplev1alpha1.SchemeGroupVersion.String()); err != nil {
		return fmt.Errorf("the cluster does not serve %s (create the CRD first: kubectl apply -f artifacts/crd/): %w", samplev1alpha1.SchemeGroupVersion, err)
	}
	if err := os.MkdirAll(cfg.logDir, 0o755); err != nil {
		return err
	}
	host, _ := os.Hostname()
	res := &Results{
		Machine: fmt.Sprintf("%s, %d CPUs, %s/%s, %s", host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version()),
		Date:    time.Now().UTC().Format(time.RFC3339),
		Controller: map[string]any{"workers": cfg.workers, "kubeApiQps": cfg.qps, "kubeApiBurst": cfg.burst,
			"resyncPeriod": cfg.resync.String()},
	}
	ctx := context.Background()
	run := fmt.Sprintf("%d", time.Now().Unix()%100000)

	// Convergence with replicas 0 (the controller alone) and the floors beside it, one round per
	// N first (the first going on to steady state); the runs with pods, memory and latency next;
	// the further rounds last, so that the objects they leave behind do not weigh on the others.
	converged := map[int]string{} // N -> namespace holding N converged Foos
	res.Floor = make([]Floor, len(cfg.ns))
	for i, n := range cfg.ns {
		res.Floor[i].N = n
	}
	measureRound := func(i, n, r int) error {
		ns := fmt.Sprintf("bench-%s-conv-%d-%d", run, n, r)
		first := i == 0 && r == 0 // goes on to steady state
		c, p, err := convergence(ctx, ns, n, 0, first)
		if err != nil {
			return err
		}
		if r == 0 {
			res.Convergence = append(res.Convergence, c)
			converged[n] = ns
		}
		if first {
			st, err := steady(ctx, p, n)
			if err != nil {
				p.stop()
				return err
			}
			res.Steady = st
			res.CallsPerFoo = c.CallsPerFoo
		}
		p.stop()
		round := FloorRound{ControllerSeconds: c.StatusSecs}
		if round.Seconds, err = floor(ctx, fmt.Sprintf("bench-%s-floor-%d-%d", run, n, r), n, false); err != nil {
			return err
		}
		if round.PrecreatedSeconds, err = floor(ctx, fmt.Sprintf("bench-%s-floorpre-%d-%d", run, n, r), n, true); err != nil {
			return err
		}
		res.Floor[i].Rounds = append(res.Floor[i].Rounds, round)
		progress("N=%d, round %d of %d: controller %.1fs, floor %.1fs (ratio %.2f); writes alone for existing Foos %.1fs (ratio %.2f)",
			n, r+1, cfg.rounds, round.ControllerSeconds, round.Seconds, round.ratio(), round.PrecreatedSeconds, round.precreatedRatio())
		return nil
	}
	for i, n := range cfg.ns {
		if err := measureRound(i, n, 0); err != nil {
			return err
		}
	}
	for _, n := range cfg.podsN {
		c, p, err := convergence(ctx, fmt.Sprintf("bench-%s-pods-%d", run, n), n, 1, true)
		if err != nil {
			return err
		}
		p.stop()
		res.Convergence = append(res.Convergence, c)
	}
	for _, n := range cfg.memoryN {
		ns, ok := converged[n]
		if !ok {
			ns = fmt.Sprintf("bench-%s-mem-%d", run, n)
			_, p, err := convergence(ctx, ns, n, 0, false)
			if err != nil {
				return err
			}
			p.stop()
		}
		for _, drop := range []bool{true, false} {
			m, err := memory(ctx, ns, n, drop)
			if err != nil {
				return err
			}
			res.Memory = append(res.Memory, m)
		}
	}
	lat, err := latency(ctx, fmt.Sprintf("bench-%s-latency", run))
	if err != nil {
		return err
	}
	res.Latency = lat
	for r := 1; r < cfg.rounds; r++ {
		for i, n := range cfg.ns {
			if err := measureRound(i, n, r); err != nil {
				return err
			}
		}
	}
	for i := range res.Floor {
		var ratios, precreatedRatios []float64
		for _, rd := range res.Floor[i].Rounds {
			ratios = append(ratios, rd.ratio())
			precreatedRatios = append(precreatedRatios, rd.precreatedRatio())
		}
		res.Floor[i].Ratio, res.Floor[i].PrecreatedRatio = median(ratios), median(precreatedRatios)
	}
	res.Growth = growth(res.Convergence)

	printTable(res)
	if err := os.MkdirAll(filepath.Dir(cfg.jsonOut), 0o755); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(cfg.jsonOut, b, 0o644); err != nil {
		return err
	}
	progress("results written to %s; deleting the benchmark namespaces", cfg.jsonOut)
	list, _ := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	for _, ns := range list.Items {
		if strings.HasPrefix(ns.Name, "bench-"+run+"-") {
			_ = kube.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
		}
	}
	return nil
}

// ---- the controller process ----

type controllerProcess struct {
	cmd     *exec.Cmd
	logPath string
	metrics string
	probes  string
	exited  chan struct{}
}

func startController(ns string, extra ...string) (*controllerProcess, error) {
	logPath := filepath.Join(cfg.logDir, ns+"-"+strconv.FormatInt(time.Now().UnixNano()%1e6, 10)+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := append([]string{"--kubeconfig=" + cfg.kubeconfig, "--namespace=" + ns,
		"--workers=" + strconv.Itoa(cfg.workers), "--kube-api-qps=" + strconv.Itoa(cfg.qps), "--kube-api-burst=" + strconv.Itoa(cfg.burst),
		"--resync-period=" + cfg.resync.String(),
		"--metrics-bind-address=127.0.0.1:0", "--health-probe-bind-address=127.0.0.1:0"}, extra...)
	if cfg.cpuProfile != "" {
		args = append(args, "--profiling")
	}
	cmd := exec.Command(cfg.controllerBin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &controllerProcess{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); logFile.Close(); close(p.exited) }()
	re := regexp.MustCompile(`"Serving" server="(metrics|probes)" address="([^"]+)"`)
	deadline := time.Now().Add(30 * time.Second)
	for p.metrics == "" || p.probes == "" {
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("the controller did not start its servers; log: %s", logPath)
		}
		b, _ := os.ReadFile(logPath)
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			if m[1] == "metrics" {
				p.metrics = "http://" + m[2] + "/metrics"
			} else {
				p.probes = "http://" + m[2]
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
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
	return nil, fmt.Errorf("the controller did not become ready; log: %s", logPath)
}

func (p *controllerProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// cpuProfile writes a CPU profile of the controller over the next d to path.
func (p *controllerProcess) cpuProfile(d time.Duration, path string) {
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

// scrape reads the controller's /metrics into series -> value ("name{labels}").
func (p *controllerProcess) scrape() (map[string]float64, error) {
	resp, err := http.Get(p.metrics)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

var labelRE = regexp.MustCompile(`(\w+)="([^"]*)"`)

// sumBy sums the series of one metric by the value of one label, as deltas between two scrapes.
func sumBy(before, after map[string]float64, metric, label string) map[string]float64 {
	out := map[string]float64{}
	for series, v := range after {
		name, labels, _ := strings.Cut(series, "{")
		if name != metric {
			continue
		}
		key := ""
		for _, m := range labelRE.FindAllStringSubmatch(labels, -1) {
			if m[1] == label {
				key = m[2]
			}
		}
		if d := v - before[series]; d != 0 {
			out[key] += d
		}
	}
	return out
}

// waitQuiet waits until the controller has made no request for quiet (events included).
func (p *controllerProcess) waitQuiet(quiet time.Duration) error {
	deadline := time.Now().Add(5 * time.Minute)
	last, err := p.scrape()
	if err != nil {
		return err
	}
	since := time.Now()
	for time.Since(since) < quiet {
		if time.Now().After(deadline) {
			return fmt.Errorf("the controller never went quiet; log: %s", p.logPath)
		}
		time.Sleep(500 * time.Millisecond)
		now, err := p.scrape()
		if err != nil {
			return err
		}
		if len(sumBy(last, now, "rest_client_requests_total", "method")) > 0 {
			since = time.Now()
		}
		last = now
	}
	return nil
}

// memoryOf reads a process's peak and current resident set from /proc.
func memoryOf(pid int) (peakMiB float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM for pid %d", pid)
}

// ---- watching the outcome ----

// observer watches Foos and Deployments in one namespace from the bench process and tells
// when every Foo has its Deployment and a current status.
type observer struct {
	mu          sync.Mutex
	foos        map[string]*samplev1alpha1.Foo
	deployments map[string]time.Time // name -> first seen
	stop        context.CancelFunc
}

func observe(ctx context.Context, ns string) (*observer, error) {
	ctx, cancel := context.WithCancel(ctx)
	o := &observer{foos: map[string]*samplev1alpha1.Foo{}, deployments: map[string]time.Time{}, stop: cancel}
	ff := informers.NewSharedInformerFactoryWithOptions(sample, 0, informers.WithNamespace(ns))
	kf := kubeinformers.NewSharedInformerFactoryWithOptions(kube, 0, kubeinformers.WithNamespace(ns))
	setFoo := func(obj any) {
		if f, ok := obj.(*samplev1alpha1.Foo); ok {
			o.mu.Lock()
			o.foos[f.Name] = f
			o.mu.Unlock()
		}
	}
	if _, err := ff.Samplecontroller().V1alpha1().Foos().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: setFoo, UpdateFunc: func(_, n any) { setFoo(n) },
	}); err != nil {
		return nil, err
	}
	if _, err := kf.Apps().V1().Deployments().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			d := obj.(*appsv1.Deployment)
			o.mu.Lock()
			if _, seen := o.deployments[d.Name]; !seen {
				o.deployments[d.Name] = time.Now()
			}
			o.mu.Unlock()
		},
	}); err != nil {
		return nil, err
	}
	ff.Start(ctx.Done())
	kf.Start(ctx.Done())
	ff.WaitForCacheSync(ctx.Done())
	kf.WaitForCacheSync(ctx.Done())
	return o, nil
}

// current: the Foo's status describes its latest spec (observedGeneration == generation) and
// reports every desired replica available.
func current(f *samplev1alpha1.Foo) bool {
	ready := meta.FindStatusCondition(f.Status.Conditions, samplev1alpha1.ConditionReady)
	return f.Generation > 0 && f.Status.ObservedGeneration == f.Generation &&
		ready != nil && ready.ObservedGeneration == f.Generation && f.Status.AvailableReplicas == *f.Spec.Replicas
}

// counts returns how many Foos have a Deployment, and how many have a current status.
func (o *observer) counts() (withDeployment, withStatus int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for name, f := range o.foos {
		if _, ok := o.deployments[name]; ok {
			withDeployment++
		}
		if current(f) {
			withStatus++
		}
	}
	return
}

// ready returns how many Foos are Ready=True.
func (o *observer) ready() (n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, f := range o.foos {
		if c := meta.FindStatusCondition(f.Status.Conditions, samplev1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue {
			n++
		}
	}
	return n
}

// ---- phases ----

func createNamespace(ctx context.Context, ns string) error {
	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	return err
}

func foo(ns string, i int, replicas int32) *samplev1alpha1.Foo {
	name := fmt.Sprintf("foo-%05d", i)
	return &samplev1alpha1.Foo{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       samplev1alpha1.FooSpec{DeploymentName: name, Replicas: ptr.To(replicas)},
	}
}

// createFoos creates n Foos with many goroutines, as fast as the API server takes them. When
// created is not nil, each Foo the API server returned is sent to it (the floor's input).
func createFoos(ctx context.Context, ns string, n int, replicas int32, created chan<- *samplev1alpha1.Foo) error {
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f, err := sample.SamplecontrollerV1alpha1().Foos(ns).Create(ctx, foo(ns, i, replicas), metav1.CreateOptions{})
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if created != nil {
					created <- f
				}
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return fmt.Errorf("creating Foos: %w", err)
	}
	return nil
}

func auditSize() int64 {
	if cfg.auditLog == "" {
		return 0
	}
	st, err := os.Stat(cfg.auditLog)
	if err != nil {
		return 0
	}
	return st.Size()
}

// auditCalls counts the controller's completed requests in ns after offset, by
// "verb resource[/subresource]".
func auditCalls(offset int64, ns string) map[string]float64 {
	if cfg.auditLog == "" {
		return nil
	}
	f, err := os.Open(cfg.auditLog)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, []byte(`"userAgent":"sample-controller/`)) || !bytes.Contains(line, []byte(`"stage":"ResponseComplete"`)) {
			continue
		}
		var e struct {
			Verb      string `json:"verb"`
			ObjectRef *struct {
				Resource, Namespace, Subresource string
			} `json:"objectRef"`
			ResponseStatus *struct{ Code int } `json:"responseStatus"`
		}
		if json.Unmarshal(line, &e) != nil || e.ObjectRef == nil || e.ObjectRef.Namespace != ns {
			continue
		}
		key := e.Verb + " " + e.ObjectRef.Resource
		if e.ObjectRef.Subresource != "" {
			key += "/" + e.ObjectRef.Subresource
		}
		if e.ResponseStatus != nil && e.ResponseStatus.Code == 409 {
			key += " (409 conflict)"
		}
		out[key]++
	}
	return out
}

// convergence creates n Foos with the controller running and measures how long until every
// Foo has its Deployment and a current status; with untilRest, also until every Foo is Ready
// and the controller has gone quiet. The controller keeps running for the caller.
func convergence(ctx context.Context, ns string, n int, replicas int32, untilRest bool) (Convergence, *controllerProcess, error) {
	c := Convergence{N: n, Replicas: replicas}
	if err := createNamespace(ctx, ns); err != nil {
		return c, nil, err
	}
	p, err := startController(ns)
	if err != nil {
		return c, nil, err
	}
	o, err := observe(ctx, ns)
	if err != nil {
		p.stop()
		return c, nil, err
	}
	defer o.stop()
	before, err := p.scrape()
	if err != nil {
		p.stop()
		return c, nil, err
	}
	mark := auditSize()
	profiled := make(chan struct{})
	if path := cfg.cpuProfile; path != "" {
		go func() { defer close(profiled); p.cpuProfile(20*time.Second, path) }()
		cfg.cpuProfile = "" // only the first run
	} else {
		close(profiled)
	}
	defer func() { <-profiled }()
	progress("convergence: creating %d Foos with replicas %d in %s", n, replicas, ns)
	start := time.Now()
	if err := createFoos(ctx, ns, n, replicas, nil); err != nil {
		p.stop()
		return c, nil, err
	}
	c.CreateSeconds = time.Since(start).Seconds()
	lastReport := time.Now()
	for {
		withDeployment, withStatus := o.counts()
		if withDeployment == n && c.DeploymentsSecs == 0 {
			c.DeploymentsSecs = time.Since(start).Seconds()
		}
		if withStatus == n {
			c.StatusSecs = time.Since(start).Seconds()
			break
		}
		if time.Since(start) > cfg.timeout {
			p.stop()
			return c, nil, fmt.Errorf("N=%d replicas=%d: not converged after %s (%d with Deployment, %d current); controller log: %s",
				n, replicas, cfg.timeout, withDeployment, withStatus, p.logPath)
		}
		if time.Since(lastReport) > 5*time.Second {
			progress("  %5.0fs: %d/%d Foos have a Deployment, %d/%d a current status", time.Since(start).Seconds(), withDeployment, n, withStatus, n)
			lastReport = time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Then until every Foo is Ready (for replicas 0, the Deployment controller has reported on
	// each Deployment) and the controller has stopped writing: only then is it at rest.
	for untilRest && o.ready() < n {
		if time.Since(start) > cfg.timeout {
			p.stop()
			return c, nil, fmt.Errorf("N=%d: not every Foo Ready after %s; controller log: %s", n, cfg.timeout, p.logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if untilRest {
		c.ReadySecs = time.Since(start).Seconds()
		if err := p.waitQuiet(3 * time.Second); err != nil {
			p.stop()
			return c, nil, err
		}
	} else {
		time.Sleep(time.Second) // let the last requests show in the metrics and the audit log
	}
	after, err := p.scrape()
	if err != nil {
		p.stop()
		return c, nil, err
	}
	c.RequestsByMethod = sumBy(before, after, "rest_client_requests_total", "method")
	c.Reconciles = sumBy(before, after, "samplecontroller_reconcile_total", "result")
	if calls := auditCalls(mark, ns); calls != nil {
		c.CallsPerFoo = map[string]float64{}
		for k, v := range calls {
			c.CallsPerFoo[k] = v / float64(n)
		}
	}
	if untilRest {
		progress("  converged: all Deployments after %.1fs, all statuses current after %.1fs, all Ready after %.1fs", c.DeploymentsSecs, c.StatusSecs, c.ReadySecs)
	} else {
		progress("  converged: all Deployments after %.1fs, all statuses current after %.1fs", c.DeploymentsSecs, c.StatusSecs)
	}
	return c, p, nil
}

// steady measures what a converged controller costs over two resync periods.
func steady(ctx context.Context, p *controllerProcess, n int) (*Steady, error) {
	window := 2*cfg.resync + 5*time.Second
	progress("steady state: watching the converged controller for %s (two resync periods)", window)
	before, err := p.scrape()
	if err != nil {
		return nil, err
	}
	time.Sleep(window)
	after, err := p.scrape()
	if err != nil {
		return nil, err
	}
	s := &Steady{N: n, WindowSeconds: window.Seconds(), Requests: sumBy(before, after, "rest_client_requests_total", "method")}
	for method, v := range s.Requests {
		if method != "GET" {
			s.Writes += v
		}
	}
	for _, v := range sumBy(before, after, "samplecontroller_reconcile_total", "result") {
		s.Reconciles += v
	}
	return s, nil
}

// floor does the necessary writes of n Foos (a Deployment create and a status write each) with a
// bare client: the controller's QPS budget and parallelism, no informers, no queue. It is timed
// exactly as a convergence run: the clock starts with the first Foo create, the Foos are created
// by the same 32 goroutines and handed over as each create returns (the controller, too, starts on
// a Foo while the others are still being created), and it stops when the same observer has seen
// every Foo's status current. With precreated, the Foos are all created before the clock starts:
// the writes alone, a stricter figure that leaves out the load of creating the Foos.
func floor(ctx context.Context, ns string, n int, precreated bool) (seconds float64, err error) {
	if err := createNamespace(ctx, ns); err != nil {
		return 0, err
	}
	o, err := observe(ctx, ns)
	if err != nil {
		return 0, err
	}
	defer o.stop()
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.kubeconfig)
	if err != nil {
		return 0, err
	}
	rc.QPS, rc.Burst = float32(cfg.qps), cfg.burst
	rc = rest.AddUserAgent(rc, "bench-floor")
	// Two clientsets, each with its own rate limiter, as the controller has.
	kc := kubernetes.NewForConfigOrDie(rc)
	sc := clientset.NewForConfigOrDie(rc)
	created := make(chan *samplev1alpha1.Foo, n)
	if precreated {
		if err := createFoos(ctx, ns, n, 0, created); err != nil {
			return 0, err
		}
		progress("floor: %d Deployment creates + %d status writes for existing Foos, QPS %d, burst %d, %d goroutines", n, n, cfg.qps, cfg.burst, cfg.workers)
	} else {
		progress("floor: %d Deployment creates + %d status writes as the Foos are created, QPS %d, burst %d, %d goroutines", n, n, cfg.qps, cfg.burst, cfg.workers)
	}
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range cfg.workers {
		wg.Go(func() {
			for fo := range created {
				if _, err := kc.AppsV1().Deployments(ns).Create(ctx, floorDeployment(fo), metav1.CreateOptions{}); err != nil {
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				fo.Status.ObservedGeneration = fo.Generation
				meta.SetStatusCondition(&fo.Status.Conditions, metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue,
					Reason: "DeploymentAvailable", Message: "floor", ObservedGeneration: fo.Generation})
				if _, err := sc.SamplecontrollerV1alpha1().Foos(ns).UpdateStatus(ctx, fo, metav1.UpdateOptions{}); err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	if !precreated {
		err = createFoos(ctx, ns, n, 0, created)
	}
	close(created)
	wg.Wait()
	if err == nil {
		err, _ = firstErr.Load().(error)
	}
	if err != nil {
		return 0, fmt.Errorf("floor: %w", err)
	}
	for {
		if _, withStatus := o.counts(); withStatus == n {
			return time.Since(start).Seconds(), nil
		}
		if time.Since(start) > cfg.timeout {
			return 0, fmt.Errorf("floor: not every status seen current after %s", cfg.timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// floorDeployment is the same shape as the controller's Deployment.
func floorDeployment(f *samplev1alpha1.Foo) *appsv1.Deployment {
	labels := map[string]string{"app.kubernetes.io/name": "nginx", "app.kubernetes.io/managed-by": "bench-floor", "samplecontroller.example.com/foo": f.Name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: f.Spec.DeploymentName, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(f, samplev1alpha1.SchemeGroupVersion.WithKind("Foo"))}},
		Spec: appsv1.DeploymentSpec{
			Replicas: f.Spec.Replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"samplecontroller.example.com/foo": f.Name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](101), RunAsGroup: ptr.To[int64](101),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{{Name: "nginx", Image: "nginxinc/nginx-unprivileged:1.27",
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}}}},
			},
		},
	}
}

// memory starts a controller over n converged Foos, lets it sync each once, and reads its
// peak RSS and Go heap.
func memory(ctx context.Context, ns string, n int, dropManagedFields bool) (Memory, error) {
	m := Memory{N: n, DropManagedFields: dropManagedFields}
	progress("memory: N=%d, informer-drop-managed-fields=%v", n, dropManagedFields)
	p, err := startController(ns, fmt.Sprintf("--informer-drop-managed-fields=%v", dropManagedFields))
	if err != nil {
		return m, err
	}
	defer p.stop()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		s, err := p.scrape()
		if err != nil {
			return m, err
		}
		if s[`samplecontroller_reconcile_total{result="success"}`] >= float64(n) {
			runtime.GC()
			time.Sleep(2 * time.Second)
			if s, err = p.scrape(); err != nil {
				return m, err
			}
			m.HeapMiB = s["go_memstats_heap_alloc_bytes"] / (1 << 20)
			break
		}
		if time.Now().After(deadline) {
			return m, fmt.Errorf("memory: the controller did not sync %d Foos; log: %s", n, p.logPath)
		}
		time.Sleep(200 * time.Millisecond)
	}
	m.PeakRSSMiB, err = memoryOf(p.cmd.Process.Pid)
	return m, err
}

// latency creates Foos at a steady rate with the controller running and measures, for each,
// the time from the create call's return to the Deployment's first appearance in a watch.
func latency(ctx context.Context, ns string) (*Latency, error) {
	if err := createNamespace(ctx, ns); err != nil {
		return nil, err
	}
	p, err := startController(ns)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	o, err := observe(ctx, ns)
	if err != nil {
		return nil, err
	}
	defer o.stop()
	total := cfg.latencyRate * int(cfg.latencyFor.Seconds())
	progress("latency: %d Foos at %d/s", total, cfg.latencyRate)
	created := make([]time.Time, total)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(cfg.latencyRate))
	var firstErr atomic.Value
	for i := range total {
		<-tick.C
		wg.Go(func() {
			if _, err := sample.SamplecontrollerV1alpha1().Foos(ns).Create(ctx, foo(ns, i, 0), metav1.CreateOptions{}); err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
			created[i] = time.Now()
		})
	}
	tick.Stop()
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if d, _ := o.counts(); d == total {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("latency: not every Deployment appeared; log: %s", p.logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
	o.mu.Lock()
	var ms []float64
	for i := range total {
		d := o.deployments[foo(ns, i, 0).Name].Sub(created[i]).Seconds() * 1000
		ms = append(ms, max(d, 0))
	}
	o.mu.Unlock()
	sort.Float64s(ms)
	return &Latency{Rate: cfg.latencyRate, Count: total, P50ms: percentile(ms, 50), P99ms: percentile(ms, 99), MaxMs: ms[len(ms)-1]}, nil
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func percentile(sorted []float64, p float64) float64 {
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func growth(runs []Convergence) []GrowthPoint {
	var pts []GrowthPoint
	for _, c := range runs {
		if c.Replicas == 0 {
			pts = append(pts, GrowthPoint{N: c.N, Seconds: c.StatusSecs, MillisPerFoo: c.StatusSecs * 1000 / float64(c.N)})
		}
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].N < pts[j].N })
	for i := range pts {
		pts[i].RelativeToMin = pts[i].MillisPerFoo / pts[0].MillisPerFoo
	}
	return pts
}

func printTable(r *Results) {
	w := os.Stdout
	fmt.Fprintf(w, "\nsample-controller benchmark, %s, %s\ncontroller: %v\n\n", r.Date, r.Machine, r.Controller)
	fmt.Fprintln(w, "Convergence (N Foos created at once)")
	fmt.Fprintf(w, "  %6s %8s %10s %14s %14s %12s  %s\n", "N", "replicas", "create s", "deployments s", "all status s", "all Ready s", "controller requests by method, to rest")
	for _, c := range r.Convergence {
		ready := "-"
		if c.ReadySecs > 0 {
			ready = fmt.Sprintf("%.1f", c.ReadySecs)
		}
		fmt.Fprintf(w, "  %6d %8d %10.1f %14.1f %14.1f %12s  %v\n", c.N, c.Replicas, c.CreateSeconds, c.DeploymentsSecs, c.StatusSecs, ready, c.RequestsByMethod)
	}
	fmt.Fprintln(w, "\nFloor (a bare client doing N Deployment creates + N status writes with the controller's QPS and parallelism)")
	for _, f := range r.Floor {
		fmt.Fprintf(w, "  N=%-6d controller / floor %.2f, controller / writes alone %.2f (medians of %d rounds)\n", f.N, f.Ratio, f.PrecreatedRatio, len(f.Rounds))
		for i, rd := range f.Rounds {
			fmt.Fprintf(w, "    round %d: controller %6.1fs   floor, timed like the controller %6.1fs   writes alone, Foos created beforehand %6.1fs\n",
				i+1, rd.ControllerSeconds, rd.Seconds, rd.PrecreatedSeconds)
		}
	}
	if s := r.Steady; s != nil {
		fmt.Fprintf(w, "\nSteady state (N=%d converged, %.0fs = two resync periods): %.0f writes, requests %v, %.0f reconciles\n",
			s.N, s.WindowSeconds, s.Writes, s.Requests, s.Reconciles)
	}
	if len(r.CallsPerFoo) > 0 {
		fmt.Fprintln(w, "\nAPI calls per Foo, creation to rest (API server audit log, replicas 0)")
		keys := make([]string, 0, len(r.CallsPerFoo))
		for k := range r.CallsPerFoo {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %-40s %.3f\n", k, r.CallsPerFoo[k])
		}
	}
	fmt.Fprintln(w, "\nMemory (controller process with N Foos and N Deployments in its caches)")
	for _, m := range r.Memory {
		fmt.Fprintf(w, "  N=%-6d drop managedFields=%-5v peak RSS %6.1f MiB   Go heap %6.1f MiB\n", m.N, m.DropManagedFields, m.PeakRSSMiB, m.HeapMiB)
	}
	if l := r.Latency; l != nil {
		fmt.Fprintf(w, "\nLatency, Foo created -> Deployment created, %d Foos at %d/s: p50 %.0f ms, p99 %.0f ms, max %.0f ms\n", l.Count, l.Rate, l.P50ms, l.P99ms, l.MaxMs)
	}
	fmt.Fprintln(w, "\nGrowth (replicas 0)")
	for _, g := range r.Growth {
		fmt.Fprintf(w, "  N=%-6d %6.1fs  %6.2f ms/Foo  x%.2f of the smallest N's per-Foo time\n", g.N, g.Seconds, g.MillisPerFoo, g.RelativeToMin)
	}
}
