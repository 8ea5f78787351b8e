//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"example.com/sample-controller/internal/promtext"
	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
)

const deployNamespace = "sample-controller" // the namespace artifacts/deploy installs into

// ---- helpers ----

// servedAddress is the address the controller logged for one of its HTTP servers.
func servedAddress(t *testing.T, p *controllerProcess, server string) string {
	t.Helper()
	addr, err := p.WaitForAddress(server, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func httpGet(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// kustomize renders a kustomization with the real kubectl and decodes each object.
func kustomize(t *testing.T, dir string) []map[string]interface{} {
	t.Helper()
	out := mustKubectl(t, "kustomize", dir)
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(out), 4096)
	var objs []map[string]interface{}
	for {
		var obj map[string]interface{}
		if err := dec.Decode(&obj); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if obj != nil {
			objs = append(objs, obj)
		}
	}
	return objs
}

func toYAML(t *testing.T, objs ...map[string]interface{}) string {
	t.Helper()
	var b strings.Builder
	for _, o := range objs {
		y, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.String()
}

// readManifest decodes one shipped manifest file into obj.
func readManifest(t *testing.T, path string, obj interface{}) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, obj); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// serviceAccountKubeconfig writes a kubeconfig that authenticates as a ServiceAccount with a
// token from the TokenRequest API, as a Pod's projected token would.
func serviceAccountKubeconfig(t *testing.T, ns, sa string) string {
	t.Helper()
	token := serviceAccountToken(t, ns, sa)
	admin, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cluster := admin.Clusters[admin.Contexts[admin.CurrentContext].Cluster]
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = cluster
	cfg.AuthInfos["sa"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["sa"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "sa"}
	cfg.CurrentContext = "sa"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func serviceAccountToken(t *testing.T, ns, sa string) string {
	t.Helper()
	tr, err := kubeClient.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), sa,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for %s/%s: %v", ns, sa, err)
	}
	return tr.Status.Token
}

// ---- the manifests ----

// The whole kustomization passes a server-side dry run (every object validated and admitted
// by the real API server, nothing stored), in a namespace that enforces the restricted Pod
// Security Standard, and the controller's pod is admitted there.
func TestManifestsPassServerSideDryRun(t *testing.T) {
	ensureCRD(t)
	// The Namespace must exist for real for its objects to be dry-run into it.
	mustKubectl(t, "apply", "-f", "artifacts/deploy/namespace.yaml")
	ns, err := kubeClient.CoreV1().Namespaces().Get(context.Background(), deployNamespace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Fatalf("namespace labels = %v, want enforce=restricted", ns.Labels)
	}

	for _, dir := range []string{"artifacts/deploy", "artifacts/deploy/namespaced"} {
		t.Run(dir, func(t *testing.T) {
			out, err := kubectl("apply", "-k", dir, "--dry-run=server")
			if err != nil {
				t.Fatalf("server-side dry run of %s: %v\n%s", dir, err, out)
			}
			if strings.Contains(out, "Warning") {
				t.Errorf("server-side dry run of %s warned:\n%s", dir, out)
			}
			for _, kind := range []string{"deployment.apps/sample-controller", "serviceaccount/sample-controller", "rolebinding.rbac.authorization.k8s.io/sample-controller-leader-election",
				"poddisruptionbudget.policy/sample-controller"} {
				if !strings.Contains(out, kind) {
					t.Errorf("dry run output lacks %s:\n%s", kind, out)
				}
			}

			var deployment appsv1.Deployment
			var pdb *policyv1.PodDisruptionBudget
			for _, obj := range kustomize(t, dir) {
				switch obj["kind"] {
				case "Deployment":
					fromObject(t, obj, &deployment)
				case "PodDisruptionBudget":
					pdb = &policyv1.PodDisruptionBudget{}
					fromObject(t, obj, pdb)
				}
			}
			checkSpreadAndDisruptionBudget(t, &deployment, pdb)

			// Pod Security admission enforces on Pods: admit the Deployment's pod template as a Pod.
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "pss-check-", Namespace: deployNamespace}, Spec: deployment.Spec.Template.Spec}
			pod.Spec.ServiceAccountName = "default" // the SA is only dry-run; PSS does not look at it
			if _, err := kubeClient.CoreV1().Pods(deployNamespace).Create(context.Background(), pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
				t.Errorf("the controller's pod is not admitted under the restricted Pod Security Standard: %v", err)
			}
			if dir == "artifacts/deploy/namespaced" && !strings.Contains(strings.Join(pod.Spec.Containers[0].Args, " "), "--namespace=$(POD_NAMESPACE)") {
				t.Errorf("the namespaced variant does not pass --namespace: %v", pod.Spec.Containers[0].Args)
			}
		})
	}
}

// ---- the in-cluster path, for real ----

