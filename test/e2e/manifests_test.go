//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// The shipped Deployment's two replicas land on different nodes, and its PodDisruptionBudget
// lets a drain evict one of them at a time.
//
// Without a spread constraint the scheduler spreads a ReplicaSet's pods only weakly (its system
// default, maxSkew 3, is a small part of a node's score), and a node with more room wins over
// it: both replicas go there, and one node's loss takes both. So the test first makes every node
// but one busy (a filler pod requests 95% of it), then shows that the shipped constraint still
// puts the second replica on a busy node.
//
// The rendered kustomization's Namespace, ServiceAccount, PodDisruptionBudget and Deployment are
// applied as they are (its RBAC and Service are not needed for this). kwok's fake nodes run any
// image: the pods become Running and Ready, but no container runs, so these pods are not
// controllers. They share the sample-controller namespace with the Lease of
// TestInClusterWithShippedRBAC, but never touch it, and they are gone when this test ends.
func TestShippedDeploymentSpreads(t *testing.T) {
	ctx := context.Background()

	nodes, err := kubeClient.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) < 2 {
		t.Fatalf("the cluster has %d nodes, this test needs 2 (TestMain starts it with LOCAL_CLUSTER_NODES=2)", len(nodes.Items))
	}
	roomy := nodes.Items[0].Name
	fillBusyNodes(t, nodes.Items[1:])

	var deployment appsv1.Deployment
	var objs []map[string]interface{}
	havePDB := false
	for _, obj := range kustomize(t, "artifacts/deploy") {
		switch obj["kind"] {
		case "Namespace", "ServiceAccount":
			objs = append(objs, obj)
		case "PodDisruptionBudget":
			objs = append(objs, obj)
			havePDB = true
		case "Deployment":
			fromObject(t, obj, &deployment)
			objs = append(objs, obj)
		}
	}
	if deployment.Name == "" {
		t.Fatal("the kustomization has no Deployment")
	}
	cleanUpShippedDeployment(t, &deployment)
	if out, err := kubectlApply(toYAML(t, objs...)); err != nil {
		t.Fatalf("applying the shipped Deployment: %v\n%s", err, out)
	}

	selector := metav1.FormatLabelSelector(deployment.Spec.Selector)
	var pods []corev1.Pod
	eventually(t, nil, 90*time.Second, "the shipped Deployment's 2 pods to be scheduled", func() (bool, string) {
		list, err := kubeClient.CoreV1().Pods(deployNamespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err.Error()
		}
		pods = pods[:0]
		var state []string
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil && p.Spec.NodeName != "" {
				pods = append(pods, p)
			}
			state = append(state, p.Name+"@"+p.Spec.NodeName+"/"+string(p.Status.Phase))
		}
		return len(pods) == 2, fmt.Sprint(state)
	})
	t.Logf("replicas on %s and %s (%s has room, the others are busy)", pods[0].Spec.NodeName, pods[1].Spec.NodeName, roomy)
	if pods[0].Spec.NodeName == pods[1].Spec.NodeName {
		t.Errorf("both replicas of the shipped Deployment are on node %s: losing that node stops the controller", pods[0].Spec.NodeName)
	}

	if !havePDB {
		t.Fatal("the kustomization has no PodDisruptionBudget")
	}
	// The disruption controller (kube-controller-manager) finds the pods through the PDB's
	// selector and their Deployment's scale: two expected, both healthy, one may be evicted.
	eventually(t, nil, 90*time.Second, "the PodDisruptionBudget to allow one disruption of two pods", func() (bool, string) {
		pdb, err := kubeClient.PolicyV1().PodDisruptionBudgets(deployNamespace).Get(ctx, deployment.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		st := pdb.Status
		return st.ExpectedPods == 2 && st.CurrentHealthy == 2 && st.DesiredHealthy == 1 && st.DisruptionsAllowed == 1,
			fmt.Sprintf("%+v", st)
	})
}

