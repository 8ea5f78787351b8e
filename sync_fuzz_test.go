package main

// Fuzz tests of the sync path: syncFoo over Foo/Deployment pairs derived from the fuzzer's input,
// with the fake clientsets behind a small model of what the API server does with the controller's
// writes (validation, defaulting, metadata.generation, the status subresource). An input also
// picks a fault the API server answers the controller's writes with (until it clears), and
// whether the Foo cache is behind the API server (the Foo deleted, replaced, being deleted).
// The properties, each checked on every input:
//
//  1. syncFoo returns, within a bound, nil or an error: no panic, no hang.
//  2. Idempotence: once a sync's writes are in the caches (read back from the fake clientsets into
//     the informers' indexers), the next sync writes nothing (Events apart: they go to a fake
//     recorder, not through the clientsets). Under an injected fault the next sync may retry the
//     refused write, but no write of it is accepted; once the faults stop, the syncs converge.
//  3. A Deployment the Foo does not control (no controller ownerReference with the Foo's UID) is
//     never written: no update, patch or delete names it, and the API server's copy is unchanged.
//  4. Desired managed fields are not drift: a converged Deployment (after syncs, or after
//     setManagedFields on any Deployment) has nothing in driftedFields (also FuzzDriftedFields).
//  5. A Foo with a deletionTimestamp gets no writes and no Events at all.
//  6. A sync never modifies an object in the informers' caches (they are shared).
//  7. For a Foo the CRD admits, the API server refuses none of the controller's writes as invalid
//     (the Deployment it builds, the status it writes against the CRD's schema).
//
// hack/fuzz.sh runs each target for a while; `go test .` runs the seeds below and the corpus in
// testdata/fuzz/ as ordinary tests.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
)

// syncShape is everything about a FuzzSyncFoo case but the names, the replicas and the drift:
// one byte of the fuzzer's shape argument per field, taken modulo the field's range. Bytes, not
// an integer: the fuzzer mutates a byte slice anywhere (flips, random bytes, insertions), but
// an integer only by adding or subtracting at most 100, which would leave high fields alone.
type syncShape struct {
	replicas   uint8 // replicasAsGiven, replicasNil, replicasZero, replicasInRange
	deployment uint8 // 0: none; anything else: a Deployment of that name exists
	owner      uint8 // ownerFoo...: who controls the Deployment
	deleting   bool  // the Foo has a deletionTimestamp
	fooStatus  uint8 // fooStatus...: what the Foo's status says already
	deplStatus uint8 // deplStatus...: what the Deployment's status says
	generation uint8 // the Foo's metadata.generation is 1+generation
	fault      uint8 // fault...: what the API server does to the controller's writes
	counts     uint8 // replica counts in a partial Deployment status
	server     uint8 // serverSame...: the API server's Foo, when the cache is behind it
}

const (
	replicasAsGiven = iota
	replicasNil
	replicasZero
	replicasInRange // |replicas| mod 1001: what the CRD's schema admits
)

const (
	ownerFoo             = iota // the Foo's controller ownerReference (newDeployment's)
	ownerNone                   // no ownerReferences at all
	ownerOtherUID               // a Foo of the same name, another UID (an earlier Foo)
	ownerOtherKind              // a ReplicaSet
	ownerOtherGroup             // a Foo of another API group
	ownerNotController          // the Foo's UID, but not as controller (controller unset or false)
	ownerFooAndOthers           // the Foo as controller, beside a non-controller ownerReference
	ownerFooOtherVersion        // the Foo as controller, through another version of the API
)

const (
	fooStatusNone            = iota
	fooStatusConverged       // Ready=True, as written once the Deployment was available
	fooStatusProgressing     // Ready=False DeploymentProgressing, 0 available
	fooStatusNotOwned        // Ready=False DeploymentNotOwned, reported already
	fooStatusRejected        // Ready=False DeploymentRejected, reported already
	fooStatusStaleGeneration // converged, then the spec changed (generation moved on)
	fooStatusWrongMessage    // Ready=True with a message and count that are not the Deployment's
	fooStatusNoConditions    // observedGeneration only
)

const (
	deplStatusAvailable      = iota // every replica available
	deplStatusNone                  // no status yet
	deplStatusPartial               // counts/16 of the replicas available
	deplStatusReplicaFailure        // pods cannot be created
	deplStatusDeadline              // rollout stuck
	deplStatusNotObserved           // the Deployment controller has not seen its newest spec
	deplStatusSurplus               // one replica too many still running
	deplStatusScalingDown           // old pods still running, none updated
)

// Faults the API server model injects into the controller's writes until they are cleared.
// Values 0 to 6 inject none, so that about half the inputs run without faults.
const (
	faultNone = 0
	// faultDeploymentAmbiguous: a create or update of a Deployment is applied, but its answer
	// is lost (504): the controller cannot tell it took effect.
	faultDeploymentAmbiguous = 7
)

const (
	faultDeploymentQuota     = 8 + iota // 403 from a ResourceQuota
	faultDeploymentInvalid              // 422 from an admission policy
	faultDeploymentTimeout              // 504
	faultDeploymentExists               // create: 409 AlreadyExists (a cache far behind); update: 409 Conflict
	faultStatusConflict                 // status: 409 Conflict
	faultStatusInternal                 // status: 500
	faultNamespaceTerminates            // create: 403 with the NamespaceTerminating cause
	faultDeploymentForbidden            // 403 from RBAC
)

// What the API server holds for the Foo, when the Foo cache has not caught up with it yet.
const (
	serverSame     = iota // what the cache holds
	serverDeleted         // deleted (its Deployment may be about to go with it)
	serverReplaced        // deleted and created again: the same name, another UID
	serverDeleting        // being deleted (foreground): deletionTimestamp set
)

func (s syncShape) pack() []byte {
	deleting := byte(0)
	if s.deleting {
		deleting = 1
	}
	return []byte{s.replicas, s.deployment, s.owner, deleting, s.fooStatus, s.deplStatus, s.generation, s.fault, s.counts, s.server}
}

func unpackSyncShape(b []byte) syncShape {
	field := func(i int, n int) uint8 { // byte i modulo n; 0 past the end
		if i >= len(b) {
			return 0
		}
		return uint8(int(b[i]) % n)
	}
	return syncShape{
		replicas: field(0, 4), deployment: field(1, 4), owner: field(2, 8), deleting: field(3, 2) == 1,
		fooStatus: field(4, 8), deplStatus: field(5, 8), generation: field(6, 4), fault: field(7, 16),
		counts: field(8, 256), server: field(9, 4),
	}
}

// Drift: the fuzzer's edits are (op, argument) byte pairs, applied in order to a Deployment.
// Some change a field newDeployment sets (drift), some a field it leaves to others (not drift).
const (
	driftReplicas           = iota // spec.replicas = arg
	driftReplicasNil               // spec.replicas unset
	driftReplicasLarge             // spec.replicas = arg<<20
	driftDeleteLabel               // delete one of the Deployment's labels
	driftLabelValue                // change one label's value
	driftForeignLabel              // add someone else's label (not drift)
	driftLabelsNil                 // no labels at all
	driftAnnotation                // someone's annotation (not drift)
	driftImage                     // another image
	driftPorts                     // containerPort, no ports, an extra port, the port's name, UDP
	driftContainerSecurity         // the container's securityContext
	driftPodSecurity               // the pod's securityContext
	driftAddContainer              // a sidecar after the container
	driftNoContainers              // containers removed
	driftContainerName             // the container renamed
	driftTemplateLabels            // the pod template's labels
	driftTemplateAnnotation        // a template annotation (kubectl rollout restart; not drift)
	driftContainerExtras           // env, resources, command, pull policy (not set by newDeployment)
	driftSelector                  // the selector (never repaired: a mismatch is reported)
	driftPodExtras                 // nodeSelector, service account, volumes, host network
	driftStrategy                  // strategy, minReadySeconds, paused (not managed)
	driftSidecarFirst              // a sidecar before the container
	driftGeneration                // metadata.generation moved on (someone changed the spec)
	numDriftOps
)

// maxDriftOps bounds the work one input can ask for.
const maxDriftOps = 32

