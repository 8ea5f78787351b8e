package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"example.com/sample-controller/pkg/leader"
)

func validOptions() options {
	return options{workers: 4, resyncPeriod: time.Minute, qps: 100, burst: 200,
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
		{"zero qps", func(o *options) { o.qps = 0 }, "--kube-api-qps"},
		{"zero burst", func(o *options) { o.burst = 0 }, "--kube-api-burst"},
		{"lease shorter than renew deadline", func(o *options) {
			o.leaderElect = true
			o.leaderCfg.LeaseDuration = 5 * time.Second
		}, "lease duration"},
		{"profiling without a metrics address", func(o *options) { o.profiling = true }, "--profiling needs --metrics-bind-address"},
		{"profiling beside the metrics", func(o *options) { o.profiling = true; o.metricsAddr = "127.0.0.1:0" }, ""},
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

func TestRestConfigErrors(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	o := validOptions()
	if _, err := restConfig(o); err == nil || !strings.Contains(err.Error(), "no cluster to talk to") {
		t.Errorf("with no kubeconfig anywhere: %v, want the no-cluster message", err)
	}
	o.kubeconfig = filepath.Join(t.TempDir(), "missing")
	if _, err := restConfig(o); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("with a missing --kubeconfig: %v, want an error naming the file", err)
	}
	good := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(good, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	o.kubeconfig = good
	o.master = "https://127.0.0.1:7443"
	cfg, err := restConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.1:7443" || cfg.QPS != 100 || cfg.Burst != 200 || !strings.HasSuffix(cfg.UserAgent, "/sample-controller") {
		t.Errorf("config = host %s qps %v burst %d agent %q; want --master, the QPS flags and our user agent", cfg.Host, cfg.QPS, cfg.Burst, cfg.UserAgent)
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
