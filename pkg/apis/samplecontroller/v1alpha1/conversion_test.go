package v1alpha1_test

import (
	"encoding/json"
	"math/rand"
	"testing"

	"k8s.io/apimachinery/pkg/api/apitesting/fuzzer"
	"k8s.io/apimachinery/pkg/api/equality"
	metafuzzer "k8s.io/apimachinery/pkg/apis/meta/fuzzer"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/dump"
	"sigs.k8s.io/randfill"

	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
	"example.com/sample-controller/pkg/apis/samplecontroller/v1alpha1"
)

// Round-trip fuzzing, the way Kubernetes tests its own API groups: apimachinery's fuzzer
// (with the metadata fuzzer functions every API group uses) fills objects with random but
// well-formed values; each is converted to the other version and back, through JSON as the
// API server and the webhook see it, and must come back semantically equal. (Kubernetes'
// roundtrip package needs an internal version, which a CRD does not have: the hub is v1.)

const roundTrips = 2000

func newFiller(t *testing.T, seed int64) *randfill.Filler {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := samplev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	t.Logf("seed %d", seed)
	return fuzzer.FuzzerFor(metafuzzer.Funcs, rand.NewSource(seed), serializer.NewCodecFactory(scheme)).NilChance(0.2).NumElements(0, 3)
}

// throughJSON encodes and decodes obj, as it travels in a ConversionReview.
func throughJSON[T any](t *testing.T, obj *T) *T {
	t.Helper()
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	out := new(T)
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	return out
}

func TestRoundTripV1alpha1ThroughV1(t *testing.T) {
	f := newFiller(t, rand.Int63())
	for i := 0; i < roundTrips; i++ {
		var original v1alpha1.Foo
		f.Fill(&original)
		original.TypeMeta = metav1.TypeMeta{}

		var hub samplev1.Foo
		throughJSON(t, &original).ConvertTo(&hub)
		var back v1alpha1.Foo
		back.ConvertFrom(throughJSON(t, &hub))
		back.TypeMeta = metav1.TypeMeta{}

		if !equality.Semantic.DeepEqual(throughJSON(t, &original), throughJSON(t, &back)) {
			t.Fatalf("v1alpha1 -> v1 -> v1alpha1 lost something:\noriginal: %s\nback:     %s", dump.Pretty(original), dump.Pretty(back))
		}
	}
}

func TestRoundTripV1ThroughV1alpha1(t *testing.T) {
	f := newFiller(t, rand.Int63())
	for i := 0; i < roundTrips; i++ {
		var original samplev1.Foo
		f.Fill(&original)
		original.TypeMeta = metav1.TypeMeta{}
		// The image annotation is reserved for the image's trip through v1alpha1 (see
		// conversion.go); a v1 object does not carry it.
		delete(original.Annotations, v1alpha1.ImageAnnotation)

		var spoke v1alpha1.Foo
		spoke.ConvertFrom(throughJSON(t, &original))
		var back samplev1.Foo
		throughJSON(t, &spoke).ConvertTo(&back)
		back.TypeMeta = metav1.TypeMeta{}

		if !equality.Semantic.DeepEqual(throughJSON(t, &original), throughJSON(t, &back)) {
			t.Fatalf("v1 -> v1alpha1 -> v1 lost something:\noriginal: %s\nback:     %s", dump.Pretty(original), dump.Pretty(back))
		}
	}
}

// The fields that moved land where the other version expects them, and a conversion never
// shares memory with its source (the webhook and the API server's caches must not alias).
func TestConversionMovesFieldsAndCopies(t *testing.T) {
	replicas := int32(3)
	alpha := &v1alpha1.Foo{
		ObjectMeta: metav1.ObjectMeta{Name: "a", Annotations: map[string]string{v1alpha1.ImageAnnotation: "nginx:1", "other": "kept"}},
		Spec:       v1alpha1.FooSpec{DeploymentName: "a-deploy", Replicas: &replicas},
	}
	var hub samplev1.Foo
	alpha.ConvertTo(&hub)
	if hub.APIVersion != "samplecontroller.example.com/v1" || hub.Spec.Deployment.Name != "a-deploy" ||
		hub.Spec.Deployment.Image != "nginx:1" || *hub.Spec.Replicas != 3 {
		t.Errorf("v1 = %s, want apiVersion v1, deployment a-deploy, image nginx:1, replicas 3", dump.Pretty(hub))
	}
	if _, ok := hub.Annotations[v1alpha1.ImageAnnotation]; ok || hub.Annotations["other"] != "kept" {
		t.Errorf("v1 annotations = %v, want the image annotation gone and the others kept", hub.Annotations)
	}
	*hub.Spec.Replicas = 5
	hub.Annotations["other"] = "changed"
	if *alpha.Spec.Replicas != 3 || alpha.Annotations["other"] != "kept" {
		t.Error("ConvertTo shares memory with its source")
	}

	var back v1alpha1.Foo
	back.ConvertFrom(&hub)
	if back.APIVersion != "samplecontroller.example.com/v1alpha1" || back.Spec.DeploymentName != "a-deploy" ||
		back.Annotations[v1alpha1.ImageAnnotation] != "nginx:1" {
		t.Errorf("v1alpha1 = %s, want apiVersion v1alpha1, deploymentName a-deploy, the image in its annotation", dump.Pretty(back))
	}
	back.Annotations["other"] = "again"
	if hub.Annotations["other"] != "changed" {
		t.Error("ConvertFrom shares memory with its source")
	}

	// No image: no annotation appears (a v1alpha1 Foo that never had one keeps none).
	var plain v1alpha1.Foo
	plain.ConvertFrom(&samplev1.Foo{Spec: samplev1.FooSpec{Deployment: samplev1.FooDeployment{Name: "x"}}})
	if plain.Annotations != nil {
		t.Errorf("annotations = %v, want none", plain.Annotations)
	}
}
