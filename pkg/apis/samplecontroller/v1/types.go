package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The kubebuilder markers on these types become the CRD (artifacts/crd/): status and scale
// subresources, printer columns, and the validation the API server applies to every write,
// before the controller ever sees a Foo. v1 is the version etcd stores (storageversion).

// MaxReplicas is the largest spec.replicas a Foo accepts. The API server enforces it (the CRD's
// schema says maximum: 1000), so the controller never sees a larger value.
const MaxReplicas = 1000

// DefaultImage is the image a Foo's pods run when spec.deployment.image is empty: nginx built
// to run as a non-root user, so that the pods pass the restricted Pod Security Standard.
// (v1alpha1 has no image field: every v1alpha1 Foo runs this image.)
const DefaultImage = "nginxinc/nginx-unprivileged:1.27"

// Foo asks for a Deployment named spec.deployment.name running spec.replicas pods of
// spec.deployment.image. The controller creates and owns that Deployment and reports what it
// observes in status.
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:resource:scope=Namespaced,shortName=fo,categories=all
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.availableReplicas
// +kubebuilder:printcolumn:name="Deployment",type=string,JSONPath=`.spec.deployment.name`
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Available",type=integer,JSONPath=`.status.availableReplicas`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.deployment.image`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63",message="a Foo's name must be at most 63 characters: it is used as a label value on its Deployment's pods"
type Foo struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec FooSpec `json:"spec"`
	// +optional
	Status FooStatus `json:"status,omitempty"`
}

// Hub marks v1 as the version every other version of Foo converts to and from.
func (*Foo) Hub() {}

// FooSpec is the desired state: what the user asks for.
type FooSpec struct {
	// deployment describes the Deployment the controller keeps for this Foo.
	// +required
	Deployment FooDeployment `json:"deployment"`

	// replicas is the number of pods the Deployment should run: 0 to 1000, 1 when omitted.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	Replicas *int32 `json:"replicas,omitempty"`
}

// FooDeployment names the Deployment and says what its pods run.
type FooDeployment struct {
	// name is the name of the Deployment the controller creates in the Foo's namespace.
	// It must be a valid DNS-1123 subdomain and cannot be changed once set: to use another
	// name, delete the Foo and create a new one (its old Deployment is then garbage-collected).
	// Rejecting the change when the API server validates it, rather than renaming, means an owned Deployment is
	// never left behind under its old name. (spec.deploymentName in v1alpha1.)
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="deployment.name is immutable: delete the Foo and create a new one to use another name"
	Name string `json:"name"`

	// image is the container image the Foo's pods run; DefaultImage when omitted. Changing it
	// rolls the Deployment out. New in v1: a v1alpha1 client sees it in the annotation
	// samplecontroller.example.com/v1-deployment-image.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^[^\s]+$`
	Image string `json:"image,omitempty"`
}

// FooStatus is the observed state: what the controller last saw. Only the controller writes
// it, through the /status subresource, so a user's edit of spec and the controller's report
// never overwrite each other.
type FooStatus struct {
	// observedGeneration is the metadata.generation of the Foo that this status describes.
	// When it is lower than metadata.generation, the controller has not yet acted on the
	// latest spec.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// availableReplicas is the number of the Deployment's pods that are available.
	// +optional
	AvailableReplicas int32 `json:"availableReplicas"`

	// conditions describe the Foo's state. The Ready condition is True when the Deployment
	// has all desired replicas available; its reason says why when it is not.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}

// The Ready condition and its reasons. A reason is CamelCase and stable: scripts and alerts
// may match on it, while the message is for people.
const (
	// ConditionReady is True when the Foo's Deployment exists, is owned by the Foo, matches
	// the spec and has every desired replica available.
	ConditionReady = "Ready"

	// ReasonDeploymentAvailable: the Deployment has all desired replicas available.
	ReasonDeploymentAvailable = "DeploymentAvailable"
	// ReasonDeploymentProgressing: the Deployment is rolling out or scaling.
	ReasonDeploymentProgressing = "DeploymentProgressing"
	// ReasonDeploymentProgressDeadlineExceeded: the Deployment reports that its rollout exceeded
	// its progress deadline.
	ReasonDeploymentProgressDeadlineExceeded = "DeploymentProgressDeadlineExceeded"
	// ReasonDeploymentNotOwned: a Deployment with that name exists and another owner (or no one)
	// controls it. The controller leaves it alone.
	ReasonDeploymentNotOwned = "DeploymentNotOwned"
	// ReasonDeploymentRejected: the API server refused to create or update the Deployment (an
	// admission policy or webhook, a ResourceQuota, or missing permissions). The
	// message carries the API server's answer; the controller keeps retrying with backoff.
	ReasonDeploymentRejected = "DeploymentRejected"
	// ReasonDeploymentReplicaFailure: the Deployment's pods cannot be created (a ResourceQuota,
	// Pod Security admission, a webhook); the message carries the Deployment's explanation.
	ReasonDeploymentReplicaFailure = "DeploymentReplicaFailure"
	// ReasonDeploymentSelectorMismatch: the Deployment the Foo owns selects other pods than the
	// Foo's. A selector cannot be changed: the Deployment must be deleted (the controller then
	// creates it again).
	ReasonDeploymentSelectorMismatch = "DeploymentSelectorMismatch"
	// ReasonInvalidSpec: the Foo got past validation with a spec the controller cannot act on
	// (possible only with an older or hand-edited CRD without the schema's validation).
	ReasonInvalidSpec = "InvalidSpec"
)

// Reasons of the Events the controller records. A Warning event's reason is the Ready
// condition's reason it announces (one vocabulary, above); these two have no condition of their
// own: they record a write the controller made.
const (
	// EventReasonDeploymentCreated: the controller created the Foo's Deployment.
	EventReasonDeploymentCreated = "DeploymentCreated"
	// EventReasonDeploymentUpdated: the controller put back fields of the Deployment that drifted.
	EventReasonDeploymentUpdated = "DeploymentUpdated"
)

// FooList is a list of Foos, as returned by LIST /apis/samplecontroller.example.com/v1/foos.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
type FooList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata"`

	Items []Foo `json:"items"`
}
