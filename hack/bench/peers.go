package main

// The side-by-side comparison (make bench-peers, docs/benchmarks.md): this controller, a
// controller-runtime peer and a bare client, each on a fresh cluster, under one recipe: N Foos
// with replicas 1 created at once by 16 goroutines, timed until every Foo's status is current,
// and until it shows every Deployment available; the controller's CPU and peak memory.
// kubernetes/sample-controller, whose client is held to client-go's 5 requests a second, is
// measured for memory only, over Foos and Deployments that already exist.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"example.com/sample-controller/internal/auditlog"
	"example.com/sample-controller/internal/process"
	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
	clientset "example.com/sample-controller/pkg/generated/clientset/versioned"
)

// PeerRun is one controller (or the bare client) under the recipe, on its own cluster.
type PeerRun struct {
	Name     string `json:"name"`
	N        int    `json:"n"`
	Replicas int32  `json:"replicas"`
	// First Foo create -> every Foo's status.observedGeneration is its generation.
	StatusCurrentSeconds float64 `json:"statusCurrentSeconds,omitempty"`
	// First Foo create -> every Deployment available, and every Foo's status saying so.
	DeploymentsAvailableSeconds float64 `json:"deploymentsAvailableSeconds,omitempty"`
	StatusAvailableSeconds      float64 `json:"statusAvailableSeconds,omitempty"`
	// The controller process: CPU from its start to convergence, and its peak RSS then.
	CPUSeconds float64 `json:"cpuSeconds,omitempty"`
	PeakRSSMiB float64 `json:"peakRSSMiB,omitempty"`
	// The same controller started afresh over the N converged Foos, once it has synced each.
	FreshPeakRSSMiB float64 `json:"freshPeakRSSMiB,omitempty"`
	// Its peak RSS afresh again, with this many Deployments it does not own in the cluster.
	Unrelated                int     `json:"unrelatedDeployments,omitempty"`
	FreshPeakRSSUnrelatedMiB float64 `json:"freshPeakRSSWithUnrelatedMiB,omitempty"`
	// The bare client run in the same cluster afterwards.
	Bare *PeerRun `json:"bare,omitempty"`
	Args []string `json:"args,omitempty"`
}

// peerKind is the Foo a controller speaks: this project's, or kubernetes/sample-controller's.
type peerKind struct {
	gvr     schema.GroupVersionResource
	newFoo  func(ns, name string, replicas int32) *unstructured.Unstructured
	current func(u *unstructured.Unstructured) bool // status of this generation; nil: no such field
}

var ourKind = peerKind{
	gvr: samplev1.SchemeGroupVersion.WithResource("foos"),
	newFoo: func(ns, name string, replicas int32) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": samplev1.SchemeGroupVersion.String(), "kind": "Foo",
			"metadata": map[string]any{"name": name, "namespace": ns},
			"spec":     map[string]any{"deployment": map[string]any{"name": name}, "replicas": int64(replicas)},
		}}
	},
	current: func(u *unstructured.Unstructured) bool {
		g, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
		return g > 0 && g == u.GetGeneration()
	},
}

// kubernetesSampleKind is samplecontroller.k8s.io/v1alpha1 Foo: spec.deploymentName,
// spec.replicas, status.availableReplicas, no observedGeneration.
var kubernetesSampleKind = peerKind{
	gvr: schema.GroupVersionResource{Group: "samplecontroller.k8s.io", Version: "v1alpha1", Resource: "foos"},
	newFoo: func(ns, name string, replicas int32) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "samplecontroller.k8s.io/v1alpha1", "kind": "Foo",
			"metadata": map[string]any{"name": name, "namespace": ns},
			"spec":     map[string]any{"deploymentName": name, "replicas": int64(replicas)},
		}}
	},
}

// statusAvailable: the Foo's status reports every desired replica available (and, where the
// kind has it, describes this generation).
func (k peerKind) statusAvailable(u *unstructured.Unstructured) bool {
	want, _, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
	got, _, _ := unstructured.NestedInt64(u.Object, "status", "availableReplicas")
	return got == want && (k.current == nil || k.current(u))
}

// peerObserver watches one namespace's Foos (any kind) and Deployments from the bench.
type peerObserver struct {
	kind        peerKind
	fooStore    cache.Store
	deployStore cache.Store
	stop        context.CancelFunc
}

