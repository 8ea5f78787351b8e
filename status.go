// The Foo's status: the Ready condition, read from the Deployment or from what went wrong (a
// Deployment that is not ours, a refused write, an invalid spec), and the one write that reports
// it through the /status subresource, made only when something changed.
package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
)

// newReadyCondition builds the Ready condition for this generation of the Foo. The message is
// made valid UTF-8 (validUTF8) and cut to maxConditionMessage: it may quote other components (a
// webhook's denial in a Deployment's ReplicaFailure, the API server's refusal), and a message
// over the schema's limit would make every status write fail.
func newReadyCondition(foo *samplev1.Foo, status metav1.ConditionStatus, reason, message string) metav1.Condition {
	return metav1.Condition{
		Type:               samplev1.ConditionReady,
		Status:             status,
		Reason:             reason,
		Message:            truncate(validUTF8(message), maxConditionMessage),
		ObservedGeneration: foo.Generation,
	}
}

// deploymentReadyCondition reads the Deployment's status. The Deployment controller (in
// kube-controller-manager) writes that status; we only interpret it. A Deployment is ready
// when its controller has seen its latest spec (status.observedGeneration) and every desired
// replica is updated and available, with no old pods left over.
func deploymentReadyCondition(foo *samplev1.Foo, d *appsv1.Deployment) metav1.Condition {
	want := desiredReplicas(foo)
	progress := fmt.Sprintf("%d of %d replicas available", d.Status.AvailableReplicas, want)
	// Zero replicas need no rollout: a Deployment asked for none is ready as soon as none of its
	// pods is left, whether or not the Deployment controller has looked at it yet. (A new Foo
	// with replicas 0 is then Ready in its first status write, with no second write to follow.)
	observed := d.Status.ObservedGeneration >= d.Generation || (want == 0 && d.Status.Replicas == 0)
	if observed && d.Status.UpdatedReplicas == want &&
		d.Status.AvailableReplicas == want && d.Status.Replicas == want {
		return newReadyCondition(foo, metav1.ConditionTrue, samplev1.ReasonDeploymentAvailable, "Deployment "+d.Name+": "+progress)
	}
	// ReplicaFailure: the Deployment's ReplicaSet cannot create pods (a ResourceQuota, Pod
	// Security admission, a webhook). The Deployment controller copies the ReplicaSet's condition
	// at once; without it, the Foo would say "progressing" until the progress deadline (10 min).
	for _, cond := range d.Status.Conditions {
		if cond.Type == appsv1.DeploymentReplicaFailure && cond.Status == corev1.ConditionTrue {
			return newReadyCondition(foo, metav1.ConditionFalse, samplev1.ReasonDeploymentReplicaFailure,
				// No replica count in the message: while the failure lasts, availability may move,
				// and each new message would announce the same failure in another Warning event.
				"Deployment "+d.Name+": pods cannot be created: "+cond.Reason+": "+cond.Message)
		}
	}
	for _, cond := range d.Status.Conditions {
		if cond.Type == appsv1.DeploymentProgressing && cond.Status == corev1.ConditionFalse && cond.Reason == "ProgressDeadlineExceeded" {
			return newReadyCondition(foo, metav1.ConditionFalse, samplev1.ReasonDeploymentProgressDeadlineExceeded,
				"Deployment "+d.Name+": "+progress+": "+cond.Message)
		}
	}
	return newReadyCondition(foo, metav1.ConditionFalse, samplev1.ReasonDeploymentProgressing, "Deployment "+d.Name+": "+progress)
}

// isWarning tells a Ready condition that reports a problem someone must act on (every False
// reason but DeploymentProgressing) from progress and success. Its Warning event carries the
// condition's own reason: one vocabulary for both.
func isWarning(ready metav1.Condition) bool {
	return ready.Status == metav1.ConditionFalse && ready.Reason != samplev1.ReasonDeploymentProgressing
}

// isRejection tells a write the API server refused on its merits (422 Invalid from an admission
// policy, 403 Forbidden from a ResourceQuota, a webhook or RBAC, 400 Bad Request, 413 too large)
// from a hiccup that the next retry absorbs (409 Conflict, AlreadyExists, timeouts, 429, 5xx). A rejection is
// something the Foo's owner must be told about: only they can change the spec, the policy or
// the quota.
func isRejection(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsBadRequest(err) ||
		apierrors.IsRequestEntityTooLargeError(err)
}

