// Command sample-controller keeps a Deployment for every Foo (samplecontroller.example.com/v1).
// main.go is plumbing: flags, the connection to the API server, informer factories, and the
// controller's lifetime. The controller itself is in controller.go.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	logsapi "k8s.io/component-base/logs/api/v1"
	_ "k8s.io/component-base/logs/json/register" // --logging-format=json
	"k8s.io/klog/v2"

	"example.com/sample-controller/pkg/conversion"
	clientset "example.com/sample-controller/pkg/generated/clientset/versioned"
	informers "example.com/sample-controller/pkg/generated/informers/externalversions"
	"example.com/sample-controller/pkg/httpserver"
	"example.com/sample-controller/pkg/leader"
	"example.com/sample-controller/pkg/metrics"
	"example.com/sample-controller/pkg/probes"
	"example.com/sample-controller/pkg/secureserving"
	"example.com/sample-controller/pkg/signals"
	"example.com/sample-controller/pkg/webhookcert"
)

// options are the command-line flags.
type options struct {
	kubeconfig   string
	master       string
	namespace    string
	workers      int
	resyncPeriod time.Duration
	qps          float64
	burst        int
	contentType  string
	compression  bool

	dropManagedFields bool

	metricsAddr   string
	metricsSecure bool
	tlsCertFile   string
	tlsKeyFile    string
	probeAddr     string
	profiling     bool

	logging *logsapi.LoggingConfiguration

	leaderElect bool
	leaderCfg   leader.Config

	webhook webhookOptions
}

// webhookOptions configure the conversion webhook: where it listens, and the certificate the
// controller makes for it (see pkg/webhookcert).
type webhookOptions struct {
	addr            string
	hosts           []string
	secretName      string
	secretNamespace string
	crdName         string
	certValidity    time.Duration
	caValidity      time.Duration
}

