package main

import (
	"context"
	"fmt"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
)

// fooLabel is the label sample-controller puts on a Foo's Deployment, its selector and its pods.
const fooLabel = "samplecontroller.example.com/foo"

// FooReconciler keeps each Foo's Deployment as its spec asks and reports it in the Foo's status.
// The embedded client reads from the manager's cache and writes to the API server.
//
// It records no Events: the kubebuilder book's tutorial records none, and sample-controller's
// Events (a create, an update, a Warning) are not on the path the benchmark times.
type FooReconciler struct {
	client.Client
	Scheme *runtime.Scheme
}

// Reconcile brings one Foo's Deployment and status to what its spec asks. It is called with the
// Foo's key whenever the Foo, or a Deployment it controls, changes; an error requeues the key
// with backoff.
func (r *FooReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var foo samplev1.Foo
	if err := r.Get(ctx, req.NamespacedName, &foo); err != nil {
		// NotFound: the Foo is gone; the garbage collector deletes its Deployment through the
		// ownerReference, so there is nothing to do.
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !foo.DeletionTimestamp.IsZero() {
		// Being deleted: building or reporting now would only race the garbage collector.
		return ctrl.Result{}, nil
	}

	var deployment appsv1.Deployment
	err := r.Get(ctx, client.ObjectKey{Namespace: foo.Namespace, Name: foo.Spec.Deployment.Name}, &deployment)
	switch {
	case apierrors.IsNotFound(err):
		desired := newDeployment(&foo)
		// The controller ownerReference makes the Deployment the Foo's: garbage-collected with
		// it, and mapped back to it by Owns() in SetupWithManager.
		if err := controllerutil.SetControllerReference(&foo, desired, r.Scheme); err != nil {
			return ctrl.Result{}, err
		}
		// AlreadyExists (the cache was behind) comes back as an error and a retry.
		if err := r.Create(ctx, desired); err != nil {
			return ctrl.Result{}, err
		}
		deployment = *desired // as the API server returned it
	case err != nil:
		return ctrl.Result{}, err
	case !metav1.IsControlledBy(&deployment, &foo):
		// Someone else's Deployment holds the name: never touch it, say so, and do not retry
		// (a retry cannot succeed). Owns() maps only Deployments the Foo controls, so that one's
		// deletion brings the Foo back only with its next change or the cache's periodic resync.
		return ctrl.Result{}, r.updateStatus(ctx, &foo, nil, metav1.Condition{
			Type:    samplev1.ConditionReady,
			Status:  metav1.ConditionFalse,
			Reason:  samplev1.ReasonDeploymentNotOwned,
			Message: fmt.Sprintf("Deployment %s already exists and is not controlled by this Foo", deployment.Name),
		})
	case ptr.Deref(deployment.Spec.Replicas, 1) != desiredReplicas(&foo):
		// Update (PUT) the cached copy: its resourceVersion makes a concurrent change a 409
		// Conflict, retried with backoff, rather than overwritten. (r.Get gave us a copy, not
		// the cache's own object, so changing it is safe.)
		deployment.Spec.Replicas = ptr.To(desiredReplicas(&foo))
		if err := r.Update(ctx, &deployment); err != nil {
			return ctrl.Result{}, err
		}
	}

	return ctrl.Result{}, r.updateStatus(ctx, &foo, &deployment, readyCondition(&foo, &deployment))
}

// readyCondition reads the Deployment's status, which the Deployment controller writes: Ready
// when it has seen the Deployment's latest spec and every desired replica is available. A
// simpler version of sample-controller's deploymentReadyCondition (status.go), with the same
// reasons for the same two outcomes.
func readyCondition(foo *samplev1.Foo, d *appsv1.Deployment) metav1.Condition {
	want := desiredReplicas(foo)
	// As sample-controller does: zero replicas need no rollout, so a new Foo with replicas 0 is
	// Ready in its first status write.
	observed := d.Status.ObservedGeneration >= d.Generation || (want == 0 && d.Status.Replicas == 0)
	cond := metav1.Condition{
		Type:    samplev1.ConditionReady,
		Status:  metav1.ConditionFalse,
		Reason:  samplev1.ReasonDeploymentProgressing,
		Message: fmt.Sprintf("Deployment %s: %d of %d replicas available", d.Name, d.Status.AvailableReplicas, want),
	}
	if observed && d.Status.AvailableReplicas >= want {
		cond.Status, cond.Reason = metav1.ConditionTrue, samplev1.ReasonDeploymentAvailable
	}
	return cond
}

// updateStatus sets the Foo's status from what was observed and writes it through the /status
// subresource only when it changed, as sample-controller does: a converged Foo costs no write,
// and the watch event our own write causes ends in a no-op reconcile instead of a loop.
func (r *FooReconciler) updateStatus(ctx context.Context, foo *samplev1.Foo, d *appsv1.Deployment, ready metav1.Condition) error {
	updated := foo.DeepCopy()
	updated.Status.ObservedGeneration = foo.Generation
	updated.Status.AvailableReplicas = 0
	if d != nil {
		updated.Status.AvailableReplicas = d.Status.AvailableReplicas
	}
	ready.ObservedGeneration = foo.Generation
	// SetStatusCondition keeps lastTransitionTime when the condition's status is unchanged.
	meta.SetStatusCondition(&updated.Status.Conditions, ready)
	if equality.Semantic.DeepEqual(foo.Status, updated.Status) {
		return nil
	}
	// A stale Foo (the cache behind our last write) gets a 409 Conflict: retried with backoff.
	return r.Status().Update(ctx, updated)
}

// desiredReplicas is spec.replicas; the CRD defaults it to 1, and nil means 1 as well.
func desiredReplicas(foo *samplev1.Foo) int32 {
	return ptr.Deref(foo.Spec.Replicas, 1)
}

// newDeployment is the Deployment sample-controller makes for a Foo (its deployment.go), labels
// included, so that both controllers create the same objects for the benchmark. The owner is
// set by the caller, with controllerutil.SetControllerReference.
func newDeployment(foo *samplev1.Foo) *appsv1.Deployment {
	labels := map[string]string{
		"app.kubernetes.io/name":       "nginx",
		"app.kubernetes.io/managed-by": "sample-controller",
		fooLabel:                       foo.Name,
	}
	image := foo.Spec.Deployment.Image
	if image == "" {
		image = samplev1.DefaultImage
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name:      foo.Spec.Deployment.Name,
			Namespace: foo.Namespace,
			Labels:    labels,
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(desiredReplicas(foo)),
			// Immutable once created; it picks this Foo's pods only.
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{fooLabel: foo.Name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: maps.Clone(labels)},
				Spec: corev1.PodSpec{
					// The restricted Pod Security Standard: non-root (the unprivileged nginx image
					// runs as 101 and listens on 8080), no escalation, no capabilities, the
					// runtime's default seccomp profile.
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To[int64](101),
						RunAsGroup:     ptr.To[int64](101),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:  "nginx",
						Image: image,
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
				},
			},
		},
	}
}

// SetupWithManager registers the controller: reconcile a Foo when it changes (For), and when a
// Deployment it controls changes (Owns maps the Deployment to its controller owner's key).
// The cache behind both watches holds every Foo and every Deployment of the watched
// namespace(s): controller-runtime's default, which is what the benchmark measures.
func (r *FooReconciler) SetupWithManager(mgr ctrl.Manager, maxConcurrentReconciles int) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&samplev1.Foo{}).
		Owns(&appsv1.Deployment{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: maxConcurrentReconciles}).
		Complete(r)
}
