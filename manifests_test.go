package main

import (
	"os"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// The shipped Deployment gives Go its container's memory limit as GOMEMLIMIT (in bytes: the
// runtime reads a bare number as bytes, so the divisor must stay 1).
func TestShippedDeploymentSetsGOMEMLIMIT(t *testing.T) {
	data, err := os.ReadFile("artifacts/deploy/base/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(data, &d); err != nil {
		t.Fatal(err)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name != "controller" {
			continue
		}
		if _, ok := c.Resources.Limits["memory"]; !ok {
			t.Fatal("the controller container has no memory limit")
		}
		for _, e := range c.Env {
			if e.Name != "GOMEMLIMIT" {
				continue
			}
			ref := e.ValueFrom
			if ref == nil || ref.ResourceFieldRef == nil || ref.ResourceFieldRef.Resource != "limits.memory" ||
				ref.ResourceFieldRef.ContainerName != c.Name {
				t.Fatalf("GOMEMLIMIT = %+v, want the controller container's limits.memory", e)
			}
			if div := ref.ResourceFieldRef.Divisor; !div.IsZero() && div.Cmp(resource.MustParse("1")) != 0 {
				t.Errorf("GOMEMLIMIT divisor %s: Go would read the number as bytes", div.String())
			}
			return
		}
		t.Fatal("the controller container sets no GOMEMLIMIT")
	}
	t.Fatal("no container named controller")
}