// The controller binary runs exactly as a Pod would see itself: its ServiceAccount's token and
// the cluster CA at /var/run/secrets/kubernetes.io/serviceaccount/, KUBERNETES_SERVICE_HOST and
// _PORT set, and no kubeconfig anywhere. The files live on a tmpfs in a private mount namespace
// (unshare -m), so the host's /var/run is never touched. Only the shipped RBAC is bound.
func TestInClusterWithShippedRBAC(t *testing.T) {
	ensureCRD(t)
	waitForOwnerReferenceEnforcement(t)
	// Everything the kustomization installs except the Deployment and its Service: this test
	// plays the Deployment's pod itself.
	var objs []map[string]interface{}
	for _, obj := range kustomize(t, "artifacts/deploy") {
		if obj["kind"] != "Deployment" && obj["kind"] != "Service" {
			objs = append(objs, obj)
		}
	}
	if out, err := kubectlApply(toYAML(t, objs...)); err != nil {
		t.Fatalf("applying the shipped RBAC: %v\n%s", err, out)
	}

	secrets := t.TempDir()
	admin, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	caData := admin.CAData
	if len(caData) == 0 {
		if caData, err = os.ReadFile(admin.CAFile); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string][]byte{
		"token":     []byte(serviceAccountToken(t, deployNamespace, "sample-controller")),
		"ca.crt":    caData,
		"namespace": []byte(deployNamespace),
	} {
		if err := os.WriteFile(filepath.Join(secrets, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	host, port, ok := strings.Cut(strings.TrimPrefix(admin.Host, "https://"), ":")
	if !ok {
		t.Fatalf("cannot split %q into host and port", admin.Host)
	}

	// Inside a private mount namespace: a tmpfs over the real directory behind /var/run, with
	// the service account files where every Pod has them, then the controller itself.
	script := `set -e
run_dir="$(readlink -f /var/run)"
mount -t tmpfs tmpfs "$run_dir"
sa=/var/run/secrets/kubernetes.io/serviceaccount
mkdir -p "$sa"
cp "$SECRETS_DIR"/token "$SECRETS_DIR"/ca.crt "$SECRETS_DIR"/namespace "$sa"/
exec "$@"`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "bash", "-c", script, "in-pod",
		imageBinary(t), "--leader-elect", "--metrics-bind-address=127.0.0.1:0", "--health-probe-bind-address=127.0.0.1:0", "-v=4")
	home := t.TempDir() // no ~/.kube/config to fall back on
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "SECRETS_DIR=" + secrets,
		"KUBERNETES_SERVICE_HOST=" + host, "KUBERNETES_SERVICE_PORT=" + port}
	p := startProcess(t, cmd)

	eventually(t, p, 30*time.Second, "the controller to lead", func() (bool, string) {
		return strings.Contains(p.Log(), "Became the leader"), p.LogTail(3)
	})
	if !strings.Contains(p.Log(), "Using in-cluster configuration") {
		t.Errorf("the controller did not use the in-cluster configuration:\n%s", p.LogTail(20))
	}
	if !strings.Contains(p.Log(), `lease="`+deployNamespace+`/sample-controller"`) {
		t.Errorf("the Lease is not in the service account's namespace %s", deployNamespace)
	}

	ns := newNamespace(t)
	mark := auditMark(t)
	createFoo(t, newFoo(ns, "in-cluster", "in-cluster", 2))
	waitForFooConverged(t, p, ns, "in-cluster", 60*time.Second)
	users := map[string]bool{}
	for _, e := range writesOf(controllerRequestsSince(t, mark, ns)) {
		users[e.User.Username] = true
	}
	if want := "system:serviceaccount:sample-controller:sample-controller"; len(users) != 1 || !users[want] {
		t.Errorf("the controller's writes came from %v, want only %s", users, want)
	}

	// The shipped ClusterRole lets the controller review a scraper's token and access, and the
	// shipped metrics-reader role is what the scraper needs.
	reader := serviceAccountWithClusterRole(t, ns, "reader", "sample-controller-metrics-reader")
	metricsURL := "https://" + servedAddress(t, p, "metrics") + "/metrics"
	eventually(t, p, 60*time.Second, "a metrics reader to read /metrics", func() (bool, string) {
		code, body := httpsGet(metricsURL, reader)
		return code == http.StatusOK && strings.Contains(body, "samplecontroller_reconcile_total"), fmt.Sprintf("%d %.200s", code, body)
	})
}

// ---- least privilege ----

// waitForOwnerReferenceEnforcement checks that the API server runs the
// OwnerReferencesPermissionEnforcement admission plugin (hack/local-cluster/kwokctl.yaml turns it
// on; OpenShift and many hardened clusters run it): a user who may create an object but not
// update a Foo's finalizers is refused an ownerReference to a Foo with blockOwnerDeletion.
//
// It also waits until the plugin knows Foos. It maps an ownerReference's kind to a resource with
// a discovery cache that the API server refreshes every 30s: for up to 30s after the CRD is
// (re)installed (23s on the local cluster), it refuses every such reference with "cannot find
// RESTMapping", whatever the user's RBAC: the controller would be refused even with every rule,
// and a Foo refused for want of foos/finalizers would keep that first message (the controller
// renews a refusal's message only when its kind, here Forbidden, changes).
func waitForOwnerReferenceEnforcement(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	ns := newNamespace(t)
	const user = "e2e-ownerref-probe"
	if _, err := kubeClient.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "create-configmaps"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"create"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kubeClient.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "create-configmaps"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "create-configmaps"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: "rbac.authorization.k8s.io", Name: user}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	asUser := kubernetes.NewForConfigOrDie(cfg)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-", OwnerReferences: []metav1.OwnerReference{{
		APIVersion: samplev1.SchemeGroupVersion.String(), Kind: "Foo", Name: "probe",
		UID: types.UID("00000000-0000-0000-0000-000000000001"), BlockOwnerDeletion: ptr.To(true),
	}}}}
	eventually(t, nil, 60*time.Second, "OwnerReferencesPermissionEnforcement to refuse blockOwnerDeletion on a Foo", func() (bool, string) {
		// A dry run: admitted in full, stored never.
		_, err := asUser.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil {
			t.Fatalf("a user who cannot update foos/finalizers could set blockOwnerDeletion on a Foo: the API server does not run OwnerReferencesPermissionEnforcement (see hack/local-cluster/kwokctl.yaml)")
		}
		// Until the RoleBinding reaches the authorizer, RBAC refuses first ("cannot create resource").
		return apierrors.IsForbidden(err) && strings.Contains(err.Error(), "can't set finalizers on"), err.Error()
	})
}