// reportRejection puts the API server's refusal on the Foo (Ready=False, DeploymentRejected, the
// server's message; a Warning Event when new) and still returns the error, so the queue retries
// with backoff: a quota can free up and a policy can change, and we watch neither.
// The message is renewed only when the spec, the verb or the kind of refusal changes: each status
// write comes back as an update event that requeues the key past the backoff, so a refusal worded
// differently each time (a request ID in it) would otherwise loop at full QPS.
func (c *Controller) reportRejection(ctx context.Context, foo *samplev1.Foo, deployment *appsv1.Deployment, verb string, err error) error {
	kind := rejectionPrefix(verb, foo.Spec.Deployment.Name) + string(apierrors.ReasonForError(err)) + "): "
	msg := kind + err.Error()
	if prev := meta.FindStatusCondition(foo.Status.Conditions, samplev1.ConditionReady); prev != nil &&
		prev.Reason == samplev1.ReasonDeploymentRejected && prev.ObservedGeneration == foo.Generation &&
		strings.HasPrefix(prev.Message, kind) {
		msg = prev.Message
	}
	cond := newReadyCondition(foo, metav1.ConditionFalse, samplev1.ReasonDeploymentRejected, msg)
	return errors.Join(fmt.Errorf("%s Deployment %s/%s: %w", verb, foo.Namespace, foo.Spec.Deployment.Name, err),
		c.updateFooStatus(ctx, foo, deployment, cond))
}

// rejectionPrefix is how reportRejection's message begins for a request (verb) on the named
// Deployment; the refusal's reason follows it.
func rejectionPrefix(verb, deploymentName string) string {
	return "the API server refused " + verb + " Deployment " + deploymentName + " ("
}

// createWasRefused tells whether the Foo's status reports that the API server refused our create
// of its Deployment. Then, as for a new Foo, no Deployment of ours has existed since, unless a
// later create succeeded and the report of it never landed (the Foo deleted meanwhile, a
// conflict, a restart): the same window a new Foo's first create has.
func createWasRefused(foo *samplev1.Foo) bool {
	ready := meta.FindStatusCondition(foo.Status.Conditions, samplev1.ConditionReady)
	return ready != nil && ready.Reason == samplev1.ReasonDeploymentRejected &&
		strings.HasPrefix(ready.Message, rejectionPrefix("creating", foo.Spec.Deployment.Name))
}

// validUTF8 replaces each byte of s that is not part of valid UTF-8 with U+FFFD, as the JSON
// encoding of the status write does: the message compared on the next sync is then the one the
// API server stored. (A Deployment arrives as protobuf, which passes any bytes through, and its
// conditions quote whatever a webhook answered.)
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	// Ranging over a string yields utf8.RuneError for each invalid byte, which strings.Map
	// writes out as U+FFFD.
	return strings.Map(func(r rune) rune { return r }, s)
}

// maxConditionMessage bounds a condition's message, in bytes: the schema allows 32768
// characters, and a few KiB say all a reader needs.
const maxConditionMessage = 4096

// truncate cuts s to at most limit bytes, "..." included, without splitting a UTF-8 character
// (limit leaves room for the "...": maxConditionMessage does).
// What it returns is within the bound, so cutting it again changes nothing: the next sync's
// message equals the one written, and no status write follows.
func truncate(s string, limit int) string {
	const ellipsis = "..."
	if len(s) <= limit {
		return s
	}
	cut := max(limit-len(ellipsis), 0)
	// Back to the start of the character the cut falls in. No character is longer than
	// utf8.UTFMax bytes, so going further back would only eat invalid UTF-8 (bytes quoted from
	// another component), which has no character to keep whole.
	for back := 1; back < utf8.UTFMax && cut > 0 && !utf8.RuneStart(s[cut]); back++ {
		cut--
	}
	return s[:cut] + ellipsis
}

