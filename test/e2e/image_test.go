//go:build e2e

package e2e

// The container image's binary, for the tests that play the Deployment's pod: they run what
// the image holds, not a binary built beside it. The image is built offline by hack/image (as
// make image does) and read back here with the standard library alone, as the OCI image-layout
// specification describes it, so the product's go.mod needs no image library.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// imageBinaryPath is the controller's path in the image (hack/image's BinaryPath).
const imageBinaryPath = "/sample-controller"

var (
	imageOnce   sync.Once
	imageBin    string // the binary extracted from the image
	imageName   string // the image's name in its layout (io.containerd.image.name)
	imageErr    error
	imageCommit string // git rev-parse HEAD, which the image's binary must report
)

// imageBinary builds the image once per run, into _output/<cluster name>-image/, extracts its
// /sample-controller to a file there, and returns that file's path. It checks that the binary
// reports this commit on --version and that the image is the one artifacts/deploy deploys,
// and, at the end of the test, that a process did run that very file.
func imageBinary(t *testing.T) string {
	t.Helper()
	imageOnce.Do(func() { imageErr = buildImageBinary() })
	if imageErr != nil {
		t.Fatalf("the image's binary: %v", imageErr)
	}

	out, err := exec.Command(imageBin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", imageBin, err, out)
	}
	version := strings.TrimSpace(string(out))
	if !strings.Contains(version, "commit "+imageCommit) {
		t.Fatalf("the image's binary says %q, want commit %s (HEAD)", version, imageCommit)
	}
	if want := shippedImage(t); imageName != want {
		t.Errorf("the image is named %s, but artifacts/deploy deploys %s", imageName, want)
	}
	t.Logf("running the binary of image %s: %s (%s)", imageName, imageBin, version)
	expectProcessRunning(t, imageBin)
	return imageBin
}

func buildImageBinary() error {
	head, err := scriptOutput(os.Environ(), "git", "rev-parse", "HEAD")
	if err != nil {
		return err
	}
	imageCommit = strings.TrimSpace(head)
	dir := filepath.Join(repoRoot, "_output", filepath.Base(clusterDir)+"-image")
	// For this machine's architecture, since the tests run the binary here.
	if err := runScript(os.Environ(), "go", "-C", "hack/image", "run", ".",
		"--out="+dir, "--arch="+runtime.GOARCH, "--commit="+imageCommit); err != nil {
		return fmt.Errorf("building the image (hack/image): %w", err)
	}
	layoutDir := filepath.Join(dir, "oci")
	content, name, err := fileFromLayout(layoutDir, imageBinaryPath)
	if err != nil {
		return fmt.Errorf("reading %s from the image at %s: %w", imageBinaryPath, layoutDir, err)
	}
	imageName = name
	imageBin = filepath.Join(dir, "sample-controller")
	if err := os.Remove(imageBin); err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.WriteFile(imageBin, content, 0o755)
}

// shippedImage is the image the Deployment of artifacts/deploy runs.
func shippedImage(t *testing.T) string {
	t.Helper()
	for _, obj := range kustomize(t, "artifacts/deploy") {
		if obj["kind"] != "Deployment" {
			continue
		}
		var d struct {
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct{ Image string }
					}
				}
			}
		}
		b, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		if cs := d.Spec.Template.Spec.Containers; len(cs) > 0 {
			return cs[0].Image
		}
	}
	t.Fatal("artifacts/deploy has no Deployment with a container")
	return ""
}

// expectProcessRunning watches, until the end of the test, for a process whose executable is
// the file bin (the kernel's /proc/PID/exe, compared by inode: the path a wrapper was given,
// or a binary of the same name elsewhere, would not do), and fails the test if none ran.
func expectProcessRunning(t *testing.T, bin string) {
	t.Helper()
	want, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	done, seen := make(chan struct{}), make(chan int, 1)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if pid := processRunning(want); pid != 0 {
				seen <- pid
				return
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	// Registered before the test starts its process, so this runs after that process stopped.
	t.Cleanup(func() {
		close(done)
		select {
		case pid := <-seen:
			t.Logf("process %d ran %s, the image's binary", pid, bin)
		default:
			if !t.Failed() {
				t.Errorf("no process ran %s, the image's binary", bin)
			}
		}
	})
}

// processRunning returns the id of a process whose executable is the file want, or 0.
func processRunning(want os.FileInfo) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil || pid <= 0 {
			continue
		}
		if fi, err := os.Stat(filepath.Join("/proc", e.Name(), "exe")); err == nil && os.SameFile(fi, want) {
			return pid
		}
	}
	return 0
}

// ---- reading an OCI image layout with the standard library ----

type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
}

// fileFromLayout returns the content of the file at name in the only image of the OCI layout
// at dir (index.json, then the manifest, then its layers, every blob checked against its
// digest and size; the top-most layer holding the file wins), and the image's name.
func fileFromLayout(dir, name string) ([]byte, string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, "", err
	}
	var index struct {
		Manifests []ociDescriptor `json:"manifests"`
	}
	if err := json.Unmarshal(b, &index); err != nil {
		return nil, "", fmt.Errorf("index.json: %w", err)
	}
	if len(index.Manifests) != 1 {
		return nil, "", fmt.Errorf("index.json lists %d manifests, want 1", len(index.Manifests))
	}
	image := index.Manifests[0]
	if b, err = readBlob(dir, image); err != nil {
		return nil, "", err
	}
	var manifest struct {
		Layers []ociDescriptor `json:"layers"`
	}
	if err := json.Unmarshal(b, &manifest); err != nil {
		return nil, "", fmt.Errorf("the manifest: %w", err)
	}
	for i := len(manifest.Layers) - 1; i >= 0; i-- {
		content, found, err := fileFromLayer(dir, manifest.Layers[i], name)
		if err != nil {
			return nil, "", err
		}
		if found {
			return content, image.Annotations["io.containerd.image.name"], nil
		}
	}
	return nil, "", fmt.Errorf("no layer holds %s", name)
}

func fileFromLayer(dir string, layer ociDescriptor, name string) ([]byte, bool, error) {
	blob, err := readBlob(dir, layer)
	if err != nil {
		return nil, false, err
	}
	var r io.Reader = bytes.NewReader(blob)
	switch layer.MediaType {
	case "application/vnd.oci.image.layer.v1.tar+gzip", "application/vnd.docker.image.rootfs.diff.tar.gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, false, err
		}
		r = zr
	case "application/vnd.oci.image.layer.v1.tar":
	default:
		return nil, false, fmt.Errorf("layer %s has media type %s", layer.Digest, layer.MediaType)
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("layer %s: %w", layer.Digest, err)
		}
		if path.Clean("/"+h.Name) == name && h.Typeflag == tar.TypeReg {
			content, err := io.ReadAll(tr)
			return content, true, err
		}
	}
}

// readBlob reads the blob d describes and checks its size and sha256 digest.
func readBlob(dir string, d ociDescriptor) ([]byte, error) {
	hexDigest, ok := strings.CutPrefix(d.Digest, "sha256:")
	if !ok {
		return nil, fmt.Errorf("digest %q is not sha256", d.Digest)
	}
	b, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", hexDigest))
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != hexDigest || int64(len(b)) != d.Size {
		return nil, fmt.Errorf("blob %s: %d bytes with digest sha256:%x, want %d bytes", d.Digest, len(b), sum, d.Size)
	}
	return b, nil
}