// Every rule of the shipped ClusterRole and leader-election Role is needed: without it,
// something a user would notice breaks. And all of them together are enough.
func TestEveryRBACRuleIsNeeded(t *testing.T) {
	ensureCRD(t)
	waitForOwnerReferenceEnforcement(t)
	var clusterRole rbacv1.ClusterRole
	readManifest(t, "artifacts/deploy/clusterrole.yaml", &clusterRole)
	var leaseRole rbacv1.Role
	readManifest(t, "artifacts/deploy/base/leader-election-role.yaml", &leaseRole)

	// What breaks without each rule, in the order of the manifests.
	type breakage func(t *testing.T, env *rbacEnv)
	clusterRoleBreaks := []breakage{
		0:  func(t *testing.T, e *rbacEnv) { e.expectNeverReady(t) },                                        // foos list/watch
		1:  func(t *testing.T, e *rbacEnv) { e.expectDeploymentButNoStatus(t) },                             // foos/status update
		2:  func(t *testing.T, e *rbacEnv) { e.expectDeletedDeploymentNotRecreated(t) },                     // foos get
		3:  func(t *testing.T, e *rbacEnv) { e.expectNeverReady(t) },                                        // deployments list/watch
		4:  func(t *testing.T, e *rbacEnv) { e.expectNoDeploymentAndFooSaysForbidden(t) },                   // deployments create
		5:  func(t *testing.T, e *rbacEnv) { e.expectTakenNameNotIdentified(t) },                            // deployments get
		6:  func(t *testing.T, e *rbacEnv) { e.expectNoDeploymentAndFooSaysBlockOwnerDeletionForbidden(t) }, // foos/finalizers update
		7:  func(t *testing.T, e *rbacEnv) { e.expectDriftNotReverted(t) },                                  // deployments update
		8:  func(t *testing.T, e *rbacEnv) { e.expectConvergedWithoutEvents(t) },                            // events create
		9:  func(t *testing.T, e *rbacEnv) { e.expectRepeatedEventNotCounted(t) },                           // events patch
		10: func(t *testing.T, e *rbacEnv) { e.expectScraperUnauthorized(t) },                               // tokenreviews create
		11: func(t *testing.T, e *rbacEnv) { e.expectScraperNotAuthorized(t) },                              // subjectaccessreviews create
	}
	// The namespaced variant grants the same rules in one namespace, but for the reviews, which
	// are cluster-scoped: its cluster-scoped part binds system:auth-delegator, which must hold
	// exactly those. What is proven here for the ClusterRole then holds for it.
	var namespacedRole rbacv1.Role
	readManifest(t, "artifacts/deploy/namespaced/role.yaml", &namespacedRole)
	var namespacedRules, reviewRules []rbacv1.PolicyRule
	for _, rule := range clusterRole.Rules {
		if isReviewRule(rule) {
			reviewRules = append(reviewRules, rule)
		} else {
			namespacedRules = append(namespacedRules, rule)
		}
	}
	if !equality.Semantic.DeepEqual(namespacedRole.Rules, namespacedRules) {
		t.Errorf("artifacts/deploy/namespaced/role.yaml has other rules than the ClusterRole's namespaced ones:\n%v\n%v", namespacedRole.Rules, namespacedRules)
	}
	var delegatorBinding rbacv1.ClusterRoleBinding
	readManifest(t, "artifacts/deploy/namespaced/cluster-scoped/auth-delegator-binding.yaml", &delegatorBinding)
	delegator, err := kubeClient.RbacV1().ClusterRoles().Get(context.Background(), delegatorBinding.RoleRef.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(delegator.Rules, reviewRules) {
		t.Errorf("the namespaced variant binds %s, whose rules are not the ClusterRole's review rules:\n%v\n%v", delegator.Name, delegator.Rules, reviewRules)
	}
	leaseRoleBreaks := []breakage{
		0: func(t *testing.T, e *rbacEnv) { e.expectNeverLeads(t) }, // leases create
		1: func(t *testing.T, e *rbacEnv) { e.expectNeverLeads(t) }, // leases get/update
	}
	if len(clusterRoleBreaks) != len(clusterRole.Rules) || len(leaseRoleBreaks) != len(leaseRole.Rules) {
		t.Fatalf("the manifests have %d + %d rules but this test knows %d + %d: say what breaks without each new rule",
			len(clusterRole.Rules), len(leaseRole.Rules), len(clusterRoleBreaks), len(leaseRoleBreaks))
	}

	without := func(rules []rbacv1.PolicyRule, i int) []rbacv1.PolicyRule {
		out := append([]rbacv1.PolicyRule{}, rules[:i]...)
		return append(out, rules[i+1:]...)
	}
	for i, rule := range clusterRole.Rules {
		t.Run(fmt.Sprintf("ClusterRole without %s %v", strings.Join(rule.Resources, ","), rule.Verbs), func(t *testing.T) {
			clusterRoleBreaks[i](t, newRBACEnv(t, without(clusterRole.Rules, i), leaseRole.Rules))
		})
	}
	for i, rule := range leaseRole.Rules {
		t.Run(fmt.Sprintf("Role without %s %v", strings.Join(rule.Resources, ","), rule.Verbs), func(t *testing.T) {
			leaseRoleBreaks[i](t, newRBACEnv(t, clusterRole.Rules, without(leaseRole.Rules, i)))
		})
	}
	t.Run("all rules together are enough", func(t *testing.T) {
		e := newRBACEnv(t, clusterRole.Rules, leaseRole.Rules)
		waitForFooConverged(t, e.p, e.ns, "f", 60*time.Second)
		e.revertDriftTwice(t)
		eventually(t, e.p, 15*time.Second, "events about the Foo, the repeated one counted twice", func() (bool, string) {
			out, _ := kubectl("get", "events", "-n", e.ns, "--field-selector", "involvedObject.kind=Foo")
			return strings.Contains(out, "DeploymentCreated") && e.deploymentUpdatedCount() == 2, out
		})
		// A Deployment deleted by hand comes back (the controller may GET the Foo first).
		if err := kubeClient.AppsV1().Deployments(e.ns).Delete(context.Background(), "f", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, e.p, 30*time.Second, "the deleted Deployment to be re-created", func() (bool, string) {
			d, err := getDeployment(e.ns, "f")
			return err == nil && d.DeletionTimestamp == nil, fmt.Sprint(err)
		})
		waitForFooConverged(t, e.p, e.ns, "f", 60*time.Second)
		// A name held by a Deployment without our label is found and reported.
		e.createFooWantingATakenName(t)
		waitForReadyReason(t, e.p, e.ns, "g", metav1.ConditionFalse, samplev1.ReasonDeploymentNotOwned)
		eventually(t, e.p, 30*time.Second, "the scraper to read /metrics", func() (bool, string) {
			code, body := httpsGet(e.metrics, e.scraper)
			return code == http.StatusOK && strings.Contains(body, "workqueue_adds_total"), fmt.Sprintf("%d %.200s", code, body)
		})
		if strings.Contains(strings.ToLower(e.p.Log()), "forbidden") {
			t.Errorf("the controller was refused something with the full set of rules:\n%s", e.p.LogTail(20))
		}
	})
}

// isReviewRule says whether a rule is about TokenReviews or SubjectAccessReviews: cluster-scoped
// resources, which no Role can grant.
func isReviewRule(rule rbacv1.PolicyRule) bool {
	for _, g := range rule.APIGroups {
		if g == "authentication.k8s.io" || g == "authorization.k8s.io" {
			return true
		}
	}
	return false
}

// rbacEnv is one namespace where a ServiceAccount holds the given rules (the ClusterRole's
// through a RoleBinding, so only in this namespace, but for the cluster-scoped reviews, bound
// cluster-wide) and the controller runs as that account, scoped to the namespace, with leader
// election on a Lease there and its secure metrics server on. A Foo "f" is created, and a
// ServiceAccount "scraper" bound to the shipped metrics-reader ClusterRole.
type rbacEnv struct {
	ns      string
	p       *controllerProcess
	ready   string // the /readyz URL
	metrics string // the /metrics URL
	scraper string // a token allowed to read /metrics
}

func newRBACEnv(t *testing.T, rules, leaseRules []rbacv1.PolicyRule) *rbacEnv {
	t.Helper()
	ns := newNamespace(t)
	ctx := context.Background()
	rbac := kubeClient.RbacV1()
	if _, err := kubeClient.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "ctl"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "ctl", Namespace: ns}}
	var namespaced, reviews []rbacv1.PolicyRule
	for _, rule := range rules {
		if isReviewRule(rule) {
			reviews = append(reviews, rule)
		} else {
			namespaced = append(namespaced, rule)
		}
	}
	if _, err := rbac.Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "controller"}, Rules: namespaced}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rbac.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: ns + "-reviews"}, Rules: reviews}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rbac.ClusterRoles().Delete(context.Background(), ns+"-reviews", metav1.DeleteOptions{}) })
	bindClusterRole(t, ns+"-reviews", ns+"-reviews", subject[0])
	applyMetricsReaderRoles(t)
	scraper := serviceAccountWithClusterRole(t, ns, "scraper", "sample-controller-metrics-reader")
	if _, err := rbac.Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "leases"}, Rules: leaseRules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"controller", "leases"} {
		if _, err := rbac.RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: role},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role},
			Subjects:   subject,
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(controllerBin, "--kubeconfig="+serviceAccountKubeconfig(t, ns, "ctl"), "--namespace="+ns,
		"--leader-elect", "--leader-elect-namespace="+ns, "--health-probe-bind-address=127.0.0.1:0",
		"--metrics-bind-address=127.0.0.1:0", "-v=2")
	p := startProcess(t, cmd)
	e := &rbacEnv{ns: ns, p: p, ready: "http://" + servedAddress(t, p, "probes") + "/readyz",
		metrics: "https://" + servedAddress(t, p, "metrics") + "/metrics", scraper: scraper}
	createFoo(t, newFoo(ns, "f", "f", 1))
	return e
}