func (o *options) addFlags(fs *flag.FlagSet) {
	// Logging flags the way Kubernetes' components have them: -v, --vmodule, and
	// --logging-format (text, klog's, by default; json for log collectors).
	o.logging = logsapi.NewLoggingConfiguration()
	logsapi.AddGoFlags(o.logging, fs)
	fs.StringVar(&o.kubeconfig, "kubeconfig", "",
		"Path to a kubeconfig. When empty: $KUBECONFIG, then ~/.kube/config, then the in-cluster service account.")
	fs.StringVar(&o.master, "master", "",
		"Address of the Kubernetes API server. Overrides the server in the kubeconfig.")
	fs.StringVar(&o.namespace, "namespace", "",
		"Watch Foos and Deployments in this namespace only. Empty: all namespaces.")
	fs.IntVar(&o.workers, "workers", 16,
		"Number of Foos synced in parallel. One Foo is never synced by two workers at once.")
	fs.DurationVar(&o.resyncPeriod, "resync-period", 5*time.Minute,
		"How often every Foo is re-checked from the cache even without a change. Costs no API requests for a converged Foo.")
	fs.Float64Var(&o.qps, "kube-api-qps", 500,
		"Sustained requests per second to the API server, per client: a ceiling against a runaway loop, not a pace (API Priority and Fairness shares the server; client-go's default of 5 would throttle a thousand Foos).")
	fs.IntVar(&o.burst, "kube-api-burst", 1000,
		"Requests allowed in a burst above --kube-api-qps.")
	fs.StringVar(&o.contentType, "kube-api-content-type", runtime.ContentTypeProtobuf,
		"Encoding of requests and responses for Kubernetes' own types (Deployments, Events, Leases): "+runtime.ContentTypeProtobuf+" or "+runtime.ContentTypeJSON+". Foos are always JSON (custom resources have no protobuf encoding).")
	fs.BoolVar(&o.compression, "kube-api-compression", false,
		"Ask the API server to gzip large responses (lists). Off: on a cluster's network the CPU of compressing and decompressing costs more than the bytes saved.")

	fs.BoolVar(&o.dropManagedFields, "informer-drop-managed-fields", true,
		"Drop metadata.managedFields from objects before they enter the informer caches (the controller never reads them; see docs/benchmarks.md for the memory saved).")

	fs.StringVar(&o.metricsAddr, "metrics-bind-address", httpserver.Disabled,
		"Address (host:port) to serve Prometheus metrics on, at /metrics. \"0\" turns it off; port 0 picks a free port.")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", true,
		"Serve metrics (and profiles) over HTTPS, only to callers whose bearer token the API server accepts (TokenReview) and who may GET the path (SubjectAccessReview). false: plain HTTP to anyone who can connect.")
	fs.StringVar(&o.tlsCertFile, "tls-cert-file", "",
		"Serving certificate (PEM) of the secure metrics server, re-read when it changes. Empty: a self-signed certificate made at start.")
	fs.StringVar(&o.tlsKeyFile, "tls-private-key-file", "",
		"The key (PEM) of --tls-cert-file.")
	fs.BoolVar(&o.profiling, "profiling", false,
		"Also serve Go's profiles (net/http/pprof) at /debug/pprof/ on the metrics address, to callers allowed to GET /debug/pprof/ (with --metrics-secure).")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", httpserver.Disabled,
		"Address (host:port) to serve the /healthz and /readyz probes on. \"0\" turns it off.")

	fs.BoolVar(&o.leaderElect, "leader-elect", false,
		"Run workers only while holding a Lease, so that several replicas can run and one works at a time.")
	fs.StringVar(&o.leaderCfg.LeaseName, "leader-elect-lease-name", controllerAgentName,
		"Name of the coordination.k8s.io Lease used for leader election.")
	fs.StringVar(&o.leaderCfg.LeaseNamespace, "leader-elect-namespace", "",
		"Namespace of the Lease. Empty: $POD_NAMESPACE, then the service account's namespace in a cluster, then \"default\".")
	fs.DurationVar(&o.leaderCfg.LeaseDuration, "leader-elect-lease-duration", 15*time.Second,
		"How long a standby waits after the leader's last renewal before taking over.")
	fs.DurationVar(&o.leaderCfg.RenewDeadline, "leader-elect-renew-deadline", 10*time.Second,
		"How long the leader tries to renew before it gives up leading (and exits).")
	fs.DurationVar(&o.leaderCfg.RetryPeriod, "leader-elect-retry-period", 2*time.Second,
		"How often candidates try to acquire, and the leader renews, the Lease.")

	fs.StringVar(&o.webhook.addr, "conversion-webhook-bind-address", httpserver.Disabled,
		"Address of the HTTPS server the API server calls to convert Foos between versions (POST /convert), e.g. :9443; \"0\" disables it. Every replica serves it, leader or not.")
	fs.Func("conversion-webhook-hosts", "Comma-separated DNS names and IP addresses the webhook's certificate is for: the Service's name (NAME.NAMESPACE.svc) in a cluster, 127.0.0.1 when the API server calls it by URL.",
		func(v string) error {
			o.webhook.hosts = nil
			for _, h := range strings.Split(v, ",") {
				if h = strings.TrimSpace(h); h != "" {
					o.webhook.hosts = append(o.webhook.hosts, h)
				}
			}
			return nil
		})
	fs.StringVar(&o.webhook.secretName, "conversion-webhook-secret", "sample-controller-webhook-cert",
		"Secret in which the controller keeps the webhook's CA and certificate (created when missing).")
	fs.StringVar(&o.webhook.secretNamespace, "conversion-webhook-secret-namespace", "",
		"Namespace of that Secret. Empty: the controller's own namespace, as for the Lease.")
	fs.StringVar(&o.webhook.crdName, "conversion-webhook-crd", fooCRDName,
		"CustomResourceDefinition whose spec.conversion.webhook.clientConfig.caBundle the controller keeps current; empty: leave it to someone else.")
	fs.DurationVar(&o.webhook.certValidity, "conversion-webhook-cert-validity", 90*24*time.Hour,
		"How long a serving certificate is valid; it is renewed after two thirds of that.")
	fs.DurationVar(&o.webhook.caValidity, "conversion-webhook-ca-validity", 10*365*24*time.Hour,
		"How long the webhook's CA is valid; it is rotated after two thirds of that, old and new CA both trusted meanwhile.")
}