// ops builds a drift sequence for a seed: op, arg, op, arg, ...
func ops(opArgs ...byte) []byte { return opArgs }

// applyDrift applies the fuzzer's edits to d, as someone other than the controller would.
func applyDrift(d *appsv1.Deployment, edits []byte) {
	for i := 0; i+1 < len(edits) && i/2 < maxDriftOps; i += 2 {
		op, arg := edits[i]%numDriftOps, edits[i+1]
		pod := &d.Spec.Template.Spec
		var ctr *corev1.Container
		if len(pod.Containers) > 0 {
			ctr = &pod.Containers[int(arg)%len(pod.Containers)]
		}
		switch op {
		case driftReplicas:
			d.Spec.Replicas = ptr.To(int32(arg))
		case driftReplicasNil:
			d.Spec.Replicas = nil
		case driftReplicasLarge:
			d.Spec.Replicas = ptr.To(int32(arg) << 20)
		case driftDeleteLabel:
			if keys := slices.Sorted(maps.Keys(d.Labels)); len(keys) > 0 {
				delete(d.Labels, keys[int(arg)%len(keys)])
			}
		case driftLabelValue:
			if keys := slices.Sorted(maps.Keys(d.Labels)); len(keys) > 0 {
				d.Labels[keys[int(arg)%len(keys)]] = fmt.Sprintf("changed-%d", arg)
			}
		case driftForeignLabel:
			d.Labels = withEntry(d.Labels, fmt.Sprintf("team-%d", arg%4), "blue")
		case driftLabelsNil:
			d.Labels = nil
		case driftAnnotation:
			d.Annotations = withEntry(d.Annotations, fmt.Sprintf("example.com/note-%d", arg%4), "x")
		case driftImage:
			if ctr != nil {
				ctr.Image = fmt.Sprintf("registry.example.com/evil:%d", arg)
			}
		case driftPorts:
			if ctr == nil {
				break
			}
			switch arg % 5 {
			case 0:
				if len(ctr.Ports) > 0 {
					ctr.Ports[0].ContainerPort = 9000 + int32(arg)
				}
			case 1:
				ctr.Ports = nil
			case 2:
				ctr.Ports = append(ctr.Ports, corev1.ContainerPort{Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP})
			case 3:
				if len(ctr.Ports) > 0 {
					ctr.Ports[0].Name = "web"
				}
			case 4:
				if len(ctr.Ports) > 0 {
					ctr.Ports[0].Protocol = corev1.ProtocolUDP
				}
			}
		case driftContainerSecurity:
			if ctr == nil {
				break
			}
			if ctr.SecurityContext == nil {
				ctr.SecurityContext = &corev1.SecurityContext{}
			}
			sc := ctr.SecurityContext
			switch arg % 7 {
			case 0:
				ctr.SecurityContext = nil
			case 1:
				sc.AllowPrivilegeEscalation = ptr.To(true)
			case 2:
				sc.Capabilities = nil
			case 3:
				sc.Capabilities = &corev1.Capabilities{Drop: []corev1.Capability{"NET_RAW"}}
			case 4:
				sc.Privileged = ptr.To(true)
			case 5:
				if sc.Capabilities == nil {
					sc.Capabilities = &corev1.Capabilities{}
				}
				sc.Capabilities.Add = append(sc.Capabilities.Add, "NET_ADMIN")
			case 6:
				sc.RunAsUser = ptr.To[int64](0)
			}
		case driftPodSecurity:
			if pod.SecurityContext == nil {
				pod.SecurityContext = &corev1.PodSecurityContext{}
			}
			psc := pod.SecurityContext
			switch arg % 6 {
			case 0:
				pod.SecurityContext = nil
			case 1:
				psc.RunAsNonRoot = ptr.To(false)
			case 2:
				psc.RunAsUser = ptr.To[int64](0)
			case 3:
				psc.SeccompProfile = nil
			case 4:
				psc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
			case 5:
				psc.FSGroup = ptr.To[int64](2000)
			}
		case driftAddContainer:
			pod.Containers = append(pod.Containers, corev1.Container{Name: fmt.Sprintf("sidecar-%d", arg), Image: "busybox"})
		case driftNoContainers:
			pod.Containers = nil
		case driftContainerName:
			if ctr != nil {
				ctr.Name = fmt.Sprintf("renamed-%d", arg)
			}
		case driftTemplateLabels:
			switch arg % 4 {
			case 0:
				delete(d.Spec.Template.Labels, fooLabel)
			case 1:
				d.Spec.Template.Labels = withEntry(d.Spec.Template.Labels, "app.kubernetes.io/name", "other")
			case 2:
				d.Spec.Template.Labels = nil
			case 3:
				d.Spec.Template.Labels = withEntry(d.Spec.Template.Labels, "team", "blue")
			}
		case driftTemplateAnnotation:
			d.Spec.Template.Annotations = withEntry(d.Spec.Template.Annotations, "kubectl.kubernetes.io/restartedAt", fmt.Sprintf("2026-01-01T00:00:%02dZ", arg%60))
		case driftContainerExtras:
			if ctr == nil {
				break
			}
			switch arg % 4 {
			case 0:
				ctr.Env = append(ctr.Env, corev1.EnvVar{Name: "DEBUG", Value: "1"})
			case 1:
				ctr.Command = []string{"sleep", "infinity"}
			case 2:
				ctr.ImagePullPolicy = corev1.PullAlways
			case 3:
				ctr.Resources.Limits = corev1.ResourceList{} // empty, not nil
			}
		case driftSelector:
			switch arg % 5 {
			case 0:
				d.Spec.Selector = nil
			case 1:
				d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "old"}}
			case 2:
				if d.Spec.Selector == nil {
					d.Spec.Selector = &metav1.LabelSelector{}
				}
				d.Spec.Selector.MatchExpressions = append(d.Spec.Selector.MatchExpressions, metav1.LabelSelectorRequirement{
					Key: "tier", Operator: metav1.LabelSelectorOpExists})
			case 3:
				if d.Spec.Selector == nil {
					d.Spec.Selector = &metav1.LabelSelector{}
				}
				d.Spec.Selector.MatchLabels = withEntry(d.Spec.Selector.MatchLabels, "app.kubernetes.io/name", "nginx")
			case 4:
				d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{fooLabel: fmt.Sprintf("another-%d", arg)}}
			}
		case driftPodExtras:
			switch arg % 4 {
			case 0:
				pod.NodeSelector = map[string]string{"disk": "ssd"}
			case 1:
				pod.ServiceAccountName = "someone"
			case 2:
				pod.Volumes = append(pod.Volumes, corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
			case 3:
				pod.HostNetwork = true
			}
		case driftStrategy:
			switch arg % 3 {
			case 0:
				d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
			case 1:
				d.Spec.MinReadySeconds = int32(arg)
			case 2:
				d.Spec.Paused = true
			}
		case driftSidecarFirst:
			pod.Containers = append([]corev1.Container{{Name: fmt.Sprintf("first-%d", arg), Image: "busybox"}}, pod.Containers...)
		case driftGeneration:
			d.Generation += int64(arg%3) + 1
		}
	}
}

// withEntry sets m[k] = v in a copy of m (never in m: it may be shared with another object).
func withEntry(m map[string]string, k, v string) map[string]string {
	out := maps.Clone(m)
	if out == nil {
		out = map[string]string{}
	}
	out[k] = v
	return out
}

// ---- the API server, as far as the controller's writes need it ----

var (
	deploymentsResource = appsv1.SchemeGroupVersion.WithResource("deployments")
	foosResource        = samplev1.SchemeGroupVersion.WithResource("foos")
)

// apiServer sits in front of the fake clientsets' object trackers and does to the controller's
// writes what a real API server does: validate, default, bump metadata.generation when a spec
// changes (and only then), give every stored object a new resourceVersion and refuse a write that
// carries an older one, keep status out of a main-resource update and everything but status out
// of a /status update. It can also refuse the controller's writes with an injected fault. The fake
// clientsets do none of this on their own.
type apiServer struct {
	f       *fixture
	fault   uint8
	refused int // writes answered with an error: they changed nothing
	// invalid holds the writes refused by validation (422): the Deployment's, or the Foo's status
	// against the CRD's schema. Injected faults are not counted here.
	invalid []error
	rv      int
}

