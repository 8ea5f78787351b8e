package main

import (
	"strings"
	"testing"
	"unicode/utf8"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2/ktesting"

	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
)

// A condition's message is cut to a bound, and cutting the message already written must give the
// same message back: the next sync compares what it would write with what the Foo has, and a
// message that changes on every cut is a status write (and an Event) that changes nothing.
func TestTruncateIsBoundedAndStable(t *testing.T) {
	const max = 16
	for _, tc := range []struct{ name, in string }{
		{"short", "refused"},
		{"exactly the bound", strings.Repeat("a", max)},
		{"ASCII over the bound", strings.Repeat("a", 40)},
		{"a multi-byte character across the bound", strings.Repeat("a", max-1) + "ü" + strings.Repeat("b", 10)},
		{"multi-byte characters only", strings.Repeat("界", 20)},
		{"invalid UTF-8 (bytes quoted from another component)", strings.Repeat("\xad\xbf0", 20)},
		{"a long run of invalid UTF-8: not eaten back to nothing", strings.Repeat("\x80", 40)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			once := truncate(tc.in, max)
			if len(once) > max {
				t.Errorf("truncate gave %d bytes (%q), more than %d", len(once), once, max)
			}
			if twice := truncate(once, max); twice != once {
				t.Errorf("cut again, %q became %q", once, twice)
			}
			if len(tc.in) <= max && once != tc.in {
				t.Errorf("a message within the bound was changed: %q became %q", tc.in, once)
			}
			if len(tc.in) > max && (!strings.HasSuffix(once, "...") || !strings.HasPrefix(tc.in, strings.TrimSuffix(once, "..."))) {
				t.Errorf("%q is not the start of %q followed by \"...\"", once, tc.in)
			}
			if len(tc.in) > max && len(once) < max-(utf8.UTFMax-1) {
				t.Errorf("truncate gave %q, cut back further than one character from the bound", once)
			}
			if utf8.ValidString(tc.in) && !utf8.ValidString(once) {
				t.Errorf("a character was split: %q", once)
			}
		})
	}
}

// A message the controller copies from another object (a Deployment's ReplicaFailure, which
// quotes whatever a webhook answered) may hold invalid UTF-8: a Deployment arrives as protobuf,
// which keeps bytes as they are. The Foo's status goes to the API server as JSON, which stores
// each invalid byte as U+FFFD; had the controller kept the raw bytes, its message would never
// equal the stored one, and every sync would write the status and record an Event again: a
// write loop, each write bringing the Foo back.
func TestStatusQuotingInvalidUTF8IsWrittenOnce(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	foo := newFoo("test", 1).foo
	d := newDeploymentFor(foo).mutate(func(d *appsv1.Deployment) {
		d.Status.ObservedGeneration = d.Generation
		d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue,
			Reason: "FailedCreate", Message: "admission webhook \"images.example.com\" denied the request: image \"ng\xffinx\xad\" is not allowed"}}
	}).d
	f := newFixture(t, []*samplev1.Foo{foo}, []*appsv1.Deployment{d})
	newAPIServer(f, faultNone) // stores the status as JSON does
	key := cache.MetaObjectToName(foo)
	for i := range 3 {
		if err := f.controller.syncFoo(ctx, key); err != nil {
			t.Fatal(err)
		}
		want := 0
		if i == 0 {
			want = 1
		}
		if w := describe(f.writes()); len(w) != want {
			t.Errorf("sync %d wrote %q, want %d write", i+1, w, want)
		}
		catchUp(t, f, key, d.Name) // the status write's event
		f.kubeclient.ClearActions()
		f.client.ClearActions()
	}
	stored, err := f.client.Tracker().Get(foosResource, foo.Namespace, foo.Name)
	if err != nil {
		t.Fatal(err)
	}
	ready := meta.FindStatusCondition(stored.(*samplev1.Foo).Status.Conditions, samplev1.ConditionReady)
	if ready == nil || ready.Reason != samplev1.ReasonDeploymentReplicaFailure || !strings.Contains(ready.Message, "ng\uFFFDinx\uFFFD") {
		t.Errorf("Ready = %+v, want DeploymentReplicaFailure quoting the webhook's answer", ready)
	}
}