// hold asserts that cond stays true for d: the breakage persists, it is not just slow.
func (e *rbacEnv) hold(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ok, state := cond(); !ok {
			t.Fatalf("expected %s for %s, but: %s", what, d, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// expectScraperUnauthorized: without TokenReviews the controller cannot tell who a scraper is,
// so even one with the role is refused (401), and the log says why.
func (e *rbacEnv) expectScraperUnauthorized(t *testing.T) {
	waitForFooConverged(t, e.p, e.ns, "f", 60*time.Second)
	e.hold(t, 5*time.Second, "the scraper refused with 401", func() (bool, string) {
		code, body := httpsGet(e.metrics, e.scraper)
		return code == http.StatusUnauthorized, fmt.Sprintf("%d %.200s", code, body)
	})
	if !strings.Contains(e.p.Log(), `tokenreviews.authentication.k8s.io is forbidden`) {
		t.Errorf("the log does not say the TokenReview was forbidden:\n%s", e.p.LogTail(10))
	}
}

// expectScraperNotAuthorized: without SubjectAccessReviews the controller knows who the scraper
// is but cannot ask whether it may read: refused, with the reason in the answer.
func (e *rbacEnv) expectScraperNotAuthorized(t *testing.T) {
	waitForFooConverged(t, e.p, e.ns, "f", 60*time.Second)
	e.hold(t, 5*time.Second, "the scraper refused", func() (bool, string) {
		code, body := httpsGet(e.metrics, e.scraper)
		return code != http.StatusOK && strings.Contains(body, "subjectaccessreviews.authorization.k8s.io is forbidden"), fmt.Sprintf("%d %.300s", code, body)
	})
}

func (e *rbacEnv) deploymentExists() bool {
	_, err := getDeployment(e.ns, "f")
	return err == nil
}

func (e *rbacEnv) expectNeverReady(t *testing.T) {
	e.hold(t, 10*time.Second, "/readyz failing and no Deployment", func() (bool, string) {
		code, body := httpGet(e.ready)
		return code == http.StatusServiceUnavailable && !e.deploymentExists(), fmt.Sprintf("readyz %d %s", code, body)
	})
	if !strings.Contains(e.p.Log(), "forbidden") {
		t.Errorf("the log does not say what was forbidden:\n%s", e.p.LogTail(10))
	}
}

// expectNoDeploymentAndFooSaysForbidden: the refusal reaches the Foo's owner, not only the log.
func (e *rbacEnv) expectNoDeploymentAndFooSaysForbidden(t *testing.T) {
	cond := waitForReadyReason(t, e.p, e.ns, "f", metav1.ConditionFalse, samplev1.ReasonDeploymentRejected)
	if !strings.Contains(cond.Message, "forbidden") || !strings.Contains(cond.Message, "cannot create resource") {
		t.Errorf("Ready message %q does not say what was forbidden", cond.Message)
	}
	e.hold(t, 5*time.Second, "no Deployment", func() (bool, string) { return !e.deploymentExists(), "the Deployment exists" })
}

// createFooWantingATakenName creates a Deployment "taken" without the controller's label (so
// its informer never shows it) and a Foo "g" that wants that name.
func (e *rbacEnv) createFooWantingATakenName(t *testing.T) {
	t.Helper()
	theirs := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "taken", Namespace: e.ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "theirs"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "theirs"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "theirs:1"}}},
			},
		},
	}
	if _, err := kubeClient.AppsV1().Deployments(e.ns).Create(context.Background(), theirs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createFoo(t, newFoo(e.ns, "g", "taken", 1))
}