func (o *options) validate() error {
	var errs []error
	if o.workers < 1 {
		errs = append(errs, fmt.Errorf("--workers must be at least 1, got %d", o.workers))
	}
	if o.resyncPeriod <= 0 {
		// The resync is what brings back a Foo whose key was dropped after maxRetries (and any
		// Foo whose Deployment changed in a way no event told us of); without it such a Foo
		// would wait for its next edit, however long that takes.
		errs = append(errs, fmt.Errorf("--resync-period must be positive (it re-checks every Foo, including those given up on after repeated errors), got %s", o.resyncPeriod))
	}
	if o.qps <= 0 {
		errs = append(errs, fmt.Errorf("--kube-api-qps must be positive, got %v", o.qps))
	}
	if o.burst < 1 {
		errs = append(errs, fmt.Errorf("--kube-api-burst must be at least 1, got %d", o.burst))
	}
	if o.contentType != runtime.ContentTypeProtobuf && o.contentType != runtime.ContentTypeJSON {
		errs = append(errs, fmt.Errorf("--kube-api-content-type must be %s or %s, got %q", runtime.ContentTypeProtobuf, runtime.ContentTypeJSON, o.contentType))
	}
	if (o.tlsCertFile == "") != (o.tlsKeyFile == "") {
		errs = append(errs, errors.New("--tls-cert-file and --tls-private-key-file go together: give both or neither"))
	}
	if o.tlsCertFile != "" && !o.metricsSecure {
		errs = append(errs, errors.New("--tls-cert-file needs --metrics-secure: the certificate is for the secure metrics server"))
	}
	if o.profiling && (o.metricsAddr == httpserver.Disabled || o.metricsAddr == "") {
		errs = append(errs, errors.New("--profiling needs --metrics-bind-address: the profiles are served beside the metrics"))
	}
	if o.webhook.addr != httpserver.Disabled && o.webhook.addr != "" {
		if len(o.webhook.hosts) == 0 {
			errs = append(errs, errors.New("--conversion-webhook-bind-address needs --conversion-webhook-hosts: the names the API server calls the webhook by, for its certificate"))
		}
		if o.webhook.secretName == "" {
			errs = append(errs, errors.New("--conversion-webhook-secret must not be empty"))
		}
		if o.webhook.certValidity < time.Minute || o.webhook.caValidity < o.webhook.certValidity {
			errs = append(errs, fmt.Errorf("--conversion-webhook-cert-validity (%s) must be at least 1m and at most --conversion-webhook-ca-validity (%s)",
				o.webhook.certValidity, o.webhook.caValidity))
		}
	}
	if o.leaderElect {
		if err := o.leaderCfg.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--leader-elect-*: %w", err))
		}
	}
	return errors.Join(errs...)
}

