// Package v1alpha1 is version v1alpha1 of the samplecontroller.example.com API group.
//
// The comment tags below drive the generators that hack/update-codegen.sh runs:
// deepcopy-gen writes zz_generated.deepcopy.go here, controller-gen turns the kubebuilder
// markers into the CRD's OpenAPI schema (artifacts/crd/), and client-gen, lister-gen and
// informer-gen write pkg/generated.
//
// +k8s:deepcopy-gen=package
// +groupName=samplecontroller.example.com
// +kubebuilder:object:generate=false
package v1alpha1