func (b *bench) observePeer(ctx context.Context, dyn dynamic.Interface, kind peerKind, ns string) (*peerObserver, error) {
	ctx, cancel := context.WithCancel(ctx)
	df := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, ns, nil)
	kf := kubeinformers.NewSharedInformerFactoryWithOptions(b.kube, 0, kubeinformers.WithNamespace(ns))
	o := &peerObserver{kind: kind, stop: cancel,
		fooStore:    df.ForResource(kind.gvr).Informer().GetStore(),
		deployStore: kf.Apps().V1().Deployments().Informer().GetStore()}
	df.Start(ctx.Done())
	kf.Start(ctx.Done())
	for _, ok := range df.WaitForCacheSync(ctx.Done()) {
		if !ok {
			cancel()
			return nil, fmt.Errorf("observing %s in %s: caches not synced", kind.gvr, ns)
		}
	}
	kf.WaitForCacheSync(ctx.Done())
	return o, nil
}

// counts: Foos whose status is current, Deployments available, Foos whose status says so.
func (o *peerObserver) counts() (current, deploymentsAvailable, statusAvailable int) {
	for _, obj := range o.fooStore.List() {
		u := obj.(*unstructured.Unstructured)
		if o.kind.current != nil && o.kind.current(u) {
			current++
		}
		if o.kind.statusAvailable(u) {
			statusAvailable++
		}
	}
	for _, obj := range o.deployStore.List() {
		d := obj.(*appsv1.Deployment)
		if d.Status.ObservedGeneration == d.Generation && d.Spec.Replicas != nil && d.Status.AvailableReplicas == *d.Spec.Replicas {
			deploymentsAvailable++
		}
	}
	return
}

// peerConfig is the command line of a peer run: `bench --peer=NAME [flags] -- COMMAND ARGS...`,
// where {kubeconfig} and {namespace} in ARGS are replaced.
type peerConfig struct {
	name       string
	kind       string // "ours" or "kubernetes-sample"
	command    []string
	bare       bool // also run the bare client in this cluster afterwards (with this controller's Deployment as its template)
	fresh      bool // also measure this controller started afresh over the converged Foos (ours only)
	unrelated  int  // and again with this many unrelated Deployments in the cluster
	bareQPS    int
	bareAgents int
	agentName  string // user agent prefix of the controller's requests, for the memory-only run
}

func runPeer(cfg config, pc peerConfig) error {
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.kubeconfig)
	if err != nil {
		return err
	}
	rc.QPS, rc.Burst = 5000, 10000
	b := &bench{cfg: cfg, kube: kubernetes.NewForConfigOrDie(rc), sample: clientset.NewForConfigOrDie(rc)}
	dyn := dynamic.NewForConfigOrDie(rc)
	if err := os.MkdirAll(cfg.logDir, 0o755); err != nil {
		return err
	}
	n := cfg.ns[0]
	run := PeerRun{Name: pc.name, N: n, Replicas: 1, Args: pc.command}
	ctx := context.Background()
	switch pc.kind {
	case "kubernetes-sample":
		err = b.peerMemoryOnly(ctx, dyn, pc, &run)
	default:
		err = b.peerConvergence(ctx, dyn, pc, &run)
	}
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(run, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.jsonOut), 0o755); err != nil {
		return err
	}
	progress("%s: %s", pc.name, data)
	return os.WriteFile(cfg.jsonOut, data, 0o644)
}

// startPeer starts a controller's command for namespace ns and waits until it logs that its
// workers run (every controller here logs "Starting workers" or "Started workers").
func (b *bench) startPeer(pc peerConfig, ns string) (*process.Process, error) {
	args := make([]string, len(pc.command)-1)
	for i, a := range pc.command[1:] {
		args[i] = strings.NewReplacer("{kubeconfig}", b.cfg.kubeconfig, "{namespace}", ns).Replace(a)
	}
	logFile, err := os.Create(filepath.Join(b.cfg.logDir, ns+".log"))
	if err != nil {
		return nil, err
	}
	p, err := process.Start(exec.Command(pc.command[0], args...), logFile)
	if err != nil {
		return nil, err
	}
	workers := regexp.MustCompile(`Start(ing|ed) workers`)
	for deadline := time.Now().Add(time.Minute); !workers.MatchString(p.Log()); {
		select {
		case <-p.Exited():
			return nil, fmt.Errorf("%s exited; log: %s", pc.name, p.LogPath())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = p.Stop(10 * time.Second)
			return nil, fmt.Errorf("%s did not start its workers; log: %s", pc.name, p.LogPath())
		}
	}
	return p, nil
}