// expectTakenNameNotIdentified: the create refused with AlreadyExists, the controller cannot
// read the Deployment holding the name, and says so on the Foo.
func (e *rbacEnv) expectTakenNameNotIdentified(t *testing.T) {
	e.createFooWantingATakenName(t)
	cond := waitForReadyReason(t, e.p, e.ns, "g", metav1.ConditionFalse, samplev1.ReasonDeploymentRejected)
	if !strings.Contains(cond.Message, "forbidden") || !strings.Contains(cond.Message, "cannot get resource") {
		t.Errorf("Ready message %q does not say what was forbidden", cond.Message)
	}
}

// expectNoDeploymentAndFooSaysBlockOwnerDeletionForbidden: RBAC lets the create through, but the
// OwnerReferencesPermissionEnforcement admission plugin refuses it: the Deployment's controller
// ownerReference sets blockOwnerDeletion, which needs update on the owner's finalizers
// subresource. The refusal reaches the Foo as RBAC's does, in the plugin's own words.
func (e *rbacEnv) expectNoDeploymentAndFooSaysBlockOwnerDeletionForbidden(t *testing.T) {
	cond := waitForReadyReason(t, e.p, e.ns, "f", metav1.ConditionFalse, samplev1.ReasonDeploymentRejected)
	if !strings.Contains(cond.Message, "forbidden") || !strings.Contains(cond.Message, "cannot set blockOwnerDeletion") ||
		!strings.Contains(cond.Message, "can't set finalizers on") {
		t.Errorf("Ready message %q does not say that blockOwnerDeletion needs the Foo's finalizers", cond.Message)
	}
	e.hold(t, 5*time.Second, "no Deployment", func() (bool, string) { return !e.deploymentExists(), "the Deployment exists" })
}

