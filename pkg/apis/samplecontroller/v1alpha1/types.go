package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The kubebuilder markers on these types become the CRD (artifacts/crd/): status and scale
// subresources, printer columns, and the validation the API server applies to every write,
// before the controller ever sees a Foo. v1alpha1 is served, not stored: the API server converts
// each request and answer between it and v1, the storage version (conversion.go; the
// controller's conversion webhook calls it).

// MaxReplicas is the largest spec.replicas a Foo accepts. The API server enforces it (the CRD's
// schema says maximum: 1000), so the controller never sees a larger value.
const MaxReplicas = 1000

// Foo asks for a Deployment named spec.deploymentName running spec.replicas pods.
// The controller creates and owns that Deployment and reports what it observes in status.
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName=fo,categories=all
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.availableReplicas
// +kubebuilder:printcolumn:name="Deployment",type=string,JSONPath=`.spec.deploymentName`
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Available",type=integer,JSONPath=`.status.availableReplicas`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
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

// FooSpec is the desired state: what the user asks for.
type FooSpec struct {
	// deploymentName is the name of the Deployment the controller creates in the Foo's namespace.
	// It must be a valid DNS-1123 subdomain and cannot be changed once set: to use another
	// name, delete the Foo and create a new one (its old Deployment is then garbage-collected).
	// Rejecting the change when the API server validates it, rather than renaming, means an owned Deployment is
	// never left behind under its old name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="deploymentName is immutable: delete the Foo and create a new one to use another name"
	DeploymentName string `json:"deploymentName"`

	// replicas is the number of pods the Deployment should run: 0 to 1000, 1 when omitted.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	Replicas *int32 `json:"replicas,omitempty"`
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
	// has all desired replicas available; its reason says why when it is not (the reasons
	// are those of v1: ConditionReady and the Reason constants in package v1).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}

// FooList is a list of Foos, as returned by LIST /apis/samplecontroller.example.com/v1alpha1/foos.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
type FooList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata"`

	Items []Foo `json:"items"`
}
