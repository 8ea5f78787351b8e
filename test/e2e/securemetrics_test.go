//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"example.com/sample-controller/internal/promtext"
)

// ---- reading the secure metrics server ----

// httpsClient trusts whatever certificate the controller serves: it makes a self-signed one at
// start, which no one could have given the test beforehand. What is under test is who may
// read, not the certificate.
var httpsClient = &http.Client{Timeout: 30 * time.Second,
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

// httpsGet GETs url with the bearer token (none when empty).
func httpsGet(url, token string) (int, string) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpsClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// applyMetricsReaderRoles installs the shipped ClusterRoles for reading metrics and profiles.
func applyMetricsReaderRoles(t *testing.T) {
	t.Helper()
	mustKubectl(t, "apply", "-k", "artifacts/deploy/metrics-readers")
}

// serviceAccountWithClusterRole creates a ServiceAccount in ns, binds it to clusterRole (when not
// empty) cluster-wide until the test ends, and returns a token for it.
func serviceAccountWithClusterRole(t *testing.T, ns, name, clusterRole string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := kubeClient.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if clusterRole != "" {
		bindClusterRole(t, ns+"-"+name, clusterRole, rbacv1.Subject{Kind: "ServiceAccount", Name: name, Namespace: ns})
	}
	return serviceAccountToken(t, ns, name)
}

// bindClusterRole binds clusterRole to subject cluster-wide until the test ends.
func bindClusterRole(t *testing.T, name, clusterRole string, subject rbacv1.Subject) {
	t.Helper()
	ctx := context.Background()
	if _, err := kubeClient.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: clusterRole},
		Subjects:   []rbacv1.Subject{subject},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kubeClient.RbacV1().ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// ---- the tests ----

// Metrics and profiles are served over HTTPS to callers the API server authenticates and
// authorizes, each with its own role; the probes stay plain HTTP and need no token.
func TestMetricsAndProfilesNeedATokenAndTheRole(t *testing.T) {
	ensureCRD(t)
	applyMetricsReaderRoles(t)
	ns := newNamespace(t)
	stranger := serviceAccountWithClusterRole(t, ns, "stranger", "")
	reader := serviceAccountWithClusterRole(t, ns, "reader", "sample-controller-metrics-reader")
	profiler := serviceAccountWithClusterRole(t, ns, "profiler", "sample-controller-profiles-reader")

	p := startController(t, "--namespace="+ns, "--metrics-bind-address=127.0.0.1:0", "--profiling",
		"--health-probe-bind-address=127.0.0.1:0", "-v=2")
	metricsURL := "https://" + servedAddress(t, p, "metrics")
	probes := "http://" + servedAddress(t, p, "probes")
	if !strings.Contains(p.Log(), `scheme="https"`) {
		t.Errorf("the metrics server does not say it serves HTTPS:\n%s", p.LogTail(20))
	}
	if code, body := httpGet(strings.Replace(metricsURL, "https://", "http://", 1) + "/metrics"); code == http.StatusOK {
		t.Errorf("plain HTTP to the metrics port = %d %.200q, want it refused", code, body)
	}

	// RBAC bindings reach the API server's authorizer within a moment; the first answers are
	// cached for 10s by the controller, so wait for the allowed ones before asserting the rest.
	eventually(t, p, 60*time.Second, "the reader to read /metrics", func() (bool, string) {
		code, body := httpsGet(metricsURL+"/metrics", reader)
		return code == http.StatusOK, body
	})
	eventually(t, p, 60*time.Second, "the profiler to read /debug/pprof/", func() (bool, string) {
		code, body := httpsGet(metricsURL+"/debug/pprof/", profiler)
		return code == http.StatusOK, body
	})
	for _, tc := range []struct {
		who, token, path string
		want             int
	}{
		{"no token", "", "/metrics", http.StatusUnauthorized},
		{"a forged token", "not-a-token", "/metrics", http.StatusUnauthorized},
		{"a ServiceAccount without the role", stranger, "/metrics", http.StatusForbidden},
		{"a ServiceAccount without the role", stranger, "/debug/pprof/", http.StatusForbidden},
		{"the metrics reader", reader, "/debug/pprof/", http.StatusForbidden},
		{"the metrics reader", reader, "/debug/pprof/heap", http.StatusForbidden},
		{"the profiles reader", profiler, "/metrics", http.StatusForbidden},
		{"no token", "", "/debug/pprof/", http.StatusUnauthorized},
	} {
		if code, body := httpsGet(metricsURL+tc.path, tc.token); code != tc.want {
			t.Errorf("%s: GET %s = %d %.200q, want %d", tc.who, tc.path, code, body, tc.want)
		}
	}
	code, body := httpsGet(metricsURL+"/metrics", reader)
	if _, ok := promtext.Parse(body).Sum(`workqueue_adds_total{name="foos"}`); code != http.StatusOK || !ok {
		t.Errorf("the reader's /metrics = %d, without the workqueue's metrics:\n%.300s", code, body)
	}
	if code, body := httpsGet(metricsURL+"/debug/pprof/heap?debug=1", profiler); code != http.StatusOK || !strings.Contains(body, "heap profile") {
		t.Errorf("the profiler's heap profile = %d %.200q", code, body)
	}

	// The probes: no token, and nothing but check names and ok/failed.
	for _, path := range []string{"/healthz", "/readyz"} {
		eventually(t, p, 60*time.Second, path+" without a token", func() (bool, string) {
			code, body := httpGet(probes + path + "?verbose")
			return code == http.StatusOK, body
		})
	}
	if code, body := httpGet(probes + "/metrics"); code == http.StatusOK {
		t.Errorf("the probe port serves /metrics: %d %.200q", code, body)
	}
}

// --logging-format=json writes one JSON object per line, as Kubernetes' components do.
func TestJSONLogs(t *testing.T) {
	ensureCRD(t)
	ns := newNamespace(t)
	p := startController(t, "--namespace="+ns, "--logging-format=json", "-v=2")
	eventually(t, p, 60*time.Second, "the workers to start", func() (bool, string) {
		return strings.Contains(p.Log(), `"Started workers"`), p.LogTail(3)
	})
	var seen int
	for _, line := range strings.Split(strings.TrimSpace(p.Log()), "\n") {
		var entry map[string]interface{}
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Errorf("a log line is not JSON (%v): %s", err, line)
			continue
		}
		if _, ok := entry["msg"]; !ok {
			t.Errorf("a log line has no msg: %s", line)
		}
		if entry["msg"] == "Starting sample-controller" && entry["namespace"] == ns {
			seen++
		}
	}
	if seen != 1 {
		t.Errorf("the start line with its namespace key appears %d times, want once:\n%s", seen, p.LogTail(10))
	}
}

