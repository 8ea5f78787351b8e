//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	"example.com/sample-controller/internal/promtext"
	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
	samplev1alpha1 "example.com/sample-controller/pkg/apis/samplecontroller/v1alpha1"
)

// The conversion tests point the cluster's one Foo CRD at their own controller's webhook, so
// they do not call t.Parallel(): Go runs them while no parallel test runs, and every other
// test speaks v1 only, which needs no conversion.

// webhookFlags make a controller serve the conversion webhook on a free port of 127.0.0.1 (the
// API server calls it by URL), its certificate kept in a Secret in secretNamespace.
func webhookFlags(secretNamespace string) []string {
	return []string{"--conversion-webhook-bind-address=127.0.0.1:0", "--conversion-webhook-hosts=127.0.0.1",
		"--conversion-webhook-secret-namespace=" + secretNamespace}
}

// webhookController is a controller serving the conversion webhook on a free port of
// 127.0.0.1, with its certificate's Secret in ns, and the CRD's webhook URL pointed at it.
type webhookController struct {
	*controllerProcess
	webhook, probes, metrics string // addresses
}

func startWebhookController(t *testing.T, ns string, args ...string) *webhookController {
	t.Helper()
	p := startController(t, append(append(webhookFlags(ns), "--namespace="+ns,
		"--health-probe-bind-address=127.0.0.1:0", "--metrics-bind-address=127.0.0.1:0", "--metrics-secure=false"), args...)...)
	w := &webhookController{controllerProcess: p}
	for name, addr := range map[string]*string{"conversion-webhook": &w.webhook, "probes": &w.probes, "metrics": &w.metrics} {
		var err error
		if *addr, err = p.WaitForAddress(name, 60*time.Second); err != nil {
			t.Fatalf("%v\n%s", err, p.LogTail(20))
		}
	}
	mustKubectl(t, "patch", "crd", crdName, "--type=json", "-p",
		fmt.Sprintf(`[{"op":"replace","path":"/spec/conversion/webhook/clientConfig","value":{"url":"https://%s/convert"}}]`, w.webhook))
	// Ready: the certificate is served and its CA is in the CRD.
	eventually(t, p, 60*time.Second, "/readyz (the webhook's certificate served, its CA in the CRD)", func() (bool, string) {
		code, body := httpGet("http://" + w.probes + "/readyz")
		return code == 200, fmt.Sprintf("%d %s", code, body)
	})
	waitForConversion(t, p, ns)
	return w
}

// waitForConversion waits until the API server converts through the webhook: it rebuilds a
// CRD's handler, with the new URL and CA bundle, shortly after the CRD changes.
func waitForConversion(t *testing.T, p *controllerProcess, ns string) {
	t.Helper()
	eventually(t, p, 60*time.Second, "a v1alpha1 LIST served through the conversion webhook", func() (bool, string) {
		_, err := sampleClient.SamplecontrollerV1alpha1().Foos(ns).List(context.Background(), metav1.ListOptions{})
		return err == nil, fmt.Sprint(err)
	})
}

