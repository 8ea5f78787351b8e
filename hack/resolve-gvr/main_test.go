package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestURLPath(t *testing.T) {
	tests := []struct {
		gvr             schema.GroupVersionResource
		namespace, name string
		want            string
	}{
		{schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, "", "", "/api/v1/namespaces"},
		{schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, "", "tour", "/api/v1/namespaces/tour"},
		{schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "tour", "web-0", "/api/v1/namespaces/tour/pods/web-0"},
		{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, "", "", "/apis/apps/v1/deployments"},
		{schema.GroupVersionResource{Group: "samplecontroller.example.com", Version: "v1", Resource: "foos"}, "tour", "",
			"/apis/samplecontroller.example.com/v1/namespaces/tour/foos"},
	}
	for _, tt := range tests {
		if got := urlPath(tt.gvr, tt.namespace, tt.name); got != tt.want {
			t.Errorf("urlPath(%v, %q, %q) = %q, want %q", tt.gvr, tt.namespace, tt.name, got, tt.want)
		}
	}
}

// TestRun drives the whole program against a fake API server that serves only discovery
// documents: the same requests a real one answers, without a cluster.
func TestRun(t *testing.T) {
	kubeconfig := fakeDiscoveryServer(t)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string // substrings of stdout (exit 0) or stderr (otherwise)
	}{
		{"custom resource, namespaced",
			[]string{"--group=samplecontroller.example.com", "--version=v1", "--kind=Foo", "--namespace=tour"}, 0,
			[]string{"GroupVersionResource: samplecontroller.example.com/v1, Resource=foos",
				"path:                 /apis/samplecontroller.example.com/v1/namespaces/tour/foos\n"}},
		{"custom resource, preferred version of two",
			[]string{"--group=samplecontroller.example.com", "--kind=Foo", "--namespace=tour"}, 0,
			[]string{"GroupVersionResource: samplecontroller.example.com/v1, Resource=foos", "preferred version"}},
		{"built-in group, preferred version, one object",
			[]string{"--group=apps", "--kind=Deployment", "--namespace=tour", "--name=web"}, 0,
			[]string{"Resource=deployments", "path:                 /apis/apps/v1/namespaces/tour/deployments/web\n", "preferred version"}},
		{"core group, cluster-scoped",
			[]string{"--kind=Namespace", "--namespace=tour"}, 0,
			[]string{"GroupVersionResource: /v1, Resource=namespaces", "cluster-scoped", "path:                 /api/v1/namespaces\n", "is ignored"}},
		{"namespaced, all namespaces",
			[]string{"--group=apps", "--kind=Deployment"}, 0,
			[]string{"path:                 /apis/apps/v1/deployments\n", "across all namespaces"}},
		{"unknown kind",
			[]string{"--group=samplecontroller.example.com", "--kind=Bar"}, 1,
			[]string{`no resource serves kind "Bar" in group "samplecontroller.example.com"`, "kubectl api-resources"}},
		{"unknown version",
			[]string{"--group=samplecontroller.example.com", "--version=v9", "--kind=Foo"}, 1,
			[]string{`kind "Foo"`, "(version v9)"}},
		{"a name needs a namespace",
			[]string{"--group=apps", "--kind=Deployment", "--name=web"}, 1,
			[]string{"--name needs --namespace"}},
		{"no kind", nil, 2, []string{"--kind is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"--kubeconfig=" + kubeconfig}, tt.args...), &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout.String(), stderr.String())
			}
			out := stdout.String()
			if code != 0 {
				out = stderr.String()
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// fakeDiscoveryServer serves the discovery documents of a small cluster (core v1, apps/v1 and
// the Foo group, which serves v1, its preferred version, and v1alpha1) and returns a kubeconfig
// pointing at it.
func fakeDiscoveryServer(t *testing.T) string {
	t.Helper()
	// group serves versions, the first preferred.
	group := func(name string, versions ...string) metav1.APIGroup {
		g := metav1.APIGroup{Name: name}
		for _, v := range versions {
			g.Versions = append(g.Versions, metav1.GroupVersionForDiscovery{GroupVersion: name + "/" + v, Version: v})
		}
		g.PreferredVersion = g.Versions[0]
		return g
	}
	fooResources := []metav1.APIResource{
		{Name: "foos", Namespaced: true, Kind: "Foo", Verbs: []string{"get", "list"}},
		{Name: "foos/status", Namespaced: true, Kind: "Foo", Verbs: []string{"get", "update"}},
	}
	docs := map[string]any{
		"/api": &metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}},
		"/apis": &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"},
			Groups: []metav1.APIGroup{group("apps", "v1"), group("samplecontroller.example.com", "v1", "v1alpha1")}},
		"/api/v1": resourceList("v1",
			metav1.APIResource{Name: "namespaces", Kind: "Namespace", Verbs: []string{"get", "list"}},
			metav1.APIResource{Name: "pods", Namespaced: true, Kind: "Pod", Verbs: []string{"get", "list"}}),
		"/apis/apps/v1": resourceList("apps/v1",
			metav1.APIResource{Name: "deployments", Namespaced: true, Kind: "Deployment", Verbs: []string{"get", "list"}},
			metav1.APIResource{Name: "deployments/scale", Namespaced: true, Group: "autoscaling", Version: "v1", Kind: "Scale", Verbs: []string{"get"}}),
		"/apis/samplecontroller.example.com/v1":       resourceList("samplecontroller.example.com/v1", fooResources...),
		"/apis/samplecontroller.example.com/v1alpha1": resourceList("samplecontroller.example.com/v1alpha1", fooResources...),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		// Plain JSON: the client asks for aggregated discovery first and accepts this as well.
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(srv.Close)

	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := `apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: "` + srv.URL + `"}}]
users: [{name: fake, user: {}}]
contexts: [{name: fake, context: {cluster: fake, user: fake}}]
current-context: fake
`
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return kubeconfig
}

func resourceList(groupVersion string, resources ...metav1.APIResource) *metav1.APIResourceList {
	return &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: groupVersion, APIResources: resources}
}
