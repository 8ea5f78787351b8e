package main

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	kubeinformers "k8s.io/client-go/informers"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/klog/v2/ktesting"

	"example.com/sample-controller/pkg/generated/clientset/versioned/fake"
	informers "example.com/sample-controller/pkg/generated/informers/externalversions"
)

// On SIGTERM the workers finish the keys in hand, and the Events those last syncs record must
// still be sent: the broadcaster stops when Run is done, not when the signal arrives.
func TestEventsOfTheDrainAreSent(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	client, kubeclient := fake.NewSimpleClientset(), k8sfake.NewClientset()
	c, err := NewController(ctx, kubeclient, client, kubeclient.CoreV1(),
		kubeinformers.NewSharedInformerFactory(kubeclient, 0).Apps().V1().Deployments(),
		informers.NewSharedInformerFactory(client, 0).Samplecontroller().V1().Foos())
	if err != nil {
		t.Fatal(err)
	}
	// As Run does.
	c.eventBroadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kubeclient.CoreV1().Events("")})
	defer c.eventBroadcaster.Shutdown()

	cancel() // SIGTERM
	// A worker still finishing its key records an Event a moment later (the scenario's shape,
	// not a wait for a condition).
	time.Sleep(200 * time.Millisecond)
	c.recorder.Eventf(newFoo("test", 1).foo, corev1.EventTypeNormal, "Drained", "recorded after the signal")
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, a := range kubeclient.Actions() {
			if a.GetVerb() == "create" && a.GetResource().Resource == "events" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("an Event recorded after the signal, before Run returned, was never sent")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