func newAPIServer(f *fixture, fault uint8) *apiServer {
	s := &apiServer{f: f, fault: fault, rv: 100}
	f.kubeclient.PrependReactor("create", "deployments", s.createDeployment)
	f.kubeclient.PrependReactor("update", "deployments", s.updateDeployment)
	f.client.PrependReactor("update", "foos", s.updateFoo)
	// Prepended last, so it runs first.
	f.kubeclient.PrependReactor("*", "deployments", s.injectDeploymentFault)
	f.client.PrependReactor("*", "foos", s.injectFooFault)
	return s
}

func (s *apiServer) nextResourceVersion() string {
	s.rv++
	return fmt.Sprint(s.rv)
}

// refuseInvalid refuses a write that fails validation.
func (s *apiServer) refuseInvalid(err error) (bool, runtime.Object, error) {
	s.invalid = append(s.invalid, err)
	return s.refuse(err)
}

func (s *apiServer) refuse(err error) (bool, runtime.Object, error) {
	s.refused++
	return true, nil, err
}

func isWriteVerb(verb string) bool {
	switch verb {
	case "create", "update", "patch", "delete", "deletecollection", "apply":
		return true
	}
	return false
}

// actionObjectName is the name of the object a write carries ("" for one that carries none).
func actionObjectName(a core.Action) string {
	if o, ok := a.(interface{ GetObject() runtime.Object }); ok {
		if m, err := metaAccessor(o.GetObject()); err == nil {
			return m.GetName()
		}
	}
	return ""
}

func (s *apiServer) injectDeploymentFault(a core.Action) (bool, runtime.Object, error) {
	name, gr := actionObjectName(a), appsv1.Resource("deployments")
	switch {
	case !isWriteVerb(a.GetVerb()):
	case s.fault == faultDeploymentAmbiguous && (a.GetVerb() == "create" || a.GetVerb() == "update") && a.GetSubresource() == "":
		apply := s.updateDeployment
		if a.GetVerb() == "create" {
			apply = s.createDeployment
		}
		if _, _, err := apply(a); err != nil {
			return true, nil, err // refused on its merits: counted there
		}
		return true, nil, apierrors.NewServerTimeout(gr, a.GetVerb(), 1)
	case s.fault == faultDeploymentQuota:
		return s.refuse(apierrors.NewForbidden(gr, name, errors.New("exceeded quota: deployments, requested: count/deployments.apps=1, used: count/deployments.apps=2, limited: count/deployments.apps=2")))
	case s.fault == faultDeploymentInvalid:
		return s.refuse(apierrors.NewInvalid(appsv1.SchemeGroupVersion.WithKind("Deployment").GroupKind(), name,
			field.ErrorList{field.Invalid(field.NewPath("spec", "replicas"), 9, "denied by a ValidatingAdmissionPolicy")}))
	case s.fault == faultDeploymentTimeout:
		return s.refuse(apierrors.NewServerTimeout(gr, a.GetVerb(), 1))
	case s.fault == faultDeploymentExists && a.GetVerb() == "create":
		return s.refuse(apierrors.NewAlreadyExists(gr, name))
	case s.fault == faultDeploymentExists:
		return s.refuse(apierrors.NewConflict(gr, name, errors.New("the object has been modified")))
	case s.fault == faultNamespaceTerminates && a.GetVerb() == "create":
		err := apierrors.NewForbidden(gr, name, errors.New("unable to create new content in namespace default because it is being terminated"))
		err.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause, Field: metav1.NamespaceDefault}}
		return s.refuse(err)
	case s.fault == faultDeploymentForbidden:
		return s.refuse(apierrors.NewForbidden(gr, name, errors.New(`User "system:serviceaccount:sample-controller:sample-controller" cannot `+a.GetVerb()+` resource "deployments"`)))
	}
	return false, nil, nil
}

func (s *apiServer) injectFooFault(a core.Action) (bool, runtime.Object, error) {
	if s.fault == faultDeploymentForbidden && a.GetVerb() == "get" {
		// The same missing RBAC: no get on foos either (a read: not counted as a refused write).
		name := ""
		if g, ok := a.(core.GetAction); ok {
			name = g.GetName()
		}
		return true, nil, apierrors.NewForbidden(samplev1.Resource("foos"), name,
			errors.New(`User "system:serviceaccount:sample-controller:sample-controller" cannot get resource "foos"`))
	}
	if !isWriteVerb(a.GetVerb()) {
		return false, nil, nil
	}
	switch s.fault {
	case faultStatusConflict:
		return s.refuse(apierrors.NewConflict(samplev1.Resource("foos"), actionObjectName(a), errors.New("the object has been modified")))
	case faultStatusInternal:
		return s.refuse(apierrors.NewInternalError(errors.New("etcdserver: request timed out")))
	}
	return false, nil, nil
}

func metaAccessor(obj runtime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no metadata", obj)
	}
	return m, nil
}

// validateDeployment is the part of the API server's Deployment validation the controller's
// writes could trip on.
func validateDeployment(d *appsv1.Deployment) field.ErrorList {
	var errs field.ErrorList
	md, spec := field.NewPath("metadata"), field.NewPath("spec")
	for _, msg := range validation.IsDNS1123Subdomain(d.Name) {
		errs = append(errs, field.Invalid(md.Child("name"), d.Name, msg))
	}
	errs = append(errs, metav1validation.ValidateLabels(d.Labels, md.Child("labels"))...)
	if d.Spec.Replicas != nil && *d.Spec.Replicas < 0 {
		errs = append(errs, field.Invalid(spec.Child("replicas"), *d.Spec.Replicas, "must be greater than or equal to 0"))
	}
	errs = append(errs, metav1validation.ValidateLabels(d.Spec.Template.Labels, spec.Child("template", "metadata", "labels"))...)
	switch sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); {
	case d.Spec.Selector == nil:
		errs = append(errs, field.Required(spec.Child("selector"), ""))
	case err != nil:
		errs = append(errs, field.Invalid(spec.Child("selector"), d.Spec.Selector, err.Error()))
	case sel.Empty():
		errs = append(errs, field.Invalid(spec.Child("selector"), d.Spec.Selector, "empty selector is invalid for deployment"))
	case !sel.Matches(labels.Set(d.Spec.Template.Labels)):
		errs = append(errs, field.Invalid(spec.Child("template", "metadata", "labels"), d.Spec.Template.Labels, "`selector` does not match template `labels`"))
	}
	if len(d.Spec.Template.Spec.Containers) == 0 {
		errs = append(errs, field.Required(spec.Child("template", "spec", "containers"), ""))
	}
	return errs
}

// validateFooStatus is the Foo CRD's schema for status (artifacts/crd/), as the API server applies
// it to a write of the /status subresource: metav1.Condition's constraints, and conditions as a
// map keyed by type.
func validateFooStatus(status *samplev1.FooStatus) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, c := range status.Conditions {
		p := field.NewPath("status", "conditions").Index(i)
		if n := utf8.RuneCountInString(c.Message); n > 32768 {
			errs = append(errs, field.Invalid(p.Child("message"), fmt.Sprintf("<%d characters>", n), "should be at most 32768 characters long"))
		}
		if len(c.Reason) < 1 || len(c.Reason) > 1024 || !conditionReason.MatchString(c.Reason) {
			errs = append(errs, field.Invalid(p.Child("reason"), c.Reason, "should match "+conditionReason.String()))
		}
		if len(c.Type) > 316 || !conditionType.MatchString(c.Type) {
			errs = append(errs, field.Invalid(p.Child("type"), c.Type, "should match "+conditionType.String()))
		}
		if seen[c.Type] {
			errs = append(errs, field.Duplicate(p, c.Type))
		}
		seen[c.Type] = true
		if c.Status != metav1.ConditionTrue && c.Status != metav1.ConditionFalse && c.Status != metav1.ConditionUnknown {
			errs = append(errs, field.NotSupported(p.Child("status"), c.Status, []string{"True", "False", "Unknown"}))
		}
		if c.LastTransitionTime.IsZero() {
			errs = append(errs, field.Required(p.Child("lastTransitionTime"), ""))
		}
		if c.ObservedGeneration < 0 {
			errs = append(errs, field.Invalid(p.Child("observedGeneration"), c.ObservedGeneration, "should be greater than or equal to 0"))
		}
	}
	return errs
}

