//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"example.com/sample-controller/internal/auditlog"
	samplev1alpha1 "example.com/sample-controller/pkg/apis/samplecontroller/v1alpha1"
	clientset "example.com/sample-controller/pkg/generated/clientset/versioned"
)

// previousRelease is the last commit of the v1alpha1-only API: its CRD stores v1alpha1 and its
// controller speaks nothing else. The upgrade test builds it from this repository's history.
const previousRelease = "4c6a46d1ff4a41f177d07d0698fc20ac20e27c97"

// upgradeFoos is how many Foos the previous release runs before the upgrade.
const upgradeFoos = 200

// TestUpgradeFromV1alpha1Release installs the previous release (the v1alpha1-only CRD and its
// controller) on a cluster of its own, with 200 Foos, and upgrades it as docs/upgrading.md says:
// the new controller (which serves the conversion webhook), then the new CRD (v1 stored,
// v1alpha1 served). Every Foo must stay converged with no Deployment written by anyone; both
// versions are served. It then rolls back to the previous release (storage back to v1alpha1,
// migrated, previous CRD and controller) and upgrades again; an image set at v1 survives the
// round trip. Finally hack/migrate-storage.sh moves every Foo to v1, after which v1alpha1 can be
// removed from the CRD and every Foo still reads: none is left stored at v1alpha1.
//
// Its own cluster, since it replaces the CRD, which every other test shares. Not parallel: it
// brings up a second control plane, and the machine is shared.
func TestUpgradeFromV1alpha1Release(t *testing.T) {
	ctx := context.Background()
	old := buildPreviousRelease(t)
	c := newSideCluster(t, "upgrade")

	// The previous release, as its users run it.
	if out, err := c.kubectl("apply", "-f", filepath.Join(old, "artifacts/crd/samplecontroller.example.com_foos.yaml")); err != nil {
		t.Fatalf("installing the previous CRD: %v\n%s", err, out)
	}
	c.mustKubectl(t, "wait", "--for=condition=Established", "crd/"+crdName, "--timeout=60s")
	oldController := startProcess(t, exec.Command(filepath.Join(old, "sample-controller"), "--kubeconfig="+c.kubeconfigPath, "-v=2"))
	ns := "upgrade"
	c.mustKubectl(t, "create", "namespace", ns)
	eventually(t, oldController, 60*time.Second, "the namespace's default ServiceAccount", func() (bool, string) {
		_, err := c.kube.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
	alphaFoos := c.sample.SamplecontrollerV1alpha1().Foos(ns)
	inParallel(t, "creating Foos at v1alpha1", upgradeFoos, func(i int) error {
		replicas := int32(0)
		if i%10 == 0 {
			replicas = 1 // a few with a pod, the rest Ready at once
		}
		_, err := alphaFoos.Create(ctx, &samplev1alpha1.Foo{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("foo-%03d", i)},
			Spec:       samplev1alpha1.FooSpec{DeploymentName: fmt.Sprintf("foo-%03d", i), Replicas: ptr.To(replicas)},
		}, metav1.CreateOptions{})
		return err
	})
	allReady := func(p *controllerProcess) {
		t.Helper()
		eventually(t, p, 5*time.Minute, fmt.Sprintf("all %d Foos Ready at their generation", upgradeFoos), func() (bool, string) {
			out, err := c.kubectl("get", "foos.v1alpha1.samplecontroller.example.com", "-n", ns, "-o",
				`jsonpath={range .items[*]}{.metadata.generation}={.status.observedGeneration}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
			if err != nil {
				return false, out
			}
			ready := 0
			for _, line := range strings.Fields(out) {
				parts := strings.Split(line, "=")
				if len(parts) == 3 && parts[0] == parts[1] && parts[2] == "True" {
					ready++
				}
			}
			return ready == upgradeFoos, fmt.Sprintf("%d of %d", ready, upgradeFoos)
		})
	}
	allReady(oldController)
	before := deploymentIdentities(t, c.kube, ns)
	oldController.stop()

	// The upgrade: the new controller first (its webhook must answer as soon as the CRD names
	// it), then the new CRD pointing at it.
	mark, err := auditlog.Mark(c.auditLog)
	if err != nil {
		t.Fatal(err)
	}
	newController := upgradeTo(t, c)
	allReady(newController)

	// Both versions served, by kubectl.
	for _, resource := range []string{"foos.v1alpha1.samplecontroller.example.com", "foos.v1.samplecontroller.example.com"} {
		out := c.mustKubectl(t, "get", resource, "-n", ns, "-o", "name")
		if n := len(strings.Fields(out)); n != upgradeFoos {
			t.Errorf("kubectl get %s: %d Foos, want %d", resource, n, upgradeFoos)
		}
	}
	// The new controller acts on Foos the old one made, edited by an old client.
	c.mustKubectl(t, "scale", "-n", ns, "foos.v1alpha1.samplecontroller.example.com/foo-001", "--replicas=2")
	eventually(t, newController, 60*time.Second, "foo-001's Deployment scaled to 2", func() (bool, string) {
		d, err := c.kube.AppsV1().Deployments(ns).Get(ctx, "foo-001", metav1.GetOptions{})
		return err == nil && *d.Spec.Replicas == 2, fmt.Sprint(err)
	})

	// An image set at v1 (a field the previous release does not have).
	foo002, err := c.sample.SamplecontrollerV1().Foos(ns).Get(ctx, "foo-002", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	foo002.Spec.Deployment.Image = "registry.example/web:2"
	if _, err := c.sample.SamplecontrollerV1().Foos(ns).Update(ctx, foo002, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForDeploymentImage(t, c, newController, ns, "foo-002", "registry.example/web:2")

	// Rollback, as docs/upgrading.md says: v1alpha1 the storage version again, every Foo
	// migrated to it (the new controller's webhook still converting), then the previous CRD and
	// controller.
	c.mustKubectl(t, "patch", "crd", crdName, "--type=json", "-p", setStorageVersion(t, c, "v1alpha1"))
	migrateStorage(t, c)
	if out := c.mustKubectl(t, "get", "crd", crdName, "-o", "jsonpath={.status.storedVersions}"); out != `["v1alpha1"]` {
		t.Fatalf("storedVersions after migrating back = %s, want [\"v1alpha1\"]", out)
	}
	newController.stop()
	if out, err := c.kubectl("apply", "-f", filepath.Join(old, "artifacts/crd/samplecontroller.example.com_foos.yaml")); err != nil {
		t.Fatalf("installing the previous CRD again: %v\n%s", err, out)
	}
	oldController = startProcess(t, exec.Command(filepath.Join(old, "sample-controller"), "--kubeconfig="+c.kubeconfigPath, "-v=2"))
	allReady(oldController)
	// The previous controller knows no image: it puts back its own.
	waitForDeploymentImage(t, c, oldController, ns, "foo-002", "nginxinc/nginx-unprivileged:1.27")
	if out := c.mustKubectl(t, "get", "foos.v1alpha1.samplecontroller.example.com", "-n", ns, "foo-002", "-o",
		`jsonpath={.metadata.annotations.samplecontroller\.example\.com/v1-deployment-image}`); out != "registry.example/web:2" {
		t.Errorf("after the rollback, foo-002's image annotation = %q, want registry.example/web:2 (kept for the next upgrade)", out)
	}
	oldController.stop()

	// And the upgrade once more: the image set at v1 is back.
	newController = upgradeTo(t, c)
	allReady(newController)
	waitForDeploymentImage(t, c, newController, ns, "foo-002", "registry.example/web:2")
	if foo, err := c.sample.SamplecontrollerV1().Foos(ns).Get(ctx, "foo-002", metav1.GetOptions{}); err != nil ||
		foo.Spec.Deployment.Image != "registry.example/web:2" {
		t.Errorf("after upgrading again, foo-002 = %v, %v; want image registry.example/web:2", foo, err)
	}

	// Storage migration, then v1alpha1 removed from the CRD: every Foo still reads, so none is
	// left stored at v1alpha1 (the API server cannot decode a version its CRD no longer has).
	migrateStorage(t, c)
	if out := c.mustKubectl(t, "get", "crd", crdName, "-o", "jsonpath={.status.storedVersions}"); out != `["v1"]` {
		t.Errorf("storedVersions after the migration = %s, want [\"v1\"]", out)
	}
	versions := c.mustKubectl(t, "get", "crd", crdName, "-o", "jsonpath={.spec.versions[*].name}")
	index := -1
	for i, v := range strings.Fields(versions) {
		if v == "v1alpha1" {
			index = i
		}
	}
	if index < 0 {
		t.Fatalf("the CRD's versions are %q", versions)
	}
	c.mustKubectl(t, "patch", "crd", crdName, "--type=json", "-p", fmt.Sprintf(`[{"op":"remove","path":"/spec/versions/%d"}]`, index))
	eventually(t, newController, 60*time.Second, "every Foo read at v1 with v1alpha1 gone from the CRD", func() (bool, string) {
		list, err := c.sample.SamplecontrollerV1().Foos(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(list.Items) == upgradeFoos, fmt.Sprintf("%d Foos", len(list.Items))
	})

	// No Deployment was re-created or changed by the upgrade: same UIDs and generations (but
	// foo-001's, scaled on purpose), and no Deployment write by anyone in the audit log.
	after := deploymentIdentities(t, c.kube, ns)
	for name, id := range before {
		switch name {
		case "foo-001":
			id.generation++ // scaled
		case "foo-002":
			id.generation += 3 // its image set, put back by the previous controller, set again
		}
		if after[name] != id {
			t.Errorf("Deployment %s: %+v before the upgrade, %+v after", name, id, after[name])
		}
	}
	var writes []string
	if err := auditlog.EachLineSince(c.auditLog, mark, func(line []byte) {
		var e auditlog.Event
		if json.Unmarshal(line, &e) != nil || e.Stage != "ResponseComplete" || e.ObjectRef == nil ||
			e.ObjectRef.Resource != "deployments" || e.ObjectRef.Subresource != "" || e.ObjectRef.Namespace != ns {
			return
		}
		switch e.Verb {
		case "create", "update", "patch", "delete", "deletecollection":
			if e.ObjectRef.Name != "foo-001" && e.ObjectRef.Name != "foo-002" {
				writes = append(writes, e.String()+" by "+e.User.Username)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if len(writes) > 0 {
		t.Errorf("%d Deployment writes during the upgrade, want none:\n%s", len(writes), strings.Join(writes, "\n"))
	}
}

// upgradeTo starts the new controller with its webhook, then installs the new CRD (v1 stored,
// webhook conversion) pointing at it, and waits until the controller is ready.
func upgradeTo(t *testing.T, c *sideCluster) *controllerProcess {
	t.Helper()
	p := startProcess(t, exec.Command(controllerBin, append(webhookFlags("default"),
		"--kubeconfig="+c.kubeconfigPath, "--health-probe-bind-address=127.0.0.1:0", "-v=2")...))
	webhook, err := p.WaitForAddress("conversion-webhook", 60*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, p.LogTail(20))
	}
	probes, err := p.WaitForAddress("probes", 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	crd, err := c.kubectl("kustomize", filepath.Join(repoRoot, "hack/local-cluster/crd"))
	if err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, crd)
	}
	crd = strings.ReplaceAll(crd, "https://127.0.0.1:9443/convert", "https://"+webhook+"/convert")
	if out, err := c.apply(crd); err != nil {
		t.Fatalf("installing the new CRD: %v\n%s", err, out)
	}
	eventually(t, p, 2*time.Minute, "the new controller ready (webhook certificate in the CRD, caches synced)", func() (bool, string) {
		code, body := httpGet("http://" + probes + "/readyz")
		return code == 200, fmt.Sprintf("%d %s", code, body)
	})
	return p
}

// waitForDeploymentImage waits until the named Deployment's pods are to run image.
func waitForDeploymentImage(t *testing.T, c *sideCluster, p *controllerProcess, ns, name, image string) {
	t.Helper()
	eventually(t, p, 60*time.Second, fmt.Sprintf("Deployment %s running %s", name, image), func() (bool, string) {
		d, err := c.kube.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return d.Spec.Template.Spec.Containers[0].Image == image, d.Spec.Template.Spec.Containers[0].Image
	})
}

// setStorageVersion is a JSON patch that makes version the CRD's storage version.
func setStorageVersion(t *testing.T, c *sideCluster, version string) string {
	t.Helper()
	var ops []string
	for i, v := range strings.Fields(c.mustKubectl(t, "get", "crd", crdName, "-o", "jsonpath={.spec.versions[*].name}")) {
		ops = append(ops, fmt.Sprintf(`{"op":"replace","path":"/spec/versions/%d/storage","value":%t}`, i, v == version))
	}
	return "[" + strings.Join(ops, ",") + "]"
}

// migrateStorage runs hack/migrate-storage.sh against c.
func migrateStorage(t *testing.T, c *sideCluster) {
	t.Helper()
	script := exec.Command(filepath.Join(repoRoot, "hack/migrate-storage.sh"))
	script.Dir = repoRoot
	script.Env = append(os.Environ(), "KUBECONFIG="+c.kubeconfigPath, "KUBECTL="+kubectlBin)
	if out, err := script.CombinedOutput(); err != nil {
		t.Fatalf("hack/migrate-storage.sh: %v\n%s", err, out)
	}
}

// deploymentIdentity is what changes when a Deployment is re-created (uid) or its spec is
// written (generation).
type deploymentIdentity struct {
	uid        types.UID
	generation int64
}

func deploymentIdentities(t *testing.T, kube kubernetes.Interface, ns string) map[string]deploymentIdentity {
	t.Helper()
	list, err := kube.AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != upgradeFoos {
		t.Fatalf("%d Deployments, want %d", len(list.Items), upgradeFoos)
	}
	out := map[string]deploymentIdentity{}
	for _, d := range list.Items {
		out[d.Name] = deploymentIdentity{d.UID, d.Generation}
	}
	return out
}

// buildPreviousRelease extracts previousRelease from the repository's history and builds its
// controller. It returns the directory: the CRD is under artifacts/, the binary at its root.
func buildPreviousRelease(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	extract := exec.Command("bash", "-c", `set -o pipefail; git -C "$ROOT" archive --format=tar "$COMMIT" | tar -x -C "$DIR"`)
	extract.Env = append(os.Environ(), "ROOT="+repoRoot, "COMMIT="+previousRelease, "DIR="+dir)
	if out, err := extract.CombinedOutput(); err != nil {
		t.Fatalf("extracting the previous release (commit %s) from the repository's history: %v\n%s"+
			"(a shallow clone lacks it: git fetch --unshallow)", previousRelease, err, out)
	}
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "sample-controller"), ".")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the previous release: %v\n%s", err, out)
	}
	return dir
}

// sideCluster is a local control plane of a test's own, beside the one the suite shares.
type sideCluster struct {
	kubeconfigPath, auditLog string
	kube                     kubernetes.Interface
	sample                   clientset.Interface
}

func newSideCluster(t *testing.T, suffix string) *sideCluster {
	t.Helper()
	name := filepath.Base(clusterDir) + "-" + suffix
	dir := filepath.Join(repoRoot, "_output", name)
	env := append(os.Environ(), "LOCAL_CLUSTER_NAME="+name, "LOCAL_CLUSTER_DIR="+dir, "LOCAL_CLUSTER_NODES=2")
	if err := runScript(env, "hack/local-cluster.sh", "down"); err != nil {
		t.Fatal(err)
	}
	if err := runScript(env, "hack/local-cluster.sh", "up"); err != nil {
		t.Fatalf("bringing up cluster %s: %v", name, err)
	}
	t.Cleanup(func() { _ = runScript(env, "hack/local-cluster.sh", "down") })
	c := &sideCluster{
		kubeconfigPath: filepath.Join(dir, "kubeconfig"),
		auditLog:       filepath.Join(dir, "kwok", "clusters", name, "logs", "audit.log"),
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	c.kube = kubernetes.NewForConfigOrDie(cfg)
	c.sample = clientset.NewForConfigOrDie(cfg)
	return c
}

func (c *sideCluster) kubectl(args ...string) (string, error) {
	cmd := exec.Command(kubectlBin, append([]string{"--kubeconfig", c.kubeconfigPath}, args...)...)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c *sideCluster) mustKubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.kubectl(args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

func (c *sideCluster) apply(yaml string) (string, error) {
	cmd := exec.Command(kubectlBin, "--kubeconfig", c.kubeconfigPath, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(yaml)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