// createPeerFoos creates n Foos of a kind with 16 goroutines.
func createPeerFoos(ctx context.Context, dyn dynamic.Interface, kind peerKind, ns string, n int, replicas int32) error {
	err := inParallel(n, 16, func(i int) error {
		_, err := dyn.Resource(kind.gvr).Namespace(ns).Create(ctx, kind.newFoo(ns, fmt.Sprintf("foo-%05d", i), replicas), metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("creating Foos: %w", err)
	}
	return nil
}

func (b *bench) peerConvergence(ctx context.Context, dyn dynamic.Interface, pc peerConfig, run *PeerRun) error {
	ns := "peers-" + slug(pc.name)
	if err := b.createNamespace(ctx, ns); err != nil {
		return err
	}
	p, err := b.startPeer(pc, ns)
	if err != nil {
		return err
	}
	defer func() { _ = p.Stop(30 * time.Second) }()
	o, err := b.observePeer(ctx, dyn, ourKind, ns)
	if err != nil {
		return err
	}
	defer o.stop()
	progress("%s: creating %d Foos with replicas %d in %s (16 goroutines)", pc.name, run.N, run.Replicas, ns)
	start := time.Now()
	if err := createPeerFoos(ctx, dyn, ourKind, ns, run.N, run.Replicas); err != nil {
		return err
	}
	since := func() float64 { return time.Since(start).Seconds() }
	for lastReport := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		current, deploymentsAvailable, statusAvailable := o.counts()
		if current == run.N && run.StatusCurrentSeconds == 0 {
			run.StatusCurrentSeconds = since()
		}
		if deploymentsAvailable == run.N && run.DeploymentsAvailableSeconds == 0 {
			run.DeploymentsAvailableSeconds = since()
		}
		if statusAvailable == run.N && run.DeploymentsAvailableSeconds > 0 {
			run.StatusAvailableSeconds = since()
			break
		}
		if time.Since(start) > b.cfg.timeout {
			return fmt.Errorf("%s: not converged after %s (%d current, %d Deployments available, %d statuses saying so); log: %s",
				pc.name, b.cfg.timeout, current, deploymentsAvailable, statusAvailable, p.LogPath())
		}
		if time.Since(lastReport) > 5*time.Second {
			progress("  %5.0fs: %d/%d statuses current, %d Deployments available, %d statuses saying so", since(), current, run.N, deploymentsAvailable, statusAvailable)
			lastReport = time.Now()
		}
	}
	if run.CPUSeconds, err = p.CPUSeconds(); err != nil {
		return err
	}
	peak, err := p.StatusKiB("VmHWM")
	if err != nil {
		return err
	}
	run.PeakRSSMiB = peak / 1024
	progress("%s: statuses current %.1fs, Deployments available %.1fs, statuses saying so %.1fs; CPU %.1fs, peak RSS %.1f MiB",
		pc.name, run.StatusCurrentSeconds, run.DeploymentsAvailableSeconds, run.StatusAvailableSeconds, run.CPUSeconds, run.PeakRSSMiB)
	_ = p.Stop(30 * time.Second)

	if pc.fresh {
		m, err := b.memory(ns, run.N, true)
		if err != nil {
			return err
		}
		run.FreshPeakRSSMiB = m.PeakRSSMiB
		if pc.unrelated > 0 {
			if err := b.createUnrelatedDeployments(ctx, ns, pc.unrelated); err != nil {
				return err
			}
			m, err := b.memory(ns, run.N, true)
			if err != nil {
				return err
			}
			run.Unrelated, run.FreshPeakRSSUnrelatedMiB = pc.unrelated, m.PeakRSSMiB
		}
	}
	if pc.bare {
		template, err := b.floorTemplate(ctx, ns)
		if err != nil {
			return err
		}
		bare := &PeerRun{Name: "bare client", N: run.N, Replicas: run.Replicas}
		if bare.StatusCurrentSeconds, err = b.bareClient(ctx, dyn, "peers-bare", run.N, run.Replicas, pc.bareQPS, pc.bareAgents, template); err != nil {
			return err
		}
		run.Bare = bare
	}
	return nil
}

// bareClient does only the necessary writes with a budget of qps: the Foos are created as in
// every run (16 goroutines), and as each create returns, one of `agents` goroutines creates its
// Deployment and writes its status. Timed like the controllers: from the first Foo create until
// a watch shows every status current.
func (b *bench) bareClient(ctx context.Context, dyn dynamic.Interface, ns string, n int, replicas int32, qps, agents int, template *floorTemplate) (float64, error) {
	if err := b.createNamespace(ctx, ns); err != nil {
		return 0, err
	}
	o, err := b.observePeer(ctx, dyn, ourKind, ns)
	if err != nil {
		return 0, err
	}
	defer o.stop()
	rc, err := clientcmd.BuildConfigFromFlags("", b.cfg.kubeconfig)
	if err != nil {
		return 0, err
	}
	rc.QPS, rc.Burst = float32(qps), 2*qps
	kc, sc := kubernetes.NewForConfigOrDie(rc), clientset.NewForConfigOrDie(rc)
	progress("bare client: %d Foo creates (16 goroutines) + Deployment creates + status writes (%d goroutines), QPS %d", n, agents, qps)
	created := make(chan *samplev1.Foo, n)
	var firstErr atomic.Value
	var writers sync.WaitGroup
	start := time.Now()
	for range agents {
		writers.Go(func() {
			for f := range created {
				_, err := kc.AppsV1().Deployments(ns).Create(ctx, template.deploymentFor(f), metav1.CreateOptions{})
				if err == nil {
					f.Status.ObservedGeneration = f.Generation
					f.Status.Conditions = []metav1.Condition{{Type: samplev1.ConditionReady, Status: metav1.ConditionFalse,
						Reason: samplev1.ReasonDeploymentProgressing, Message: "bare client", ObservedGeneration: f.Generation,
						LastTransitionTime: metav1.Now()}}
					_, err = sc.SamplecontrollerV1().Foos(ns).UpdateStatus(ctx, f, metav1.UpdateOptions{})
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	// The bench's own client creates the Foos, as in every run; the writes are the bare client's.
	err = inParallel(n, 16, func(i int) error {
		f, err := b.sample.SamplecontrollerV1().Foos(ns).Create(ctx, foo(ns, i, replicas), metav1.CreateOptions{})
		if err == nil {
			created <- f
		}
		return err
	})
	close(created)
	writers.Wait()
	if err == nil {
		err, _ = firstErr.Load().(error)
	}
	if err != nil {
		return 0, fmt.Errorf("bare client: %w", err)
	}
	for {
		if current, _, _ := o.counts(); current == n {
			secs := time.Since(start).Seconds()
			progress("bare client: every status current after %.1fs", secs)
			return secs, nil
		}
		if time.Since(start) > b.cfg.timeout {
			return 0, fmt.Errorf("bare client: not every status seen current after %s", b.cfg.timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// createUnrelatedDeployments creates n Deployments that no Foo owns (replicas 0, no label of
// the controller's), as other workloads would be, in the Foos' own namespace: the controller
// runs with --namespace here, and only its label selector may keep them out of its cache.
func (b *bench) createUnrelatedDeployments(ctx context.Context, ns string, n int) error {
	progress("creating %d unrelated Deployments in %s", n, ns)
	err := inParallel(n, 32, func(i int) error {
		labels := map[string]string{"app": fmt.Sprintf("other-%05d", i)}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("other-%05d", i), Labels: labels},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](0), Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/other:1"}}}}},
		}
		_, err := b.kube.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("creating unrelated Deployments: %w", err)
	}
	return nil
}

// peerMemoryOnly measures kubernetes/sample-controller over n of its Foos and their Deployments
// made beforehand (its own shape: labels app=nginx and controller=FOO, owned by the Foo), once
// the audit log shows it has written every Foo's status (it does on every sync).
func (b *bench) peerMemoryOnly(ctx context.Context, dyn dynamic.Interface, pc peerConfig, run *PeerRun) error {
	if b.cfg.auditLog == "" {
		return fmt.Errorf("%s: the memory-only run needs --audit-log", pc.name)
	}
	ns := "peers-" + slug(pc.name)
	if err := b.createNamespace(ctx, ns); err != nil {
		return err
	}
	progress("%s: %d Foos and their Deployments made beforehand", pc.name, run.N)
	if err := createPeerFoos(ctx, dyn, kubernetesSampleKind, ns, run.N, run.Replicas); err != nil {
		return err
	}
	foos, err := dyn.Resource(kubernetesSampleKind.gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	err = inParallel(len(foos.Items), 16, func(i int) error {
		f := &foos.Items[i]
		labels := map[string]string{"app": "nginx", "controller": f.GetName()}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: f.GetName(), Namespace: ns, Labels: labels,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "samplecontroller.k8s.io/v1alpha1", Kind: "Foo",
					Name: f.GetName(), UID: f.GetUID(), Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To(run.Replicas), Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx:latest"}}}}},
		}
		_, err := b.kube.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("making kubernetes/sample-controller's Deployments: %w", err)
	}
	mark := b.auditMark()
	p, err := b.startPeer(pc, ns)
	if err != nil {
		return err
	}
	defer func() { _ = p.Stop(30 * time.Second) }()
	start := time.Now()
	for {
		writes := 0
		_ = auditlog.EachLineSince(b.cfg.auditLog, mark, func(line []byte) {
			var e auditlog.Event
			if json.Unmarshal(line, &e) == nil && e.Stage == "ResponseComplete" && strings.HasPrefix(e.UserAgent, pc.agentName) &&
				e.Verb == "update" && e.ObjectRef.Resource == "foos" && e.ObjectRef.Subresource == "status" && e.ObjectRef.Namespace == ns {
				writes++
			}
		})
		if writes >= run.N {
			break
		}
		if time.Since(start) > b.cfg.timeout {
			return fmt.Errorf("%s: %d of %d statuses written after %s; log: %s", pc.name, writes, run.N, b.cfg.timeout, p.LogPath())
		}
		progress("  %5.0fs: %s has written %d of %d statuses", time.Since(start).Seconds(), pc.name, writes, run.N)
		time.Sleep(5 * time.Second)
	}
	if run.CPUSeconds, err = p.CPUSeconds(); err != nil {
		return err
	}
	peak, err := p.StatusKiB("VmHWM")
	run.FreshPeakRSSMiB = peak / 1024
	progress("%s: every status written after %.0fs; CPU %.1fs, peak RSS %.1f MiB", pc.name, time.Since(start).Seconds(), run.CPUSeconds, run.FreshPeakRSSMiB)
	return err
}

// slug makes a run's name a namespace name: "this, 16 workers" -> "this-16-workers".
func slug(name string) string {
	return strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(name), "-"), "-")
}

// printPeersTable prints the runs saved in files side by side, in the order given.
func printPeersTable(files []string) error {
	var runs []PeerRun
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var r PeerRun
		if err := json.Unmarshal(data, &r); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		runs = append(runs, r)
		if r.Bare != nil {
			runs = append(runs, *r.Bare)
		}
	}
	cell := func(v float64, format string) string {
		if v == 0 {
			return "—"
		}
		return fmt.Sprintf(format, v)
	}
	row := func(what string, value func(r PeerRun) string) {
		cells := []string{what}
		for _, r := range runs {
			cells = append(cells, value(r))
		}
		fmt.Println("| " + strings.Join(cells, " | ") + " |")
	}
	header := []string{""}
	for _, r := range runs {
		header = append(header, r.Name)
	}
	fmt.Println("| " + strings.Join(header, " | ") + " |")
	fmt.Println("|" + strings.Repeat("---|", len(header)))
	n := 0
	if len(runs) > 0 {
		n = runs[0].N
	}
	row(fmt.Sprintf("every Foo's status current (N = %d, replicas 1)", n), func(r PeerRun) string { return cell(r.StatusCurrentSeconds, "%.1f s") })
	row("every Deployment available", func(r PeerRun) string { return cell(r.DeploymentsAvailableSeconds, "%.1f s") })
	row("status shows availability, behind the Deployments", func(r PeerRun) string {
		if r.StatusAvailableSeconds == 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f s", r.StatusAvailableSeconds-r.DeploymentsAvailableSeconds)
	})
	row("controller CPU, start to converged", func(r PeerRun) string { return cell(r.CPUSeconds, "%.1f s") })
	row("controller peak RSS, converging", func(r PeerRun) string { return cell(r.PeakRSSMiB, "%.1f MiB") })
	row("peak RSS, started over the converged Foos", func(r PeerRun) string { return cell(r.FreshPeakRSSMiB, "%.1f MiB") })
	row("the same, with unrelated Deployments in the cluster", func(r PeerRun) string {
		if r.Unrelated == 0 {
			return "—"
		}
		return fmt.Sprintf("%.1f MiB (%d Deployments: %+.1f MiB)", r.FreshPeakRSSUnrelatedMiB, r.Unrelated, r.FreshPeakRSSUnrelatedMiB-r.FreshPeakRSSMiB)
	})
	fmt.Println()
	for _, r := range runs {
		if len(r.Args) > 0 {
			fmt.Printf("- %s: `%s`\n", r.Name, strings.Join(append([]string{filepath.Base(r.Args[0])}, slices.Clone(r.Args[1:])...), " "))
		}
	}
	return nil
}