func main() {
	var opts options
	opts.addFlags(flag.CommandLine)
	printVersion := flag.Bool("version", false, "Print the version and the Git commit this binary was built from, and exit.")
	flag.Parse()
	if *printVersion {
		fmt.Println(version())
		return
	}
	if err := opts.validate(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// Before anything logs: the format and verbosity apply to every line from here on.
	if err := logsapi.ValidateAndApply(opts.logging, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}

	// The first SIGINT/SIGTERM cancels ctx and starts a graceful shutdown; a second exits at once.
	ctx := signals.SetupSignalHandler()
	logger := klog.FromContext(ctx)
	if err := run(ctx, opts, clientcmd.NewDefaultClientConfigLoadingRules(), apiServerBackoff); err != nil {
		logger.Error(err, "sample-controller failed")
		klog.FlushAndExit(klog.ExitFlushTimeout, 1)
	}
	logger.Info("sample-controller stopped")
	klog.Flush()
}

// restConfig finds the API server the way kubectl does. main passes client-go's default loading
// rules: --kubeconfig, then $KUBECONFIG, then ~/.kube/config, and, when none of these exists,
// the in-cluster service account. Tests pass rules of their own, so that they never read the
// kubeconfig of the machine they run on.
func restConfig(o options, rules *clientcmd.ClientConfigLoadingRules) (*rest.Config, error) {
	rules.ExplicitPath = o.kubeconfig
	overrides := &clientcmd.ConfigOverrides{}
	overrides.ClusterInfo.Server = o.master
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if clientcmd.IsEmptyConfig(err) {
		return nil, errors.New("no cluster to talk to: no --kubeconfig, $KUBECONFIG or ~/.kube/config, and not running in a cluster")
	}
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	cfg.QPS = float32(o.qps)
	cfg.Burst = o.burst
	cfg.DisableCompression = !o.compression
	// The user agent names us in the API server's audit log and in `kubectl get --show-managed-fields`.
	cfg = rest.AddUserAgent(cfg, controllerAgentName)
	return cfg, nil
}

// apiServerBackoff paces the start-up's attempts to reach the API server: 1s, 2s, 4s, ... up to
// 30s between attempts, for as long as it takes. A kubelet restarting a process that exits
// would wait longer each time (CrashLoopBackOff, up to 5 minutes); waiting here reconnects
// within 30s of the API server's return, and /readyz says meanwhile that we are not ready.
var apiServerBackoff = wait.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.1, Steps: math.MaxInt32, Cap: 30 * time.Second}

// apiServerAttemptTimeout bounds one attempt to reach the API server at start-up.
const apiServerAttemptTimeout = 10 * time.Second

// run is the whole life of the process, in the order things must happen.
func run(ctx context.Context, o options, rules *clientcmd.ClientConfigLoadingRules, backoff wait.Backoff) error {
	logger := klog.FromContext(ctx)
	// A kubeconfig that does not parse, or names a context that does not exist, can never
	// work: that is an error at once. Everything after this waits and retries instead.
	cfg, err := restConfig(o, rules)
	if err != nil {
		return err
	}
	logger.Info("Starting sample-controller", "host", cfg.Host, "namespace", o.namespace, "workers", o.workers,
		"leaderElect", o.leaderElect)
	clients, err := newClients(cfg, o.contentType)
	if err != nil {
		return err
	}

	// Metrics and probes are up from the start: liveness passes while we wait for the API
	// server and the CRD, readiness only once the caches are synced.
	var synced atomic.Pointer[Controller] // set once the controller exists; read by /readyz
	// Set once the conversion webhook's certificate is served and its CA is in the CRD.
	webhookReady := new(atomic.Pointer[func() error])
	watchdog, err := startServers(ctx, o, clients.delegation, &synced, webhookReady)
	if err != nil {
		return err
	}

	if err := waitForAPIServer(ctx, clients.kube.Discovery(), cfg.Host, backoff); err != nil {
		return nil // asked to stop while waiting: the only way out of the wait
	}

	// The conversion webhook, on every replica and before the informers: the API server needs
	// it to serve Foos stored at another version than v1, the controller's own LIST included.
	if err := startConversionWebhook(ctx, o.webhook, clients, webhookReady); err != nil {
		return err
	}

	// A RESTMapper backed by discovery (GET /api, /apis, cached in memory) answers which
	// resource serves the Foo kind, and whether any does. See WaitForFooAPI in startup.go.
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(clients.kube.Discovery()))
	if _, err := WaitForFooAPI(ctx, mapper, 10*time.Second); err != nil {
		if ctx.Err() != nil {
			return nil // asked to stop while waiting
		}
		return err
	}

	kubeInformerFactory, fooInformerFactory := newInformerFactories(o, clients)
	controller, err := NewController(ctx, clients.kube, clients.sample, clients.events.CoreV1(),
		kubeInformerFactory.Apps().V1().Deployments(),
		fooInformerFactory.Samplecontroller().V1().Foos())
	if err != nil {
		return err
	}
	synced.Store(controller)

	// Start runs the informers requested so far, each in its own goroutine, until ctx ends.
	// With leader election, standbys run them too: their caches are warm when they take over.
	informersCtx, stopInformers := context.WithCancel(ctx)
	kubeInformerFactory.Start(informersCtx.Done())
	fooInformerFactory.Start(informersCtx.Done())
	// Shutdown waits for those goroutines; they end only with their context, so whatever makes
	// run return (a signal, an error) stops them first (deferred calls run last-in first-out).
	defer kubeInformerFactory.Shutdown()
	defer fooInformerFactory.Shutdown()
	defer stopInformers()

	if !o.leaderElect {
		return controller.Run(ctx, o.workers)
	}
	return runAsLeader(ctx, o, clients.leader, watchdog, func(ctx context.Context) error {
		return controller.Run(ctx, o.workers)
	})
}

