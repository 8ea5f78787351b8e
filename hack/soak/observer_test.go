package main

import (
	"errors"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
)

// convergedPair is a Foo with 2 replicas and its Deployment, as the controller leaves them.
func convergedPair() (*samplev1.Foo, *appsv1.Deployment, *reference) {
	f := newFoo("ns", "foo-1", 2)
	f.UID, f.Generation = "uid-1", 3
	f.Status = samplev1.FooStatus{ObservedGeneration: 3, AvailableReplicas: 2, Conditions: []metav1.Condition{
		{Type: samplev1.ConditionReady, Status: metav1.ConditionTrue, ObservedGeneration: 3, Reason: samplev1.ReasonDeploymentAvailable},
	}}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "foo-1", Namespace: "ns",
			Labels: map[string]string{"app.kubernetes.io/name": "nginx", fooLabel: "foo-1", "someone-elses": "x"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: samplev1.SchemeGroupVersion.String(), Kind: "Foo", Name: "foo-1",
				UID: "uid-1", Controller: ptr.To(true)}}},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1"}}}}},
		Status: appsv1.DeploymentStatus{AvailableReplicas: 2},
	}
	return f, d, &reference{image: "nginx:1", labels: map[string]string{"app.kubernetes.io/name": "nginx"}}
}

func TestConverged(t *testing.T) {
	f, d, ref := convergedPair()
	if !converged(f, d, ref) {
		t.Fatal("the converged pair is not converged")
	}
	if !converged(f, d, nil) {
		t.Error("not converged without a reference yet")
	}
	for name, change := range map[string]func(*samplev1.Foo, *appsv1.Deployment){
		"no Deployment":           nil,
		"status of an older spec": func(f *samplev1.Foo, _ *appsv1.Deployment) { f.Generation = 4 },
		"not Ready": func(f *samplev1.Foo, _ *appsv1.Deployment) {
			f.Status.Conditions[0].Status = metav1.ConditionFalse
		},
		"Ready of an older spec":      func(f *samplev1.Foo, _ *appsv1.Deployment) { f.Status.Conditions[0].ObservedGeneration = 2 },
		"no Ready condition":          func(f *samplev1.Foo, _ *appsv1.Deployment) { f.Status.Conditions = nil },
		"status short of replicas":    func(f *samplev1.Foo, _ *appsv1.Deployment) { f.Status.AvailableReplicas = 1 },
		"scaled, not yet acted on":    func(f *samplev1.Foo, _ *appsv1.Deployment) { f.Spec.Replicas = ptr.To[int32](0) },
		"an earlier Foo's Deployment": func(_ *samplev1.Foo, d *appsv1.Deployment) { d.OwnerReferences[0].UID = "uid-0" },
		"nobody's Deployment":         func(_ *samplev1.Foo, d *appsv1.Deployment) { d.OwnerReferences = nil },
		"replicas edited":             func(_ *samplev1.Foo, d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](1) },
		"pods not yet available":      func(_ *samplev1.Foo, d *appsv1.Deployment) { d.Status.AvailableReplicas = 1 },
		"image edited": func(_ *samplev1.Foo, d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Image = driftImage
		},
		"managed label edited": func(_ *samplev1.Foo, d *appsv1.Deployment) { d.Labels["app.kubernetes.io/name"] = "soak-drift" },
		"foo label edited":     func(_ *samplev1.Foo, d *appsv1.Deployment) { d.Labels[fooLabel] = "foo-2" },
	} {
		f, d, ref := convergedPair()
		if change == nil {
			d = nil
		} else {
			change(f, d)
		}
		if converged(f, d, ref) {
			t.Errorf("%s: converged", name)
		}
	}
	// A foreign label is the Deployment's business: the controller leaves it, and so does the check.
	f, d, ref = convergedPair()
	d.Labels["soak.example.com/touched"] = "7"
	if !converged(f, d, ref) {
		t.Error("a foreign label made the pair not converged")
	}
	// Replicas 0: Ready with nothing available.
	f, d, ref = convergedPair()
	f.Spec.Replicas, f.Status.AvailableReplicas, d.Spec.Replicas, d.Status.AvailableReplicas = ptr.To[int32](0), 0, ptr.To[int32](0), 0
	if !converged(f, d, ref) {
		t.Error("a Foo with replicas 0 is not converged")
	}
}

func TestOutcome(t *testing.T) {
	gr := schema.GroupResource{Group: "apps", Resource: "deployments"}
	for err, want := range map[error]string{
		nil:                                     "ok",
		apierrors.NewNotFound(gr, "x"):          "not found",
		apierrors.NewAlreadyExists(gr, "x"):     "already exists",
		apierrors.NewConflict(gr, "x", nil):     "conflict",
		apierrors.NewServiceUnavailable("down"): "error",
		errors.New("connection reset by peer"):  "error",
	} {
		if got := outcome(err); got != want {
			t.Errorf("outcome(%v) = %q, want %q", err, got, want)
		}
	}
}

func TestReplicasFor(t *testing.T) {
	counts := map[int32]int{}
	for i := range 1000 {
		counts[replicasFor(float64(i)/1000)]++
	}
	if counts[0] != 500 || counts[1] != 400 || counts[2] != 100 {
		t.Errorf("replicas drawn over [0, 1) = %v, want 500 zeros, 400 ones, 100 twos", counts)
	}
}

func TestOpWeightsAddUpTo100(t *testing.T) {
	sum := 0
	for _, w := range opWeights {
		sum += w.weight
	}
	if sum != 100 {
		t.Errorf("the churn's weights add up to %d, want 100", sum)
	}
}