func (e *rbacEnv) expectNeverLeads(t *testing.T) {
	e.hold(t, 10*time.Second, "no leader and no Deployment", func() (bool, string) {
		return !strings.Contains(e.p.Log(), "Became the leader") && !e.deploymentExists(), e.p.LogTail(3)
	})
	if !strings.Contains(e.p.Log(), "forbidden") {
		t.Errorf("the log does not say what was forbidden:\n%s", e.p.LogTail(10))
	}
}

func (e *rbacEnv) expectDeploymentButNoStatus(t *testing.T) {
	eventually(t, e.p, 20*time.Second, "the Deployment", func() (bool, string) { return e.deploymentExists(), "" })
	e.hold(t, 5*time.Second, "no status on the Foo", func() (bool, string) {
		foo := getFoo(t, e.ns, "f")
		return foo.Status.ObservedGeneration == 0 && len(foo.Status.Conditions) == 0, fmt.Sprintf("%+v", foo.Status)
	})
}

// expectDeletedDeploymentNotRecreated: without GET on foos, the controller cannot check that a
// Foo whose Deployment is gone still exists, and so never re-creates a Deployment someone
// deleted; the Foo says so.
func (e *rbacEnv) expectDeletedDeploymentNotRecreated(t *testing.T) {
	waitForFooConverged(t, e.p, e.ns, "f", 60*time.Second)
	if err := kubeClient.AppsV1().Deployments(e.ns).Delete(context.Background(), "f", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, e.p, 30*time.Second, "the Deployment to be gone", func() (bool, string) { return !e.deploymentExists(), "it exists" })
	e.hold(t, 8*time.Second, "no new Deployment", func() (bool, string) { return !e.deploymentExists(), "the Deployment was re-created" })
	// The Foo, which said Ready, now says why its Deployment is not coming back.
	cond := waitForReadyReason(t, e.p, e.ns, "f", metav1.ConditionFalse, samplev1.ReasonDeploymentRejected)
	if !strings.Contains(cond.Message, "cannot get resource") {
		t.Errorf("Ready message %q does not say the GET of the Foo was forbidden", cond.Message)
	}
}

