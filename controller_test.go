package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kubeinformers "k8s.io/client-go/informers"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
	"example.com/sample-controller/pkg/generated/clientset/versioned/fake"
	informers "example.com/sample-controller/pkg/generated/informers/externalversions"
)

// ---- fixtures: a Foo and a Deployment, built up step by step ----

type fooBuilder struct{ foo *samplev1.Foo }

func newFoo(name string, replicas int32) *fooBuilder {
	return &fooBuilder{&samplev1.Foo{
		TypeMeta: metav1.TypeMeta{APIVersion: samplev1.SchemeGroupVersion.String(), Kind: "Foo"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: metav1.NamespaceDefault,
			UID: types.UID("uid-" + name), Generation: 1, ResourceVersion: "1",
		},
		Spec: samplev1.FooSpec{Deployment: samplev1.FooDeployment{Name: name + "-deploy"}, Replicas: ptr.To(replicas)},
	}}
}

// generation sets metadata.generation, as a spec change does; what the status says is unchanged.
func (b *fooBuilder) generation(g int64) *fooBuilder {
	b.foo.Generation = g
	return b
}

func (b *fooBuilder) deploymentName(name string) *fooBuilder {
	b.foo.Spec.Deployment.Name = name
	return b
}

// image sets spec.deployment.image (v1 only; empty means samplev1.DefaultImage).
func (b *fooBuilder) image(image string) *fooBuilder {
	b.foo.Spec.Deployment.Image = image
	return b
}

// converged gives the Foo the status the controller writes once its Deployment is available.
func (b *fooBuilder) converged() *fooBuilder {
	d := newDeploymentFor(b.foo).available().d
	b.foo.Status = samplev1.FooStatus{
		ObservedGeneration: b.foo.Generation,
		AvailableReplicas:  desiredReplicas(b.foo),
		Conditions: []metav1.Condition{{
			Type: samplev1.ConditionReady, Status: metav1.ConditionTrue,
			Reason:             samplev1.ReasonDeploymentAvailable,
			Message:            deploymentReadyCondition(b.foo, d).Message,
			ObservedGeneration: b.foo.Generation,
			LastTransitionTime: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		}},
	}
	return b
}

func (b *fooBuilder) readyReason(status metav1.ConditionStatus, reason, message string) *fooBuilder {
	b.foo.Status.ObservedGeneration = b.foo.Generation
	meta.SetStatusCondition(&b.foo.Status.Conditions, newReadyCondition(b.foo, status, reason, message))
	return b
}

type deploymentBuilder struct{ d *appsv1.Deployment }

// newDeploymentFor is the Deployment the controller would create for foo, as the API server
// returns it: with the defaults it fills in, which the controller must not mistake for drift.
func newDeploymentFor(foo *samplev1.Foo) *deploymentBuilder {
	d := newDeployment(foo)
	d.ResourceVersion = "10"
	d.Generation = 1
	d.UID = types.UID("uid-deploy-" + foo.Name)
	d.Annotations = map[string]string{"deployment.kubernetes.io/revision": "1"}
	setDeploymentDefaults(d)
	return &deploymentBuilder{d}
}

// setDeploymentDefaults fills in, where unset, the fields the API server defaults in a Deployment
// it stores (a subset of Kubernetes' apps/v1 and core/v1 defaulting: the fields newDeployment
// leaves unset that the controller's comparisons could mistake for drift).
func setDeploymentDefaults(d *appsv1.Deployment) {
	if d.Spec.RevisionHistoryLimit == nil {
		d.Spec.RevisionHistoryLimit = ptr.To[int32](10)
	}
	if d.Spec.ProgressDeadlineSeconds == nil {
		d.Spec.ProgressDeadlineSeconds = ptr.To[int32](600)
	}
	if d.Spec.Strategy.Type == "" {
		d.Spec.Strategy.Type = appsv1.RollingUpdateDeploymentStrategyType
	}
	pod := &d.Spec.Template.Spec
	if pod.RestartPolicy == "" {
		pod.RestartPolicy = corev1.RestartPolicyAlways
	}
	if pod.DNSPolicy == "" {
		pod.DNSPolicy = corev1.DNSClusterFirst
	}
	if pod.SchedulerName == "" {
		pod.SchedulerName = corev1.DefaultSchedulerName
	}
	if pod.TerminationGracePeriodSeconds == nil {
		pod.TerminationGracePeriodSeconds = ptr.To[int64](30)
	}
	if pod.SecurityContext == nil {
		pod.SecurityContext = &corev1.PodSecurityContext{}
	}
	for i := range pod.Containers {
		c := &pod.Containers[i]
		if c.ImagePullPolicy == "" {
			c.ImagePullPolicy = corev1.PullIfNotPresent
		}
		if c.TerminationMessagePath == "" {
			c.TerminationMessagePath = corev1.TerminationMessagePathDefault
		}
		if c.TerminationMessagePolicy == "" {
			c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
		}
		for j := range c.Ports {
			if c.Ports[j].Protocol == "" {
				c.Ports[j].Protocol = corev1.ProtocolTCP
			}
		}
	}
}

func (b *deploymentBuilder) available() *deploymentBuilder {
	n := *b.d.Spec.Replicas
	b.d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: b.d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
	}
	return b
}

func (b *deploymentBuilder) mutate(f func(d *appsv1.Deployment)) *deploymentBuilder {
	f(b.d)
	return b
}

// ---- the controller under test, with fake clientsets ----

type fixture struct {
	t          *testing.T
	controller *Controller
	client     *fake.Clientset
	kubeclient *k8sfake.Clientset
	recorder   *record.FakeRecorder
	// deploymentCache is the Deployment informer's store, for a test to play the informer.
	deploymentCache cache.Indexer
}

