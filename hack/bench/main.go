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
// hack/bench.sh brings up a local cluster for it; see docs/benchmarks.md. Each measurement has
// a file of its own (convergence.go, floor.go, steady.go, memory.go, latency.go); report.go
// prints and saves the results.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
	clientset "example.com/sample-controller/pkg/generated/clientset/versioned"
)

// config is the command line.
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

// bench is one benchmark run: its settings and the clients it creates and watches Foos with.
type bench struct {
	cfg    config
	kube   kubernetes.Interface
	sample clientset.Interface
}

func main() {
	var cfg config
	flag.StringVar(&cfg.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster to measure on")
	flag.StringVar(&cfg.controllerBin, "controller", "bin/sample-controller", "the controller binary")
	nList := flag.String("n", "1000", "comma-separated numbers of Foos for the convergence runs (replicas 0)")
	podsList := flag.String("pods-n", "1000", "comma-separated numbers of Foos for convergence runs with replicas 1 (real pods on kwok nodes); empty for none")
	flag.IntVar(&cfg.workers, "workers", 16, "controller --workers")
	flag.IntVar(&cfg.qps, "qps", 500, "controller --kube-api-qps (and the floor's client)")
	flag.IntVar(&cfg.burst, "burst", 1000, "controller --kube-api-burst (and the floor's client)")
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
	// The side-by-side comparison (hack/bench-peers.sh): one run of one controller, its command
	// after "--", or the table of several runs.
	var pc peerConfig
	flag.StringVar(&pc.name, "peer", "", "run only the side-by-side recipe (N = the first --n, replicas 1) for the controller whose command follows \"--\" ({kubeconfig} and {namespace} replaced), under this name")
	flag.StringVar(&pc.kind, "peer-kind", "ours", "the Foo the peer speaks: ours, or kubernetes-sample (kubernetes/sample-controller: memory only, over Foos and Deployments made beforehand)")
	flag.BoolVar(&pc.bare, "peer-bare", false, "after the peer, run the bare client in the same cluster")
	flag.IntVar(&pc.bareQPS, "bare-qps", 1000, "the bare client's QPS")
	flag.IntVar(&pc.bareAgents, "bare-goroutines", 16, "the bare client's goroutines")
	flag.BoolVar(&pc.fresh, "peer-fresh", false, "after the peer, start this project's controller afresh over the converged Foos and read its peak RSS")
	flag.IntVar(&pc.unrelated, "peer-unrelated", 0, "then create this many unrelated Deployments and read it again")
	flag.StringVar(&pc.agentName, "peer-agent", "", "user agent prefix of the peer's requests (kubernetes-sample)")
	peersTable := flag.Bool("peers-table", false, "print the side-by-side table of the peer runs saved in the JSON files given as arguments")
	flag.Parse()
	if *peersTable {
		if err := printPeersTable(flag.Args()); err != nil {
			fail(err)
		}
		return
	}
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
	if pc.name != "" {
		if pc.command = flag.Args(); len(pc.command) == 0 {
			fail(fmt.Errorf("--peer %s: no command after --", pc.name))
		}
		err = runPeer(cfg, pc)
	} else {
		err = run(cfg)
	}
	if err != nil {
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

func run(cfg config) error {
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.kubeconfig)
	if err != nil {
		return err
	}
	// The bench's own client must never be the bottleneck.
	rc.QPS, rc.Burst = 5000, 10000
	b := &bench{cfg: cfg, kube: kubernetes.NewForConfigOrDie(rc), sample: clientset.NewForConfigOrDie(rc)}
	if _, err := b.kube.Discovery().ServerResourcesForGroupVersion(samplev1.SchemeGroupVersion.String()); err != nil {
		return fmt.Errorf("the cluster does not serve %s (create the CRD first: kubectl apply -k artifacts/crd): %w", samplev1.SchemeGroupVersion, err)
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
	// The first convergence run takes the CPU profile, if one is asked for.
	profile := cfg.cpuProfile
	takeProfile := func() (path string) {
		path, profile = profile, ""
		return path
	}

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
		c, p, err := b.convergence(ctx, ns, n, 0, first, takeProfile())
		if err != nil {
			return err
		}
		if r == 0 {
			res.Convergence = append(res.Convergence, c)
			converged[n] = ns
		}
		if first {
			st, err := b.steady(p, n)
			if err != nil {
				p.stop()
				return err
			}
			res.Steady = st
			res.CallsPerFoo = c.CallsPerFoo
		}
		p.stop()
		// The floor writes the Deployments this controller round made (see floorTemplate).
		template, err := b.floorTemplate(ctx, ns)
		if err != nil {
			return err
		}
		round := FloorRound{ControllerSeconds: c.StatusSecs}
		if round.Seconds, err = b.floor(ctx, fmt.Sprintf("bench-%s-floor-%d-%d", run, n, r), n, false, template); err != nil {
			return err
		}
		if round.PrecreatedSeconds, err = b.floor(ctx, fmt.Sprintf("bench-%s-floorpre-%d-%d", run, n, r), n, true, template); err != nil {
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
		c, p, err := b.convergence(ctx, fmt.Sprintf("bench-%s-pods-%d", run, n), n, 1, true, takeProfile())
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
			_, p, err := b.convergence(ctx, ns, n, 0, false, takeProfile())
			if err != nil {
				return err
			}
			p.stop()
		}
		for _, drop := range []bool{true, false} {
			m, err := b.memory(ns, n, drop)
			if err != nil {
				return err
			}
			res.Memory = append(res.Memory, m)
		}
	}
	lat, err := b.latency(ctx, fmt.Sprintf("bench-%s-latency", run))
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
		res.Floor[i].Ratio, res.Floor[i].PrecreatedRatio = res.Floor[i].medians()
	}
	res.Growth = growth(res.Convergence)

	printTable(res)
	if err := writeJSON(res, cfg.jsonOut); err != nil {
		return err
	}
	progress("results written to %s; deleting the benchmark namespaces", cfg.jsonOut)
	list, _ := b.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	for _, ns := range list.Items {
		if strings.HasPrefix(ns.Name, "bench-"+run+"-") {
			_ = b.kube.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
		}
	}
	return nil
}