// The shipped scrape path fits together: the Prometheus Operator example selects the metrics
// Service by its labels and scrapes its port by name over HTTPS with a bearer token; the port is
// the container's metrics port, which the controller's argument serves; the NetworkPolicy admits
// that port (from a labelled namespace) and the probe port; and the example binds a shipped
// ClusterRole that allows GET /metrics.
func TestShippedScrapePathFitsTogether(t *testing.T) {
	var service corev1.Service
	var deployment appsv1.Deployment
	var policy networkingv1.NetworkPolicy
	readers := map[string]rbacv1.ClusterRole{}
	for _, obj := range kustomize(t, "artifacts/deploy") {
		switch obj["kind"] {
		case "Service":
			if obj["metadata"].(map[string]interface{})["name"] == "sample-controller-metrics" {
				fromObject(t, obj, &service)
			}
		case "Deployment":
			fromObject(t, obj, &deployment)
		case "NetworkPolicy":
			fromObject(t, obj, &policy)
		case "ClusterRole":
			var role rbacv1.ClusterRole
			fromObject(t, obj, &role)
			readers[role.Name] = role
		}
	}
	if service.Name == "" {
		t.Fatal("artifacts/deploy has no Service sample-controller-metrics")
	}
	var monitor struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
		Spec     struct {
			Selector  metav1.LabelSelector `json:"selector"`
			Endpoints []struct {
				Port, Scheme, Path, BearerTokenFile string
			} `json:"endpoints"`
		} `json:"spec"`
	}
	var binding rbacv1.ClusterRoleBinding
	for _, obj := range kustomize(t, "artifacts/examples/prometheus") {
		switch obj["kind"] {
		case "ServiceMonitor":
			fromObject(t, obj, &monitor)
		case "ClusterRoleBinding":
			fromObject(t, obj, &binding)
		}
	}

	selector, err := metav1.LabelSelectorAsSelector(&monitor.Spec.Selector)
	if err != nil || !selector.Matches(labels.Set(service.Labels)) || monitor.Metadata.Namespace != service.Namespace {
		t.Errorf("the ServiceMonitor (%s, %v) does not select the metrics Service %s/%s %v", monitor.Metadata.Namespace, monitor.Spec.Selector, service.Namespace, service.Name, service.Labels)
	}
	if len(monitor.Spec.Endpoints) != 1 || len(service.Spec.Ports) != 1 {
		t.Fatalf("want one endpoint and one Service port: %+v, %+v", monitor.Spec.Endpoints, service.Spec.Ports)
	}
	ep, port := monitor.Spec.Endpoints[0], service.Spec.Ports[0]
	if ep.Port != port.Name || ep.Scheme != "https" || ep.Path != "/metrics" || ep.BearerTokenFile == "" {
		t.Errorf("the ServiceMonitor scrapes %+v, want the Service's port %q over https at /metrics with a bearer token", ep, port.Name)
	}
	container := deployment.Spec.Template.Spec.Containers[0]
	var containerPort int32
	for _, p := range container.Ports {
		if p.Name == port.TargetPort.StrVal {
			containerPort = p.ContainerPort
		}
	}
	if !strings.Contains(strings.Join(container.Args, " "), fmt.Sprintf("--metrics-bind-address=:%d", containerPort)) || containerPort == 0 {
		t.Errorf("the Service targets container port %q (%d), which the controller's arguments %v do not serve metrics on", port.TargetPort.StrVal, containerPort, container.Args)
	}
	if strings.Contains(strings.Join(container.Args, " "), "--metrics-secure=false") {
		t.Error("the shipped Deployment serves metrics without authentication")
	}
	admitted := map[string]bool{} // port name -> only from selected namespaces
	for _, rule := range policy.Spec.Ingress {
		for _, p := range rule.Ports {
			admitted[p.Port.StrVal] = len(rule.From) > 0 && rule.From[0].NamespaceSelector != nil
		}
	}
	if fromSelected, ok := admitted["metrics"]; !ok || !fromSelected {
		t.Errorf("the NetworkPolicy admits the metrics port %v, want it from selected namespaces only: %+v", ok, policy.Spec.Ingress)
	}
	if fromSelected, ok := admitted["probes"]; !ok || fromSelected {
		t.Errorf("the NetworkPolicy does not admit the probe port from anywhere: %+v", policy.Spec.Ingress)
	}
	role, ok := readers[binding.RoleRef.Name]
	if !ok || len(role.Rules) != 1 || !equality.Semantic.DeepEqual(role.Rules[0].NonResourceURLs, []string{"/metrics"}) {
		t.Errorf("the example binds %q, which is not a shipped ClusterRole allowing exactly GET /metrics: %+v", binding.RoleRef.Name, role.Rules)
	}
}
