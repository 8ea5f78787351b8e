// The Deployment a Foo asks for, and what "drift" means: which of the live Deployment's fields
// the controller owns and puts back, and which it leaves to others. Also the two writes that
// make the Deployment exist and match (POST and PUT), called from syncFoo.
package main

import (
	"context"
	"fmt"
	"maps"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
)

const (
	// fooLabel is put on the Deployment, its selector and its pods. Its value is the Foo's
	// name, which is why the CRD limits Foo names to 63 characters (a label value's limit).
	fooLabel = "samplecontroller.example.com/foo"

	// watchedDeployments is the label selector of the Deployment informer ("has fooLabel"):
	// the API server sends this process only the Deployments it made, so the cluster's other
	// Deployments, however many, cost it no memory and no events. The price: a Deployment
	// without the label that holds a Foo's wanted name is not in the cache; the refused create
	// finds it (see existingDeployment).
	watchedDeployments = fooLabel
)

// isWatched tells whether a Deployment matches watchedDeployments, so that the cache shows it.
func isWatched(d *appsv1.Deployment) bool {
	_, ok := d.Labels[fooLabel]
	return ok
}

// desiredReplicas is spec.replicas. The API server defaults it to 1 (from the CRD's schema, as it
// decodes the request); the nil check covers objects stored before that default existed.
func desiredReplicas(foo *samplev1.Foo) int32 {
	if foo.Spec.Replicas == nil {
		return 1
	}
	return *foo.Spec.Replicas
}

// fooImage is the image of the Foo's pods: spec.deployment.image, or the default image when
// the Foo leaves it empty (every Foo written through v1alpha1 without the image annotation).
func fooImage(foo *samplev1.Foo) string {
	if foo.Spec.Deployment.Image != "" {
		return foo.Spec.Deployment.Image
	}
	return samplev1.DefaultImage
}

