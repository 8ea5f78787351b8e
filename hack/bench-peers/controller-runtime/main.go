// Command controller-runtime is sample-controller's Foo controller written with controller-runtime
// v0.25 the way the kubebuilder book writes one (foo_controller.go). It exists only to be measured
// beside sample-controller (hack/bench-peers.sh, docs/benchmarks.md), so it is a Go module of its
// own: the product's go.mod never requires controller-runtime. It reuses the product's Foo types
// and does for a Foo what sample-controller does, minus Events.
//
// Everything not set here keeps controller-runtime's defaults, since those are what is measured:
// the rest.Config from ctrl.GetConfigOrDie (its --kubeconfig flag; no client-side rate limit),
// one reconcile at a time, no leader election, and no metrics or probe server unless asked for.
package main

import (
	"flag"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
)

func main() {
	var namespace, metricsAddr, probeAddr string
	var maxConcurrentReconciles int
	flag.StringVar(&namespace, "namespace", "", "Watch only this namespace; empty: every namespace.")
	flag.IntVar(&maxConcurrentReconciles, "max-concurrent-reconciles", 1,
		"Foos reconciled in parallel (1 is controller-runtime's default).")
	flag.StringVar(&metricsAddr, "metrics-bind-address", "0", `Address of the metrics endpoint; "0" turns it off.`)
	flag.StringVar(&probeAddr, "health-probe-bind-address", "0", `Address of /healthz and /readyz; "0" turns them off.`)
	// zap's defaults (Development off): JSON lines, info level. Its --zap-* flags can change that.
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse() // parses controller-runtime's --kubeconfig flag too (registered by its config package)
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	setupLog := ctrl.Log.WithName("setup")

	// The scheme maps Go types to GroupVersionKinds for the client and the cache: the built-in
	// types (Deployments) and the Foo.
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(samplev1.AddToScheme(scheme))

	options := ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress: probeAddr,
	}
	if namespace != "" {
		// The cache lists and watches this namespace only, as sample-controller's --namespace.
		options.Cache = cache.Options{DefaultNamespaces: map[string]cache.Config{namespace: {}}}
	}
	// GetConfigOrDie: controller-runtime's defaults, QPS and Burst untouched (measuring them is
	// the point).
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), options)
	if err != nil {
		setupLog.Error(err, "unable to create the manager")
		os.Exit(1)
	}
	if err := (&FooReconciler{Client: mgr.GetClient(), Scheme: mgr.GetScheme()}).
		SetupWithManager(mgr, maxConcurrentReconciles); err != nil {
		setupLog.Error(err, "unable to create the controller", "controller", "Foo")
		os.Exit(1)
	}
	if probeAddr != "0" {
		utilruntime.Must(mgr.AddHealthzCheck("healthz", healthz.Ping))
		utilruntime.Must(mgr.AddReadyzCheck("readyz", healthz.Ping))
	}

	// Start blocks until SIGTERM or SIGINT. Once the caches have synced, the controller logs
	// "Starting workers" (info level), which the benchmark waits for.
	setupLog.Info("starting the manager")
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		setupLog.Error(err, "problem running the manager")
		os.Exit(1)
	}
}
