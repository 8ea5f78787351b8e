//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// Invalid Foos are rejected by the API server at admission, by the CRD's schema and CEL rules,
// with a message that says what is wrong. kubectl apply sends them as a user would (with
// server-side strict field validation, kubectl's default).
func TestInvalidFoosAreRejectedAtAdmission(t *testing.T) {
	ensureCRD(t)
	ns := newNamespace(t)
	foo := func(name, spec string) string {
		return fmt.Sprintf("apiVersion: samplecontroller.example.com/v1alpha1\nkind: Foo\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n%s\n", name, ns, spec)
	}
	tests := []struct {
		name, yaml string
		want       []string // all must appear in the error
	}{
		{"negative replicas", foo("neg", "  deploymentName: neg\n  replicas: -1"),
			[]string{"spec.replicas", "greater than or equal to 0"}},
		{"too many replicas", foo("big", "  deploymentName: big\n  replicas: 1001"),
			[]string{"spec.replicas", "less than or equal to 1000"}},
		{"non-integer replicas", foo("frac", "  deploymentName: frac\n  replicas: 1.5"),
			[]string{"spec.replicas", "integer"}},
		{"replicas as a string", foo("str", "  deploymentName: str\n  replicas: \"3\""),
			[]string{"spec.replicas", "integer"}},
		{"missing deploymentName", foo("nodeploy", "  replicas: 1"),
			[]string{"spec.deploymentName", "Required value"}},
		{"empty deploymentName", foo("emptydeploy", "  deploymentName: \"\""),
			[]string{"spec.deploymentName"}},
		{"invalid deploymentName", foo("baddeploy", "  deploymentName: Not_A_Name"),
			[]string{"spec.deploymentName", "should match"}},
		{"missing spec", fmt.Sprintf("apiVersion: samplecontroller.example.com/v1alpha1\nkind: Foo\nmetadata:\n  name: nospec\n  namespace: %s\n", ns),
			[]string{"spec", "Required value"}},
		{"unknown field", foo("typo", "  deploymentName: typo\n  replica: 3"),
			[]string{`unknown field "spec.replica"`}},
		{"name too long for a label value", foo(strings.Repeat("a", 64), "  deploymentName: long"),
			[]string{"at most 63 characters"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := kubectlApply(tc.yaml)
			if err == nil {
				t.Fatalf("kubectl apply accepted it:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("error %q does not contain %q", strings.TrimSpace(out), w)
				}
			}
		})
	}

	t.Run("replicas defaults to 1", func(t *testing.T) {
		if out, err := kubectlApply(foo("defaulted", "  deploymentName: defaulted")); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if r := getFoo(t, ns, "defaulted").Spec.Replicas; r == nil || *r != 1 {
			t.Errorf("spec.replicas = %v, want the default 1", r)
		}
	})

	t.Run("deploymentName cannot change", func(t *testing.T) {
		if out, err := kubectlApply(foo("renamed", "  deploymentName: first")); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		out, err := kubectlApply(foo("renamed", "  deploymentName: second"))
		if err == nil || !strings.Contains(out, "deploymentName is immutable") {
			t.Errorf("changing deploymentName: err=%v, output %q; want it rejected as immutable", err, out)
		}
		if got := getFoo(t, ns, "renamed").Spec.DeploymentName; got != "first" {
			t.Errorf("deploymentName = %q after a rejected change, want first", got)
		}
	})

	t.Run("status cannot be written through the main resource", func(t *testing.T) {
		out := mustKubectl(t, "patch", "foo", "defaulted", "-n", ns, "--type=merge", "-p", `{"status":{"availableReplicas":99}}`)
		_ = out
		if got := getFoo(t, ns, "defaulted").Status.AvailableReplicas; got == 99 {
			t.Errorf("a patch of the main resource changed status; the status subresource should own it")
		}
	})
}