// fillBusyNodes makes each node nearly full: one pod pinned to it requests 95% of its CPU and
// memory, which leaves room for the controller's small requests. Deleted (and waited for) at the
// end, so no later test finds a busy node.
func fillBusyNodes(t *testing.T, nodes []corev1.Node) {
	t.Helper()
	ctx := context.Background()
	ns := newNamespace(t)
	var created []string
	t.Cleanup(func() {
		for _, name := range created {
			_ = kubeClient.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		}
		eventually(t, nil, 60*time.Second, "the filler pods to be gone", func() (bool, string) {
			list, err := kubeClient.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
			return err == nil && len(list.Items) == 0, fmt.Sprint(len(list.Items), err)
		})
	})
	for _, node := range nodes {
		cpu, memory := node.Status.Allocatable[corev1.ResourceCPU], node.Status.Allocatable[corev1.ResourceMemory]
		requests := corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewMilliQuantity(cpu.MilliValue()/100*95, resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(memory.Value()/100*95, resource.BinarySI),
		}
		pod, err := kubeClient.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "filler-"},
			Spec: corev1.PodSpec{
				NodeSelector: map[string]string{corev1.LabelHostname: node.Labels[corev1.LabelHostname]},
				Containers: []corev1.Container{{
					Name: "filler", Image: "registry.k8s.io/pause:3.10",
					Resources: corev1.ResourceRequirements{Requests: requests},
				}},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		created = append(created, pod.Name)
	}
	// Scheduled, so the scheduler counts them before the controller's pods arrive.
	eventually(t, nil, 60*time.Second, "the filler pods to be scheduled", func() (bool, string) {
		list, err := kubeClient.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var state []string
		scheduled := 0
		for _, p := range list.Items {
			if p.Spec.NodeName != "" {
				scheduled++
			}
			state = append(state, p.Name+"@"+p.Spec.NodeName)
		}
		return scheduled == len(nodes), strings.Join(state, " ")
	})
}

// cleanUpShippedDeployment removes, at the end of the test, what it applies: the Deployment and
// its PodDisruptionBudget, waiting until their pods are gone; and the ServiceAccount and the
// Namespace if they did not exist before (TestInClusterWithShippedRBAC and
// TestManifestsPassServerSideDryRun install them too, and keep them). A Namespace it deletes is
// waited for until it is gone: one still terminating would refuse the next test's objects.
func cleanUpShippedDeployment(t *testing.T, deployment *appsv1.Deployment) {
	t.Helper()
	ctx := context.Background()
	_, err := kubeClient.CoreV1().Namespaces().Get(ctx, deployNamespace, metav1.GetOptions{})
	namespaceExisted := err == nil
	_, err = kubeClient.CoreV1().ServiceAccounts(deployNamespace).Get(ctx, deployment.Spec.Template.Spec.ServiceAccountName, metav1.GetOptions{})
	serviceAccountExisted := err == nil
	if !namespaceExisted || !serviceAccountExisted {
		t.Logf("the %s namespace existed: %v, its ServiceAccount: %v; what did not is deleted at the end", deployNamespace, namespaceExisted, serviceAccountExisted)
	}

	t.Cleanup(func() {
		ctx := context.Background()
		background := metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}
		if err := kubeClient.AppsV1().Deployments(deployNamespace).Delete(ctx, deployment.Name, background); err != nil && !isNotFound(err) {
			t.Errorf("deleting the Deployment: %v", err)
		}
		if err := kubeClient.PolicyV1().PodDisruptionBudgets(deployNamespace).Delete(ctx, deployment.Name, metav1.DeleteOptions{}); err != nil && !isNotFound(err) {
			t.Errorf("deleting the PodDisruptionBudget: %v", err)
		}
		selector := metav1.FormatLabelSelector(deployment.Spec.Selector)
		eventually(t, nil, 90*time.Second, "the shipped Deployment's pods and ReplicaSets to be gone", func() (bool, string) {
			pods, err := kubeClient.CoreV1().Pods(deployNamespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
			if err != nil {
				return false, err.Error()
			}
			rss, err := kubeClient.AppsV1().ReplicaSets(deployNamespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
			if err != nil {
				return false, err.Error()
			}
			return len(pods.Items) == 0 && len(rss.Items) == 0, fmt.Sprintf("%d pods, %d ReplicaSets", len(pods.Items), len(rss.Items))
		})
		if !serviceAccountExisted && namespaceExisted {
			if err := kubeClient.CoreV1().ServiceAccounts(deployNamespace).Delete(ctx, deployment.Spec.Template.Spec.ServiceAccountName, metav1.DeleteOptions{}); err != nil && !isNotFound(err) {
				t.Errorf("deleting the ServiceAccount: %v", err)
			}
		}
		if !namespaceExisted {
			if err := kubeClient.CoreV1().Namespaces().Delete(ctx, deployNamespace, metav1.DeleteOptions{}); err != nil && !isNotFound(err) {
				t.Errorf("deleting the namespace: %v", err)
			}
			eventually(t, nil, 120*time.Second, "the "+deployNamespace+" namespace to be gone", func() (bool, string) {
				ns, err := kubeClient.CoreV1().Namespaces().Get(ctx, deployNamespace, metav1.GetOptions{})
				if isNotFound(err) {
					return true, ""
				}
				if err != nil {
					return false, err.Error()
				}
				return false, fmt.Sprintf("%s %+v", ns.Status.Phase, ns.Status.Conditions)
			})
		}
	})
}

// fromObject converts one decoded manifest into its typed API object.
func fromObject(t *testing.T, obj map[string]interface{}, into interface{}) {
	t.Helper()
	b, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		t.Fatal(err)
	}
}