var (
	conditionReason = regexp.MustCompile(`^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`)
	conditionType   = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$`)
)

func invalidDeployment(d *appsv1.Deployment, errs field.ErrorList) error {
	return apierrors.NewInvalid(appsv1.SchemeGroupVersion.WithKind("Deployment").GroupKind(), d.Name, errs)
}

func (s *apiServer) createDeployment(a core.Action) (bool, runtime.Object, error) {
	d := a.(core.CreateAction).GetObject().(*appsv1.Deployment).DeepCopy()
	if errs := validateDeployment(d); len(errs) > 0 {
		return s.refuseInvalid(invalidDeployment(d, errs))
	}
	setDeploymentDefaults(d)
	d.UID = types.UID("uid-created-" + d.Name)
	d.Generation = 1
	d.ResourceVersion = s.nextResourceVersion()
	d.Status = appsv1.DeploymentStatus{}
	opts := metav1.CreateOptions{FieldManager: controllerAgentName}
	if impl, ok := a.(core.CreateActionImpl); ok {
		opts = impl.CreateOptions
	}
	if err := s.f.kubeclient.Tracker().Create(deploymentsResource, d, a.GetNamespace(), opts); err != nil {
		return s.refuse(err)
	}
	stored, err := s.f.kubeclient.Tracker().Get(deploymentsResource, a.GetNamespace(), d.Name)
	return true, stored, err
}

func (s *apiServer) updateDeployment(a core.Action) (bool, runtime.Object, error) {
	if a.GetSubresource() != "" {
		return false, nil, nil
	}
	d := a.(core.UpdateAction).GetObject().(*appsv1.Deployment).DeepCopy()
	obj, err := s.f.kubeclient.Tracker().Get(deploymentsResource, a.GetNamespace(), d.Name)
	if err != nil {
		return s.refuse(err)
	}
	old := obj.(*appsv1.Deployment)
	if d.ResourceVersion != "" && d.ResourceVersion != old.ResourceVersion {
		return s.refuse(apierrors.NewConflict(appsv1.Resource("deployments"), d.Name, errors.New("the object has been modified; please apply your changes to the latest version and try again")))
	}
	errs := validateDeployment(d)
	if !equality.Semantic.DeepEqual(d.Spec.Selector, old.Spec.Selector) {
		errs = append(errs, field.Invalid(field.NewPath("spec", "selector"), d.Spec.Selector, "field is immutable"))
	}
	if len(errs) > 0 {
		return s.refuseInvalid(invalidDeployment(d, errs))
	}
	setDeploymentDefaults(d)
	d.UID, d.CreationTimestamp, d.Status = old.UID, old.CreationTimestamp, old.Status
	d.Generation = old.Generation
	if !equality.Semantic.DeepEqual(d.Spec, old.Spec) {
		d.Generation++
	}
	d.ResourceVersion = s.nextResourceVersion()
	opts := metav1.UpdateOptions{FieldManager: controllerAgentName}
	if impl, ok := a.(core.UpdateActionImpl); ok {
		opts = impl.UpdateOptions
	}
	if err := s.f.kubeclient.Tracker().Update(deploymentsResource, d, a.GetNamespace(), opts); err != nil {
		return s.refuse(err)
	}
	stored, err := s.f.kubeclient.Tracker().Get(deploymentsResource, a.GetNamespace(), d.Name)
	return true, stored, err
}

// updateFoo serves PUT foos/NAME/status: the stored Foo with the request's status, nothing else.
// (The controller never writes a Foo's main resource; such a write goes to the fake as it is.)
func (s *apiServer) updateFoo(a core.Action) (bool, runtime.Object, error) {
	if a.GetSubresource() != "status" {
		return false, nil, nil
	}
	in := a.(core.UpdateAction).GetObject().(*samplev1.Foo)
	obj, err := s.f.client.Tracker().Get(foosResource, a.GetNamespace(), in.Name)
	if err != nil {
		return s.refuse(err)
	}
	stored := obj.(*samplev1.Foo)
	if in.ResourceVersion != "" && in.ResourceVersion != stored.ResourceVersion {
		return s.refuse(apierrors.NewConflict(samplev1.Resource("foos"), in.Name, errors.New("the object has been modified")))
	}
	if errs := validateFooStatus(&in.Status); len(errs) > 0 {
		return s.refuseInvalid(apierrors.NewInvalid(fooGroupVersionKind.GroupKind(), in.Name, errs))
	}
	// The status as a real API server stores it: the request is JSON (a custom resource has no
	// protobuf), so invalid UTF-8 arrives as U+FFFD and times in whole seconds.
	body, err := json.Marshal(in.Status)
	if err != nil {
		return s.refuse(err)
	}
	stored.Status = samplev1.FooStatus{}
	if err := json.Unmarshal(body, &stored.Status); err != nil {
		return s.refuse(err)
	}
	stored.ResourceVersion = s.nextResourceVersion()
	if err := s.f.client.Tracker().Update(foosResource, stored, a.GetNamespace()); err != nil {
		return s.refuse(err)
	}
	return true, stored.DeepCopy(), nil
}

// ---- playing the informers: the caches catch up with the API server ----

// catchUp puts the API server's current Foo and Deployment into the informers' caches (or takes
// them out), as their watch events would.
func catchUp(t *testing.T, f *fixture, foo cache.ObjectName, deployment string) {
	t.Helper()
	refresh := func(indexer cache.Indexer, tracker core.ObjectTracker, gvr schema.GroupVersionResource, name string) {
		obj, err := tracker.Get(gvr, foo.Namespace, name)
		switch {
		case apierrors.IsNotFound(err):
			if old, ok, _ := indexer.GetByKey(cache.NewObjectName(foo.Namespace, name).String()); ok {
				if err := indexer.Delete(old); err != nil {
					t.Fatal(err)
				}
			}
		case err != nil:
			t.Fatal(err)
		default:
			if err := indexer.Update(obj); err != nil {
				t.Fatal(err)
			}
		}
	}
	refresh(f.controller.foosIndexer, f.client.Tracker(), foosResource, foo.Name)
	if deployment != "" {
		refresh(f.deploymentCache, f.kubeclient.Tracker(), deploymentsResource, deployment)
	}
}

// snapshotCaches deep-copies every object in the informers' caches.
func snapshotCaches(f *fixture) map[string]runtime.Object {
	out := map[string]runtime.Object{}
	for prefix, indexer := range map[string]cache.Indexer{"foo ": f.controller.foosIndexer, "deployment ": f.deploymentCache} {
		for _, obj := range indexer.List() {
			o := obj.(runtime.Object)
			m, _ := metaAccessor(o)
			out[prefix+m.GetNamespace()+"/"+m.GetName()] = o.DeepCopyObject()
		}
	}
	return out
}

// checkCachesUnchanged: property 6, the objects in the caches are as they were before the sync.
func checkCachesUnchanged(t *testing.T, f *fixture, before map[string]runtime.Object) {
	t.Helper()
	after := map[string]runtime.Object{}
	for prefix, indexer := range map[string]cache.Indexer{"foo ": f.controller.foosIndexer, "deployment ": f.deploymentCache} {
		for _, obj := range indexer.List() {
			m, _ := metaAccessor(obj.(runtime.Object))
			after[prefix+m.GetNamespace()+"/"+m.GetName()] = obj.(runtime.Object)
		}
	}
	for k, obj := range after {
		if !reflect.DeepEqual(obj, before[k]) {
			t.Errorf("property 6: the sync modified the cached %s (objects in the cache are shared)", k)
		}
	}
}

// ---- one sync, bounded ----

type syncPanic struct {
	value any
	stack []byte
}

// syncBounded runs syncFoo and fails the test if it panics or does not return within a bound
// (property 1). Either result, nil or an error, is fine here.
func syncBounded(t *testing.T, ctx context.Context, c *Controller, key cache.ObjectName) error {
	t.Helper()
	done := make(chan any, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- syncPanic{r, debug.Stack()}
			}
		}()
		done <- c.syncFoo(ctx, key)
	}()
	select {
	case r := <-done:
		if p, ok := r.(syncPanic); ok {
			t.Fatalf("property 1: syncFoo panicked: %v\n%s", p.value, p.stack)
		}
		err, _ := r.(error)
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("property 1: syncFoo did not return within 10s")
		return nil
	}
}

// ---- FuzzSyncFoo ----

// syncCase builds the Foo and the Deployment (nil: none) that one fuzz input names.
func syncCase(fooName, deploymentName string, replicas int32, s syncShape, edits []byte) (*samplev1.Foo, *appsv1.Deployment) {
	b := newFoo(fooName, 1).deploymentName(deploymentName).generation(1 + int64(s.generation))
	switch s.replicas {
	case replicasAsGiven:
		b.foo.Spec.Replicas = ptr.To(replicas)
	case replicasNil:
		b.foo.Spec.Replicas = nil
	case replicasZero:
		b.foo.Spec.Replicas = ptr.To[int32](0)
	case replicasInRange:
		r := int64(replicas) % (samplev1.MaxReplicas + 1)
		b.foo.Spec.Replicas = ptr.To(int32(max(r, -r)))
	}
	foo := b.foo

	var live *appsv1.Deployment
	if s.deployment != 0 && len(validation.IsDNS1123Subdomain(deploymentName)) == 0 {
		db := newDeploymentFor(foo)
		n := *db.d.Spec.Replicas
		switch s.deplStatus {
		case deplStatusAvailable:
			db.available()
		case deplStatusNone:
		case deplStatusPartial:
			k := int32(int64(n) * int64(s.counts%17) / 16)
			db.d.Status = appsv1.DeploymentStatus{ObservedGeneration: db.d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: k, AvailableReplicas: k}
		case deplStatusReplicaFailure:
			db.d.Status = appsv1.DeploymentStatus{ObservedGeneration: db.d.Generation, Conditions: []appsv1.DeploymentCondition{
				{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate", Message: podCreateFailure(s.counts)}}}
		case deplStatusDeadline:
			db.d.Status = appsv1.DeploymentStatus{ObservedGeneration: db.d.Generation, Replicas: n, UpdatedReplicas: n, AvailableReplicas: n / 2,
				Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
					Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "x" has timed out progressing.`}}}
		case deplStatusNotObserved:
			db.available().d.Generation++
		case deplStatusSurplus:
			db.available().d.Status.Replicas++
		case deplStatusScalingDown:
			db.d.Status = appsv1.DeploymentStatus{ObservedGeneration: db.d.Generation, Replicas: 3, AvailableReplicas: 3}
		}
		live = db.d
		setOwner(live, foo, s.owner)
		applyDrift(live, edits)
		setDeploymentDefaults(live) // the API server stored it: it has its defaults
	}

	switch s.fooStatus {
	case fooStatusConverged:
		b.converged()
	case fooStatusProgressing:
		b.readyReason(metav1.ConditionFalse, samplev1.ReasonDeploymentProgressing,
			fmt.Sprintf("Deployment %s: 0 of %d replicas available", deploymentName, desiredReplicas(foo)))
	case fooStatusNotOwned:
		if live != nil {
			b.readyReason(metav1.ConditionFalse, samplev1.ReasonDeploymentNotOwned, notOwnedCondition(foo, live).Message)
		}
	case fooStatusRejected:
		b.readyReason(metav1.ConditionFalse, samplev1.ReasonDeploymentRejected,
			"the API server refused creating Deployment "+deploymentName+" (Forbidden): exceeded quota")
	case fooStatusStaleGeneration:
		b.converged().generation(foo.Generation + 1)
	case fooStatusWrongMessage:
		b.readyReason(metav1.ConditionTrue, samplev1.ReasonDeploymentAvailable, "Deployment elsewhere: 7 of 7 replicas available")
		foo.Status.AvailableReplicas = 7
	case fooStatusNoConditions:
		foo.Status.ObservedGeneration = foo.Generation
	}
	if s.deleting {
		foo.DeletionTimestamp = ptr.To(metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
		foo.Finalizers = []string{metav1.FinalizerDeleteDependents}
	}
	return foo, live
}

