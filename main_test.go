package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"example.com/sample-controller/pkg/httpserver"
	"example.com/sample-controller/pkg/leader"
)

func validOptions() options {
	return options{workers: 4, resyncPeriod: time.Minute, qps: 100, burst: 200, metricsSecure: true, contentType: "application/vnd.kubernetes.protobuf",
		leaderCfg: leader.Config{LeaseName: "x", LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(o *options)
		want   string // "" means valid
	}{
		{"defaults", func(o *options) {}, ""},
		{"no workers", func(o *options) { o.workers = 0 }, "--workers"},
		{"negative resync", func(o *options) { o.resyncPeriod = -time.Second }, "--resync-period"},
		// Without a resync, a key dropped after maxRetries would never come back on its own.
		{"no resync", func(o *options) { o.resyncPeriod = 0 }, "--resync-period must be positive"},
		{"zero qps", func(o *options) { o.qps = 0 }, "--kube-api-qps"},
		{"zero burst", func(o *options) { o.burst = 0 }, "--kube-api-burst"},
		{"JSON for built-in types", func(o *options) { o.contentType = "application/json" }, ""},
		{"an encoding the API server does not speak", func(o *options) { o.contentType = "application/yaml" }, "--kube-api-content-type"},
		{"lease shorter than renew deadline", func(o *options) {
			o.leaderElect = true
			o.leaderCfg.LeaseDuration = 5 * time.Second
		}, "lease duration"},
		// A leader that cannot renew stops a retry period plus the renew deadline after its last
		// renewal; a standby must not take over before that.
		{"lease not longer than renew deadline plus retry period", func(o *options) {
			o.leaderElect = true
			o.leaderCfg.LeaseDuration = 12 * time.Second
		}, "plus the retry period"},
		{"lease a second longer than renew deadline plus retry period", func(o *options) {
			o.leaderElect = true
			o.leaderCfg.LeaseDuration = 13 * time.Second
		}, ""},
		{"lease longer than renew deadline plus retry period only in its fraction of a second (the Lease stores seconds)", func(o *options) {
			o.leaderElect = true
			o.leaderCfg.LeaseDuration = 12*time.Second + 500*time.Millisecond
		}, "plus the retry period"},
		{"renew deadline within the retry period's jitter", func(o *options) {
			o.leaderElect = true
			o.leaderCfg.RenewDeadline = 2 * time.Second
		}, "renew deadline"},
		{"zero retry period", func(o *options) {
			o.leaderElect = true
			o.leaderCfg.RetryPeriod = 0
		}, "retry period must be positive"},
		{"lease under a second", func(o *options) {
			o.leaderElect = true
			o.leaderCfg = leader.Config{LeaseName: "x", LeaseDuration: 900 * time.Millisecond, RenewDeadline: 500 * time.Millisecond, RetryPeriod: 100 * time.Millisecond}
		}, "at least 1s"},
		{"profiling without a metrics address", func(o *options) { o.profiling = true }, "--profiling needs --metrics-bind-address"},
		{"profiling beside the metrics", func(o *options) { o.profiling = true; o.metricsAddr = "127.0.0.1:0" }, ""},
		{"a certificate without its key", func(o *options) { o.tlsCertFile = "tls.crt" }, "give both or neither"},
		{"a key without its certificate", func(o *options) { o.tlsKeyFile = "tls.key" }, "give both or neither"},
		{"a certificate for plain HTTP", func(o *options) { o.tlsCertFile, o.tlsKeyFile, o.metricsSecure = "tls.crt", "tls.key", false }, "--tls-cert-file needs --metrics-secure"},
		{"a certificate and its key", func(o *options) { o.tlsCertFile, o.tlsKeyFile = "tls.crt", "tls.key" }, ""},
		{"lease durations not checked without --leader-elect", func(o *options) { o.leaderCfg.LeaseDuration = 0 }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := validOptions()
			tc.modify(&o)
			err := o.validate()
			if tc.want == "" && err != nil {
				t.Errorf("validate() = %v, want nil", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("validate() = %v, want an error about %s", err, tc.want)
			}
		})
	}
}

// noKubeconfigAnywhere are loading rules that find no file: what client-go's default rules
// find on a machine without $KUBECONFIG or ~/.kube/config. Tests use rules of their own so that
// they never read the kubeconfig of the machine they run on (client-go computes the default
// ~/.kube/config path once, from the real home, before any test can change HOME).
func noKubeconfigAnywhere() *clientcmd.ClientConfigLoadingRules {
	return &clientcmd.ClientConfigLoadingRules{}
}

func writeKubeconfig(t *testing.T, server string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "`+server+`"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRestConfigErrors(t *testing.T) {
	// In a Pod, client-go would fall back to the in-cluster configuration; not here.
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	o := validOptions()
	if _, err := restConfig(o, noKubeconfigAnywhere()); err == nil || !strings.Contains(err.Error(), "no cluster to talk to") {
		t.Errorf("with no kubeconfig anywhere: %v, want the no-cluster message", err)
	}
	o.kubeconfig = filepath.Join(t.TempDir(), "missing")
	if _, err := restConfig(o, noKubeconfigAnywhere()); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("with a missing --kubeconfig: %v, want an error naming the file", err)
	}
	garbled := filepath.Join(t.TempDir(), "garbled")
	if err := os.WriteFile(garbled, []byte("clusters: [this is not"), 0o600); err != nil {
		t.Fatal(err)
	}
	o.kubeconfig = garbled
	if _, err := restConfig(o, noKubeconfigAnywhere()); err == nil || !strings.Contains(err.Error(), "loading the kubeconfig") {
		t.Errorf("with a kubeconfig that does not parse: %v, want an error at once", err)
	}

	// A kubeconfig whose current context does not exist can never work either: an error at once.
	noContext := writeKubeconfig(t, "https://127.0.0.1:6443")
	data, err := os.ReadFile(noContext)
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(regexp.MustCompile(`(?m)^current-context:.*$`).ReplaceAllString(string(data), "current-context: nowhere"))
	if err := os.WriteFile(noContext, data, 0o600); err != nil {
		t.Fatal(err)
	}
	o.kubeconfig = noContext
	if _, err := restConfig(o, noKubeconfigAnywhere()); err == nil || !strings.Contains(err.Error(), "nowhere") {
		t.Errorf("with a current context that does not exist: %v, want an error at once naming it", err)
	}

	// The first file in the rules' precedence (what $KUBECONFIG or ~/.kube/config would be) is used.
	rules := &clientcmd.ClientConfigLoadingRules{Precedence: []string{writeKubeconfig(t, "https://127.0.0.1:6443")}}
	o.kubeconfig = ""
	cfg, err := restConfig(o, rules)
	if err != nil || cfg.Host != "https://127.0.0.1:6443" {
		t.Errorf("with a kubeconfig found by the loading rules: %v, %v; want its server", cfg, err)
	}

	o.kubeconfig = writeKubeconfig(t, "https://127.0.0.1:6443")
	o.master = "https://127.0.0.1:7443"
	cfg, err = restConfig(o, noKubeconfigAnywhere())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.1:7443" || cfg.QPS != 100 || cfg.Burst != 200 || !strings.HasSuffix(cfg.UserAgent, "/sample-controller") {
		t.Errorf("config = host %s qps %v burst %d agent %q; want --master, the QPS flags and our user agent", cfg.Host, cfg.QPS, cfg.Burst, cfg.UserAgent)
	}
}

