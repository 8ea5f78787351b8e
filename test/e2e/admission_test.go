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
		return fmt.Sprintf("apiVersion: samplecontroller.example.com/v1\nkind: Foo\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n%s\n", name, ns, spec)
	}
	// deployment is the lines of a Foo's spec that name its Deployment (spec.deployment.name).
	deployment := func(name string) string { return "  deployment:\n    name: " + name }
	tests := []struct {
		name, yaml string
		want       []string // all must appear in the error
	}{
		{"negative replicas", foo("neg", deployment("neg")+"\n  replicas: -1"),
			[]string{"spec.replicas", "greater than or equal to 0"}},
		{"too many replicas", foo("big", deployment("big")+"\n  replicas: 1001"),
			[]string{"spec.replicas", "less than or equal to 1000"}},
		{"non-integer replicas", foo("frac", deployment("frac")+"\n  replicas: 1.5"),
			[]string{"spec.replicas", "integer"}},
		{"replicas as a string", foo("str", deployment("str")+"\n  replicas: \"3\""),
			[]string{"spec.replicas", "integer"}},
		{"missing deployment", foo("nodeploy", "  replicas: 1"),
			[]string{"spec.deployment", "Required value"}},
		{"missing deployment.name", foo("nodeployname", "  deployment: {}\n  replicas: 1"),
			[]string{"spec.deployment.name", "Required value"}},
		{"empty deployment.name", foo("emptydeploy", deployment(`""`)),
			[]string{"spec.deployment.name"}},
		{"invalid deployment.name", foo("baddeploy", deployment("Not_A_Name")),
			[]string{"spec.deployment.name", "should match"}},
		{"missing spec", fmt.Sprintf("apiVersion: samplecontroller.example.com/v1\nkind: Foo\nmetadata:\n  name: nospec\n  namespace: %s\n", ns),
			[]string{"spec", "Required value"}},
		{"unknown field", foo("typo", deployment("typo")+"\n  replica: 3"),
			[]string{`unknown field "spec.replica"`}},
		{"name too long for a label value", foo(strings.Repeat("a", 64), deployment("long")),
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
		if out, err := kubectlApply(foo("defaulted", deployment("defaulted"))); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if r := getFoo(t, ns, "defaulted").Spec.Replicas; r == nil || *r != 1 {
			t.Errorf("spec.replicas = %v, want the default 1", r)
		}
	})

	t.Run("deployment.name cannot change", func(t *testing.T) {
		if out, err := kubectlApply(foo("renamed", deployment("first"))); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		out, err := kubectlApply(foo("renamed", deployment("second")))
		if err == nil || !strings.Contains(out, "deployment.name is immutable") {
			t.Errorf("changing deployment.name: err=%v, output %q; want it rejected as immutable", err, out)
		}
		if got := getFoo(t, ns, "renamed").Spec.Deployment.Name; got != "first" {
			t.Errorf("deployment.name = %q after a rejected change, want first", got)
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