// podCreateFailure is why the Deployment's pods cannot be created, as its ReplicaFailure condition
// carries it (copied from its ReplicaSet's, which quotes the API server's answer in full): a quota,
// or for large n a validating webhook's denial that is about 160*n characters long (nothing on the
// way cuts a webhook's message short).
func podCreateFailure(n uint8) string {
	if n < 128 {
		return fmt.Sprintf(`pods "x-%d" is forbidden: exceeded quota: no-pods, requested: pods=1, used: pods=0, limited: pods=0`, n)
	}
	return `admission webhook "images.policy.example.com" denied the request: ` +
		strings.Repeat("image registry.example.com/nginx is not in the allowed list; ", int(n)*160/61)
}

// setOwner gives d the ownerReferences of the variant named.
func setOwner(d *appsv1.Deployment, foo *samplev1.Foo, owner uint8) {
	ref := *metav1.NewControllerRef(foo, fooGroupVersionKind)
	otherUID := foo.UID + "-earlier"
	switch owner {
	case ownerFoo:
		d.OwnerReferences = []metav1.OwnerReference{ref}
	case ownerNone:
		d.OwnerReferences = nil
	case ownerOtherUID:
		ref.UID = otherUID
		d.OwnerReferences = []metav1.OwnerReference{ref}
	case ownerOtherKind:
		d.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: foo.Name, UID: otherUID, Controller: ptr.To(true)}}
	case ownerOtherGroup:
		ref.APIVersion, ref.UID = "other.example.com/v1alpha1", otherUID
		d.OwnerReferences = []metav1.OwnerReference{ref}
	case ownerNotController:
		ref.Controller = nil
		notController := ref
		notController.Controller = ptr.To(false)
		d.OwnerReferences = []metav1.OwnerReference{ref, notController}
	case ownerFooAndOthers:
		d.OwnerReferences = []metav1.OwnerReference{
			{APIVersion: "v1", Kind: "ConfigMap", Name: "bundle", UID: otherUID + "-cm"}, ref}
	case ownerFooOtherVersion:
		ref.APIVersion = samplev1.SchemeGroupVersion.Group + "/v2"
		d.OwnerReferences = []metav1.OwnerReference{ref}
	}
}

// admittedByCRD tells a Foo the API server would store with today's CRD: a name that is a DNS
// subdomain of at most 63 characters, a valid deploymentName, replicas from 0 to 1000 (or unset:
// stored before the default existed).
func admittedByCRD(foo *samplev1.Foo) bool {
	return len(validation.IsDNS1123Subdomain(foo.Name)) == 0 && len(foo.Name) <= 63 &&
		len(validation.IsDNS1123Subdomain(foo.Spec.Deployment.Name)) == 0 &&
		(foo.Spec.Replicas == nil || (*foo.Spec.Replicas >= 0 && *foo.Spec.Replicas <= samplev1.MaxReplicas))
}

// controlledBy is the definition property 3 checks against, written apart from the controller's
// metav1.IsControlledBy: a controller ownerReference that carries the Foo's UID.
func controlledBy(d *appsv1.Deployment, foo *samplev1.Foo) bool {
	for _, ref := range d.OwnerReferences {
		if ref.Controller != nil && *ref.Controller && ref.UID == foo.UID {
			return true
		}
	}
	return false
}

// fuzzContext logs what syncs decide and write (-v=2), into the test's output only when it fails.
func fuzzContext(t *testing.T) context.Context {
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.Verbosity(2)))
	return klog.NewContext(context.Background(), logger)
}

// stopFixture stops the goroutines newFixture's controller started (its workqueue, its event
// broadcaster): the fuzzer builds thousands of fixtures in one process.
func stopFixture(f *fixture) {
	f.controller.workqueue.ShutDown()
	f.controller.eventBroadcaster.Shutdown()
}

