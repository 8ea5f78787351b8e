// Command resolve-gvr shows how a client gets from what an object *is* to where it *lives*:
// from a GroupVersionKind (apps/v1, Kind=Deployment) to a GroupVersionResource (apps/v1,
// Resource=deployments), its scope, and the URL path a request for it goes to.
//
// Kinds name types (what the JSON's "kind" says); resources name URL segments. Only the API
// server knows which resource serves which kind (a CRD picks its plural freely), so the
// mapping is read from its discovery documents (GET /api, /apis, /apis/GROUP/VERSION) by a
// RESTMapper. This is what kubectl does for every manifest it applies, and what the
// controller does at start-up (controller.go: resolveFooResource).
//
//	go run ./hack/resolve-gvr --group=samplecontroller.example.com --version=v1 --kind=Foo --namespace=tour
//	go run ./hack/resolve-gvr --group=apps --kind=Deployment --namespace=tour --name=web
//	go run ./hack/resolve-gvr --kind=Namespace          # the core group is the empty string
//
// hack/tour.sh runs it as one step of the API tour.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// options are the command-line flags.
type options struct {
	kubeconfig string
	group      string
	version    string
	kind       string
	namespace  string
	name       string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process around it, so that tests can call it.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("resolve-gvr", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "Path to a kubeconfig. When empty: $KUBECONFIG, then ~/.kube/config (as kubectl).")
	fs.StringVar(&o.group, "group", "", `API group of the kind. Empty is the core group ("", served under /api/v1).`)
	fs.StringVar(&o.version, "version", "", "API version. Empty: the version the server prefers for the group.")
	fs.StringVar(&o.kind, "kind", "", "Kind to resolve, in CamelCase as in an object's \"kind\" (Foo, Deployment, Namespace). Required.")
	fs.StringVar(&o.namespace, "namespace", "", "Namespace for the path. Empty: the all-namespaces path of a namespaced resource.")
	fs.StringVar(&o.name, "name", "", "Object name for the path. Empty: the collection's path.")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.kind == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "resolve-gvr: --kind is required, and no positional arguments are taken")
		fs.Usage()
		return 2
	}

	disco, err := discoveryClient(o.kubeconfig)
	if err != nil {
		fmt.Fprintln(stderr, "resolve-gvr:", err)
		return 1
	}
	// The same construction as main.go: a mapper that reads the discovery documents lazily, on
	// the first mapping asked of it, and keeps them in memory, so that resolving many kinds
	// costs one round of discovery requests. A long-running process calls Reset to forget them
	// when it needs to see a newly installed CRD (controller.go: WaitForFooAPI).
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco))

	res, err := resolve(mapper, o)
	if err != nil {
		fmt.Fprintln(stderr, "resolve-gvr:", err)
		return 1
	}
	res.print(stdout)
	return 0
}

// discoveryClient talks to the API server found the way kubectl finds it.
func discoveryClient(kubeconfig string) (discovery.DiscoveryInterface, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	return discovery.NewDiscoveryClientForConfig(cfg)
}

// resolution is what the mapper said about one kind, and what follows from it.
type resolution struct {
	gvk        schema.GroupVersionKind
	gvr        schema.GroupVersionResource
	namespaced bool
	path       string
	notes      []string
}

// resolve asks the mapper which resource serves o's kind, and builds the path.
func resolve(mapper meta.RESTMapper, o options) (resolution, error) {
	gk := schema.GroupKind{Group: o.group, Kind: o.kind}
	var versions []string
	if o.version != "" {
		versions = append(versions, o.version)
	}
	mapping, err := mapper.RESTMapping(gk, versions...)
	if meta.IsNoMatchError(err) {
		// The same error the controller turns into "install its CRD" (controller.go: resolveFooResource).
		return resolution{}, fmt.Errorf("no resource serves kind %q in group %q%s on this server: "+
			"no built-in API or installed CRD provides it (is the group right? "+
			"`kubectl api-resources` lists every served kind with its group)", o.kind, o.group, versionSuffix(o.version))
	}
	if err != nil {
		return resolution{}, fmt.Errorf("resolving %s: %w", gk, err)
	}

	r := resolution{
		gvk:        mapping.GroupVersionKind,
		gvr:        mapping.Resource,
		namespaced: mapping.Scope.Name() == meta.RESTScopeNameNamespace,
	}
	namespace := o.namespace
	switch {
	case !r.namespaced && namespace != "":
		r.notes = append(r.notes, fmt.Sprintf("%s is cluster-scoped: its path has no namespace, so --namespace=%s is ignored", o.kind, namespace))
		namespace = ""
	case r.namespaced && namespace == "" && o.name == "":
		r.notes = append(r.notes, "no --namespace: this is the path that lists (or watches) across all namespaces")
	case r.namespaced && namespace == "":
		return resolution{}, errors.New(o.kind + " is namespaced: --name needs --namespace")
	}
	if o.version == "" {
		r.notes = append(r.notes, "no --version: the server's preferred version for the group was used")
	}
	r.path = urlPath(r.gvr, namespace, o.name)
	return r, nil
}

func versionSuffix(version string) string {
	if version == "" {
		return ""
	}
	return " (version " + version + ")"
}

// urlPath is the REST path of a resource:
//
//	core group ("")   /api/VERSION[/namespaces/NS]/RESOURCE[/NAME]
//	any other group   /apis/GROUP/VERSION[/namespaces/NS]/RESOURCE[/NAME]
//
// The core group lives under /api for historical reasons: it predates API groups.
func urlPath(gvr schema.GroupVersionResource, namespace, name string) string {
	segments := []string{"/apis", gvr.Group, gvr.Version}
	if gvr.Group == "" {
		segments = []string{"/api", gvr.Version}
	}
	if namespace != "" {
		segments = append(segments, "namespaces", namespace)
	}
	segments = append(segments, gvr.Resource)
	if name != "" {
		segments = append(segments, name)
	}
	return path.Join(segments...)
}

func (r resolution) print(w io.Writer) {
	scope := "cluster-scoped (meta.RESTScopeNameRoot)"
	if r.namespaced {
		scope = "namespaced (meta.RESTScopeNameNamespace)"
	}
	fmt.Fprintf(w, "GroupVersionKind:     %s\n", r.gvk)
	fmt.Fprintf(w, "GroupVersionResource: %s\n", r.gvr)
	fmt.Fprintf(w, "scope:                %s\n", scope)
	fmt.Fprintf(w, "path:                 %s\n", r.path)
	for _, n := range r.notes {
		fmt.Fprintf(w, "note:                 %s\n", n)
	}
}
