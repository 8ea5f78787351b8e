package v1alpha1

import (
	"maps"

	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
)

// Conversion between v1alpha1 (a spoke) and v1 (the hub). The API server stores v1; when a
// client speaks v1alpha1, the conversion webhook (pkg/conversion) calls ConvertTo on what the
// client sent and ConvertFrom on what it sends back. Every other version would convert to and
// from the hub alone, never to each other: n versions, 2n functions.
//
// Both directions are lossless (conversion_test.go fuzzes the round trips):
//   - v1alpha1's spec.deploymentName is v1's spec.deployment.name;
//   - v1's spec.deployment.image, which v1alpha1 has no field for, travels in the annotation
//     ImageAnnotation, as Kubernetes' own APIs keep newer fields on older versions. A v1alpha1
//     client that edits a Foo keeps the annotation (it is metadata), so its update does not
//     reset the image.

// ImageAnnotation holds v1's spec.deployment.image on a Foo read at v1alpha1.
const ImageAnnotation = "samplecontroller.example.com/v1-deployment-image"

// ConvertTo converts this v1alpha1 Foo to the hub version, v1.
func (src *Foo) ConvertTo(dst *samplev1.Foo) {
	dst.TypeMeta = src.TypeMeta
	dst.APIVersion = samplev1.SchemeGroupVersion.String()
	src.ObjectMeta.DeepCopyInto(&dst.ObjectMeta)
	dst.Spec = samplev1.FooSpec{
		Deployment: samplev1.FooDeployment{Name: src.Spec.DeploymentName},
		Replicas:   copyInt32(src.Spec.Replicas),
	}
	// An empty annotation is not an image (v1 requires a non-empty one): it stays an annotation.
	if image := src.Annotations[ImageAnnotation]; image != "" {
		dst.Spec.Deployment.Image = image
		dst.Annotations = withoutKey(dst.Annotations, ImageAnnotation)
	}
	dst.Status = samplev1.FooStatus{
		ObservedGeneration: src.Status.ObservedGeneration,
		AvailableReplicas:  src.Status.AvailableReplicas,
		Conditions:         src.DeepCopy().Status.Conditions,
	}
}

// ConvertFrom sets this v1alpha1 Foo from the hub version, v1.
func (dst *Foo) ConvertFrom(src *samplev1.Foo) {
	dst.TypeMeta = src.TypeMeta
	dst.APIVersion = SchemeGroupVersion.String()
	src.ObjectMeta.DeepCopyInto(&dst.ObjectMeta)
	dst.Spec = FooSpec{
		DeploymentName: src.Spec.Deployment.Name,
		Replicas:       copyInt32(src.Spec.Replicas),
	}
	if src.Spec.Deployment.Image != "" {
		if dst.Annotations == nil {
			dst.Annotations = map[string]string{}
		}
		dst.Annotations[ImageAnnotation] = src.Spec.Deployment.Image
	}
	dst.Status = FooStatus{
		ObservedGeneration: src.Status.ObservedGeneration,
		AvailableReplicas:  src.Status.AvailableReplicas,
		Conditions:         src.DeepCopy().Status.Conditions,
	}
}

func copyInt32(p *int32) *int32 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// withoutKey returns m without key, nil when nothing is left (as an object that never had
// annotations has none, so that a round trip gives back an equal object).
func withoutKey(m map[string]string, key string) map[string]string {
	out := maps.Clone(m)
	delete(out, key)
	if len(out) == 0 {
		return nil
	}
	return out
}