func FuzzSyncFoo(f *testing.F) {
	// One seed per family; testdata/fuzz/FuzzSyncFoo holds more.
	type seed struct {
		fooName, deploymentName string
		replicas                int32
		shape                   syncShape
		edits                   []byte
	}
	exists := uint8(1)
	seeds := []seed{
		// Owned and converged: nothing to do.
		{"test", "test-deploy", 3, syncShape{deployment: exists, fooStatus: fooStatusConverged}, nil},
		// A new Foo: create, then report.
		{"test", "test-deploy", 3, syncShape{}, nil},
		// A Foo reported on before whose Deployment is gone: GET the Foo, then re-create.
		{"test", "test-deploy", 2, syncShape{fooStatus: fooStatusConverged}, nil},
		// Not owned: no ownerReference, another UID, another kind, another group, not as controller.
		{"test", "test-deploy", 1, syncShape{deployment: exists, owner: ownerNone}, ops(driftReplicas, 7)},
		{"test", "test-deploy", 1, syncShape{deployment: exists, owner: ownerOtherUID, fooStatus: fooStatusNotOwned}, ops(driftImage, 1)},
		{"test", "test-deploy", 1, syncShape{deployment: exists, owner: ownerOtherKind}, ops(driftLabelsNil, 0)},
		{"test", "test-deploy", 1, syncShape{deployment: exists, owner: ownerOtherGroup}, ops(driftNoContainers, 0)},
		{"test", "test-deploy", 1, syncShape{deployment: exists, owner: ownerNotController}, ops(driftTemplateLabels, 1)},
		// Owned, beside other owners, or through another version.
		{"test", "test-deploy", 1, syncShape{deployment: exists, owner: ownerFooAndOthers, fooStatus: fooStatusConverged}, ops(driftReplicas, 4)},
		{"test", "test-deploy", 1, syncShape{deployment: exists, owner: ownerFooOtherVersion, fooStatus: fooStatusConverged}, nil},
		// Drift in every managed field, one at a time, then all at once.
		{"test", "test-deploy", 3, syncShape{deployment: exists, fooStatus: fooStatusConverged}, ops(driftReplicas, 7)},
		{"test", "test-deploy", 3, syncShape{deployment: exists, fooStatus: fooStatusConverged}, ops(driftReplicasNil, 0)},
		{"test", "test-deploy", 3, syncShape{deployment: exists, fooStatus: fooStatusConverged}, ops(driftDeleteLabel, 2)},
		{"test", "test-deploy", 3, syncShape{deployment: exists, fooStatus: fooStatusConverged}, ops(driftLabelValue, 0)},
		{"test", "test-deploy", 3, syncShape{deployment: exists, fooStatus: fooStatusConverged}, ops(driftImage, 9)},
		{"test", "test-deploy", 3, syncShape{deployment: exists, fooStatus: fooStatusConverged}, ops(driftPorts, 0, driftPorts, 3)},
		{"test", "test-deploy", 3, syncShape{deployment: exists, fooStatus: fooStatusConverged}, ops(driftContainerSecurity, 1)},
		{"test", "test-deploy", 3, syncShape{deployment: exists, fooStatus: fooStatusConverged}, ops(driftPodSecurity, 2)},
		{"test", "test-deploy", 3, syncShape{deployment: exists, fooStatus: fooStatusConverged}, ops(driftAddContainer, 0)},
		{"test", "test-deploy", 3, syncShape{deployment: exists, fooStatus: fooStatusConverged}, ops(driftSidecarFirst, 0)},
		{"test", "test-deploy", 3, syncShape{deployment: exists, fooStatus: fooStatusConverged}, ops(driftContainerName, 0)},
		{"test", "test-deploy", 3, syncShape{deployment: exists, fooStatus: fooStatusConverged}, ops(driftTemplateLabels, 0, driftTemplateAnnotation, 5)},
		{"test", "test-deploy", 3, syncShape{deployment: exists, fooStatus: fooStatusConverged}, ops(
			driftReplicasLarge, 3, driftLabelsNil, 0, driftImage, 1, driftPorts, 1, driftContainerSecurity, 0, driftPodSecurity, 0,
			driftForeignLabel, 1, driftAnnotation, 2, driftContainerExtras, 0, driftPodExtras, 2, driftStrategy, 0, driftGeneration, 1)},
		// Not drift: what others may add.
		{"test", "test-deploy", 3, syncShape{deployment: exists, fooStatus: fooStatusConverged}, ops(
			driftForeignLabel, 0, driftAnnotation, 0, driftTemplateAnnotation, 0, driftContainerExtras, 2, driftPodExtras, 0, driftStrategy, 1)},
		// Being deleted: with its Deployment drifted, missing, or not ours.
		{"test", "test-deploy", 3, syncShape{deployment: exists, deleting: true, fooStatus: fooStatusConverged}, ops(driftReplicas, 1, driftImage, 2)},
		{"test", "test-deploy", 3, syncShape{deleting: true, fooStatus: fooStatusConverged}, nil},
		{"test", "test-deploy", 3, syncShape{deployment: exists, deleting: true, owner: ownerNone}, nil},
		// Zero, large, nil and negative replicas.
		{"test", "test-deploy", 0, syncShape{deployment: exists, deplStatus: deplStatusNone}, nil},
		{"test", "test-deploy", 0, syncShape{replicas: replicasZero, deployment: exists, deplStatus: deplStatusScalingDown, fooStatus: fooStatusConverged}, nil},
		{"test", "test-deploy", samplev1.MaxReplicas, syncShape{deployment: exists, fooStatus: fooStatusConverged}, ops(driftReplicas, 3)},
		{"test", "test-deploy", 1 << 30, syncShape{}, nil},
		{"test", "test-deploy", 0, syncShape{replicas: replicasNil, deployment: exists, fooStatus: fooStatusConverged}, ops(driftReplicas, 2)},
		{"test", "test-deploy", -1, syncShape{}, nil},
		{"test", "test-deploy", -5, syncShape{deployment: exists}, nil},
		// Odd names: long, unicode, empty, invalid.
		{strings.Repeat("f", 63), strings.Repeat("d", 253), 1, syncShape{}, nil},
		{strings.Repeat("f", 64), "long-foo", 1, syncShape{}, nil},
		{"test", strings.Repeat("d", 254), 1, syncShape{}, nil},
		{"fóó", "fóó-deploy", 1, syncShape{}, nil},
		{"fóó", "deploy", 1, syncShape{deployment: exists}, nil},
		{"test", "d\xff\xad", 1, syncShape{deployment: exists, owner: ownerNone}, nil}, // a name of invalid UTF-8: InvalidSpec, quoted escaped
		{"test", "", 1, syncShape{deployment: exists}, nil},
		{"", "deploy", 1, syncShape{}, nil},
		{"test", "Not_A_Name", 1, syncShape{fooStatus: fooStatusRejected}, nil},
		{"test", "a.b.c", 1, syncShape{deployment: exists, fooStatus: fooStatusConverged}, nil},
		// Selector mismatch, with and without other drift.
		{"test", "test-deploy", 2, syncShape{deployment: exists, fooStatus: fooStatusConverged}, ops(driftSelector, 1)},
		{"test", "test-deploy", 2, syncShape{deployment: exists}, ops(driftSelector, 2, driftReplicas, 9)},
		{"test", "test-deploy", 2, syncShape{deployment: exists}, ops(driftSelector, 0)},
		{"test", "test-deploy", 2, syncShape{deployment: exists}, ops(driftSelector, 4, driftTemplateLabels, 0)},
		// The Deployment's status, every way it is read.
		{"test", "test-deploy", 4, syncShape{deployment: exists, deplStatus: deplStatusPartial, counts: 8, fooStatus: fooStatusProgressing}, nil},
		{"test", "test-deploy", 4, syncShape{deployment: exists, deplStatus: deplStatusReplicaFailure, fooStatus: fooStatusProgressing}, nil},
		{"test", "test-deploy", 4, syncShape{deployment: exists, deplStatus: deplStatusReplicaFailure, counts: 200}, nil}, // a 32000-character message
		{"test", "test-deploy", 4, syncShape{deployment: exists, deplStatus: deplStatusDeadline}, nil},
		{"test", "test-deploy", 4, syncShape{deployment: exists, deplStatus: deplStatusNotObserved, fooStatus: fooStatusStaleGeneration}, nil},
		{"test", "test-deploy", 4, syncShape{deployment: exists, deplStatus: deplStatusSurplus, fooStatus: fooStatusWrongMessage}, nil},
		{"test", "test-deploy", 4, syncShape{deployment: exists, fooStatus: fooStatusNoConditions, generation: 3}, nil},
		// The Foo cache behind the API server: the Foo deleted (its Deployment gone, or not yet),
		// deleted and created again (another UID), or being deleted.
		{"test", "test-deploy", 2, syncShape{fooStatus: fooStatusConverged, server: serverDeleted}, nil},
		{"test", "test-deploy", 2, syncShape{deployment: exists, fooStatus: fooStatusConverged, server: serverDeleted}, ops(driftReplicas, 5)},
		{"test", "test-deploy", 2, syncShape{fooStatus: fooStatusConverged, server: serverReplaced}, nil},
		{"test", "test-deploy", 2, syncShape{deployment: exists, server: serverReplaced}, nil},
		{"test", "test-deploy", 2, syncShape{fooStatus: fooStatusConverged, server: serverDeleting}, nil},
		{"test", "test-deploy", 2, syncShape{deployment: exists, server: serverDeleting}, ops(driftImage, 1)},
		// Faults on the controller's writes, then the faults clear.
		{"test", "test-deploy", 9, syncShape{fault: faultDeploymentAmbiguous}, nil},
		{"test", "test-deploy", 9, syncShape{deployment: exists, fault: faultDeploymentAmbiguous, fooStatus: fooStatusConverged}, ops(driftImage, 0)},
		{"test", "test-deploy", 9, syncShape{fault: faultDeploymentQuota}, nil},
		{"test", "test-deploy", 9, syncShape{fault: faultDeploymentQuota, fooStatus: fooStatusRejected}, nil},
		{"test", "test-deploy", 9, syncShape{deployment: exists, fault: faultDeploymentInvalid}, ops(driftReplicas, 3)},
		{"test", "test-deploy", 9, syncShape{fault: faultDeploymentTimeout}, nil},
		{"test", "test-deploy", 9, syncShape{fault: faultDeploymentExists}, nil},
		{"test", "test-deploy", 9, syncShape{deployment: exists, fault: faultDeploymentExists}, ops(driftImage, 0)},
		{"test", "test-deploy", 9, syncShape{deployment: exists, fault: faultStatusConflict}, ops(driftImage, 0)},
		{"test", "test-deploy", 9, syncShape{fault: faultStatusInternal}, nil},
		{"test", "test-deploy", 9, syncShape{fault: faultNamespaceTerminates}, nil},
		{"test", "test-deploy", 9, syncShape{fault: faultDeploymentForbidden, fooStatus: fooStatusConverged}, nil},
		{"test", "test-deploy", 9, syncShape{fault: faultDeploymentForbidden}, nil},
	}
	for _, s := range seeds {
		f.Add(s.fooName, s.deploymentName, s.replicas, s.shape.pack(), s.edits)
	}

	f.Fuzz(func(t *testing.T, fooName, deploymentName string, replicas int32, shape, edits []byte) {
		s := unpackSyncShape(shape)
		foo, live := syncCase(fooName, deploymentName, replicas, s, edits)
		var deployments []*appsv1.Deployment
		var initial *appsv1.Deployment
		if live != nil {
			deployments = append(deployments, live)
			initial = live.DeepCopy()
		}
		fx := newFixture(t, []*samplev1.Foo{foo}, deployments)
		defer stopFixture(fx)
		api := newAPIServer(fx, s.fault)
		onServer := serverFoo(t, fx, foo, s.server)
		ctx := fuzzContext(t)
		key := cache.MetaObjectToName(foo)

		type result struct {
			err      error
			writes   []core.Action
			accepted int // writes the API server took (not refused)
			events   []string
		}
		sync := func() result {
			t.Helper()
			fx.client.ClearActions()
			fx.kubeclient.ClearActions()
			refusedBefore := api.refused
			cachedFoo, _ := fx.controller.foosLister.Foos(key.Namespace).Get(key.Name)
			cachedDeployment, _ := fx.controller.deploymentsLister.Deployments(key.Namespace).Get(deploymentName)
			before := snapshotCaches(fx)

			err := syncBounded(t, ctx, fx.controller, key)

			checkCachesUnchanged(t, fx, before)
			r := result{err: err, writes: fx.writes(), events: fx.events()}
			r.accepted = len(r.writes) - (api.refused - refusedBefore)
			t.Logf("sync: %v; writes %q (%d accepted); events %q", err, describe(r.writes), r.accepted, r.events)
			// Property 3: no write names a Deployment that the Foo the sync read does not control.
			if cachedFoo != nil && cachedDeployment != nil && !controlledBy(cachedDeployment, cachedFoo) {
				for _, a := range r.writes {
					if a.GetResource().Resource == "deployments" && a.GetVerb() != "create" {
						t.Errorf("property 3: %s on Deployment %s, which the Foo does not control (ownerReferences %+v)",
							a.GetVerb(), deploymentName, cachedDeployment.OwnerReferences)
					}
				}
			}
			// Property 5: a Foo being deleted gets no writes and no Events.
			if cachedFoo != nil && cachedFoo.DeletionTimestamp != nil && (len(r.writes) > 0 || len(r.events) > 0) {
				t.Errorf("property 5: a Foo being deleted got writes %q and events %q", describe(r.writes), r.events)
			}
			catchUp(t, fx, key, deploymentName)
			return r
		}
		// Property 2: a sync over the previous one's result (nothing else changed) writes nothing,
		// and records no Event, once the previous one succeeded. Under a fault it may retry what
		// was refused, but the API server accepts none of its writes.
		idempotent := func(first, second result, faulty bool) {
			t.Helper()
			if second.accepted > 0 {
				t.Errorf("property 2: the next sync made %d accepted writes, %q (the one before returned %v and wrote %q)",
					second.accepted, describe(second.writes), first.err, describe(first.writes))
			}
			if !faulty && first.err == nil && (len(second.writes) > 0 || len(second.events) > 0) {
				t.Errorf("property 2: after a sync that succeeded, the next one wrote %q and recorded %q (the one before wrote %q)",
					describe(second.writes), second.events, describe(first.writes))
			}
		}

		faulty := api.fault >= faultDeploymentAmbiguous
		// A stale cache catching up, or a write that took effect though the controller was told
		// it failed, is a change the first sync did not know it made: the second may act on it.
		unknowing := s.server != serverSame || api.fault == faultDeploymentAmbiguous
		first := sync()
		second := sync()
		if !unknowing {
			idempotent(first, second, faulty)
		}
		last := second
		if faulty || unknowing {
			// The faults clear, the cache has caught up: the syncs converge.
			api.fault = faultNone
			third := sync()
			fourth := sync()
			idempotent(third, fourth, false)
			last = fourth
		}

		// Property 7: for a Foo the CRD admits, the API server finds nothing invalid in any of the
		// controller's writes (injected faults are other refusals).
		if admittedByCRD(foo) && len(api.invalid) > 0 {
			t.Errorf("property 7: the API server refused %d of the controller's writes as invalid, for a valid Foo; the first: %.600s",
				len(api.invalid), api.invalid[0])
		}

		// Property 3, on the API server's copy of a Deployment no Foo here ever controlled.
		if initial != nil && !controlledBy(initial, foo) && (onServer == nil || !controlledBy(initial, onServer)) {
			obj, err := fx.kubeclient.Tracker().Get(deploymentsResource, foo.Namespace, deploymentName)
			if err != nil || !equality.Semantic.DeepEqual(obj, initial) {
				t.Errorf("property 3: the Deployment the Foo does not control changed: %v\nbefore: %+v\nafter:  %+v", err, initial, obj)
			}
		}
		// Property 4: after a successful sync, a Deployment the Foo controls and selects through
		// has nothing left to repair.
		obj, err := fx.kubeclient.Tracker().Get(deploymentsResource, foo.Namespace, deploymentName)
		if err == nil && last.err == nil && onServer != nil && onServer.DeletionTimestamp == nil && invalidSpecCondition(onServer) == nil {
			d := obj.(*appsv1.Deployment)
			desired := newDeployment(onServer)
			if metav1.IsControlledBy(d, onServer) && !selectorMismatch(desired, d) {
				if drifted := driftedFields(desired, d); len(drifted) > 0 {
					t.Errorf("property 4: after the syncs, the Deployment still differs from the Foo's spec in %q", drifted)
				}
			}
		}
	})
}