func (e *rbacEnv) expectDriftNotReverted(t *testing.T) {
	waitForFooConverged(t, e.p, e.ns, "f", 60*time.Second)
	mustKubectl(t, "scale", "deployment/f", "-n", e.ns, "--replicas=3")
	e.hold(t, 5*time.Second, "the drift to stay", func() (bool, string) {
		d, err := getDeployment(e.ns, "f")
		return err == nil && *d.Spec.Replicas == 3, fmt.Sprint(err)
	})
	if !strings.Contains(e.p.Log(), "forbidden") {
		t.Errorf("the log does not say the update was forbidden:\n%s", e.p.LogTail(10))
	}
}

func (e *rbacEnv) expectConvergedWithoutEvents(t *testing.T) {
	waitForFooConverged(t, e.p, e.ns, "f", 60*time.Second)
	e.hold(t, 5*time.Second, "no events about the Foo", func() (bool, string) {
		list, err := kubeClient.CoreV1().Events(e.ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.kind=Foo"})
		return err == nil && len(list.Items) == 0, fmt.Sprint(len(list.Items), err)
	})
}

// revertDriftTwice scales the Foo's Deployment away twice and waits for the controller to put it
// back each time: the second DeploymentUpdated Event repeats the first, word for word.
func (e *rbacEnv) revertDriftTwice(t *testing.T) {
	waitForFooConverged(t, e.p, e.ns, "f", 60*time.Second)
	for range 2 {
		mustKubectl(t, "scale", "deployment/f", "-n", e.ns, "--replicas=3")
		waitForDeploymentReplicas(t, e.p, e.ns, "f", 1)
	}
}

// deploymentUpdatedCount is the count of the Foo's DeploymentUpdated Event (0 when there is none).
func (e *rbacEnv) deploymentUpdatedCount() int32 {
	list, err := kubeClient.CoreV1().Events(e.ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.kind=Foo,reason=DeploymentUpdated"})
	if err != nil || len(list.Items) != 1 {
		return 0
	}
	return list.Items[0].Count
}

// expectRepeatedEventNotCounted: without patch, a repeated Event is recorded once and its count
// never rises (the recorder raises it with a PATCH).
func (e *rbacEnv) expectRepeatedEventNotCounted(t *testing.T) {
	e.revertDriftTwice(t)
	eventually(t, e.p, 10*time.Second, "the first DeploymentUpdated event", func() (bool, string) {
		return e.deploymentUpdatedCount() == 1, fmt.Sprint(e.deploymentUpdatedCount())
	})
	e.hold(t, 5*time.Second, "its count to stay at 1", func() (bool, string) {
		return e.deploymentUpdatedCount() == 1, fmt.Sprint(e.deploymentUpdatedCount())
	})
	if !strings.Contains(e.p.Log(), "forbidden") {
		t.Errorf("the log does not say the patch was forbidden:\n%s", e.p.LogTail(10))
	}
}

// ---- leader election ----

// Two replicas: only the leader works. Killed with SIGKILL, the leader is replaced by the
// standby within the lease duration, and Foos created meanwhile converge. Stopped with SIGTERM,
// the leader releases the Lease and the standby takes over at once.
func TestLeaderElection(t *testing.T) {
	ensureCRD(t)
	ns := newNamespace(t)
	const leaseDuration = 15 * time.Second
	start := func() *controllerProcess {
		return startController(t, "--namespace="+ns, "--leader-elect", "--leader-elect-namespace="+ns, "-v=2",
			"--health-probe-bind-address=127.0.0.1:0")
	}
	leads := func(p *controllerProcess) func() (bool, string) {
		return func() (bool, string) { return strings.Contains(p.Log(), "Became the leader"), p.LogTail(2) }
	}

	a := start()
	eventually(t, a, 30*time.Second, "the first process to lead", leads(a))
	b := start()
	eventually(t, b, 30*time.Second, "the second process to stand by", func() (bool, string) {
		return strings.Contains(b.Log(), "standing by"), b.LogTail(2)
	})
	createFoo(t, newFoo(ns, "first", "first", 1))
	waitForFooConverged(t, a, ns, "first", 60*time.Second)
	if strings.Contains(b.Log(), "creating it") || strings.Contains(b.Log(), "Status changed") || strings.Contains(b.Log(), "Became the leader") {
		t.Fatalf("the standby worked while the leader was alive:\n%s", b.LogTail(10))
	}
	// The standby is ready too (its caches are warm), so that a rollout does not wait on it.
	standbyProbes, err := b.WaitForAddress("probes", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, b, 30*time.Second, "the standby's /readyz to pass", func() (bool, string) {
		code, body := httpGet("http://" + standbyProbes + "/readyz")
		return code == 200, fmt.Sprintf("%d %s", code, body)
	})

	a.Kill()
	killed := time.Now()
	createFoo(t, newFoo(ns, "after-kill", "after-kill", 1))
	eventually(t, b, leaseDuration+10*time.Second, "the standby to take over", leads(b))
	takeover := time.Since(killed)
	t.Logf("takeover after SIGKILL of the leader: %s (lease duration %s)", takeover.Round(100*time.Millisecond), leaseDuration)
	if takeover > leaseDuration+5*time.Second {
		t.Errorf("takeover took %s, want within the lease duration (%s) plus a retry", takeover, leaseDuration)
	}
	waitForFooConverged(t, b, ns, "after-kill", 60*time.Second)

	c := start()
	eventually(t, c, 30*time.Second, "a new standby", func() (bool, string) {
		return strings.Contains(c.Log(), "standing by"), c.LogTail(2)
	})
	b.stop() // SIGTERM; stop fails the test unless the exit status is 0
	released := time.Now()
	if !strings.Contains(b.Log(), "Released the Lease") {
		t.Errorf("SIGTERM did not release the Lease:\n%s", b.LogTail(10))
	}
	eventually(t, c, 10*time.Second, "the standby to take over after a release", leads(c))
	handover := time.Since(released)
	t.Logf("takeover after SIGTERM of the leader: %s", handover.Round(100*time.Millisecond))
	if handover > 5*time.Second {
		t.Errorf("takeover after a released Lease took %s, want about one retry period (2s)", handover)
	}
	createFoo(t, newFoo(ns, "after-term", "after-term", 1))
	waitForFooConverged(t, c, ns, "after-term", 60*time.Second)
}

// ---- metrics and probes ----

// /readyz fails until the caches are synced, then passes; /healthz passes; /metrics has the
// workqueue, REST client, leader election and reconcile metrics with plausible values.
func TestMetricsAndProbes(t *testing.T) {
	ensureCRD(t)
	ns := newNamespace(t)
	// A slow client (one request every 2s) makes the time before the caches sync long
	// enough to observe /readyz failing.
	applyMetricsReaderRoles(t)
	reader := serviceAccountWithClusterRole(t, ns, "reader", "sample-controller-metrics-reader")
	p := startController(t, "--namespace="+ns, "--leader-elect", "--leader-elect-namespace="+ns,
		"--metrics-bind-address=127.0.0.1:0", "--health-probe-bind-address=127.0.0.1:0", "--kube-api-qps=0.5", "--kube-api-burst=1", "-v=2")
	probes := "http://" + servedAddress(t, p, "probes")
	metricsURL := "https://" + servedAddress(t, p, "metrics") + "/metrics"

	code, body := httpGet(probes + "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "informers-synced failed") {
		t.Errorf("/readyz before the caches synced = %d %q, want 503 naming informers-synced", code, body)
	}
	// client-go's reflector logs "Caches populated" (at -v=2) once its LIST is in the cache.
	if n := strings.Count(p.Log(), "Caches populated"); n == 2 {
		t.Errorf("both caches were already populated; the test did not observe the unsynced state")
	}
	eventually(t, p, 60*time.Second, "/readyz to pass", func() (bool, string) {
		code, body := httpGet(probes + "/readyz")
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
	})
	if n := strings.Count(p.Log(), "Caches populated"); n != 2 {
		t.Errorf("/readyz passed with %d of the 2 caches populated", n)
	}
	if code, body := httpGet(probes + "/healthz?verbose"); code != http.StatusOK || !strings.Contains(body, "leaderElection ok") {
		t.Errorf("/healthz = %d %q, want 200 with the leader election check", code, body)
	}

	createFoo(t, newFoo(ns, "measured", "measured", 1))
	waitForFooConverged(t, p, ns, "measured", 60*time.Second)
	var text string
	eventually(t, p, 60*time.Second, "the reader to read /metrics", func() (bool, string) {
		var code int
		code, text = httpsGet(metricsURL, reader)
		return code == http.StatusOK, text
	})
	samples := promtext.Parse(text)
	for _, m := range []struct {
		series string // name{labels...}: every label given must match
		min    float64
	}{
		{`workqueue_adds_total{name="foos"}`, 1},
		{`workqueue_work_duration_seconds_count{name="foos"}`, 1},
		{`workqueue_depth{name="foos"}`, 0},
		{`rest_client_requests_total{code="201",method="POST"}`, 1},
		{`rest_client_requests_total{code="200",method="PUT"}`, 1},
		{`leader_election_master_status{name="sample-controller"}`, 1},
		{`samplecontroller_reconcile_total{result="success"}`, 1},
		{`samplecontroller_reconcile_duration_seconds_count`, 1},
	} {
		v, ok := samples.Sum(m.series)
		if !ok {
			t.Errorf("/metrics has no %s", m.series)
			continue
		}
		if v < m.min {
			t.Errorf("%s = %v, want at least %v", m.series, v, m.min)
		}
	}
	if v, _ := samples.Sum(`samplecontroller_reconcile_total{result="dropped"}`); v != 0 {
		t.Errorf("dropped reconciles = %v, want 0", v)
	}
}