func TestConversionBetweenVersions(t *testing.T) {
	ensureCRD(t)
	ns := newNamespace(t)
	w := startWebhookController(t, ns)
	ctx := context.Background()
	alphaFoos := sampleClient.SamplecontrollerV1alpha1().Foos(ns)
	v1Foos := sampleClient.SamplecontrollerV1().Foos(ns)

	// Created at v1alpha1 with kubectl, the image in the annotation that carries v1's
	// spec.deployment.image on v1alpha1: read at v1, everything is where v1 has it.
	if out, err := kubectlApply(`apiVersion: samplecontroller.example.com/v1alpha1
kind: Foo
metadata:
  name: alpha
  annotations:
    `+samplev1alpha1.ImageAnnotation+`: registry.example/web:1
spec:
  deploymentName: alpha-deploy
  replicas: 2
`, "-n", ns); err != nil {
		t.Fatalf("kubectl apply at v1alpha1: %v\n%s", err, out)
	}
	alpha, err := v1Foos.Get(ctx, "alpha", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if alpha.Spec.Deployment.Name != "alpha-deploy" || alpha.Spec.Deployment.Image != "registry.example/web:1" ||
		alpha.Spec.Replicas == nil || *alpha.Spec.Replicas != 2 || alpha.Annotations[samplev1alpha1.ImageAnnotation] != "" {
		t.Errorf("read at v1: spec %+v, annotations %v; want deployment alpha-deploy, image registry.example/web:1, replicas 2, no image annotation",
			alpha.Spec, alpha.Annotations)
	}
	// The controller, which speaks v1 only, runs that image.
	waitForFooConverged(t, w.controllerProcess, ns, "alpha", 60*time.Second)
	if d, err := getDeployment(ns, "alpha-deploy"); err != nil || d.Spec.Template.Spec.Containers[0].Image != "registry.example/web:1" {
		t.Errorf("Deployment alpha-deploy: %v, %v; want image registry.example/web:1", err, d)
	}

	// Created at v1 with the typed client: read at v1alpha1, with its status.
	beta := newFoo(ns, "beta", "beta-deploy", 1)
	beta.Spec.Deployment.Image = "registry.example/web:2"
	createFoo(t, beta)
	waitForFooConverged(t, w.controllerProcess, ns, "beta", 60*time.Second)
	betaAlpha, err := alphaFoos.Get(ctx, "beta", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if betaAlpha.APIVersion != "" && betaAlpha.APIVersion != samplev1alpha1.SchemeGroupVersion.String() {
		t.Errorf("apiVersion %q", betaAlpha.APIVersion)
	}
	if betaAlpha.Spec.DeploymentName != "beta-deploy" || betaAlpha.Annotations[samplev1alpha1.ImageAnnotation] != "registry.example/web:2" ||
		betaAlpha.Status.ObservedGeneration != betaAlpha.Generation || len(betaAlpha.Status.Conditions) == 0 {
		t.Errorf("read at v1alpha1: spec %+v, annotations %v, status %+v", betaAlpha.Spec, betaAlpha.Annotations, betaAlpha.Status)
	}

	// Updated at v1alpha1 (an older client that knows nothing of images): the image is kept,
	// since the update carries the annotation back.
	betaAlpha.Spec.Replicas = ptrInt32(3)
	if _, err := alphaFoos.Update(ctx, betaAlpha, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update at v1alpha1: %v", err)
	}
	betaV1, err := v1Foos.Get(ctx, "beta", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *betaV1.Spec.Replicas != 3 || betaV1.Spec.Deployment.Image != "registry.example/web:2" {
		t.Errorf("after the v1alpha1 update, v1 spec = %+v; want replicas 3 and the image kept", betaV1.Spec)
	}
	waitForDeploymentReplicas(t, w.controllerProcess, ns, "beta-deploy", 3)

	// kubectl at both versions: the printer columns of each, and the scale subresource.
	for _, c := range []struct{ resource, path, want string }{
		{"foos.v1alpha1.samplecontroller.example.com", "{.items[*].spec.deploymentName}", "alpha-deploy beta-deploy"},
		{"foos.v1.samplecontroller.example.com", "{.items[*].spec.deployment.name}", "alpha-deploy beta-deploy"},
	} {
		if out := mustKubectl(t, "get", c.resource, "-n", ns, "-o", "jsonpath="+c.path); out != c.want {
			t.Errorf("kubectl get %s: %q, want %q", c.resource, out, c.want)
		}
		if out := mustKubectl(t, "get", c.resource, "-n", ns); !strings.Contains(out, "DEPLOYMENT") || !strings.Contains(out, "alpha-deploy") {
			t.Errorf("kubectl get %s has no Deployment column:\n%s", c.resource, out)
		}
	}
	mustKubectl(t, "scale", "-n", ns, "foos.v1alpha1.samplecontroller.example.com/alpha", "--replicas=4")
	waitForDeploymentReplicas(t, w.controllerProcess, ns, "alpha-deploy", 4)

	// Validation and immutability hold at v1alpha1 too.
	if out, err := kubectl("patch", "-n", ns, "foos.v1alpha1.samplecontroller.example.com", "alpha", "--type=merge",
		"-p", `{"spec":{"deploymentName":"renamed"}}`); err == nil || !strings.Contains(out, "immutable") {
		t.Errorf("renaming at v1alpha1: %v %s; want refused as immutable", err, out)
	}
	if out, err := kubectl("patch", "-n", ns, "foos.v1alpha1.samplecontroller.example.com", "alpha", "--type=merge",
		"-p", `{"spec":{"replicas":5000}}`); err == nil || !strings.Contains(out, "1000") {
		t.Errorf("replicas 5000 at v1alpha1: %v %s; want refused (at most 1000)", err, out)
	}

	// The webhook's metrics count the conversions, by direction.
	samples, err := promtext.Scrape("http://" + w.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, series := range []string{
		`samplecontroller_conversion_total{from_version="v1",to_version="v1alpha1",result="success"}`,
		`samplecontroller_conversion_total{from_version="v1alpha1",to_version="v1",result="success"}`,
	} {
		if n, ok := samples.Sum(series); !ok || n < 1 {
			t.Errorf("%s = %v (found: %v), want at least 1", series, n, ok)
		}
	}

	// The webhook out of reach (the CRD names a port nothing listens on) while the controller
	// runs: v1alpha1 requests fail with an error that says so; v1, what etcd stores, needs no
	// conversion, and the controller, which speaks only v1, goes on converging new Foos.
	mustKubectl(t, "patch", "crd", crdName, "--type=json", "-p",
		`[{"op":"replace","path":"/spec/conversion/webhook/clientConfig/url","value":"https://127.0.0.1:1/convert"}]`)
	eventually(t, w.controllerProcess, 60*time.Second, "v1alpha1 requests to fail without the webhook", func() (bool, string) {
		_, err := alphaFoos.Get(ctx, "alpha", metav1.GetOptions{})
		return err != nil && strings.Contains(err.Error(), "conversion webhook"), fmt.Sprint(err)
	})
	createFoo(t, newFoo(ns, "gamma", "gamma-deploy", 1))
	waitForFooConverged(t, w.controllerProcess, ns, "gamma", 60*time.Second)
	if _, err := alphaFoos.Get(ctx, "gamma", metav1.GetOptions{}); err == nil || !strings.Contains(err.Error(), "conversion webhook") {
		t.Errorf("v1alpha1 GET without the webhook: %v; want an error naming the conversion webhook", err)
	}

	// The controller stopped altogether: v1 still served.
	w.stop()
	if _, err := v1Foos.Get(ctx, "gamma", metav1.GetOptions{}); err != nil {
		t.Errorf("v1 GET with no controller at all: %v", err)
	}
}

func ptrInt32(v int32) *int32 { return &v }

var _ = samplev1.DefaultImage

// The webhook's serving certificate is renewed before it expires, with no restart and no failed
// conversion: with a 1-minute certificate, renewed at two thirds of its life, two renewals come
// within two minutes, while an API client reads through the webhook all along. (The CA's
// rotation, a 10-year affair by default, is unit-tested in pkg/webhookcert with a fake clock.)
func TestConversionWebhookCertificateRenewal(t *testing.T) {
	ensureCRD(t)
	ns := newNamespace(t)
	w := startWebhookController(t, ns, "--conversion-webhook-cert-validity=1m", "--conversion-webhook-ca-validity=1h")
	createFoo(t, newFoo(ns, "reader", "reader", 0))
	ctx := context.Background()

	type served struct {
		serial   string
		notAfter time.Time
		seen     time.Time
	}
	var certs []served
	var reads, failures int
	var failed []string
	eventually(t, w.controllerProcess, 3*time.Minute, "two renewals of the webhook's certificate", func() (bool, string) {
		reads++
		if _, err := sampleClient.SamplecontrollerV1alpha1().Foos(ns).Get(ctx, "reader", metav1.GetOptions{}); err != nil {
			failures++
			if len(failed) < 5 {
				failed = append(failed, err.Error())
			}
		}
		leaf, err := servedCertificate(w.webhook)
		if err != nil {
			return false, err.Error()
		}
		now := time.Now()
		if now.After(leaf.NotAfter) {
			t.Fatalf("the webhook serves a certificate that expired at %s", leaf.NotAfter)
		}
		if len(certs) == 0 || certs[len(certs)-1].serial != leaf.SerialNumber.String() {
			if err := verifyWithCRDBundle(t, leaf); err != nil {
				t.Fatalf("the served certificate does not verify with the CRD's caBundle: %v", err)
			}
			certs = append(certs, served{leaf.SerialNumber.String(), leaf.NotAfter, now})
		}
		return len(certs) >= 3, fmt.Sprintf("%d certificates seen", len(certs))
	})
	for i := 1; i < len(certs); i++ {
		if !certs[i].seen.Before(certs[i-1].notAfter) {
			t.Errorf("certificate %d was replaced at %s, after it expired at %s", i-1, certs[i].seen, certs[i-1].notAfter)
		}
	}
	for i, c := range certs {
		t.Logf("certificate %d: first served %s, expires %s", i, c.seen.Format(time.TimeOnly), c.notAfter.Local().Format(time.TimeOnly))
	}
	t.Logf("%d reads through the webhook, %d failed", reads, failures)
	if failures > 0 {
		t.Errorf("%d of %d reads through the webhook failed across the renewals: %v", failures, reads, failed)
	}
}

// servedCertificate is the certificate the server at addr presents.
func servedCertificate(addr string) (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) // #nosec: we verify below
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// verifyWithCRDBundle verifies leaf for 127.0.0.1 against the CA bundle in the Foo CRD, as the
// API server does.
func verifyWithCRDBundle(t *testing.T, leaf *x509.Certificate) error {
	t.Helper()
	raw, err := kubeClient.Discovery().RESTClient().Get().AbsPath("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/" + crdName).
		DoRaw(context.Background())
	if err != nil {
		return err
	}
	var crd struct {
		Spec struct {
			Conversion struct {
				Webhook struct {
					ClientConfig struct {
						CABundle []byte `json:"caBundle"` // base64 in JSON
					} `json:"clientConfig"`
				} `json:"webhook"`
			} `json:"conversion"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(raw, &crd); err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(crd.Spec.Conversion.Webhook.ClientConfig.CABundle) {
		return fmt.Errorf("no certificate in the CRD's caBundle")
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "127.0.0.1", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err
}

// Every rule the conversion webhook's roles grant is needed, and together they are enough: a
// controller running as a ServiceAccount with the controller's own rules in its namespace and
// the webhook's rules but one never becomes ready (the webhook's check fails), and says what was
// forbidden; with all of them it is ready, and the CRD's caBundle verifies what it serves.
// (Not parallel: each controller writes its own CA into the one CRD.)
func TestEveryConversionWebhookRuleIsNeeded(t *testing.T) {
	ensureCRD(t)
	var crdRole rbacv1.ClusterRole
	readManifest(t, "artifacts/deploy/conversion-webhook/clusterrole.yaml", &crdRole)
	var secretRole rbacv1.Role
	readManifest(t, "artifacts/deploy/base/conversion-webhook-role.yaml", &secretRole)
	var controllerRole rbacv1.ClusterRole
	readManifest(t, "artifacts/deploy/clusterrole.yaml", &controllerRole)
	var controllerRules []rbacv1.PolicyRule
	for _, rule := range controllerRole.Rules {
		if !isReviewRule(rule) {
			controllerRules = append(controllerRules, rule)
		}
	}
	without := func(rules []rbacv1.PolicyRule, i int) []rbacv1.PolicyRule {
		out := append([]rbacv1.PolicyRule{}, rules[:i]...)
		return append(out, rules[i+1:]...)
	}
	if len(crdRole.Rules) != 2 || len(secretRole.Rules) != 2 {
		t.Fatalf("the webhook's roles have %d + %d rules, this test knows 2 + 2: say what breaks without each new rule",
			len(crdRole.Rules), len(secretRole.Rules))
	}
	neverReady := func(t *testing.T, e *webhookRBACEnv, forbidden string) {
		t.Helper()
		e.hold(t, 15*time.Second, "/readyz failing on the conversion-webhook check")
		// klog quotes the error, escaping its own quotes.
		if !strings.Contains(strings.ReplaceAll(e.p.Log(), `\"`, `"`), forbidden) {
			t.Errorf("the log does not say %q:\n%s", forbidden, e.p.LogTail(15))
		}
	}
	t.Run("Role without secrets create", func(t *testing.T) {
		e := newWebhookRBACEnv(t, controllerRules, without(secretRole.Rules, 0), crdRole.Rules, nil)
		neverReady(t, e, `cannot create resource "secrets"`)
	})
	t.Run("Role without secrets get/list/watch/update", func(t *testing.T) {
		// The Secret made by an earlier replica (here: by an unrestricted run) cannot be read.
		e := newWebhookRBACEnv(t, controllerRules, without(secretRole.Rules, 1), crdRole.Rules, func(t *testing.T, ns string) {
			full := newWebhookRBACEnv(t, controllerRules, secretRole.Rules, crdRole.Rules, nil, ns)
			full.waitReady(t)
			full.p.stop()
		})
		neverReady(t, e, `resource "secrets"`)
	})
	t.Run("ClusterRole without customresourcedefinitions get/list/watch", func(t *testing.T) {
		e := newWebhookRBACEnv(t, controllerRules, secretRole.Rules, without(crdRole.Rules, 0), nil)
		neverReady(t, e, `resource "customresourcedefinitions"`)
	})
	t.Run("ClusterRole without customresourcedefinitions patch", func(t *testing.T) {
		e := newWebhookRBACEnv(t, controllerRules, secretRole.Rules, without(crdRole.Rules, 1), nil)
		neverReady(t, e, `cannot patch resource "customresourcedefinitions"`)
	})
	t.Run("all rules together are enough", func(t *testing.T) {
		e := newWebhookRBACEnv(t, controllerRules, secretRole.Rules, crdRole.Rules, nil)
		e.waitReady(t)
		leaf, err := servedCertificate(e.webhook)
		if err != nil {
			t.Fatal(err)
		}
		if err := verifyWithCRDBundle(t, leaf); err != nil {
			t.Errorf("the served certificate does not verify with the CRD's caBundle: %v", err)
		}
		if strings.Contains(strings.ToLower(e.p.Log()), "forbidden") {
			t.Errorf("the controller was refused something with every rule:\n%s", e.p.LogTail(20))
		}
	})
}

// webhookRBACEnv is a controller with the conversion webhook on, running as ServiceAccount
// "ctl" of its own namespace with the given rules: the controller's (a Role there), the
// Secret's (a Role there) and the CRD's (a ClusterRole bound to it).
type webhookRBACEnv struct {
	p              *controllerProcess
	ready, webhook string
}

// newWebhookRBACEnv makes the environment in a new namespace, or in ns[0] when given (whose
// ServiceAccount and roles must then not exist yet: before runs first there, when not nil).
func newWebhookRBACEnv(t *testing.T, controllerRules, secretRules, crdRules []rbacv1.PolicyRule,
	before func(t *testing.T, ns string), ns ...string) *webhookRBACEnv {
	t.Helper()
	var namespace string
	if len(ns) > 0 {
		namespace = ns[0]
	} else {
		namespace = newNamespace(t)
	}
	if before != nil {
		before(t, namespace)
	}
	ctx := context.Background()
	rbac := kubeClient.RbacV1()
	sa := "ctl-" + rand.String(5)
	if _, err := kubeClient.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	subject := rbacv1.Subject{Kind: "ServiceAccount", Name: sa, Namespace: namespace}
	for name, rules := range map[string][]rbacv1.PolicyRule{sa + "-controller": controllerRules, sa + "-secret": secretRules} {
		if _, err := rbac.Roles(namespace).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := rbac.RoleBindings(namespace).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
			Subjects:   []rbacv1.Subject{subject},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	crdRoleName := namespace + "-" + sa + "-crd"
	if _, err := rbac.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: crdRoleName}, Rules: crdRules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rbac.ClusterRoles().Delete(context.Background(), crdRoleName, metav1.DeleteOptions{}) })
	bindClusterRole(t, crdRoleName, crdRoleName, subject)

	p := startProcess(t, exec.Command(controllerBin, append(webhookFlags(namespace),
		"--kubeconfig="+serviceAccountKubeconfig(t, namespace, sa), "--namespace="+namespace,
		"--health-probe-bind-address=127.0.0.1:0", "-v=2")...))
	return &webhookRBACEnv{p: p, ready: "http://" + servedAddress(t, p, "probes") + "/readyz",
		webhook: servedAddress(t, p, "conversion-webhook")}
}

func (e *webhookRBACEnv) waitReady(t *testing.T) {
	t.Helper()
	eventually(t, e.p, 60*time.Second, "/readyz", func() (bool, string) {
		code, body := httpGet(e.ready)
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
	})
}

// hold checks for d that /readyz fails, and on the conversion webhook's check.
func (e *webhookRBACEnv) hold(t *testing.T, d time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		code, body := httpGet(e.ready)
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "conversion-webhook") {
			t.Fatalf("expected %s for %s, but: %d %s", what, d, code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The shipped pieces of the conversion webhook fit together: the CRD calls the Service by the
// name the certificate is made for, on the port the Service maps to the Deployment's webhook
// port, where the controller listens; the Service reaches replicas that are not ready yet (a
// replica's readiness can need the webhook); the NetworkPolicy lets the API server in.
func TestShippedWebhookPathFitsTogether(t *testing.T) {
	var service corev1.Service
	var deployment appsv1.Deployment
	var policy networkingv1.NetworkPolicy
	var crd apiextensionsv1.CustomResourceDefinition
	for _, obj := range kustomize(t, "artifacts/deploy") {
		switch obj["kind"] {
		case "Service":
			if obj["metadata"].(map[string]interface{})["name"] == "sample-controller-webhook" {
				fromObject(t, obj, &service)
			}
		case "Deployment":
			fromObject(t, obj, &deployment)
		case "NetworkPolicy":
			fromObject(t, obj, &policy)
		case "CustomResourceDefinition":
			fromObject(t, obj, &crd)
		}
	}
	if service.Name == "" || crd.Spec.Conversion == nil || crd.Spec.Conversion.Webhook == nil ||
		crd.Spec.Conversion.Webhook.ClientConfig == nil || crd.Spec.Conversion.Webhook.ClientConfig.Service == nil {
		t.Fatalf("artifacts/deploy lacks the webhook Service or the CRD's webhook conversion: %+v, %+v", service.ObjectMeta, crd.Spec.Conversion)
	}
	ref := crd.Spec.Conversion.Webhook.ClientConfig.Service
	if crd.Spec.Conversion.Strategy != apiextensionsv1.WebhookConverter || ref.Name != service.Name || ref.Namespace != service.Namespace ||
		ref.Path == nil || *ref.Path != "/convert" {
		t.Errorf("the CRD calls %+v with strategy %s, want the Service %s/%s at /convert", ref, crd.Spec.Conversion.Strategy, service.Namespace, service.Name)
	}
	if got := crd.Spec.Conversion.Webhook.ConversionReviewVersions; len(got) != 1 || got[0] != "v1" {
		t.Errorf("conversionReviewVersions = %v, want [v1] (the only one the webhook answers)", got)
	}
	if !service.Spec.PublishNotReadyAddresses {
		t.Error("the webhook Service must reach replicas before they are ready (publishNotReadyAddresses)")
	}
	port := int32(443)
	if ref.Port != nil {
		port = *ref.Port
	}
	var target string
	for _, p := range service.Spec.Ports {
		if p.Port == port {
			target = p.TargetPort.String()
		}
	}
	container := deployment.Spec.Template.Spec.Containers[0]
	var containerPort int32
	for _, p := range container.Ports {
		if p.Name == target || fmt.Sprint(p.ContainerPort) == target {
			containerPort = p.ContainerPort
		}
	}
	args := strings.Join(container.Args, " ")
	if containerPort == 0 || !strings.Contains(args, fmt.Sprintf("--conversion-webhook-bind-address=:%d", containerPort)) {
		t.Errorf("Service port %d -> %q, container ports %v, args %q: the CRD's call does not reach the webhook", port, target, container.Ports, args)
	}
	// The certificate names the Service as the API server calls it (POD_NAMESPACE is the Pod's).
	if !strings.Contains(args, "--conversion-webhook-hosts="+service.Name+".$(POD_NAMESPACE).svc") {
		t.Errorf("args %q: the certificate is not made for %s.NAMESPACE.svc", args, service.Name)
	}
	open := false
	for _, rule := range policy.Spec.Ingress {
		for _, p := range rule.Ports {
			if p.Port != nil && (p.Port.String() == target || p.Port.String() == fmt.Sprint(containerPort)) && len(rule.From) == 0 {
				open = true
			}
		}
	}
	if !open {
		t.Errorf("the NetworkPolicy does not let the API server reach port %s from anywhere: %+v", target, policy.Spec.Ingress)
	}
}