// updateFooStatus computes the Foo's new status from what we observed and writes it through
// the /status subresource, but only if it differs semantically from the status the Foo has:
// a Foo that is already converged costs no API request at all. When the Ready condition reports
// a problem (isWarning) and the write changed its reason or message, a Warning event with that
// reason is recorded: a problem that persists across syncs is announced once, not on every resync, and
// not before the status that records it is written (a failed write is retried, and would
// otherwise announce it again on each attempt).
func (c *Controller) updateFooStatus(ctx context.Context, foo *samplev1.Foo, deployment *appsv1.Deployment,
	ready metav1.Condition) error {
	// DeepCopy: foo is the cache's object. Modifying it in place would change what every other
	// reader of the cache sees, and would make the comparison below always "equal".
	fooCopy := foo.DeepCopy()
	fooCopy.Status.ObservedGeneration = foo.Generation
	fooCopy.Status.AvailableReplicas = 0
	if deployment != nil {
		fooCopy.Status.AvailableReplicas = deployment.Status.AvailableReplicas
	}
	previous := meta.FindStatusCondition(foo.Status.Conditions, samplev1.ConditionReady)
	// SetStatusCondition keeps lastTransitionTime when the condition's status did not change.
	meta.SetStatusCondition(&fooCopy.Status.Conditions, ready)

	if equality.Semantic.DeepEqual(foo.Status, fooCopy.Status) {
		klog.FromContext(ctx).V(4).Info("Status unchanged; no write needed")
		return nil
	}

	// PUT /apis/samplecontroller.example.com/v1/namespaces/NS/foos/NAME/status
	// The status subresource changes status only (the spec in our copy is ignored), and the
	// main resource ignores status changes: users own spec, the controller owns status.
	klog.FromContext(ctx).V(2).Info("Status changed; updating it", "ready", ready.Status, "reason", ready.Reason,
		"availableReplicas", fooCopy.Status.AvailableReplicas)
	updated, err := c.sampleclientset.SamplecontrollerV1().Foos(foo.Namespace).UpdateStatus(ctx, fooCopy,
		metav1.UpdateOptions{FieldManager: controllerAgentName})
	if apierrors.IsNotFound(err) {
		return nil // deleted while we worked; nothing left to report on
	}
	if err != nil {
		return err
	}
	c.ownWrites.wrote(fooResource, cache.MetaObjectToName(foo), foo.ResourceVersion, updated.ResourceVersion)
	if isWarning(ready) && (previous == nil || previous.Reason != ready.Reason || previous.Message != ready.Message) {
		c.recorder.Event(foo, corev1.EventTypeWarning, ready.Reason, ready.Message)
	}
	return nil
}

// invalidSpecCondition reports a spec the controller cannot act on, or nil. The CRD's schema
// rejects a bad deployment name when the API server validates a write; this is for a cluster running an older CRD without
// that schema. Retrying cannot fix a spec, so the sync reports it and ends: the next edit of the
// Foo brings the key back.
func invalidSpecCondition(foo *samplev1.Foo) *metav1.Condition {
	msgs := validation.IsDNS1123Subdomain(foo.Spec.Deployment.Name)
	if len(msgs) == 0 {
		return nil
	}
	cond := newReadyCondition(foo, metav1.ConditionFalse, samplev1.ReasonInvalidSpec,
		fmt.Sprintf("spec.deployment.name %q is not a valid Deployment name: %v", foo.Spec.Deployment.Name, msgs))
	return &cond
}

// notOwnedCondition reports a Deployment of the Foo's name that someone else controls. The
// controller never touches it and does not retry (retrying could not succeed): when that
// Deployment is deleted, handleDeployment brings the Foo back through the deployment-name index.
func notOwnedCondition(foo *samplev1.Foo, deployment *appsv1.Deployment) metav1.Condition {
	return newReadyCondition(foo, metav1.ConditionFalse, samplev1.ReasonDeploymentNotOwned,
		fmt.Sprintf("Deployment %s already exists and is not controlled by this Foo; delete it, or recreate the Foo with another spec.deployment.name", deployment.Name))
}

// selectorMismatchCondition says what to do about a Deployment whose selector is not the Foo's.
func selectorMismatchCondition(foo *samplev1.Foo, desired, deployment *appsv1.Deployment) metav1.Condition {
	return newReadyCondition(foo, metav1.ConditionFalse, samplev1.ReasonDeploymentSelectorMismatch,
		fmt.Sprintf("Deployment %s selects pods by %q, but this Foo's pods are labelled %q, and a Deployment's selector cannot be changed: delete the Deployment, and the controller creates it again with the right selector",
			deployment.Name, metav1.FormatLabelSelector(deployment.Spec.Selector), metav1.FormatLabelSelector(desired.Spec.Selector)))
}