// newFixture builds a controller whose caches hold exactly the given objects. The informers are
// never started: the test puts objects straight into their indexers, so the cache is in the
// state the test names, and the only API requests are the ones the controller makes.
func newFixture(t *testing.T, foos []*samplev1.Foo, deployments []*appsv1.Deployment) *fixture {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	var fooObjects, kubeObjects []runtime.Object
	for _, f := range foos {
		fooObjects = append(fooObjects, f)
	}
	for _, d := range deployments {
		kubeObjects = append(kubeObjects, d)
	}
	client := fake.NewSimpleClientset(fooObjects...)
	kubeclient := k8sfake.NewClientset(kubeObjects...)

	fooFactory := informers.NewSharedInformerFactory(client, 0)
	kubeFactory := kubeinformers.NewSharedInformerFactory(kubeclient, 0)
	c, err := NewController(ctx, kubeclient, client, kubeclient.CoreV1(),
		kubeFactory.Apps().V1().Deployments(), fooFactory.Samplecontroller().V1().Foos())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range foos {
		if err := fooFactory.Samplecontroller().V1().Foos().Informer().GetIndexer().Add(f); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range deployments {
		if err := kubeFactory.Apps().V1().Deployments().Informer().GetIndexer().Add(d); err != nil {
			t.Fatal(err)
		}
	}
	recorder := record.NewFakeRecorder(100)
	c.recorder = recorder
	c.deploymentsSynced = func() bool { return true }
	c.foosSynced = func() bool { return true }
	// NewSimpleClientset records the objects it was seeded with as actions; start clean.
	client.ClearActions()
	kubeclient.ClearActions()
	return &fixture{t: t, controller: c, client: client, kubeclient: kubeclient, recorder: recorder,
		deploymentCache: kubeFactory.Apps().V1().Deployments().Informer().GetIndexer()}
}

// addUnwatched puts Deployments in the API server but not in the cache.
func (f *fixture) addUnwatched(deployments ...*appsv1.Deployment) {
	f.t.Helper()
	for _, d := range deployments {
		if err := f.kubeclient.Tracker().Add(d); err != nil {
			f.t.Fatal(err)
		}
	}
	f.kubeclient.ClearActions()
}

// writes returns every API request the controller made, except reads (informers do those).
func (f *fixture) writes() []core.Action {
	var out []core.Action
	for _, a := range append(f.kubeclient.Actions(), f.client.Actions()...) {
		if a.GetVerb() == "list" || a.GetVerb() == "watch" || a.GetVerb() == "get" {
			continue
		}
		out = append(out, a)
	}
	return out
}

func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func describe(actions []core.Action) []string {
	var out []string
	for _, a := range actions {
		s := a.GetVerb() + " " + a.GetResource().Resource
		if sub := a.GetSubresource(); sub != "" {
			s += "/" + sub
		}
		out = append(out, s)
	}
	return out
}

func objectOf(t *testing.T, a core.Action) runtime.Object {
	t.Helper()
	switch a := a.(type) {
	case core.CreateAction:
		return a.GetObject()
	case core.UpdateAction:
		return a.GetObject()
	}
	t.Fatalf("action %s has no object", a.GetVerb())
	return nil
}

// ---- syncFoo: the specification of one reconciliation ----

func TestSyncFoo(t *testing.T) {
	type check func(t *testing.T, f *fixture, writes []core.Action)

	// The ready condition a status write carried.
	readyOf := func(t *testing.T, a core.Action) *metav1.Condition {
		foo := objectOf(t, a).(*samplev1.Foo)
		c := meta.FindStatusCondition(foo.Status.Conditions, samplev1.ConditionReady)
		if c == nil {
			t.Fatalf("status write has no Ready condition: %+v", foo.Status)
		}
		return c
	}

	tests := []struct {
		name        string
		foo         *samplev1.Foo
		deployments []*appsv1.Deployment
		unwatched   []*appsv1.Deployment // in the API server, not in the cache (no fooLabel, or the cache is behind)
		wantWrites  []string
		wantEvents  []string // prefixes: "Type Reason"
		check       check
	}{
		{
			name:       "new Foo: create the Deployment, report it progressing",
			foo:        newFoo("test", 3).foo,
			wantWrites: []string{"create deployments", "update foos/status"},
			wantEvents: []string{"Normal DeploymentCreated"},
			check: func(t *testing.T, f *fixture, w []core.Action) {
				d := objectOf(t, w[0]).(*appsv1.Deployment)
				if d.Name != "test-deploy" || *d.Spec.Replicas != 3 {
					t.Errorf("created %s with %d replicas, want test-deploy with 3", d.Name, *d.Spec.Replicas)
				}
				ref := metav1.GetControllerOf(d)
				if ref == nil || ref.UID != "uid-test" || ref.Kind != "Foo" || ref.APIVersion != "samplecontroller.example.com/v1" || !*ref.BlockOwnerDeletion {
					t.Errorf("controller ownerReference = %+v, want the Foo with blockOwnerDeletion", ref)
				}
				if c := readyOf(t, w[1]); c.Status != metav1.ConditionFalse || c.Reason != samplev1.ReasonDeploymentProgressing || c.ObservedGeneration != 1 {
					t.Errorf("Ready = %+v, want False/DeploymentProgressing at generation 1", c)
				}
			},
		},
		{
			name: "zero replicas, Deployment not yet seen by its controller: Ready at once, nothing to wait for",
			foo:  newFoo("test", 0).foo,
			deployments: []*appsv1.Deployment{newDeploymentFor(newFoo("test", 0).foo).mutate(func(d *appsv1.Deployment) {
				d.Status = appsv1.DeploymentStatus{} // generation 1, observedGeneration 0
			}).d},
			wantWrites: []string{"update foos/status"},
			check: func(t *testing.T, f *fixture, w []core.Action) {
				if c := readyOf(t, w[0]); c.Status != metav1.ConditionTrue || c.Reason != samplev1.ReasonDeploymentAvailable {
					t.Errorf("Ready = %+v, want True/DeploymentAvailable", c)
				}
			},
		},
		{
			name: "scaled to zero, old pods still running: not ready yet",
			foo:  newFoo("test", 0).converged().foo,
			deployments: []*appsv1.Deployment{newDeploymentFor(newFoo("test", 0).foo).mutate(func(d *appsv1.Deployment) {
				d.Generation = 2
				d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3}
			}).d},
			wantWrites: []string{"update foos/status"},
			check: func(t *testing.T, f *fixture, w []core.Action) {
				if c := readyOf(t, w[0]); c.Status != metav1.ConditionFalse || c.Reason != samplev1.ReasonDeploymentProgressing {
					t.Errorf("Ready = %+v, want False/DeploymentProgressing while 3 old pods remain", c)
				}
			},
		},
		{
			name: "Deployment exists without any status yet: report it progressing",
			foo:  newFoo("test", 3).foo,
			deployments: []*appsv1.Deployment{newDeploymentFor(newFoo("test", 3).foo).mutate(func(d *appsv1.Deployment) {
				d.Status = appsv1.DeploymentStatus{}
			}).d},
			wantWrites: []string{"update foos/status"},
			check: func(t *testing.T, f *fixture, w []core.Action) {
				foo := objectOf(t, w[0]).(*samplev1.Foo)
				if foo.Status.ObservedGeneration != 1 {
					t.Errorf("observedGeneration = %d, want 1", foo.Status.ObservedGeneration)
				}
				if c := readyOf(t, w[0]); c.Status != metav1.ConditionFalse || c.Reason != samplev1.ReasonDeploymentProgressing || c.ObservedGeneration != 1 {
					t.Errorf("Ready = %+v, want False/DeploymentProgressing at generation 1", c)
				}
			},
		},
		{
			name:        "converged Foo: zero writes",
			foo:         newFoo("test", 3).converged().foo,
			deployments: []*appsv1.Deployment{newDeploymentFor(newFoo("test", 3).foo).available().d},
		},
		{
			name: "converged Foo whose Deployment others annotated and labelled: still zero writes",
			foo:  newFoo("test", 3).converged().foo,
			deployments: []*appsv1.Deployment{newDeploymentFor(newFoo("test", 3).foo).available().mutate(func(d *appsv1.Deployment) {
				d.Labels["team"] = "blue"
				d.Spec.Template.Annotations = map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}
			}).d},
		},
		{
			name:        "Deployment became available: status written once with the new count",
			foo:         newFoo("test", 3).readyReason(metav1.ConditionFalse, samplev1.ReasonDeploymentProgressing, "Deployment test-deploy: 0 of 3 replicas available").foo,
			deployments: []*appsv1.Deployment{newDeploymentFor(newFoo("test", 3).foo).available().d},
			wantWrites:  []string{"update foos/status"},
			check: func(t *testing.T, f *fixture, w []core.Action) {
				foo := objectOf(t, w[0]).(*samplev1.Foo)
				if foo.Status.AvailableReplicas != 3 {
					t.Errorf("availableReplicas = %d, want 3", foo.Status.AvailableReplicas)
				}
				if c := readyOf(t, w[0]); c.Status != metav1.ConditionTrue || c.Reason != samplev1.ReasonDeploymentAvailable {
					t.Errorf("Ready = %+v, want True/DeploymentAvailable", c)
				}
			},
		},
		{
			name: "replicas drifted: put spec.replicas back",
			foo:  newFoo("test", 3).converged().foo,
			deployments: []*appsv1.Deployment{newDeploymentFor(newFoo("test", 3).foo).available().mutate(func(d *appsv1.Deployment) {
				d.Spec.Replicas = ptr.To[int32](7)
			}).d},
			wantWrites: []string{"update deployments"},
			wantEvents: []string{"Normal DeploymentUpdated"},
			check: func(t *testing.T, f *fixture, w []core.Action) {
				d := objectOf(t, w[0]).(*appsv1.Deployment)
				if *d.Spec.Replicas != 3 {
					t.Errorf("replicas = %d, want 3", *d.Spec.Replicas)
				}
				if d.ResourceVersion != "10" {
					t.Errorf("update carries resourceVersion %q, want the cached 10 (optimistic concurrency)", d.ResourceVersion)
				}
				if d.Spec.Template.Spec.Containers[0].ImagePullPolicy != corev1.PullIfNotPresent {
					t.Errorf("a replicas fix must leave the template alone, got %+v", d.Spec.Template.Spec.Containers[0])
				}
			},
		},
		{
			name: "pod template drifted (image): restore it, keep others' template annotations",
			foo:  newFoo("test", 3).converged().foo,
			deployments: []*appsv1.Deployment{newDeploymentFor(newFoo("test", 3).foo).available().mutate(func(d *appsv1.Deployment) {
				d.Spec.Template.Spec.Containers[0].Image = "evil:latest"
				d.Spec.Template.Annotations = map[string]string{"kubectl.kubernetes.io/restartedAt": "now"}
			}).d},
			wantWrites: []string{"update deployments"},
			wantEvents: []string{"Normal DeploymentUpdated"},
			check: func(t *testing.T, f *fixture, w []core.Action) {
				d := objectOf(t, w[0]).(*appsv1.Deployment)
				if img := d.Spec.Template.Spec.Containers[0].Image; img != samplev1.DefaultImage {
					t.Errorf("image = %q, want %s", img, samplev1.DefaultImage)
				}
				if d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] != "now" {
					t.Errorf("template annotations lost: %v", d.Spec.Template.Annotations)
				}
			},
		},
		{
			name:       "new Foo with spec.deployment.image: its pods run that image",
			foo:        newFoo("test", 1).image("registry.example/web:2").foo,
			wantWrites: []string{"create deployments", "update foos/status"},
			wantEvents: []string{"Normal DeploymentCreated"},
			check: func(t *testing.T, f *fixture, w []core.Action) {
				if img := objectOf(t, w[0]).(*appsv1.Deployment).Spec.Template.Spec.Containers[0].Image; img != "registry.example/web:2" {
					t.Errorf("image = %q, want registry.example/web:2", img)
				}
			},
		},
		{
			name:        "spec.deployment.image changed: the Deployment rolls out the new image",
			foo:         newFoo("test", 3).image("registry.example/web:3").generation(2).converged().foo,
			deployments: []*appsv1.Deployment{newDeploymentFor(newFoo("test", 3).image("registry.example/web:2").foo).available().d},
			wantWrites:  []string{"update deployments"},
			wantEvents:  []string{"Normal DeploymentUpdated"},
			check: func(t *testing.T, f *fixture, w []core.Action) {
				if img := objectOf(t, w[0]).(*appsv1.Deployment).Spec.Template.Spec.Containers[0].Image; img != "registry.example/web:3" {
					t.Errorf("image = %q, want registry.example/web:3", img)
				}
			},
		},
		{
			name: "pod template drifted (extra container): remove it",
			foo:  newFoo("test", 1).converged().foo,
			deployments: []*appsv1.Deployment{newDeploymentFor(newFoo("test", 1).foo).available().mutate(func(d *appsv1.Deployment) {
				d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, corev1.Container{Name: "sidecar", Image: "busybox"})
			}).d},
			wantWrites: []string{"update deployments"},
			wantEvents: []string{"Normal DeploymentUpdated"},
			check: func(t *testing.T, f *fixture, w []core.Action) {
				if n := len(objectOf(t, w[0]).(*appsv1.Deployment).Spec.Template.Spec.Containers); n != 1 {
					t.Errorf("%d containers, want 1", n)
				}
			},
		},
		{
			name: "pod template drifted (labels): restore them",
			foo:  newFoo("test", 1).converged().foo,
			deployments: []*appsv1.Deployment{newDeploymentFor(newFoo("test", 1).foo).available().mutate(func(d *appsv1.Deployment) {
				d.Spec.Template.Labels["app.kubernetes.io/name"] = "other"
			}).d},
			wantWrites: []string{"update deployments"},
			wantEvents: []string{"Normal DeploymentUpdated"},
		},
		{
			name: "Deployment labels removed, so the informer no longer shows it: the refused create finds it, labels restored",
			foo:  newFoo("test", 1).converged().foo,
			unwatched: []*appsv1.Deployment{newDeploymentFor(newFoo("test", 1).foo).available().mutate(func(d *appsv1.Deployment) {
				delete(d.Labels, fooLabel)
			}).d},
			wantWrites: []string{"create deployments", "update deployments"},
			wantEvents: []string{"Normal DeploymentUpdated"},
			check: func(t *testing.T, f *fixture, w []core.Action) {
				if objectOf(t, w[1]).(*appsv1.Deployment).Labels[fooLabel] != "test" {
					t.Error("label not restored")
				}
				if _, pending := f.controller.expectations.pending(cache.NewObjectName("default", "test-deploy")); pending {
					t.Error("a sync waits for a Deployment that is ours and about to be in the cache")
				}
			},
		},
		{
			name:       "Deployment created, not yet in the cache: no second create, status from the API server's copy, the cache awaited",
			foo:        newFoo("test", 1).foo,
			unwatched:  []*appsv1.Deployment{newDeploymentFor(newFoo("test", 1).foo).available().d},
			wantWrites: []string{"create deployments", "update foos/status"},
			check: func(t *testing.T, f *fixture, w []core.Action) {
				if c := readyOf(t, w[1]); c.Status != metav1.ConditionTrue {
					t.Errorf("Ready = %+v, want True (the Deployment the API server holds is available)", c)
				}
				if wait, pending := f.controller.expectations.pending(cache.NewObjectName("default", "test-deploy")); !pending || wait <= nameTakenRecheck {
					t.Errorf("expectation pending = %v for %s, want the cache awaited for up to %s", pending, wait, expectationTimeout)
				}
			},
		},
		{
			name: "name taken by a Deployment the informer does not watch (no label, no owner): untouched, warning, Ready=False, checked again later",
			foo:  newFoo("test", 1).foo,
			unwatched: []*appsv1.Deployment{newDeploymentFor(newFoo("test", 1).foo).mutate(func(d *appsv1.Deployment) {
				d.Labels, d.OwnerReferences = map[string]string{"app": "theirs"}, nil
			}).d},
			wantWrites: []string{"create deployments", "update foos/status"},
			wantEvents: []string{"Warning DeploymentNotOwned"},
			check: func(t *testing.T, f *fixture, w []core.Action) {
				c := readyOf(t, w[1])
				if c.Status != metav1.ConditionFalse || c.Reason != samplev1.ReasonDeploymentNotOwned || !strings.Contains(c.Message, "test-deploy") {
					t.Errorf("Ready = %+v, want False/DeploymentNotOwned naming the Deployment", c)
				}
				if wait, pending := f.controller.expectations.pending(cache.NewObjectName("default", "test-deploy")); !pending || wait > nameTakenRecheck {
					t.Errorf("expectation pending = %v for %s, want the name checked again within %s", pending, wait, nameTakenRecheck)
				}
			},
		},
		{
			name: "name taken by an unwatched Deployment, already reported: only the refused create",
			foo: newFoo("test", 1).readyReason(metav1.ConditionFalse, samplev1.ReasonDeploymentNotOwned,
				"Deployment test-deploy already exists and is not controlled by this Foo; delete it, or recreate the Foo with another spec.deployment.name").foo,
			unwatched: []*appsv1.Deployment{newDeploymentFor(newFoo("test", 1).foo).mutate(func(d *appsv1.Deployment) {
				d.Labels, d.OwnerReferences = nil, nil
			}).d},
			wantWrites: []string{"create deployments"},
		},
		{
			name: "Deployment of that name not ours (other UID): untouched, warning, Ready=False",
			foo:  newFoo("test", 1).foo,
			deployments: []*appsv1.Deployment{newDeploymentFor(newFoo("test", 1).foo).mutate(func(d *appsv1.Deployment) {
				d.OwnerReferences[0].UID = "uid-of-an-earlier-foo"
			}).d},
			wantWrites: []string{"update foos/status"},
			wantEvents: []string{"Warning DeploymentNotOwned"},
			check: func(t *testing.T, f *fixture, w []core.Action) {
				c := readyOf(t, w[0])
				if c.Status != metav1.ConditionFalse || c.Reason != samplev1.ReasonDeploymentNotOwned || !strings.Contains(c.Message, "test-deploy") {
					t.Errorf("Ready = %+v, want False/DeploymentNotOwned naming the Deployment", c)
				}
			},
		},
		{
			name: "Deployment of that name with no owner, already reported: no writes, no second event",
			foo: newFoo("test", 1).readyReason(metav1.ConditionFalse, samplev1.ReasonDeploymentNotOwned,
				"Deployment test-deploy already exists and is not controlled by this Foo; delete it, or recreate the Foo with another spec.deployment.name").foo,
			deployments: []*appsv1.Deployment{newDeploymentFor(newFoo("test", 1).foo).mutate(func(d *appsv1.Deployment) {
				d.OwnerReferences = nil
			}).d},
		},
		{
			name:       "invalid deploymentName (CRD without schema): no Deployment, warning, Ready=False",
			foo:        newFoo("test", 1).deploymentName("Not_A_Name").foo,
			wantWrites: []string{"update foos/status"},
			wantEvents: []string{"Warning InvalidSpec"},
			check: func(t *testing.T, f *fixture, w []core.Action) {
				if c := readyOf(t, w[0]); c.Reason != samplev1.ReasonInvalidSpec {
					t.Errorf("Ready = %+v, want reason InvalidSpec", c)
				}
			},
		},
		{
			name: "rollout stuck: Ready=False with the Deployment's own explanation",
			foo:  newFoo("test", 2).foo,
			deployments: []*appsv1.Deployment{newDeploymentFor(newFoo("test", 2).foo).mutate(func(d *appsv1.Deployment) {
				d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 1,
					Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
						Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "x" has timed out progressing.`}}}
			}).d},
			wantWrites: []string{"update foos/status"},
			wantEvents: []string{"Warning " + samplev1.ReasonDeploymentProgressDeadlineExceeded},
			check: func(t *testing.T, f *fixture, w []core.Action) {
				c := readyOf(t, w[0])
				if c.Reason != samplev1.ReasonDeploymentProgressDeadlineExceeded || !strings.Contains(c.Message, "timed out") {
					t.Errorf("Ready = %+v, want DeploymentProgressDeadlineExceeded with the message", c)
				}
			},
		},
		{
			name: "pods cannot be created (quota): Ready=False with the Deployment's ReplicaFailure, at once, and a warning",
			foo:  newFoo("test", 2).readyReason(metav1.ConditionFalse, samplev1.ReasonDeploymentProgressing, "Deployment test-deploy: 0 of 2 replicas available").foo,
			deployments: []*appsv1.Deployment{newDeploymentFor(newFoo("test", 2).foo).mutate(func(d *appsv1.Deployment) {
				d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1,
					Conditions: []appsv1.DeploymentCondition{
						{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "ReplicaSetUpdated"},
						{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate",
							Message: `pods "test-deploy-x" is forbidden: exceeded quota: no-pods, requested: pods=1, used: pods=0, limited: pods=0`}}}
			}).d},
			wantWrites: []string{"update foos/status"},
			wantEvents: []string{"Warning " + samplev1.ReasonDeploymentReplicaFailure},
			check: func(t *testing.T, f *fixture, w []core.Action) {
				c := readyOf(t, w[0])
				if c.Status != metav1.ConditionFalse || c.Reason != samplev1.ReasonDeploymentReplicaFailure ||
					!strings.Contains(c.Message, "FailedCreate") || !strings.Contains(c.Message, "exceeded quota: no-pods") {
					t.Errorf("Ready = %+v, want False/DeploymentReplicaFailure with the Deployment's reason and message", c)
				}
			},
		},
		{
			name: "ReplicaFailure with a message longer than the schema allows in a condition: quoted cut short, so the status write is accepted",
			foo:  newFoo("test", 2).readyReason(metav1.ConditionFalse, samplev1.ReasonDeploymentProgressing, "Deployment test-deploy: 0 of 2 replicas available").foo,
			deployments: []*appsv1.Deployment{newDeploymentFor(newFoo("test", 2).foo).mutate(func(d *appsv1.Deployment) {
				d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1,
					Conditions: []appsv1.DeploymentCondition{
						{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate",
							Message: "admission webhook denied the request: " + strings.Repeat("é", 40000)}}}
			}).d},
			wantWrites: []string{"update foos/status"},
			wantEvents: []string{"Warning " + samplev1.ReasonDeploymentReplicaFailure},
			check: func(t *testing.T, f *fixture, w []core.Action) {
				c := readyOf(t, w[0])
				// The CRD's schema: a condition message has at most 32768 characters.
				if n := utf8.RuneCountInString(c.Message); n > 32768 || !utf8.ValidString(c.Message) ||
					!strings.Contains(c.Message, "admission webhook denied the request") {
					t.Errorf("Ready message has %d characters (valid UTF-8: %v), want at most 32768 with the start of the Deployment's message",
						n, utf8.ValidString(c.Message))
				}
			},
		},
		{
			name: "ReplicaFailure already reported, one more replica available meanwhile: only the count is written, no second warning",
			foo: newFoo("test", 2).readyReason(metav1.ConditionFalse, samplev1.ReasonDeploymentReplicaFailure,
				`Deployment test-deploy: pods cannot be created: FailedCreate: forbidden`).foo,
			deployments: []*appsv1.Deployment{newDeploymentFor(newFoo("test", 2).foo).mutate(func(d *appsv1.Deployment) {
				d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1,
					Conditions: []appsv1.DeploymentCondition{
						{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate", Message: "forbidden"}}}
			}).d},
			wantWrites: []string{"update foos/status"},
			check: func(t *testing.T, f *fixture, w []core.Action) {
				if foo := objectOf(t, w[0]).(*samplev1.Foo); foo.Status.AvailableReplicas != 1 {
					t.Errorf("availableReplicas = %d, want 1", foo.Status.AvailableReplicas)
				}
			},
		},
		{
			name: "owned Deployment selects other pods: never written (the selector is immutable), reported with what to do",
			foo:  newFoo("test", 1).converged().foo,
			deployments: []*appsv1.Deployment{newDeploymentFor(newFoo("test", 1).foo).available().mutate(func(d *appsv1.Deployment) {
				d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "old"}}
				d.Spec.Template.Labels = map[string]string{"app": "old"}
				d.Spec.Replicas = ptr.To[int32](5) // drift too: not repaired while the selector is wrong
			}).d},
			wantWrites: []string{"update foos/status"},
			wantEvents: []string{"Warning " + samplev1.ReasonDeploymentSelectorMismatch},
			check: func(t *testing.T, f *fixture, w []core.Action) {
				c := readyOf(t, w[0])
				if c.Status != metav1.ConditionFalse || c.Reason != samplev1.ReasonDeploymentSelectorMismatch ||
					!strings.Contains(c.Message, "app=old") || !strings.Contains(c.Message, "delete the Deployment") {
					t.Errorf("Ready = %+v, want False/DeploymentSelectorMismatch naming the selector and what to do", c)
				}
			},
		},
		{
			name: "Deployment has not seen its newest spec yet: progressing, not ready",
			foo:  newFoo("test", 1).converged().foo,
			deployments: []*appsv1.Deployment{newDeploymentFor(newFoo("test", 1).foo).available().mutate(func(d *appsv1.Deployment) {
				d.Generation = 2
			}).d},
			wantWrites: []string{"update foos/status"},
			check: func(t *testing.T, f *fixture, w []core.Action) {
				if c := readyOf(t, w[0]); c.Status != metav1.ConditionFalse {
					t.Errorf("Ready = %+v, want False", c)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, []*samplev1.Foo{tc.foo}, tc.deployments)
			f.addUnwatched(tc.unwatched...)
			cached := tc.foo.DeepCopy()
			_, ctx := ktesting.NewTestContext(t)
			if err := f.controller.syncFoo(ctx, cache.MetaObjectToName(tc.foo)); err != nil {
				t.Fatalf("syncFoo: %v", err)
			}
			writes := f.writes()
			if got := describe(writes); !equality.Semantic.DeepEqual(got, tc.wantWrites) {
				t.Fatalf("writes = %q, want %q", got, tc.wantWrites)
			}
			events := f.events()
			if len(events) != len(tc.wantEvents) {
				t.Fatalf("events = %q, want %q", events, tc.wantEvents)
			}
			for i, want := range tc.wantEvents {
				if !strings.HasPrefix(events[i], want+" ") {
					t.Errorf("event %d = %q, want %q...", i, events[i], want)
				}
			}
			// The cache's object must never be modified: other readers share it.
			inCache, _ := f.controller.foosLister.Foos(tc.foo.Namespace).Get(tc.foo.Name)
			if !equality.Semantic.DeepEqual(inCache, cached) {
				t.Errorf("syncFoo modified the cached Foo")
			}
			if tc.check != nil {
				tc.check(t, f, writes)
			}
		})
	}
}

// After one sync has written status, a second sync over the result (what the next resync would
// see) writes nothing: the write-only-on-change rule holds for what the controller itself wrote.
func TestSyncFooIsIdempotent(t *testing.T) {
	foo := newFoo("test", 2).foo
	d := newDeploymentFor(foo).available().d
	f := newFixture(t, []*samplev1.Foo{foo}, []*appsv1.Deployment{d})
	_, ctx := ktesting.NewTestContext(t)
	key := cache.MetaObjectToName(foo)
	if err := f.controller.syncFoo(ctx, key); err != nil {
		t.Fatal(err)
	}
	written := objectOf(t, f.writes()[0]).(*samplev1.Foo)
	g := newFixture(t, []*samplev1.Foo{written}, []*appsv1.Deployment{d})
	if err := g.controller.syncFoo(ctx, key); err != nil {
		t.Fatal(err)
	}
	if w := describe(g.writes()); len(w) != 0 {
		t.Errorf("second sync wrote %q, want nothing", w)
	}
}

// A Deployment that is gone, for a Foo the controller has reported on before, may have been
// deleted by the garbage collector right after the Foo (background deletion), while the cache
// still holds the Foo. The controller asks the API server before re-creating it; a new Foo's
// first create makes no such request.
func TestSyncFooRecreateOnlyForAFooThatStillExists(t *testing.T) {
	reported := newFoo("test", 1).converged().foo
	// What the controller reported after the API server refused its create: no Deployment of
	// ours has existed since, as for a new Foo.
	createRefused := newFoo("test", 1).readyReason(metav1.ConditionFalse, samplev1.ReasonDeploymentRejected,
		"the API server refused creating Deployment test-deploy (Forbidden): exceeded quota").foo
	// The same after a refused update: the Deployment existed.
	updateRefused := newFoo("test", 1).readyReason(metav1.ConditionFalse, samplev1.ReasonDeploymentRejected,
		"the API server refused updating Deployment test-deploy (Forbidden): exceeded quota").foo
	tests := []struct {
		name   string
		cached *samplev1.Foo
		live   func(foo *samplev1.Foo) *samplev1.Foo // what the API server holds; nil: deleted
		want   []string                              // every request, reads included: Deployments', then Foos'

		wantErr bool
	}{
		{"new Foo: created without an extra request", newFoo("test", 1).foo,
			func(foo *samplev1.Foo) *samplev1.Foo { return foo },
			[]string{"create deployments", "update foos/status"}, false},
		{"reported Foo deleted from the API server: not re-created", reported,
			func(*samplev1.Foo) *samplev1.Foo { return nil },
			[]string{"get foos"}, false},
		{"reported Foo being deleted (foreground): not re-created", reported,
			func(foo *samplev1.Foo) *samplev1.Foo {
				foo.DeletionTimestamp = ptr.To(metav1.Now())
				return foo
			}, []string{"get foos"}, false},
		{"reported Foo replaced by a new one of the same name: not re-created for the old", reported,
			func(foo *samplev1.Foo) *samplev1.Foo {
				foo.UID = "uid-of-the-new-foo"
				return foo
			}, []string{"get foos"}, false},
		{"reported Foo, the GET forbidden (RBAC without get on foos): not re-created, and the Foo says why", reported,
			func(foo *samplev1.Foo) *samplev1.Foo { return foo },
			[]string{"get foos", "update foos/status"}, true},
		{"reported Foo, the GET timed out: not re-created, retried", reported,
			func(foo *samplev1.Foo) *samplev1.Foo { return foo },
			[]string{"get foos"}, true},
		{"reported Foo still there (its Deployment deleted by hand): re-created", reported,
			func(foo *samplev1.Foo) *samplev1.Foo { return foo },
			[]string{"create deployments", "get foos", "update foos/status"}, false},
		{"Foo whose last create was refused: created again without an extra request", createRefused,
			func(foo *samplev1.Foo) *samplev1.Foo { return foo },
			[]string{"create deployments", "update foos/status"}, false},
		{"Foo whose last update was refused, its Deployment gone since: asked about first", updateRefused,
			func(*samplev1.Foo) *samplev1.Foo { return nil },
			[]string{"get foos"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, []*samplev1.Foo{tc.cached}, nil)
			gvr := samplev1.SchemeGroupVersion.WithResource("foos")
			if live := tc.live(tc.cached.DeepCopy()); live == nil {
				if err := f.client.Tracker().Delete(gvr, tc.cached.Namespace, tc.cached.Name); err != nil {
					t.Fatal(err)
				}
			} else if err := f.client.Tracker().Update(gvr, live, live.Namespace); err != nil {
				t.Fatal(err)
			}
			f.client.ClearActions()
			switch {
			case strings.Contains(tc.name, "forbidden"):
				f.client.PrependReactor("get", "foos", func(core.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewForbidden(samplev1.Resource("foos"), "test", errors.New(`User "ctl" cannot get resource "foos"`))
				})
			case strings.Contains(tc.name, "timed out"):
				f.client.PrependReactor("get", "foos", func(core.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewTimeoutError("request timed out", 1)
				})
			}
			_, ctx := ktesting.NewTestContext(t)
			err := f.controller.syncFoo(ctx, cache.MetaObjectToName(tc.cached))
			if (err != nil) != tc.wantErr {
				t.Fatalf("syncFoo = %v", err)
			}
			var got []string
			for _, a := range append(f.kubeclient.Actions(), f.client.Actions()...) {
				got = append(got, describe([]core.Action{a})...)
			}
			if !equality.Semantic.DeepEqual(got, tc.want) {
				t.Errorf("requests = %q, want %q", got, tc.want)
			}
			if strings.Contains(tc.name, "forbidden") {
				status := objectOf(t, f.client.Actions()[1]).(*samplev1.Foo)
				ready := meta.FindStatusCondition(status.Status.Conditions, samplev1.ConditionReady)
				if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != samplev1.ReasonDeploymentRejected ||
					!strings.Contains(ready.Message, "cannot get resource") {
					t.Errorf("Ready = %+v, want False/DeploymentRejected with the server's answer", ready)
				}
			}
		})
	}
}

// A name held by a Deployment the informer does not watch gives no event when it is freed, so
// the Foo is checked again later, backing off (5s, 10s, ...), and writes nothing in between; once
// the name is free, its Deployment is created and the backoff forgotten.
// A Deployment without fooLabel that holds the Foo's name is invisible to the informer, so no
// event says when it is deleted: whenever the sync cannot make it ours (someone else's, or ours
// with a selector it cannot change), it is looked at again on a backing-off timer.
func TestNameTakenByAnUnwatchedDeploymentIsCheckedAgainUntilFreed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*appsv1.Deployment)
	}{
		{"someone else's", func(d *appsv1.Deployment) { d.Labels, d.OwnerReferences = nil, nil }},
		{"ours with an older version's selector", func(d *appsv1.Deployment) {
			d.Labels = map[string]string{"app": "from-an-older-version"}
			d.Spec.Selector = &metav1.LabelSelector{MatchLabels: d.Labels}
			d.Spec.Template.Labels = d.Labels
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { testNameTakenByAnUnwatchedDeployment(t, tc.mutate) })
	}
}

func testNameTakenByAnUnwatchedDeployment(t *testing.T, mutate func(*appsv1.Deployment)) {
	foo := newFoo("test", 1).foo
	theirs := newDeploymentFor(foo).mutate(mutate).d
	f := newFixture(t, []*samplev1.Foo{foo}, nil)
	f.addUnwatched(theirs)
	now := time.Now()
	f.controller.expectations.now = func() time.Time { return now }
	_, ctx := ktesting.NewTestContext(t)
	key, name := cache.MetaObjectToName(foo), cache.NewObjectName(foo.Namespace, theirs.Name)
	sync := func() []string {
		t.Helper()
		f.kubeclient.ClearActions()
		f.client.ClearActions()
		if err := f.controller.syncFoo(ctx, key); err != nil {
			t.Fatal(err)
		}
		return describe(append(f.kubeclient.Actions(), f.client.Actions()...))
	}
	waitFor := func(want time.Duration) {
		t.Helper()
		if wait, pending := f.controller.expectations.pending(name); !pending || wait != want {
			t.Fatalf("checked again in %s (pending %v), want %s", wait, pending, want)
		}
	}

	if got, want := sync(), []string{"create deployments", "get deployments", "update foos/status"}; !equality.Semantic.DeepEqual(got, want) {
		t.Fatalf("first sync: requests %q, want %q", got, want)
	}
	waitFor(5 * time.Second)
	if got := sync(); len(got) != 0 {
		t.Errorf("a sync before the re-check made requests %q, want none", got)
	}
	now = now.Add(5 * time.Second)
	// The written status is not in this fixture's cache; the re-check only reads, and tries again.
	if got, want := sync(), []string{"create deployments", "get deployments", "update foos/status"}; !equality.Semantic.DeepEqual(got, want) {
		t.Fatalf("re-check: requests %q, want %q", got, want)
	}
	waitFor(10 * time.Second)

	if err := f.kubeclient.Tracker().Delete(appsv1.SchemeGroupVersion.WithResource("deployments"), theirs.Namespace, theirs.Name); err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * time.Second)
	if got := sync(); len(got) < 1 || got[0] != "create deployments" {
		t.Fatalf("after the name was freed: requests %q, want the Deployment created", got)
	}
	created, err := f.kubeclient.AppsV1().Deployments(foo.Namespace).Get(ctx, theirs.Name, metav1.GetOptions{})
	if err != nil || !metav1.IsControlledBy(created, foo) {
		t.Fatalf("Deployment after the name was freed: %v, %+v", err, created)
	}
	if n := f.controller.nameTakenBackoff.NumRequeues(key); n != 0 {
		t.Errorf("backoff after the create: %d re-checks remembered, want 0", n)
	}
}

func TestSyncFooMissingFooIsNotAnError(t *testing.T) {
	f := newFixture(t, nil, nil)
	_, ctx := ktesting.NewTestContext(t)
	if err := f.controller.syncFoo(ctx, cache.NewObjectName("default", "gone")); err != nil {
		t.Fatalf("syncFoo of a deleted Foo = %v, want nil", err)
	}
	if w := f.writes(); len(w) != 0 {
		t.Errorf("writes = %q, want none", describe(w))
	}
}

func TestSyncFooStatusConflictIsReturnedAndRequeuedQuietly(t *testing.T) {
	foo := newFoo("test", 1).foo
	f := newFixture(t, []*samplev1.Foo{foo}, []*appsv1.Deployment{newDeploymentFor(foo).available().d})
	f.client.PrependReactor("update", "foos", func(a core.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewConflict(samplev1.Resource("foos"), "test", errors.New("the object has been modified"))
	})
	f.controller.workqueue = fastQueue()
	f.controller.workqueue.Add(cache.MetaObjectToName(foo))
	_, ctx := ktesting.NewTestContext(t)
	f.controller.processNextWorkItem(ctx)
	if n := f.controller.conflictBackoff.NumRequeues(cache.MetaObjectToName(foo)); n != 1 {
		t.Errorf("conflict backoff NumRequeues = %d, want 1", n)
	}
	if n := f.controller.workqueue.NumRequeues(cache.MetaObjectToName(foo)); n != 0 {
		t.Errorf("NumRequeues = %d, want 0: a conflict is not an error", n)
	}
	// Not retried on a timer: the version that made the write conflict is on its way through
	// the watch, and until the cache has it a retry would conflict again (after an API server
	// restart, for many seconds). Its event brings the key back.
	time.Sleep(300 * time.Millisecond) // what a 100ms retry timer would have taken
	if n := f.controller.workqueue.Len(); n != 0 {
		t.Errorf("the key was queued again %d times before the newer version arrived, want it to wait", n)
	}
	f.controller.enqueueFoo(ctx, foo, "updated")
	waitForQueueLen(t, f.controller.workqueue, 1)
}

// A write the API server refuses on its merits (a quota, an admission policy, RBAC) is told to
// the Foo's owner in its status and in one Warning Event, and still returned for a retry with
// backoff; a hiccup (timeout, conflict) is only retried. (AlreadyExists: expectations_test.go.)
func TestSyncFooWriteRefused(t *testing.T) {
	quota := apierrors.NewForbidden(appsv1.Resource("deployments"), "test-deploy",
		errors.New("exceeded quota: deployments, requested: count/deployments.apps=1, used: count/deployments.apps=2, limited: count/deployments.apps=2"))
	policy := apierrors.NewInvalid(appsv1.SchemeGroupVersion.WithKind("Deployment").GroupKind(), "test-deploy",
		field.ErrorList{field.Invalid(field.NewPath("spec", "replicas"), 9, "at most 5 replicas in this namespace")})
	timeout := apierrors.NewServerTimeout(appsv1.Resource("deployments"), "create", 1)
	quotaReworded := apierrors.NewForbidden(appsv1.Resource("deployments"), "test-deploy",
		errors.New("exceeded quota: deployments, requested: count/deployments.apps=1, used: count/deployments.apps=3, limited: count/deployments.apps=2"))
	rejectedAlready := newFoo("test", 9).readyReason(metav1.ConditionFalse, samplev1.ReasonDeploymentRejected,
		"the API server refused creating Deployment test-deploy (Forbidden): "+quota.Error()).foo
	drifted := newDeploymentFor(newFoo("test", 3).foo).available().d // the Foo asks for 9

	tests := []struct {
		name        string
		foo         *samplev1.Foo
		deployments []*appsv1.Deployment
		verb        string // the write that fails
		err         error
		wantWrites  []string
		wantEvents  []string
		wantReason  string // of the Ready condition written; "" for no status write
		wantMessage string
		wantAvail   int32
	}{
		{"create refused by a quota", newFoo("test", 9).foo, nil, "create", quota,
			[]string{"create deployments", "update foos/status"}, []string{"Warning DeploymentRejected"},
			samplev1.ReasonDeploymentRejected, "exceeded quota: deployments", 0},
		{"create refused by an admission policy", newFoo("test", 9).foo, nil, "create", policy,
			[]string{"create deployments", "update foos/status"}, []string{"Warning DeploymentRejected"},
			samplev1.ReasonDeploymentRejected, "at most 5 replicas in this namespace", 0},
		{"drift repair refused: the Deployment's available replicas still reported", newFoo("test", 9).foo,
			[]*appsv1.Deployment{drifted}, "update", policy,
			[]string{"update deployments", "update foos/status"}, []string{"Warning DeploymentRejected"},
			samplev1.ReasonDeploymentRejected, "refused updating Deployment test-deploy", 3},
		{"same refusal already reported: no write, no second event", rejectedAlready, nil, "create", quota,
			[]string{"create deployments"}, nil, "", "", 0},
		{"refused again in other words, same spec: no write (a write would requeue at once, past the backoff)", rejectedAlready, nil, "create", quotaReworded,
			[]string{"create deployments"}, nil, "", "", 0},
		{"refused for another reason, same spec: the message is renewed", rejectedAlready, nil, "create", policy,
			[]string{"create deployments", "update foos/status"}, []string{"Warning DeploymentRejected"},
			samplev1.ReasonDeploymentRejected, "(Invalid): Deployment.apps \"test-deploy\" is invalid: spec.replicas", 0},
		{"refused after a spec change: the message is renewed", newFoo("test", 9).generation(2).readyReason(metav1.ConditionFalse,
			samplev1.ReasonDeploymentRejected, "the API server refused creating Deployment test-deploy (Forbidden): "+quota.Error()).generation(3).foo,
			nil, "create", quotaReworded, []string{"create deployments", "update foos/status"}, []string{"Warning DeploymentRejected"},
			samplev1.ReasonDeploymentRejected, "used: count/deployments.apps=3", 0},
		{"a refusal longer than a condition should hold: cut", newFoo("test", 9).foo, nil, "create",
			apierrors.NewForbidden(appsv1.Resource("deployments"), "test-deploy", errors.New("denied: "+strings.Repeat("é", 5000))),
			[]string{"create deployments", "update foos/status"}, []string{"Warning DeploymentRejected"},
			samplev1.ReasonDeploymentRejected, "é...", 0},
		{"timeout: retried only", newFoo("test", 9).foo, nil, "create", timeout,
			[]string{"create deployments"}, nil, "", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, []*samplev1.Foo{tc.foo}, tc.deployments)
			f.kubeclient.PrependReactor(tc.verb, "deployments", func(core.Action) (bool, runtime.Object, error) {
				return true, nil, tc.err
			})
			_, ctx := ktesting.NewTestContext(t)
			err := f.controller.syncFoo(ctx, cache.MetaObjectToName(tc.foo))
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), "Deployment default/test-deploy") {
				t.Fatalf("syncFoo = %v, want the API server's error, naming the Deployment, for a retry", err)
			}
			writes := f.writes()
			if got := describe(writes); !equality.Semantic.DeepEqual(got, tc.wantWrites) {
				t.Fatalf("writes = %q, want %q", got, tc.wantWrites)
			}
			events := f.events()
			if len(events) != len(tc.wantEvents) || (len(events) == 1 && !strings.HasPrefix(events[0], tc.wantEvents[0]+" ")) {
				t.Errorf("events = %q, want %q", events, tc.wantEvents)
			}
			if tc.wantReason == "" {
				return
			}
			written := objectOf(t, writes[len(writes)-1]).(*samplev1.Foo)
			c := meta.FindStatusCondition(written.Status.Conditions, samplev1.ConditionReady)
			if c == nil || c.Status != metav1.ConditionFalse || c.Reason != tc.wantReason || !strings.Contains(c.Message, tc.wantMessage) {
				t.Errorf("Ready = %+v, want False/%s with %q in the message", c, tc.wantReason, tc.wantMessage)
			}
			if written.Status.AvailableReplicas != tc.wantAvail || written.Status.ObservedGeneration != tc.foo.Generation {
				t.Errorf("status = %+v, want availableReplicas %d at generation %d", written.Status, tc.wantAvail, tc.foo.Generation)
			}
		})
	}
}

// A Warning is recorded only once the status that carries the problem is written: a failed
// status write is retried, and announcing first would announce again on every attempt.
func TestWarningEventOnlyAfterTheStatusIsWritten(t *testing.T) {
	foo := newFoo("test", 1).foo
	theirs := newDeploymentFor(foo).mutate(func(d *appsv1.Deployment) { d.OwnerReferences = nil }).d
	f := newFixture(t, []*samplev1.Foo{foo}, []*appsv1.Deployment{theirs})
	f.client.PrependReactor("update", "foos", func(core.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewConflict(samplev1.Resource("foos"), "test", errors.New("the object has been modified"))
	})
	_, ctx := ktesting.NewTestContext(t)
	if err := f.controller.syncFoo(ctx, cache.MetaObjectToName(foo)); !apierrors.IsConflict(err) {
		t.Fatalf("syncFoo = %v, want the Conflict, for a retry", err)
	}
	if ev := f.events(); len(ev) != 0 {
		t.Errorf("events = %q, want none until the status is written", ev)
	}
}

// A Foo deleted with propagationPolicy=Foreground waits, with a finalizer, for the garbage
// collector to delete its Deployment: recreating it would fight the collector.
func TestSyncFooBeingDeletedWritesNothing(t *testing.T) {
	foo := newFoo("test", 1).foo
	foo.DeletionTimestamp = ptr.To(metav1.Now())
	foo.Finalizers = []string{metav1.FinalizerDeleteDependents}
	f := newFixture(t, []*samplev1.Foo{foo}, nil)
	_, ctx := ktesting.NewTestContext(t)
	if err := f.controller.syncFoo(ctx, cache.MetaObjectToName(foo)); err != nil {
		t.Fatalf("syncFoo = %v, want nil", err)
	}
	if w := describe(f.writes()); len(w) != 0 {
		t.Errorf("writes = %q, want none for a Foo being deleted", w)
	}
}

// In a namespace being deleted the create is refused (403 with the NamespaceTerminating cause):
// the Foo goes with the namespace, so there is nothing to report and nothing to retry.
func TestSyncFooInTerminatingNamespaceGivesUpQuietly(t *testing.T) {
	foo := newFoo("test", 1).foo
	f := newFixture(t, []*samplev1.Foo{foo}, nil)
	terminating := apierrors.NewForbidden(appsv1.Resource("deployments"), "test-deploy",
		errors.New("unable to create new content in namespace default because it is being terminated"))
	terminating.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause, Field: "default"}}
	f.kubeclient.PrependReactor("create", "deployments", func(core.Action) (bool, runtime.Object, error) {
		return true, nil, terminating
	})
	_, ctx := ktesting.NewTestContext(t)
	if err := f.controller.syncFoo(ctx, cache.MetaObjectToName(foo)); err != nil {
		t.Errorf("syncFoo = %v, want nil", err)
	}
	if w := describe(f.writes()); !equality.Semantic.DeepEqual(w, []string{"create deployments"}) {
		t.Errorf("writes = %q, want only the refused create", w)
	}
	if ev := f.events(); len(ev) != 0 {
		t.Errorf("events = %q, want none", ev)
	}
}

// ---- event handlers: which Foo does a change matter to? ----

func TestHandleDeploymentRouting(t *testing.T) {
	owner := newFoo("owner", 1).foo
	waiting := newFoo("waiting", 1).deploymentName("contested").foo
	ownedBy := func(apiVersion, kind, name string, uid types.UID) *appsv1.Deployment {
		d := newDeploymentFor(owner).d
		d.Name = "some-deploy"
		d.OwnerReferences = []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid, Controller: ptr.To(true)}}
		return d
	}
	contested := newDeploymentFor(owner).d
	contested.Name = "contested"
	contested.OwnerReferences = nil

	tests := []struct {
		name string
		obj  interface{}
		want []string
	}{
		{"owned by our Foo", ownedBy("samplecontroller.example.com/v1", "Foo", "owner", "uid-owner"), []string{"default/owner"}},
		// Deployments created before the upgrade to v1 keep an ownerReference to v1alpha1:
		// an ownerReference names the owner's group and kind, whatever version it was written at.
		{"owned by our Foo, referenced at v1alpha1 (created before the upgrade)", ownedBy("samplecontroller.example.com/v1alpha1", "Foo", "owner", "uid-owner"), []string{"default/owner"}},
		{"owned by our Foo through another version", ownedBy("samplecontroller.example.com/v2", "Foo", "owner", "uid-owner"), []string{"default/owner"}},
		{"owned by another kind", ownedBy("apps/v1", "ReplicaSet", "owner", "uid-owner"), nil},
		{"owned by a Foo of another group", ownedBy("other.example.com/v1alpha1", "Foo", "owner", "uid-owner"), nil},
		{"owned by an earlier Foo of the same name (other UID)", ownedBy("samplecontroller.example.com/v1alpha1", "Foo", "owner", "uid-earlier"), nil},
		{"owned by a Foo that does not exist", ownedBy("samplecontroller.example.com/v1alpha1", "Foo", "nobody", "uid-nobody"), nil},
		{"not owned, a Foo wants its name", contested, []string{"default/waiting"}},
		{"tombstone of an owned Deployment", cache.DeletedFinalStateUnknown{Key: "default/some-deploy",
			Obj: ownedBy("samplecontroller.example.com/v1alpha1", "Foo", "owner", "uid-owner")}, []string{"default/owner"}},
		{"tombstone of something else", cache.DeletedFinalStateUnknown{Key: "default/x", Obj: &corev1.Pod{}}, nil},
		{"not a Deployment at all", &corev1.Pod{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, []*samplev1.Foo{owner, waiting}, nil)
			_, ctx := ktesting.NewTestContext(t)
			f.controller.handleDeployment(ctx, tc.obj)
			if got := drain(f.controller.workqueue); !equality.Semantic.DeepEqual(got, tc.want) {
				t.Errorf("enqueued %q, want %q", got, tc.want)
			}
		})
	}
}

func TestEnqueueFooUnwrapsTombstones(t *testing.T) {
	f := newFixture(t, nil, nil)
	_, ctx := ktesting.NewTestContext(t)
	f.controller.enqueueFoo(ctx, newFoo("a", 1).foo, "added")
	f.controller.enqueueFoo(ctx, cache.DeletedFinalStateUnknown{Key: "default/b", Obj: newFoo("b", 1).foo}, "deleted")
	f.controller.enqueueFoo(ctx, newFoo("a", 1).foo, "updated") // deduplicated with the first
	if got, want := drain(f.controller.workqueue), []string{"default/a", "default/b"}; !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("enqueued %q, want %q", got, want)
	}
}

// ---- the worker loop: forget, requeue, drop ----

func fastQueue() workqueue.TypedRateLimitingInterface[cache.ObjectName] {
	return workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[cache.ObjectName](0, 0))
}

func drain(q workqueue.TypedRateLimitingInterface[cache.ObjectName]) []string {
	var out []string
	for q.Len() > 0 {
		k, _ := q.Get()
		out = append(out, k.String())
		q.Done(k)
	}
	return out
}

func waitForQueueLen(t *testing.T, q workqueue.TypedRateLimitingInterface[cache.ObjectName], n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for q.Len() != n {
		if time.Now().After(deadline) {
			t.Fatalf("queue length = %d, want %d", q.Len(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWorkerLoop(t *testing.T) {
	key := cache.NewObjectName("default", "test")
	tests := []struct {
		name      string
		err       error
		rounds    int // how many times the key is processed
		wantQueue int // keys waiting afterwards
		wantRetry int // NumRequeues afterwards
	}{
		{"success forgets the key", nil, 1, 0, 0},
		{"an error requeues with backoff", errors.New("boom"), 1, 1, 1},
		{"a conflict requeues, without growing the backoff", apierrors.NewConflict(samplev1.Resource("foos"), "test", errors.New("modified")), 1, 1, 0},
		{"still retried at the cap", errors.New("boom"), maxRetries, 1, maxRetries},
		{"dropped after the cap", errors.New("boom"), maxRetries + 1, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil, nil)
			c := f.controller
			c.workqueue = fastQueue()
			c.conflictBackoff = workqueue.NewTypedItemExponentialFailureRateLimiter[cache.ObjectName](0, 0)
			var calls atomic.Int32
			c.syncHandler = func(ctx context.Context, k cache.ObjectName) error {
				calls.Add(1)
				if k != key {
					t.Errorf("synced %v, want %v", k, key)
				}
				return tc.err
			}
			_, ctx := ktesting.NewTestContext(t)
			c.workqueue.Add(key)
			for i := range tc.rounds {
				waitForQueueLen(t, c.workqueue, 1)
				if !c.processNextWorkItem(ctx) {
					t.Fatalf("round %d: worker stopped", i)
				}
			}
			// A zero delay (fastQueue, a zero conflict backoff) requeues synchronously: no wait needed.
			if int(calls.Load()) != tc.rounds {
				t.Errorf("syncHandler called %d times, want %d", calls.Load(), tc.rounds)
			}
			if got := c.workqueue.Len(); got != tc.wantQueue {
				t.Errorf("queue length = %d, want %d", got, tc.wantQueue)
			}
			if got := c.workqueue.NumRequeues(key); got != tc.wantRetry {
				t.Errorf("NumRequeues = %d, want %d", got, tc.wantRetry)
			}
		})
	}
}

// Conflicts do not use up the retry budget that is there for real errors: a key that met
// conflicts between its errors is still retried up to maxRetries errors.
func TestConflictsDoNotCountTowardMaxRetries(t *testing.T) {
	key := cache.NewObjectName("default", "test")
	f := newFixture(t, nil, nil)
	c := f.controller
	c.workqueue = fastQueue()
	c.conflictBackoff = workqueue.NewTypedItemExponentialFailureRateLimiter[cache.ObjectName](0, 0)
	conflict := apierrors.NewConflict(samplev1.Resource("foos"), "test", errors.New("modified"))
	var results []error
	for range maxRetries {
		results = append(results, errors.New("boom"), conflict)
	}
	var calls atomic.Int32
	c.syncHandler = func(context.Context, cache.ObjectName) error {
		return results[calls.Add(1)-1]
	}
	_, ctx := ktesting.NewTestContext(t)
	c.workqueue.Add(key)
	for i := range results {
		if c.workqueue.Len() != 1 {
			t.Fatalf("after %d syncs the key is gone (NumRequeues %d): conflicts used up the retry budget", i, c.workqueue.NumRequeues(key))
		}
		c.processNextWorkItem(ctx)
	}
	if got := c.workqueue.NumRequeues(key); got != maxRetries {
		t.Errorf("NumRequeues = %d, want %d: one per error, none per conflict", got, maxRetries)
	}
	if c.workqueue.Len() != 1 {
		t.Errorf("the key was dropped after %d errors and %d conflicts; want it still queued", maxRetries, maxRetries)
	}
}

// The safety net behind conflicts backs off while they repeat, and a success resets it.
func TestConflictsBackOffUntilASuccess(t *testing.T) {
	key := cache.NewObjectName("default", "test")
	f := newFixture(t, nil, nil)
	c := f.controller
	c.workqueue = fastQueue()
	conflict := apierrors.NewConflict(samplev1.Resource("foos"), "test", errors.New("modified"))
	_, ctx := ktesting.NewTestContext(t)
	for i := range 3 {
		c.handleErr(ctx, conflict, key)
		if got := c.conflictBackoff.NumRequeues(key); got != i+1 {
			t.Fatalf("after %d conflicts the conflict backoff counts %d", i+1, got)
		}
	}
	if d := c.conflictBackoff.When(key); d < 8*conflictSafetyNet {
		t.Errorf("the 4th conflict in a row waits %s, want the backoff grown to %s", d, 8*conflictSafetyNet)
	}
	c.handleErr(ctx, nil, key)
	if got := c.conflictBackoff.NumRequeues(key); got != 0 {
		t.Errorf("after a success the conflict backoff counts %d, want 0", got)
	}
}

// Run on shutdown: the key a worker holds is finished with a live context, keys still waiting
// are left, and Run returns only after the worker is done.
func TestRunDrainsInFlightKeyOnShutdown(t *testing.T) {
	f := newFixture(t, nil, nil)
	c := f.controller
	started := make(chan struct{})
	release := make(chan struct{})
	var finished, syncCtxErr atomic.Value
	var calls atomic.Int32
	c.syncHandler = func(ctx context.Context, k cache.ObjectName) error {
		if calls.Add(1) > 1 {
			return fmt.Errorf("synced %v after shutdown began", k)
		}
		close(started)
		<-release
		syncCtxErr.Store(fmt.Sprint(ctx.Err()))
		finished.Store(true)
		return nil
	}
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- c.Run(ctx, 1) }()
	c.workqueue.Add(cache.NewObjectName("default", "first"))
	<-started
	c.workqueue.Add(cache.NewObjectName("default", "second"))
	cancel()
	select {
	case <-done:
		t.Fatal("Run returned while a sync was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the in-flight sync finished")
	}
	if finished.Load() != true || syncCtxErr.Load() != "<nil>" {
		t.Errorf("in-flight sync finished=%v with ctx err %v, want finished with a live context", finished.Load(), syncCtxErr.Load())
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d syncs, want 1: keys waiting at shutdown are left", n)
	}
}

// ---- the desired Deployment and drift detection ----

func TestNewDeploymentDefaultsReplicasToOne(t *testing.T) {
	foo := newFoo("test", 0).foo
	foo.Spec.Replicas = nil
	if r := *newDeployment(foo).Spec.Replicas; r != 1 {
		t.Errorf("replicas = %d, want 1 when spec.replicas is unset", r)
	}
	foo.Spec.Replicas = ptr.To[int32](0)
	if r := *newDeployment(foo).Spec.Replicas; r != 0 {
		t.Errorf("replicas = %d, want 0: scaling to zero is allowed", r)
	}
}

func TestResolveFooResource(t *testing.T) {
	mapper := meta.NewDefaultRESTMapper(nil)
	if _, err := resolveFooResource(mapper); !errors.Is(err, errFooAPINotServed) {
		t.Fatalf("without the CRD: %v, want errFooAPINotServed", err)
	}
	if !strings.Contains(errFooAPINotServed.Error(), fooCRDDir) {
		t.Errorf("the message %q does not name the CRD file", errFooAPINotServed)
	}
	mapper.Add(fooGroupVersionKind, meta.RESTScopeNamespace)
	gvr, err := resolveFooResource(mapper)
	if err != nil || gvr != samplev1.SchemeGroupVersion.WithResource("foos") {
		t.Fatalf("with the CRD: %v, %v; want foos", gvr, err)
	}
}

func TestDriftedFieldsNamesWhatDiffers(t *testing.T) {
	foo := newFoo("test", 2).foo
	desired := newDeployment(foo)
	tests := []struct {
		name   string
		mutate func(d *appsv1.Deployment)
		want   []string
	}{
		{"as the API server returns it", func(d *appsv1.Deployment) {}, nil},
		{"replicas", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](9) }, []string{"spec.replicas"}},
		// The selector cannot be changed, so it is never drift to repair (syncFoo reports it).
		{"selector", func(d *appsv1.Deployment) { d.Spec.Selector.MatchLabels = map[string]string{"x": "y"} }, nil},
		{"labels", func(d *appsv1.Deployment) { d.Labels = nil }, []string{"metadata.labels"}},
		{"image and replicas", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Image = "other"
			d.Spec.Replicas = nil
		}, []string{"spec.replicas", "spec.template"}},
		{"container removed", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers = nil }, []string{"spec.template"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			live := newDeploymentFor(foo).d
			tc.mutate(live)
			if got := driftedFields(desired, live); !equality.Semantic.DeepEqual(got, tc.want) {
				t.Errorf("driftedFields = %q, want %q", got, tc.want)
			}
		})
	}
}

// -v=2 tells what syncs decided and wrote, without the events that brought each key (they are
// many: every status write of ours comes back as one); -v=4 adds them.
func TestLogLevels(t *testing.T) {
	foo := newFoo("test", 1).foo
	for _, tc := range []struct {
		verbosity    int
		wantHandlers bool
	}{{2, false}, {4, true}} {
		logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.Verbosity(tc.verbosity), ktesting.BufferLogs(true)))
		ctx := klog.NewContext(context.Background(), logger)
		f := newFixture(t, []*samplev1.Foo{foo}, nil)
		f.controller.enqueueFoo(ctx, foo, "added")
		f.controller.handleDeployment(ctx, newDeploymentFor(foo).d)
		if err := f.controller.syncFoo(ctx, cache.MetaObjectToName(foo)); err != nil {
			t.Fatal(err)
		}
		log := logger.GetSink().(ktesting.Underlier).GetBuffer().String()
		if !strings.Contains(log, "Deployment does not exist; creating it") || !strings.Contains(log, "Status changed; updating it") {
			t.Errorf("-v=%d: the log lacks the sync's decisions and writes:\n%s", tc.verbosity, log)
		}
		if got := strings.Contains(log, "enqueueing"); got != tc.wantHandlers {
			t.Errorf("-v=%d: handler lines logged = %v, want %v:\n%s", tc.verbosity, got, tc.wantHandlers, log)
		}
	}
}
