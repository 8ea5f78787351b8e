// Package samplecontroller holds the name of the API group that this project serves.
// The types of each version live in a subpackage (v1alpha1).
package samplecontroller

// GroupName is the API group of Foo. It is the GROUP in every URL path the API server serves
// for it: /apis/samplecontroller.example.com/v1alpha1/namespaces/NS/foos/NAME.
const GroupName = "samplecontroller.example.com"