// checkSpreadAndDisruptionBudget: the controller's Deployment asks for its replicas on different
// nodes and has a PodDisruptionBudget that lets a drain evict one at a time, and both select
// exactly the Deployment's own pods. A selector that misses the pod template's labels would be
// accepted by the API server and silently do nothing (a budget for no pods, a spread counting
// none), so it is checked here. TestShippedDeploymentSpreads shows both at work on real nodes.
func checkSpreadAndDisruptionBudget(t *testing.T, deployment *appsv1.Deployment, pdb *policyv1.PodDisruptionBudget) {
	t.Helper()
	podLabels := labels.Set(deployment.Spec.Template.Labels)
	selects := func(what string, ls *metav1.LabelSelector) {
		t.Helper()
		sel, err := metav1.LabelSelectorAsSelector(ls)
		switch {
		case err != nil:
			t.Errorf("%s: %v", what, err)
		case sel.Empty():
			t.Errorf("%s is empty: it selects every pod of the namespace, not only the controller's", what)
		case !sel.Matches(podLabels):
			t.Errorf("%s %q does not select the Deployment's pod template labels %v", what, sel, podLabels)
		}
	}

	var spread []corev1.TopologySpreadConstraint
	for _, c := range deployment.Spec.Template.Spec.TopologySpreadConstraints {
		if c.TopologyKey == corev1.LabelHostname {
			spread = append(spread, c)
		}
	}
	if len(spread) != 1 {
		t.Errorf("the Deployment has %d topologySpreadConstraints on %s, want 1: %+v", len(spread), corev1.LabelHostname, deployment.Spec.Template.Spec.TopologySpreadConstraints)
	} else {
		c := spread[0]
		if c.MaxSkew != 1 || c.WhenUnsatisfiable != corev1.ScheduleAnyway {
			t.Errorf("spread over %s: maxSkew %d, whenUnsatisfiable %s; want 1 and ScheduleAnyway (a preference: both replicas must run even where only one node can take them)", c.TopologyKey, c.MaxSkew, c.WhenUnsatisfiable)
		}
		selects("the spread constraint's labelSelector", c.LabelSelector)
	}

	if pdb == nil {
		t.Errorf("the kustomization has no PodDisruptionBudget")
		return
	}
	if pdb.Spec.MaxUnavailable == nil || *pdb.Spec.MaxUnavailable != intstr.FromInt32(1) || pdb.Spec.MinAvailable != nil {
		t.Errorf("PodDisruptionBudget: maxUnavailable %v, minAvailable %v; want maxUnavailable 1 only", pdb.Spec.MaxUnavailable, pdb.Spec.MinAvailable)
	}
	selects("the PodDisruptionBudget's selector", pdb.Spec.Selector)
}
