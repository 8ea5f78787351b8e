//go:build e2e

// Package e2e runs the real controller binary, as a user would, against the local control
// plane (hack/local-cluster.sh: etcd, kube-apiserver, kube-controller-manager, kube-scheduler
// and kwok's fake nodes on 127.0.0.1). Run it with `make e2e` (or `make test`).
//
// Each test gets its own namespace and its own controller process started with --namespace,
// so tests cannot see each other's objects. When a test fails, the tail of its controller's
// log is printed.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"example.com/sample-controller/internal/auditlog"
	"example.com/sample-controller/internal/process"
	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
	clientset "example.com/sample-controller/pkg/generated/clientset/versioned"
)

const crdName = "foos.samplecontroller.example.com"

var (
	repoRoot      string
	clusterDir    string
	kubeconfig    string
	kubectlBin    string
	controllerBin string
	auditLogPath  string

	kubeClient   kubernetes.Interface
	sampleClient clientset.Interface
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var err error
	if repoRoot, err = filepath.Abs("../.."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// E2E_CLUSTER_NAME lets two runs on one machine use separate clusters.
	clusterName := os.Getenv("E2E_CLUSTER_NAME")
	if clusterName == "" {
		clusterName = "sample-controller-e2e"
	}
	clusterDir = filepath.Join(repoRoot, "_output", clusterName)
	env := append(os.Environ(), "LOCAL_CLUSTER_NAME="+clusterName, "LOCAL_CLUSTER_DIR="+clusterDir, "LOCAL_CLUSTER_NODES=2")

	// A fresh cluster for every run: nothing from an earlier run can leak into this one.
	if err := runScript(env, "hack/local-cluster.sh", "down"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: tearing down an old cluster:", err)
		return 1
	}
	if err := runScript(env, "hack/local-cluster.sh", "up"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: bringing up the local cluster:", err)
		return 1
	}
	if os.Getenv("E2E_KEEP_CLUSTER") == "" {
		defer func() { _ = runScript(env, "hack/local-cluster.sh", "down") }()
	} else {
		fmt.Fprintf(os.Stderr, "e2e: E2E_KEEP_CLUSTER is set; the cluster stays up: export KUBECONFIG=%s/kubeconfig\n", clusterDir)
	}
	kubeconfig = filepath.Join(clusterDir, "kubeconfig")
	auditLogPath = filepath.Join(clusterDir, "kwok", "clusters", clusterName, "logs", "audit.log")
	binDir, err := scriptOutput(env, "bash", "-c", "source hack/lib/versions.sh && echo $CLUSTER_BIN_DIR")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	kubectlBin = filepath.Join(strings.TrimSpace(binDir), "kubectl")

	// The controller under test is built with the race detector: the end-to-end runs then also
	// check for data races in the real process.
	controllerBin = filepath.Join(repoRoot, "_output", clusterName+"-bin", "sample-controller")
	if err := runScript(os.Environ(), "go", "build", "-race", "-o", controllerBin, "."); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building the controller:", err)
		return 1
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	cfg.QPS, cfg.Burst = 200, 400
	kubeClient = kubernetes.NewForConfigOrDie(cfg)
	sampleClient = clientset.NewForConfigOrDie(cfg)
	return m.Run()
}

func runScript(env []string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = repoRoot, env, os.Stderr, os.Stderr
	return cmd.Run()
}

func scriptOutput(env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env, cmd.Stderr = repoRoot, env, os.Stderr
	out, err := cmd.Output()
	return string(out), err
}

// kubectl runs the real kubectl against the local cluster and returns its combined output.
func kubectl(args ...string) (string, error) {
	cmd := exec.Command(kubectlBin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustKubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := kubectl(args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func kubectlApply(yaml string, args ...string) (string, error) {
	cmd := exec.Command(kubectlBin, append([]string{"--kubeconfig", kubeconfig, "apply", "-f", "-"}, args...)...)
	cmd.Stdin = strings.NewReader(yaml)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// ensureCRD installs the Foo CRD (idempotent) and waits until it is Established. It is the CRD
// as make run installs it on the local cluster (hack/local-cluster/crd): v1 stored, v1alpha1
// converted by the controller's conversion webhook, called by URL on 127.0.0.1. Only the
// conversion tests start a controller that serves it; every other test speaks v1, which needs
// no conversion.
func ensureCRD(t *testing.T) {
	t.Helper()
	mustKubectl(t, "apply", "-k", "hack/local-cluster/crd")
	mustKubectl(t, "wait", "--for=condition=Established", "crd/"+crdName, "--timeout=60s")
}

// newNamespace creates a namespace for one test and deletes it afterwards.
func newNamespace(t *testing.T) string {
	t.Helper()
	name := "e2e-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.TrimRight(name, "-") + "-" + rand.String(4)
	ctx := context.Background()
	if _, err := kubeClient.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kubeClient.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	// Pods need the namespace's default ServiceAccount, created by kube-controller-manager.
	eventually(t, nil, 30*time.Second, "the default ServiceAccount in "+name, func() (bool, string) {
		_, err := kubeClient.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
	return name
}

// ---- the controller process ----

// controllerProcess is the controller binary running for one test.
type controllerProcess struct {
	*process.Process
	t *testing.T
}

// startController runs the controller binary with a kubeconfig, as a user would. On test
// failure the tail of its log is printed; at the end of the test it is stopped with SIGTERM
// and must exit cleanly.
func startController(t *testing.T, args ...string) *controllerProcess {
	t.Helper()
	return startProcess(t, exec.Command(controllerBin, append([]string{"--kubeconfig=" + kubeconfig}, args...)...))
}

// startProcess runs cmd (the controller, perhaps wrapped) with its output in a log file.
func startProcess(t *testing.T, cmd *exec.Cmd) *controllerProcess {
	t.Helper()
	logFile, err := os.CreateTemp(filepath.Join(repoRoot, "_output"), "e2e-controller-*.log")
	if err != nil {
		t.Fatal(err)
	}
	proc, err := process.Start(cmd, logFile)
	if err != nil {
		t.Fatal(err)
	}
	p := &controllerProcess{Process: proc, t: t}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			// Short: CI keeps only the end of a failed run's output, and the test's own error
			// lines above this must stay in it. The whole log stays at the path.
			t.Logf("controller log (%s), last 12 lines:\n%s", p.LogPath(), p.LogTail(12))
		} else {
			os.Remove(p.LogPath())
		}
	})
	return p
}

// stop sends SIGTERM and waits; a graceful shutdown exits 0 within a few seconds.
func (p *controllerProcess) stop() {
	p.t.Helper()
	if err := p.Stop(20 * time.Second); err != nil {
		p.t.Errorf("controller %v", err)
	}
}

// ---- waiting ----

// eventually polls cond until it holds or the timeout passes; the failure names what was
// awaited and cond's last description of the state (and the cleanup prints the controller log).
func eventually(t *testing.T, p *controllerProcess, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		var ok bool
		ok, last = cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last seen: %s", timeout, what, last)
		}
		if p != nil {
			select {
			case <-p.Exited():
				t.Fatalf("controller exited while waiting for %s; last seen: %s", what, last)
			default:
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ---- fixtures ----

// newFoo is a Foo asking for the Deployment deployment, running the default image.
func newFoo(ns, name, deployment string, replicas int32) *samplev1.Foo {
	return &samplev1.Foo{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       samplev1.FooSpec{Deployment: samplev1.FooDeployment{Name: deployment}, Replicas: ptr.To(replicas)},
	}
}

func createFoo(t *testing.T, foo *samplev1.Foo) *samplev1.Foo {
	t.Helper()
	created, err := sampleClient.SamplecontrollerV1().Foos(foo.Namespace).Create(context.Background(), foo, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating Foo %s: %v", foo.Name, err)
	}
	return created
}

func getFoo(t *testing.T, ns, name string) *samplev1.Foo {
	t.Helper()
	foo, err := sampleClient.SamplecontrollerV1().Foos(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting Foo %s: %v", name, err)
	}
	return foo
}

func getDeployment(ns, name string) (*appsv1.Deployment, error) {
	return kubeClient.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
}

// fooConverged: the controller has seen the newest spec and every replica is available.
func fooConverged(foo *samplev1.Foo) (bool, string) {
	ready := meta.FindStatusCondition(foo.Status.Conditions, samplev1.ConditionReady)
	state := fmt.Sprintf("generation=%d status=%+v", foo.Generation, foo.Status)
	return ready != nil && ready.Status == metav1.ConditionTrue && ready.ObservedGeneration == foo.Generation &&
		foo.Status.ObservedGeneration == foo.Generation && foo.Status.AvailableReplicas == *foo.Spec.Replicas, state
}

func waitForFooConverged(t *testing.T, p *controllerProcess, ns, name string, timeout time.Duration) *samplev1.Foo {
	t.Helper()
	var foo *samplev1.Foo
	eventually(t, p, timeout, "Foo "+name+" to be Ready with all replicas available", func() (bool, string) {
		foo = getFoo(t, ns, name)
		return fooConverged(foo)
	})
	return foo
}

func waitForReadyReason(t *testing.T, p *controllerProcess, ns, name string, status metav1.ConditionStatus, reason string) *metav1.Condition {
	t.Helper()
	return waitForReadyReasonWithin(t, p, ns, name, status, reason, 30*time.Second)
}

func waitForReadyReasonWithin(t *testing.T, p *controllerProcess, ns, name string, status metav1.ConditionStatus, reason string, timeout time.Duration) *metav1.Condition {
	t.Helper()
	var cond *metav1.Condition
	eventually(t, p, timeout, fmt.Sprintf("Foo %s to be Ready=%s/%s", name, status, reason), func() (bool, string) {
		foo := getFoo(t, ns, name)
		cond = meta.FindStatusCondition(foo.Status.Conditions, samplev1.ConditionReady)
		return cond != nil && cond.Status == status && cond.Reason == reason, fmt.Sprintf("%+v", foo.Status)
	})
	return cond
}

func waitForDeploymentReplicas(t *testing.T, p *controllerProcess, ns, name string, replicas int32) *appsv1.Deployment {
	t.Helper()
	var d *appsv1.Deployment
	eventually(t, p, 30*time.Second, fmt.Sprintf("Deployment %s to have %d replicas", name, replicas), func() (bool, string) {
		var err error
		d, err = getDeployment(ns, name)
		if err != nil {
			return false, err.Error()
		}
		return *d.Spec.Replicas == replicas, fmt.Sprintf("spec.replicas=%d", *d.Spec.Replicas)
	})
	return d
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

// ---- what the API server saw: its audit log ----

// auditMark is a position in the audit log; controllerRequestsSince reads what came after it.
func auditMark(t *testing.T) int64 {
	t.Helper()
	mark, err := auditlog.Mark(auditLogPath)
	if err != nil {
		t.Fatal(err)
	}
	return mark
}

// forEachAuditLineSince calls fn with each line the audit log gained after mark.
func forEachAuditLineSince(t *testing.T, mark int64, fn func(line []byte)) {
	t.Helper()
	if err := auditlog.EachLineSince(auditLogPath, mark, fn); err != nil {
		t.Fatal(err)
	}
}

// controllerRequestsSince returns the completed requests the controller (recognised by its
// user agent) made in namespace ns after mark.
func controllerRequestsSince(t *testing.T, mark int64, ns string) []auditlog.Event {
	t.Helper()
	events, err := auditlog.ControllerRequestsSince(auditLogPath, mark, ns)
	if err != nil {
		t.Fatal(err)
	}
	return events
}

func writesOf(events []auditlog.Event) []auditlog.Event {
	var out []auditlog.Event
	for _, e := range events {
		switch e.Verb {
		case "create", "update", "patch", "delete", "deletecollection":
			out = append(out, e)
		}
	}
	return out
}