// newDeployment is the Deployment a Foo asks for. Its controller ownerReference (controller:
// true, blockOwnerDeletion: true) marks the Foo as its one managing owner: the garbage
// collector deletes the Deployment after the Foo, and handleDeployment maps it back to the Foo.
func newDeployment(foo *samplev1.Foo) *appsv1.Deployment {
	labels := map[string]string{
		"app.kubernetes.io/name":       "nginx",
		"app.kubernetes.io/managed-by": controllerAgentName,
		fooLabel:                       foo.Name,
	}
	replicas := desiredReplicas(foo)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name:            foo.Spec.Deployment.Name,
			Namespace:       foo.Namespace,
			Labels:          labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(foo, fooGroupVersionKind)},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			// The selector is immutable once created; it picks this Foo's pods only.
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{fooLabel: foo.Name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: maps.Clone(labels)},
				Spec: corev1.PodSpec{
					// Compliant with the restricted Pod Security Standard, so that a Foo works in
					// a namespace that enforces it: a non-root user (the unprivileged nginx image
					// runs as 101 and listens on 8080), no privilege escalation, no capabilities,
					// the runtime's default seccomp profile.
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To[int64](101),
						RunAsGroup:     ptr.To[int64](101),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:  "nginx",
						Image: fooImage(foo),
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

// driftedFields lists the fields this controller manages and may write (replicas, labels, pod
// template; the selector is checked apart, since it cannot be changed) in which the live Deployment differs from the desired one; empty means in sync.
//
// The live object has many fields we never set, filled in by the API server's defaulting
// (imagePullPolicy, restartPolicy, terminationMessagePath, ...). equality.Semantic.DeepDerivative
// compares only what desired sets: "is every field desired sets equal in live?". Labels and
// annotations others add are allowed; an extra or removed container is not.
func driftedFields(desired, live *appsv1.Deployment) []string {
	var drifted []string
	if live.Spec.Replicas == nil || *live.Spec.Replicas != *desired.Spec.Replicas {
		drifted = append(drifted, "spec.replicas")
	}
	if !equality.Semantic.DeepDerivative(desired.Labels, live.Labels) {
		drifted = append(drifted, "metadata.labels")
	}
	if templateDrifted(desired, live) {
		drifted = append(drifted, "spec.template")
	}
	return drifted
}

func templateDrifted(desired, live *appsv1.Deployment) bool {
	return len(live.Spec.Template.Spec.Containers) != len(desired.Spec.Template.Spec.Containers) ||
		!equality.Semantic.DeepDerivative(desired.Spec.Template, live.Spec.Template)
}

// setManagedFields copies the fields this controller manages from desired into updated (a
// DeepCopy of the live Deployment), leaving everything else as it is.
func setManagedFields(updated, desired *appsv1.Deployment) {
	updated.Spec.Replicas = desired.Spec.Replicas
	if updated.Labels == nil {
		updated.Labels = map[string]string{}
	}
	maps.Copy(updated.Labels, desired.Labels)
	if templateDrifted(desired, updated) {
		// Replace the template, but keep annotations others put there: `kubectl rollout restart`
		// works by setting one, and dropping it would start another rollout.
		annotations := updated.Spec.Template.Annotations
		updated.Spec.Template = *desired.Spec.Template.DeepCopy()
		updated.Spec.Template.Annotations = annotations
	}
}

// createDeployment creates the Foo's Deployment. It returns the created Deployment, or nil when
// this sync ends here: the Foo is gone or going (nothing to build), or the API server refused
// the create (reported on the Foo, and the error returned for a retry with backoff).
func (c *Controller) createDeployment(ctx context.Context, foo *samplev1.Foo) (*appsv1.Deployment, error) {
	logger := klog.FromContext(ctx)
	if foo.Status.ObservedGeneration > 0 && !createWasRefused(foo) {
		// We reported on this Foo before, so its Deployment may have existed and been deleted:
		// perhaps by the garbage collector, right after the Foo itself. The two watches keep no
		// order between them, so the cache can still hold a Foo the API server has deleted.
		// Re-creating would start pods the collector then deletes; ask the API server first. (A
		// new Foo has no status yet, and one whose status says our create was refused has had
		// no Deployment of ours since, as far as its status knows: their creates cost no extra
		// request. The latter also keeps the report steady when RBAC lacks both `create` and
		// `get`: the retry is refused for the same reason, not for the check's.)
		exists, err := c.fooStillExists(ctx, foo)
		if isRejection(err) {
			// Missing RBAC (`get` on foos): say so on the Foo, which still claims its Deployment.
			return nil, c.reportRejection(ctx, foo, nil, "re-creating", err)
		}
		if err != nil || !exists {
			return nil, err
		}
	}
	// POST /apis/apps/v1/namespaces/NS/deployments
	logger.V(2).Info("Deployment does not exist; creating it", "deployment", klog.KRef(foo.Namespace, foo.Spec.Deployment.Name))
	deployment, err := c.kubeclientset.AppsV1().Deployments(foo.Namespace).Create(ctx, newDeployment(foo),
		metav1.CreateOptions{FieldManager: controllerAgentName})
	switch {
	case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		// The namespace is being deleted, and the Foo with it: nothing to build, report or retry.
		logger.V(2).Info("Namespace is terminating; not creating the Deployment")
		return nil, nil
	case isRejection(err):
		return nil, c.reportRejection(ctx, foo, nil, "creating", err)
	case apierrors.IsAlreadyExists(err):
		return c.existingDeployment(ctx, foo)
	case err != nil:
		return nil, fmt.Errorf("creating Deployment %s/%s: %w", foo.Namespace, foo.Spec.Deployment.Name, err)
	}
	// Until the cache shows it, a sync must not take its absence for a reason to create it.
	c.expectations.expect(cache.NewObjectName(foo.Namespace, foo.Spec.Deployment.Name))
	c.nameTakenBackoff.Forget(cache.MetaObjectToName(foo))
	c.recorder.Eventf(foo, corev1.EventTypeNormal, samplev1.EventReasonDeploymentCreated, "Created Deployment %s", deployment.Name)
	return deployment, nil
}

// existingDeployment reads, from the API server, the Deployment that holds the name a create was
// just refused for (409 AlreadyExists). Either our cache is behind (after a reconnect it can be
// seconds behind), or the Deployment lacks fooLabel, so the informer never shows it: someone
// else's, or ours with the label removed. Only the API server can tell which. The sync goes on
// with what it returns, so a name taken by another is reported and ours is repaired.
func (c *Controller) existingDeployment(ctx context.Context, foo *samplev1.Foo) (*appsv1.Deployment, error) {
	logger := klog.FromContext(ctx)
	key, name := cache.MetaObjectToName(foo), cache.NewObjectName(foo.Namespace, foo.Spec.Deployment.Name)
	// GET /apis/apps/v1/namespaces/NS/deployments/NAME
	live, err := c.kubeclientset.AppsV1().Deployments(name.Namespace).Get(ctx, name.Name, metav1.GetOptions{})
	switch {
	case isRejection(err):
		// Missing RBAC (`get` on deployments): say so on the Foo.
		return nil, c.reportRejection(ctx, foo, nil, "reading", err)
	case err != nil:
		// NotFound included: deleted since our create. Retry with backoff.
		return nil, fmt.Errorf("reading Deployment %s, which exists though not in the cache: %w", name, err)
	}
	switch {
	case isWatched(live):
		// The cache is behind. Until it shows the Deployment (its add event brings the Foo
		// back, the expectation's deadline if it never does), a sync must not take its absence
		// for a reason to create it.
		logger.V(2).Info("Deployment already exists, though not yet in the cache", "deployment", name)
		c.expectations.expect(name)
		c.workqueue.AddAfter(key, expectationTimeout)
	case !metav1.IsControlledBy(live, foo) || selectorMismatch(newDeployment(foo), live):
		// Invisible to the informer, and the sync will not make it ours: someone else's, or
		// ours with a selector that cannot be changed (both reported on the Foo, for a person
		// to act on). No event will say when the name is freed, so look again later, backing
		// off (5s, 10s, ... 5m); until then a sync does not try to create it (the expectation
		// says it exists). Ours with only the label removed needs none of this: the sync's
		// drift repair puts the label back, and the informer sees it from then on.
		wait := c.nameTakenBackoff.When(key)
		logger.V(2).Info("Deployment's name is taken by one we do not watch; looking again later", "deployment", name, "in", wait)
		c.expectations.expectFor(name, wait)
		c.workqueue.AddAfter(key, wait)
	}
	return live, nil
}

// fooStillExists asks the API server, not the cache, whether the Foo still exists as the same
// object (same UID) and is not being deleted.
func (c *Controller) fooStillExists(ctx context.Context, foo *samplev1.Foo) (bool, error) {
	// GET /apis/samplecontroller.example.com/v1/namespaces/NS/foos/NAME
	live, err := c.sampleclientset.SamplecontrollerV1().Foos(foo.Namespace).Get(ctx, foo.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		klog.FromContext(ctx).V(2).Info("Foo is gone from the API server though still in the cache; not re-creating its Deployment")
		return false, nil
	case err != nil:
		return false, fmt.Errorf("checking that Foo %s/%s still exists before re-creating its Deployment: %w", foo.Namespace, foo.Name, err)
	case live.UID != foo.UID || live.DeletionTimestamp != nil:
		klog.FromContext(ctx).V(2).Info("Foo was deleted or replaced since the cache saw it; not re-creating its Deployment")
		return false, nil
	}
	return true, nil
}

// selectorMismatch tells whether the live Deployment selects other pods than the Foo's. A
// Deployment's selector cannot be changed after creation (the API server answers 422), so it is
// not part of drift repair: such a Deployment (recreated by someone with our ownerReference, or
// made by an older version of this controller) is reported, for a person to delete.
func selectorMismatch(desired, live *appsv1.Deployment) bool {
	return !equality.Semantic.DeepEqual(live.Spec.Selector, desired.Spec.Selector)
}

// repairDrift puts back the fields this controller manages when someone (a user, another tool)
// changed them. It writes with Update (PUT) on a DeepCopy of the cached object rather than with
// server-side apply: the copy carries the resourceVersion we read, so a Deployment changed since
// gets a 409 Conflict instead of having a change we have not seen overwritten; and
// driftedFields decides locally whether a write is needed at all, which is what makes a converged
// Foo cost zero writes. It returns the Deployment as it now is, or nil when the API server
// refused the update (reported on the Foo, and the error returned for a retry with backoff).
func (c *Controller) repairDrift(ctx context.Context, foo *samplev1.Foo, desired, deployment *appsv1.Deployment) (*appsv1.Deployment, error) {
	logger := klog.FromContext(ctx)
	drifted := driftedFields(desired, deployment)
	if len(drifted) == 0 {
		logger.V(4).Info("Deployment matches the Foo's spec", "deployment", klog.KObj(deployment))
		return deployment, nil
	}
	updated := deployment.DeepCopy()
	setManagedFields(updated, desired)
	logger.V(2).Info("Deployment differs from the Foo's spec; updating it", "deployment", klog.KObj(deployment), "drifted", drifted)
	// PUT /apis/apps/v1/namespaces/NS/deployments/NAME
	updated, err := c.kubeclientset.AppsV1().Deployments(foo.Namespace).Update(ctx, updated,
		metav1.UpdateOptions{FieldManager: controllerAgentName})
	if isRejection(err) {
		// e.g. an admission policy capping replicas.
		return nil, c.reportRejection(ctx, foo, deployment, "updating", err)
	}
	if err != nil {
		return nil, fmt.Errorf("updating Deployment %s/%s: %w", foo.Namespace, foo.Spec.Deployment.Name, err)
	}
	c.ownWrites.wrote(deploymentResource, cache.MetaObjectToName(updated), deployment.ResourceVersion, updated.ResourceVersion)
	c.recorder.Eventf(foo, corev1.EventTypeNormal, samplev1.EventReasonDeploymentUpdated, "Updated Deployment %s to match the Foo's spec (%s)",
		updated.Name, strings.Join(drifted, ", "))
	return updated, nil
}
