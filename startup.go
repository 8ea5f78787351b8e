// Start-up, before the loop: is the Foo API served at all? This is the lesson of GroupVersionKind
// versus GroupVersionResource: what a Foo *is* against the URL it is served at, and the RESTMapper
// that answers one from the other by reading the API server's discovery documents.
package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
)

// fooCRDDir is the kustomization a user applies to install the Foo API (the CRD with its
// conversion webhook), and fooCRDName the CRD's name.
const (
	fooCRDDir  = "artifacts/crd"
	fooCRDName = "foos.samplecontroller.example.com"
)

// errFooAPINotServed means the API server does not know the Foo kind: its CRD is not installed.
var errFooAPINotServed = errors.New("the Foo API (samplecontroller.example.com/v1) is not served by this cluster: install its CRD with `kubectl apply -k " + fooCRDDir + "`")

// resolveFooResource asks the API server, through its discovery documents, which resource
// serves the Foo kind. A RESTMapper is the object that answers "GroupVersionKind ->
// GroupVersionResource": kinds are what objects are (Foo), resources are what URLs name
// (/apis/samplecontroller.example.com/v1/namespaces/NS/foos). A discovery-backed mapper
// reads the discovery documents (GET /api and /apis) to build that table; a kind that no installed CRD or built-in API provides gives a
// "no matches for kind" error, which we turn into errFooAPINotServed.
func resolveFooResource(mapper meta.RESTMapper) (schema.GroupVersionResource, error) {
	mapping, err := mapper.RESTMapping(fooGroupVersionKind.GroupKind(), fooGroupVersionKind.Version)
	if meta.IsNoMatchError(err) {
		return schema.GroupVersionResource{}, errFooAPINotServed
	}
	if err != nil {
		return schema.GroupVersionResource{}, fmt.Errorf("resolving %s to a resource: %w", fooGroupVersionKind, err)
	}
	return mapping.Resource, nil
}

// WaitForFooAPI waits until the cluster serves the Foo API, logging one clear line each time it
// finds it missing. Without this check, the informer would retry "the server could not find the
// requested resource" forever with no hint of what is wrong. Waiting (rather than exiting)
// lets the controller and its CRD be applied together in any order.
func WaitForFooAPI(ctx context.Context, mapper meta.ResettableRESTMapper, interval time.Duration) (schema.GroupVersionResource, error) {
	logger := klog.FromContext(ctx)
	var gvr schema.GroupVersionResource
	err := wait.PollUntilContextCancel(ctx, interval, true, func(ctx context.Context) (bool, error) {
		var err error
		gvr, err = resolveFooResource(mapper)
		switch {
		case errors.Is(err, errFooAPINotServed):
			logger.Error(nil, errFooAPINotServed.Error()+"; waiting for it", "retryInterval", interval)
			mapper.Reset() // forget the cached discovery documents, so the next try sees a new CRD
			return false, nil
		case err != nil:
			logger.Error(err, "Cannot read the API server's discovery documents; retrying", "retryInterval", interval)
			mapper.Reset()
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return gvr, fmt.Errorf("waiting for the Foo API: %w", err)
	}
	logger.Info("Foo API is served", "groupVersionKind", fooGroupVersionKind, "groupVersionResource", gvr)
	return gvr, nil
}