// serverFoo makes the API server's Foo what mode says, behind the cache's back, and returns it
// (nil: deleted).
func serverFoo(t *testing.T, f *fixture, foo *samplev1.Foo, mode uint8) *samplev1.Foo {
	t.Helper()
	live := foo.DeepCopy()
	live.ResourceVersion = "2"
	switch mode {
	case serverSame:
		return foo
	case serverDeleted:
		if err := f.client.Tracker().Delete(foosResource, foo.Namespace, foo.Name); err != nil {
			t.Fatal(err)
		}
		return nil
	case serverReplaced:
		live.UID += "-replaced"
		live.Generation = 1
		live.Status = samplev1.FooStatus{}
		live.DeletionTimestamp, live.Finalizers = nil, nil
	case serverDeleting:
		if live.DeletionTimestamp == nil {
			live.DeletionTimestamp = ptr.To(metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
			live.Finalizers = []string{metav1.FinalizerDeleteDependents}
		}
	}
	if err := f.client.Tracker().Update(foosResource, live, live.Namespace); err != nil {
		t.Fatal(err)
	}
	return live
}

// ---- FuzzDriftedFields ----

const (
	driftBaseServed  = iota // newDeploymentFor: as the API server returns the controller's Deployment
	driftBaseDesired        // newDeployment's output itself
	driftBaseEmpty          // an empty Deployment
	driftBaseOther          // the Deployment another Foo, with another replica count, would have
)

// FuzzDriftedFields checks property 4 on its own, over any Deployment: once the fields the
// controller manages are set (setManagedFields, as repairDrift does), driftedFields reports
// nothing, before and after the API server's defaulting; and driftedFields and setManagedFields
// agree on what drift is, and setManagedFields leaves everything else alone.
func FuzzDriftedFields(f *testing.F) {
	f.Add("test", int32(2), false, uint8(driftBaseServed), false, []byte(nil))
	f.Add("test", int32(2), false, uint8(driftBaseDesired), false, []byte(nil))
	f.Add("test", int32(0), true, uint8(driftBaseEmpty), false, []byte(nil))
	f.Add("test", int32(5), false, uint8(driftBaseOther), true, []byte(nil))
	f.Add("test", int32(1<<30), false, uint8(driftBaseServed), true, ops(driftReplicas, 3, driftImage, 1, driftLabelsNil, 0))
	f.Add("fóó", int32(-3), false, uint8(driftBaseServed), false, ops(driftSelector, 1, driftTemplateLabels, 2))
	f.Add("", int32(1), false, uint8(driftBaseServed), false, ops(driftNoContainers, 0))
	f.Add("test", int32(1), false, uint8(driftBaseServed), true, ops(driftSidecarFirst, 1, driftTemplateAnnotation, 2, driftAnnotation, 3))
	f.Add("test", int32(1), false, uint8(driftBaseServed), true, ops(driftContainerSecurity, 4, driftContainerSecurity, 5, driftPodSecurity, 5, driftPorts, 2))
	f.Add("test", int32(1), false, uint8(driftBaseServed), true, ops(driftPodSecurity, 0, driftContainerSecurity, 0, driftPorts, 4))
	f.Add(strings.Repeat("x", 300), int32(1), false, uint8(driftBaseOther), false, ops(driftForeignLabel, 1, driftDeleteLabel, 0, driftLabelValue, 1))

	f.Fuzz(func(t *testing.T, fooName string, replicas int32, nilReplicas bool, base uint8, defaulted bool, edits []byte) {
		if fooName == "" {
			// The API server gives every object a name. (With an empty one, the fooLabel value
			// newDeployment asks for is "", which DeepDerivative takes as "anything".)
			fooName = "foo"
		}
		foo := newFoo(fooName, replicas).foo
		if nilReplicas {
			foo.Spec.Replicas = nil
		}
		desired := newDeployment(foo)

		// newDeployment's output, as the API server stores it, is not drift.
		served := desired.DeepCopy()
		setDeploymentDefaults(served)
		if drifted := driftedFields(desired, served); len(drifted) > 0 {
			t.Fatalf("property 4: newDeployment's own output, defaulted, drifted in %q", drifted)
		}

		var live *appsv1.Deployment
		switch base % 4 {
		case driftBaseServed:
			live = newDeploymentFor(foo).d
		case driftBaseDesired:
			live = newDeployment(foo)
		case driftBaseEmpty:
			live = &appsv1.Deployment{}
		case driftBaseOther:
			live = newDeploymentFor(newFoo(fooName+"-other", replicas+1).foo).d
		}
		applyDrift(live, edits)
		if defaulted {
			setDeploymentDefaults(live)
		}
		original := live.DeepCopy()
		drifted := driftedFields(desired, live)

		updated := live.DeepCopy()
		setManagedFields(updated, desired)
		if !equality.Semantic.DeepEqual(live, original) {
			t.Fatalf("setManagedFields modified the live Deployment it was given a copy of")
		}
		if after := driftedFields(desired, updated); len(after) > 0 {
			t.Errorf("property 4: after setManagedFields, driftedFields = %q (drifted before: %q)", after, drifted)
		}
		setDeploymentDefaults(updated) // what the API server stores
		if after := driftedFields(desired, updated); len(after) > 0 {
			t.Errorf("property 4: after setManagedFields and the API server's defaults, driftedFields = %q", after)
		}

		// driftedFields and setManagedFields agree: no drift, nothing to change; drift, a change
		// (else repairDrift would PUT the same object on every sync).
		updated = live.DeepCopy()
		setManagedFields(updated, desired)
		changed := !equality.Semantic.DeepEqual(updated, live)
		if len(drifted) == 0 && changed {
			t.Errorf("no drift reported, but setManagedFields changed the Deployment")
		}
		if len(drifted) > 0 && !changed {
			t.Errorf("drift reported in %q, but setManagedFields changed nothing", drifted)
		}

		// What setManagedFields does not manage, it leaves as it was: the selector (immutable),
		// the Deployment's annotations, others' labels, the template's annotations, the rest of
		// the spec.
		if !equality.Semantic.DeepEqual(updated.Spec.Selector, live.Spec.Selector) {
			t.Errorf("setManagedFields changed the selector: %v -> %v", live.Spec.Selector, updated.Spec.Selector)
		}
		if !equality.Semantic.DeepEqual(updated.ObjectMeta.Annotations, live.Annotations) ||
			!equality.Semantic.DeepEqual(updated.OwnerReferences, live.OwnerReferences) {
			t.Errorf("setManagedFields changed the Deployment's annotations or ownerReferences")
		}
		for k, v := range live.Labels {
			if _, managed := desired.Labels[k]; !managed && updated.Labels[k] != v {
				t.Errorf("setManagedFields changed someone else's label %s=%s to %q", k, v, updated.Labels[k])
			}
		}
		if !equality.Semantic.DeepEqual(updated.Spec.Template.Annotations, live.Spec.Template.Annotations) {
			t.Errorf("setManagedFields dropped the template's annotations: %v -> %v", live.Spec.Template.Annotations, updated.Spec.Template.Annotations)
		}
		rest, liveRest := updated.Spec.DeepCopy(), live.Spec.DeepCopy()
		rest.Replicas, rest.Template, liveRest.Replicas, liveRest.Template = nil, corev1.PodTemplateSpec{}, nil, corev1.PodTemplateSpec{}
		if !equality.Semantic.DeepEqual(rest, liveRest) {
			t.Errorf("setManagedFields changed a part of the spec it does not manage")
		}
	})
}
