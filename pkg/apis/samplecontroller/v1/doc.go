// Package v1 is version v1 of the samplecontroller.example.com API group: the version the
// API server stores and the controller reads and writes (the hub every other version converts
// to and from; see ../v1alpha1/conversion.go).
//
// The comment tags below drive the generators that hack/update-codegen.sh runs:
// deepcopy-gen writes zz_generated.deepcopy.go here, controller-gen turns the kubebuilder
// markers into the CRD's OpenAPI schema (artifacts/crd/), and client-gen, lister-gen and
// informer-gen write pkg/generated.
//
// +k8s:deepcopy-gen=package
// +groupName=samplecontroller.example.com
// +kubebuilder:object:generate=false
package v1
