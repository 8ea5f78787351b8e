package auditlog

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Lines as kube-apiserver writes them (trimmed of the fields not read here).
const (
	controllerCreate = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","stage":"ResponseComplete","requestURI":"/apis/apps/v1/namespaces/ns1/deployments","verb":"create","user":{"username":"kubernetes-admin","groups":["system:masters"]},"userAgent":"sample-controller/v0.0.0 (linux/amd64) kubernetes/$Format","objectRef":{"resource":"deployments","namespace":"ns1","name":"web","apiGroup":"apps","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":201}}`
	controllerStatus = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","stage":"ResponseComplete","requestURI":"/apis/samplecontroller.example.com/v1/namespaces/ns1/foos/web/status","verb":"update","user":{"username":"kubernetes-admin"},"userAgent":"sample-controller/v0.0.0 (linux/amd64) kubernetes/$Format","objectRef":{"resource":"foos","namespace":"ns1","name":"web","apiGroup":"samplecontroller.example.com","apiVersion":"v1","subresource":"status"},"responseStatus":{"metadata":{},"status":"Failure","reason":"Conflict","code":409}}`
	controllerWatch  = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","stage":"ResponseStarted","requestURI":"/apis/apps/v1/namespaces/ns1/deployments?watch=true","verb":"watch","user":{"username":"kubernetes-admin"},"userAgent":"sample-controller/v0.0.0 (linux/amd64) kubernetes/$Format","objectRef":{"resource":"deployments","namespace":"ns1","apiGroup":"apps","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200}}`
	otherNamespace   = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","stage":"ResponseComplete","verb":"create","user":{"username":"kubernetes-admin"},"userAgent":"sample-controller/v0.0.0 (linux/amd64) kubernetes/$Format","objectRef":{"resource":"deployments","namespace":"ns2","name":"web"},"responseStatus":{"metadata":{},"code":201}}`
	clusterScoped    = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","stage":"ResponseComplete","requestURI":"/apis/samplecontroller.example.com/v1","verb":"get","user":{"username":"kubernetes-admin"},"userAgent":"sample-controller/v0.0.0 (linux/amd64) kubernetes/$Format","responseStatus":{"metadata":{},"code":200}}`
	kubectlCreate    = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","stage":"ResponseComplete","verb":"create","user":{"username":"kubernetes-admin"},"userAgent":"kubectl/v1.37.2 (linux/amd64) kubernetes/abcdef","objectRef":{"resource":"foos","namespace":"ns1","name":"web"},"responseStatus":{"metadata":{},"code":201}}`
	stillWriting     = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","stage":"ResponseComplete","verb":"update","userAgent":"sample-controller/v0.0.0`
)

func writeLog(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
		t.Fatal(err)
	}
}

func TestControllerRequestsSince(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	writeLog(t, path, controllerCreate, kubectlCreate) // before the mark: never read
	mark, err := Mark(path)
	if err != nil {
		t.Fatal(err)
	}
	writeLog(t, path, controllerWatch, kubectlCreate, controllerCreate, otherNamespace, clusterScoped, controllerStatus)
	writeLog(t, path, stillWriting)

	got, err := ControllerRequestsSince(path, mark, "ns1")
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, e := range got {
		s = append(s, e.String())
	}
	want := []string{"create deployments ns1/web -> 201", "update foos/status ns1/web -> 409"}
	if !slices.Equal(s, want) {
		t.Errorf("ControllerRequestsSince = %q, want %q", s, want)
	}
	if len(got) == 2 && got[1].User.Username != "kubernetes-admin" {
		t.Errorf("the user is %q, want kubernetes-admin", got[1].User.Username)
	}

	lines := 0
	if err := EachLineSince(path, mark, func([]byte) { lines++ }); err != nil {
		t.Fatal(err)
	}
	if lines != 7 {
		t.Errorf("EachLineSince read %d lines after the mark, want 7", lines)
	}
	if got, _ := ControllerRequestsSince(path, 0, "ns2"); len(got) != 1 {
		t.Errorf("from the start, ns2 has %d controller requests, want 1", len(got))
	}
}

func TestMissingLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.log")
	if _, err := Mark(path); err == nil {
		t.Error("Mark of a missing log: no error")
	}
	if _, err := ControllerRequestsSince(path, 0, "ns1"); err == nil {
		t.Error("ControllerRequestsSince of a missing log: no error")
	}
}