// clients are the API clients of the process. Each has its own client-side rate limiter, so
// that Events and Lease renewals never wait behind (or delay) the writes that reconcile Foos.
type clients struct {
	kube   kubernetes.Interface // Deployments, discovery
	sample clientset.Interface  // Foos
	events kubernetes.Interface // Events only
	leader kubernetes.Interface // the leader-election Lease only
	// TokenReviews and SubjectAccessReviews of the secure metrics server: a scrape is never
	// held up by the rate limit of a busy reconcile loop.
	delegation kubernetes.Interface
	// The conversion webhook's Secret and its CRD's caBundle: a certificate renewal never
	// waits behind the reconcile loop either.
	webhook        kubernetes.Interface
	webhookDynamic dynamic.Interface
}

// newClients makes the clients from cfg. Those for Kubernetes' own types speak contentType:
// protobuf, as kube-controller-manager's do, is smaller on the wire and cheaper to decode than
// JSON (forced JSON cost 36 % more CPU over a converge, docs/benchmarks.md), and the Deployment
// watch is most of what the controller decodes. Custom resources have no protobuf encoding, so
// the Foo client and the dynamic one stay on JSON.
func newClients(cfg *rest.Config, contentType string) (clients, error) {
	var c clients
	var err error
	builtin := rest.CopyConfig(cfg)
	builtin.ContentType = contentType
	if contentType == runtime.ContentTypeProtobuf {
		builtin.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	}
	if c.kube, err = kubernetes.NewForConfig(builtin); err != nil {
		return c, fmt.Errorf("creating the Kubernetes client: %w", err)
	}
	if c.sample, err = clientset.NewForConfig(cfg); err != nil {
		return c, fmt.Errorf("creating the Foo client: %w", err)
	}
	if c.events, err = kubernetes.NewForConfig(rest.CopyConfig(builtin)); err != nil {
		return c, fmt.Errorf("creating the events client: %w", err)
	}
	if c.leader, err = kubernetes.NewForConfig(rest.AddUserAgent(rest.CopyConfig(builtin), controllerAgentName+"-leader-election")); err != nil {
		return c, fmt.Errorf("creating the leader election client: %w", err)
	}
	if c.delegation, err = kubernetes.NewForConfig(rest.CopyConfig(builtin)); err != nil {
		return c, fmt.Errorf("creating the authentication client: %w", err)
	}
	if c.webhook, err = kubernetes.NewForConfig(rest.AddUserAgent(rest.CopyConfig(builtin), controllerAgentName+"-webhook-cert")); err != nil {
		return c, fmt.Errorf("creating the webhook certificate client: %w", err)
	}
	webhookCfg := rest.AddUserAgent(rest.CopyConfig(cfg), controllerAgentName+"-webhook-cert")
	if c.webhookDynamic, err = dynamic.NewForConfig(webhookCfg); err != nil {
		return c, fmt.Errorf("creating the webhook certificate client: %w", err)
	}
	return c, nil
}