// apiServerDownFor answers GET /version with 503 for the first `failures` requests, then with a
// version; everything else is 404. It counts the /version requests.
type apiServerDownFor struct {
	failures int32
	calls    atomic.Int32
}

func (s *apiServerDownFor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/version" {
		http.NotFound(w, r)
		return
	}
	if s.calls.Add(1) <= s.failures {
		http.Error(w, "the API server is restarting", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"major":"1","minor":"37","gitVersion":"v1.37.2"}`)
}

var fastBackoff = wait.Backoff{Duration: time.Millisecond, Factor: 2, Steps: math.MaxInt32, Cap: 20 * time.Millisecond}

// logContext is a context whose logger writes to the test's log and keeps every line, which
// logged() returns.
func logContext(t *testing.T) (ctx context.Context, logged func() string) {
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.BufferLogs(true)))
	return klog.NewContext(context.Background(), logger), func() string {
		return logger.GetSink().(ktesting.Underlier).GetBuffer().String()
	}
}

func TestWaitForAPIServerRetriesUntilItAnswers(t *testing.T) {
	ctx, logged := logContext(t)
	server := &apiServerDownFor{failures: 3}
	srv := httptest.NewServer(server)
	defer srv.Close()
	client := kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL})

	if err := waitForAPIServer(ctx, client.Discovery(), srv.URL, fastBackoff); err != nil {
		t.Fatalf("waitForAPIServer = %v, want nil once the API server answers", err)
	}
	if n := server.calls.Load(); n != 4 {
		t.Errorf("/version was asked %d times, want 4 (3 failures, then success)", n)
	}
	log := logged()
	if n := strings.Count(log, "Cannot reach the Kubernetes API server; retrying"); n != 3 {
		t.Errorf("logged %d retry lines, want one per failed attempt (3):\n%s", n, log)
	}
	if !strings.Contains(log, srv.URL) || !strings.Contains(log, "Connected to the API server") {
		t.Errorf("the log does not name the address and the connection:\n%s", log)
	}
}

// A server that accepts the connection and never answers does not hold up SIGTERM.
func TestWaitForAPIServerStopsOnAHungServer(t *testing.T) {
	ctx, _ := logContext(t)
	ctx, cancel := context.WithCancel(ctx)
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(hang)
	client := kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL})
	returned := make(chan error, 1)
	go func() { returned <- waitForAPIServer(ctx, client.Discovery(), srv.URL, fastBackoff) }()
	cancel() // SIGTERM while the first request hangs
	select {
	case err := <-returned:
		if err == nil {
			t.Error("waitForAPIServer = nil after SIGTERM, want the context's error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waitForAPIServer still waits on a hung server 5s after SIGTERM")
	}
}

// An API server that is down when the controller starts (a cluster upgrade, a node reboot) must
// not end the process: it waits, /healthz passes and /readyz fails meanwhile, and SIGTERM still
// stops it cleanly.
func TestRunWaitsForAnUnreachableAPIServer(t *testing.T) {
	ctx, logged := logContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	server := &apiServerDownFor{failures: math.MaxInt32}
	srv := httptest.NewServer(server)
	defer srv.Close()

	o := validOptions()
	o.kubeconfig = writeKubeconfig(t, srv.URL)
	o.probeAddr = "127.0.0.1:0"
	returned := make(chan error, 1)
	go func() { returned <- run(ctx, o, noKubeconfigAnywhere(), fastBackoff) }()

	probeAddr := regexp.MustCompile(`Serving"? server="probes" address="([^"]+)"`)
	var probes string
	deadline := time.Now().Add(30 * time.Second)
	for server.calls.Load() < 5 || probes == "" {
		select {
		case err := <-returned:
			t.Fatalf("run returned %v while the API server was unreachable; want it to keep waiting", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %d /version requests, probes at %q", server.calls.Load(), probes)
		}
		if m := probeAddr.FindStringSubmatch(logged()); m != nil {
			probes = "http://" + m[1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	for path, want := range map[string]int{"/healthz": http.StatusOK, "/readyz": http.StatusServiceUnavailable} {
		resp, err := http.Get(probes + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s while the API server is unreachable = %d, want %d", path, resp.StatusCode, want)
		}
	}

	cancel() // SIGTERM
	select {
	case err := <-returned:
		if err != nil {
			t.Errorf("run after SIGTERM = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30s of SIGTERM")
	}
}

func TestDropManagedFields(t *testing.T) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}}}
	out, err := dropManagedFields(d)
	if err != nil || out.(*appsv1.Deployment).ManagedFields != nil || out.(*appsv1.Deployment).Name != "d" {
		t.Errorf("dropManagedFields = %+v, %v; want the object without managedFields", out, err)
	}
	tombstone := cache.DeletedFinalStateUnknown{Key: "ns/d", Obj: d}
	if out, err := dropManagedFields(tombstone); err != nil || out != tombstone {
		t.Errorf("a tombstone must pass through unchanged, got %v, %v", out, err)
	}
}

func TestWithProfiling(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "metrics") })
	srv := httptest.NewServer(withProfiling(metrics))
	defer srv.Close()
	for path, want := range map[string]string{
		"/metrics":                  "metrics",
		"/debug/pprof/":             "goroutine",
		"/debug/pprof/heap?debug=1": "heap profile",
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d %.80q, want 200 with %q", path, resp.StatusCode, body, want)
		}
	}
}

// Out of the box: no servers (out of cluster nothing listens), and metrics, once given an
// address, only over HTTPS to callers the API server vouches for.
func TestDefaultFlags(t *testing.T) {
	var o options
	fs := flag.NewFlagSet("sample-controller", flag.ContinueOnError)
	o.addFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if o.metricsAddr != httpserver.Disabled || o.probeAddr != httpserver.Disabled {
		t.Errorf("servers on by default: metrics %q, probes %q", o.metricsAddr, o.probeAddr)
	}
	if !o.metricsSecure {
		t.Error("--metrics-secure is off by default")
	}
	if o.logging.Format != "text" {
		t.Errorf("--logging-format defaults to %q, want text", o.logging.Format)
	}
	if err := o.validate(); err != nil {
		t.Errorf("the defaults do not validate: %v", err)
	}
	if err := fs.Parse([]string{"-v=4", "--logging-format=json"}); err != nil {
		t.Errorf("Kubernetes' logging flags: %v", err)
	}
}

// Kubernetes' own types travel as protobuf, Foos as JSON (custom resources have no protobuf
// encoding), and no client asks for gzip unless --kube-api-compression says so.
func TestClientsEncodings(t *testing.T) {
	type request struct{ path, accept, encoding string }
	seen := make(chan request, 10)
	// TLS, as every real API server: over plain HTTP, client-go uses Go's default transport,
	// which always asks for gzip.
	server := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- request{r.URL.Path, r.Header.Get("Accept"), r.Header.Get("Accept-Encoding")}
		http.Error(w, "no", http.StatusNotFound)
	}))
	defer server.Close()
	kubeconfig := writeKubeconfig(t, server.URL)
	data, err := os.ReadFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.Replace(string(data), "cluster: {server:", "cluster: {insecure-skip-tls-verify: true, server:", 1))
	if err := os.WriteFile(kubeconfig, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, compression := range []bool{false, true} {
		o := validOptions()
		o.kubeconfig, o.compression = kubeconfig, compression
		cfg, err := restConfig(o, noKubeconfigAnywhere())
		if err != nil {
			t.Fatal(err)
		}
		c, err := newClients(cfg, o.contentType)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		_, _ = c.kube.AppsV1().Deployments("ns").Get(ctx, "d", metav1.GetOptions{})
		_, _ = c.events.CoreV1().Events("ns").Get(ctx, "e", metav1.GetOptions{})
		_, _ = c.sample.SamplecontrollerV1().Foos("ns").Get(ctx, "f", metav1.GetOptions{})
		for _, want := range []struct{ path, accept string }{
			{"/apis/apps/v1/namespaces/ns/deployments/d", "application/vnd.kubernetes.protobuf,application/json"},
			{"/api/v1/namespaces/ns/events/e", "application/vnd.kubernetes.protobuf,application/json"},
			{"/apis/samplecontroller.example.com/v1/namespaces/ns/foos/f", "application/json"},
		} {
			got := <-seen
			if got.path != want.path || !strings.HasPrefix(got.accept, want.accept) {
				t.Errorf("request %s with Accept %q, want %s with Accept %q", got.path, got.accept, want.path, want.accept)
			}
			if asked := strings.Contains(got.encoding, "gzip"); asked != compression {
				t.Errorf("compression %v: %s sent Accept-Encoding %q", compression, got.path, got.encoding)
			}
		}
	}
}