// startServers starts the metrics and probe servers (each only when its address is set). It
// returns the leader-election watchdog that /healthz checks, or nil without --leader-elect.
func startServers(ctx context.Context, o options, delegation kubernetes.Interface, synced *atomic.Pointer[Controller],
	webhookReady *atomic.Pointer[func() error]) (*leaderelection.HealthzAdaptor, error) {
	metrics.Register()
	metricsHandler := metrics.Handler()
	if o.profiling {
		metricsHandler = withProfiling(metricsHandler)
	}
	switch {
	case o.metricsAddr == httpserver.Disabled || o.metricsAddr == "":
	case o.metricsSecure:
		if _, err := secureserving.Start(ctx, secureserving.Config{Name: "metrics", Address: o.metricsAddr,
			CertFile: o.tlsCertFile, KeyFile: o.tlsKeyFile, Client: delegation}, metricsHandler); err != nil {
			return nil, err
		}
	default:
		if _, err := httpserver.Start(ctx, "metrics", o.metricsAddr, metricsHandler); err != nil {
			return nil, err
		}
	}
	var watchdog *leaderelection.HealthzAdaptor
	liveness := []probes.Check{probes.CheckFunc{CheckName: "ping", Func: func(*http.Request) error { return nil }}}
	if o.leaderElect {
		// Fails when this process leads but has not renewed its Lease for leaderWatchdogTimeout
		// past the lease duration: it should have stopped leading (and exited) by then, so it is
		// stuck, and a restart lets a standby take over. pkg/leader ties it to the elector.
		watchdog = leaderelection.NewLeaderHealthzAdaptor(leaderWatchdogTimeout)
		liveness = append(liveness, watchdog)
	}
	readiness := []probes.Check{probes.CheckFunc{CheckName: "informers-synced", Func: func(*http.Request) error {
		if c := synced.Load(); c == nil || !c.HasSynced() {
			return errors.New("the Foo and Deployment caches are not synced yet")
		}
		return nil
	}}}
	if o.webhook.addr != httpserver.Disabled && o.webhook.addr != "" {
		readiness = append(readiness, probes.CheckFunc{CheckName: "conversion-webhook", Func: func(*http.Request) error {
			ready := webhookReady.Load()
			if ready == nil {
				return errors.New("the conversion webhook is not started yet")
			}
			return (*ready)()
		}})
	}
	if _, err := httpserver.Start(ctx, "probes", o.probeAddr, probes.Handler(liveness, readiness)); err != nil {
		return nil, err
	}
	return watchdog, nil
}

// startConversionWebhook serves POST /convert over HTTPS, with a certificate the controller
// makes and renews itself (pkg/webhookcert: a CA kept in a Secret, its bundle written into the
// CRD). Readiness waits for both. Without --conversion-webhook-bind-address it does nothing:
// the controller itself reads and writes v1 only, and needs no conversion.
func startConversionWebhook(ctx context.Context, o webhookOptions, c clients, ready *atomic.Pointer[func() error]) error {
	if o.addr == httpserver.Disabled || o.addr == "" {
		return nil
	}
	namespace := o.secretNamespace
	if namespace == "" {
		namespace = ownNamespace()
	}
	certs, err := webhookcert.New(c.webhook, c.webhookDynamic, webhookcert.Options{
		Namespace: namespace, SecretName: o.secretName, CRDName: o.crdName,
		Hosts: o.hosts, CertValidity: o.certValidity, CAValidity: o.caValidity,
	})
	if err != nil {
		return fmt.Errorf("conversion webhook certificate: %w", err)
	}
	go func() {
		if err := certs.Run(ctx); err != nil && ctx.Err() == nil {
			klog.FromContext(ctx).Error(err, "Conversion webhook certificate manager stopped")
		}
	}()
	readyFunc := certs.Ready
	ready.Store(&readyFunc)
	conversion.RegisterMetrics()
	mux := http.NewServeMux()
	mux.Handle("/convert", conversion.NewHandler()) // the path the CRD's clientConfig names
	_, err = httpserver.StartTLS(ctx, "conversion-webhook", o.addr, mux,
		&tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate})
	return err
}

// leaderWatchdogTimeout is how long past the lease duration a leader that has not renewed is
// still called healthy by /healthz.
const leaderWatchdogTimeout = 20 * time.Second

// waitForAPIServer asks the API server for its version (GET /version needs no permissions)
// until it answers, logging each failed attempt with the address and the error, so that a
// wrong address or a cluster that is down is plain in the log. It returns an error only when
// ctx ends.
func waitForAPIServer(ctx context.Context, client discovery.ServerVersionInterface, host string, backoff wait.Backoff) error {
	logger := klog.FromContext(ctx)
	versions := discovery.ToServerVersionInterfaceWithContext(client)
	for attempt := 1; ; attempt++ {
		// Each attempt is bounded: a server that accepts the connection and never answers must
		// not hold up the retries, nor a SIGTERM.
		attemptCtx, cancel := context.WithTimeout(ctx, apiServerAttemptTimeout)
		version, err := versions.ServerVersionWithContext(attemptCtx)
		cancel()
		if err == nil {
			logger.Info("Connected to the API server", "host", host, "version", version.GitVersion)
			return nil
		}
		delay := backoff.Step()
		logger.Error(err, "Cannot reach the Kubernetes API server; retrying", "host", host, "attempt", attempt,
			"retryIn", delay.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

// newInformerFactories makes one shared informer factory per clientset. Every informer obtained
// from a factory is shared: asking twice for Deployments gives one watch and one cache.
func newInformerFactories(o options, c clients) (kubeinformers.SharedInformerFactory, informers.SharedInformerFactory) {
	kubeOptions := []kubeinformers.SharedInformerOption{kubeinformers.WithNamespace(o.namespace),
		// Only the Deployments this controller made (see watchedDeployments): the API server
		// filters the list and the watch, so the others never reach this process.
		kubeinformers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = watchedDeployments })}
	fooOptions := []informers.SharedInformerOption{informers.WithNamespace(o.namespace)}
	if o.dropManagedFields {
		// A transform runs on every object before it is stored in the cache. managedFields
		// (who set which field, for server-side apply) is often the largest part of an object,
		// and nothing here reads it. An Update of a copy without it keeps the stored value.
		kubeOptions = append(kubeOptions, kubeinformers.WithTransform(dropManagedFields))
		fooOptions = append(fooOptions, informers.WithTransform(dropManagedFields))
	}
	return kubeinformers.NewSharedInformerFactoryWithOptions(c.kube, o.resyncPeriod, kubeOptions...),
		informers.NewSharedInformerFactoryWithOptions(c.sample, o.resyncPeriod, fooOptions...)
}

// runAsLeader runs work only while this process holds the Lease (see pkg/leader). Losing the
// Lease while not shutting down ends the process at once: another replica may already lead,
// and two leaders would write beside each other. (Kubernetes' own components exit too.)
func runAsLeader(ctx context.Context, o options, client kubernetes.Interface, watchdog *leaderelection.HealthzAdaptor,
	work func(ctx context.Context) error) error {
	leaderCfg := o.leaderCfg
	if leaderCfg.LeaseNamespace == "" {
		leaderCfg.LeaseNamespace = ownNamespace()
	}
	return leader.Run(ctx, client, leaderCfg, leader.Identity(), watchdog, work, func() {
		klog.FromContext(ctx).Error(nil, "Leader election lost; exiting")
		klog.FlushAndExit(klog.ExitFlushTimeout, 1)
	})
}

// dropManagedFields is an informer transform that clears metadata.managedFields. Tombstones
// and anything without metadata pass through unchanged.
func dropManagedFields(obj interface{}) (interface{}, error) {
	if accessor, err := meta.Accessor(obj); err == nil {
		accessor.SetManagedFields(nil)
	}
	return obj, nil
}

// withProfiling serves Go's runtime profiles under /debug/pprof/ and everything else with h.
// CPU and heap profiles of a live controller answer where its time and memory go, e.g.
// `go tool pprof http://ADDR/debug/pprof/profile?seconds=20`.
func withProfiling(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", h)
	return mux
}

// ownNamespace is where this process runs: $POD_NAMESPACE (set from the Pod's metadata by the
// shipped Deployment), the service account's namespace in a cluster, or "default".
func ownNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && len(b) > 0 {
		return strings.TrimSpace(string(b))
	}
	return metav1.NamespaceDefault
}
