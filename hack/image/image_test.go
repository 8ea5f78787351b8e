package main

// The image test: builds the image for the current commit exactly as `make image` does (the
// command line, default flags), then reads what was written back from disk with
// go-containerregistry (the OCI layout and the docker tarball) and checks it is the image
// users should deploy. Each check is also run against images broken on purpose (root user,
// a shell, another commit's binary...), so every one of them is shown to be able to fail.
//
//	cd hack/image && go test ./...     (make image-test; make test runs it)

import (
	"archive/tar"
	"bytes"
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// want is what the image must be.
type want struct {
	commit string // git rev-parse HEAD
	arch   string
}

// check is one property of a good image; it returns why img lacks it.
type check struct {
	name string
	fn   func(t *testing.T, img v1.Image, w want) error
}

var checks = []check{
	{"platform is linux/GOARCH", checkPlatform},
	{"entrypoint is the binary alone", checkEntrypoint},
	{"user is numeric and non-root", checkUser},
	{"revision label names the commit", checkRevision},
	{"filesystem is the binary alone", checkFiles},
	{"no shell anywhere", checkNoShell},
	{"binary is static", checkStatic},
	{"binary reports the commit", checkVersion},
}

func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the controller")
	}
	head, err := git("", "rev-parse", "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	w := want{commit: head, arch: runtime.GOARCH}

	// As make image runs it, but into a temporary directory.
	out := t.TempDir()
	var log bytes.Buffer
	if err := run([]string{"--out", out, "--arch", w.arch}, &log); err != nil {
		t.Fatalf("building the image: %v\n%s", err, log.String())
	}
	t.Logf("%s", log.String())

	fromLayout := readLayout(t, filepath.Join(out, LayoutDir))
	fromTarball := readTarball(t, filepath.Join(out, TarballFile))

	for _, img := range []struct {
		name string
		img  v1.Image
	}{{"layout", fromLayout}, {"tarball", fromTarball}} {
		t.Run(img.name, func(t *testing.T) {
			for _, c := range checks {
				if err := c.fn(t, img.img, w); err != nil {
					t.Errorf("%s: %v", c.name, err)
				}
			}
		})
	}

	t.Run("the tarball holds the layout's image", func(t *testing.T) {
		a, err := fromLayout.ConfigName()
		if err != nil {
			t.Fatal(err)
		}
		b, err := fromTarball.ConfigName()
		if err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Errorf("config digests differ: layout %s, tarball %s", a, b)
		}
	})

	t.Run("reproducible", func(t *testing.T) {
		// The same binary, commit and time give the same image, byte for byte.
		files := imageFiles(t, fromLayout)
		cf, err := fromLayout.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		again, err := Image(files[BinaryPath].data, w.arch, w.commit, cf.Created.Time)
		if err != nil {
			t.Fatal(err)
		}
		d1, _ := fromLayout.Digest()
		d2, err := again.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if d1 != d2 {
			t.Errorf("the image built again from its own binary has digest %s, want %s", d2, d1)
		}
	})

	t.Run("every check can fail", func(t *testing.T) {
		for _, b := range brokenImages(t, fromLayout, w) {
			c := checkNamed(t, b.check)
			if err := c.fn(t, b.img, w); err == nil {
				t.Errorf("%q passed an image with %s", c.name, b.what)
			} else {
				t.Logf("%q refuses an image with %s: %v", c.name, b.what, err)
			}
		}
	})
}

// readLayout reads the OCI layout's only image, and checks how the layout names it.
func readLayout(t *testing.T, dir string) v1.Image {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("the layout has %d manifests, want 1", len(im.Manifests))
	}
	desc := im.Manifests[0]
	tag := name.MustParseReference(DefaultRef).(name.Tag)
	if got := desc.Annotations["org.opencontainers.image.ref.name"]; got != tag.TagStr() {
		t.Errorf("the layout names its image %q, want %q", got, tag.TagStr())
	}
	if got := desc.Annotations["io.containerd.image.name"]; got != tag.Name() {
		t.Errorf("the layout's io.containerd.image.name is %q, want %q", got, tag.Name())
	}
	if desc.MediaType != types.OCIManifestSchema1 {
		t.Errorf("the image's media type is %s, want %s", desc.MediaType, types.OCIManifestSchema1)
	}
	img, err := idx.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if head, _ := git("", "rev-parse", "HEAD"); m.Annotations[RevisionLabel] != head {
		t.Errorf("the manifest's %s annotation is %q, want %s", RevisionLabel, m.Annotations[RevisionLabel], head)
	}
	return img
}

// readTarball reads the docker tarball's image by its tag, as docker load would find it.
func readTarball(t *testing.T, file string) v1.Image {
	t.Helper()
	tag, err := name.NewTag(DefaultRef)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(file, &tag)
	if err != nil {
		t.Fatalf("reading %s as %s: %v", file, tag, err)
	}
	return img
}

// ---- the checks ----

func checkPlatform(t *testing.T, img v1.Image, w want) error {
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	if cf.OS != "linux" || cf.Architecture != w.arch {
		return fmt.Errorf("platform %s/%s, want linux/%s", cf.OS, cf.Architecture, w.arch)
	}
	return nil
}

func checkEntrypoint(t *testing.T, img v1.Image, w want) error {
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	if want := []string{BinaryPath}; !reflect.DeepEqual(cf.Config.Entrypoint, want) || len(cf.Config.Cmd) > 0 {
		return fmt.Errorf("entrypoint %q, cmd %q; want entrypoint %q and no cmd", cf.Config.Entrypoint, cf.Config.Cmd, want)
	}
	return nil
}

// checkUser: numeric uid AND gid (the kubelet can enforce runAsNonRoot only on a numeric user;
// without a group, the process would run with group 0, root's), neither of them 0, and the
// one artifacts/deploy's Deployment asks for.
func checkUser(t *testing.T, img v1.Image, w want) error {
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	u := cf.Config.User
	if u == "" {
		return fmt.Errorf("no user: the process would run as root")
	}
	uid, gid, ok := strings.Cut(u, ":")
	if !ok {
		return fmt.Errorf("user %q has no group: want uid:gid", u)
	}
	for _, id := range []string{uid, gid} {
		n, err := strconv.ParseUint(id, 10, 32)
		if err != nil {
			return fmt.Errorf("user %q is not numeric: the kubelet cannot check runAsNonRoot", u)
		}
		if n == 0 {
			return fmt.Errorf("user %q is root (uid or gid 0)", u)
		}
	}
	if u != User {
		return fmt.Errorf("user %q, want %q (the Deployment's runAsUser:runAsGroup)", u, User)
	}
	return nil
}

func checkRevision(t *testing.T, img v1.Image, w want) error {
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	if got := cf.Config.Labels[RevisionLabel]; got != w.commit {
		return fmt.Errorf("label %s=%q, want the commit %s", RevisionLabel, got, w.commit)
	}
	return nil
}

// checkFiles: the whole filesystem is one regular file, the binary, root-owned (the image's
// user cannot replace it), executable, writable by no one else.
func checkFiles(t *testing.T, img v1.Image, w want) error {
	files := imageFiles(t, img)
	var names []string
	for n := range files {
		names = append(names, n)
	}
	if len(files) != 1 || files[BinaryPath] == nil {
		return fmt.Errorf("the filesystem holds %q, want only %s", names, BinaryPath)
	}
	h := files[BinaryPath].hdr
	if h.Typeflag != tar.TypeReg || h.Mode&0o777 != 0o755 || h.Uid != 0 || h.Gid != 0 {
		return fmt.Errorf("%s: type %c mode %o owner %d:%d, want a regular file, 0755, 0:0", BinaryPath, h.Typeflag, h.Mode, h.Uid, h.Gid)
	}
	return nil
}

// shells are the names of shells and of the multi-call binaries that provide one.
var shells = map[string]bool{
	"sh": true, "bash": true, "dash": true, "ash": true, "zsh": true, "ksh": true, "mksh": true,
	"csh": true, "tcsh": true, "fish": true, "busybox": true, "toybox": true,
}

// checkNoShell: nothing (file, link, directory) anywhere is named like a shell.
func checkNoShell(t *testing.T, img v1.Image, w want) error {
	var found []string
	for n := range imageFiles(t, img) {
		if shells[path.Base(n)] {
			found = append(found, n)
		}
	}
	if len(found) > 0 {
		return fmt.Errorf("the image has a shell: %q", found)
	}
	return nil
}

// checkStatic: scratch has no dynamic loader nor C library, so the binary must need neither.
func checkStatic(t *testing.T, img v1.Image, w want) error {
	bin, err := extractBinary(t, img)
	if err != nil {
		return err
	}
	if err := CheckStatic(bin); err != nil {
		return err
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return err
	}
	for _, s := range info.Settings {
		if s.Key == "CGO_ENABLED" && s.Value != "0" {
			return fmt.Errorf("built with CGO_ENABLED=%s", s.Value)
		}
	}
	return nil
}

// checkVersion runs the image's binary (outside any container: it is static) with --version:
// it must be this commit's.
func checkVersion(t *testing.T, img v1.Image, w want) error {
	if w.arch != runtime.GOARCH {
		t.Skipf("the image is for %s, this machine is %s: cannot run its binary", w.arch, runtime.GOARCH)
	}
	bin, err := extractBinary(t, img)
	if err != nil {
		return err
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s --version: %v\n%s", BinaryPath, err, out)
	}
	if !strings.Contains(string(out), "commit "+w.commit) {
		return fmt.Errorf("%s --version says %q, want commit %s", BinaryPath, strings.TrimSpace(string(out)), w.commit)
	}
	return nil
}

func checkNamed(t *testing.T, n string) check {
	t.Helper()
	for _, c := range checks {
		if c.name == n {
			return c
		}
	}
	t.Fatalf("no check %q", n)
	return check{}
}

// ---- reading the image's filesystem ----

type file struct {
	hdr  *tar.Header
	data []byte
}

// imageFiles is the image's flattened filesystem, by absolute path.
func imageFiles(t *testing.T, img v1.Image) map[string]*file {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string]*file{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatalf("reading the image's filesystem: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[path.Clean("/"+h.Name)] = &file{hdr: h, data: data}
	}
}

// extractBinary writes the image's /sample-controller to a temporary file.
func extractBinary(t *testing.T, img v1.Image) (string, error) {
	f := imageFiles(t, img)[BinaryPath]
	if f == nil {
		return "", fmt.Errorf("no %s in the image", BinaryPath)
	}
	bin := filepath.Join(t.TempDir(), "sample-controller")
	return bin, os.WriteFile(bin, f.data, 0o755)
}

// ---- images broken on purpose ----

type broken struct {
	check string // the check that must refuse it
	what  string
	img   v1.Image
}

func brokenImages(t *testing.T, good v1.Image, w want) []broken {
	t.Helper()
	config := func(edit func(*v1.ConfigFile)) v1.Image {
		cf, err := good.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		edit(cf)
		img, err := mutate.ConfigFile(good, cf)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	// entry is one file of a layer: its header, and its content when it is a regular file.
	type entry struct {
		hdr     tar.Header
		content string
	}
	layer := func(entries ...entry) v1.Image {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, e := range entries {
			e.hdr.Size = int64(len(e.content))
			if err := tw.WriteHeader(&e.hdr); err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(tw, e.content); err != nil {
				t.Fatal(err)
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
		}, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.AppendLayers(good, l)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	reg := func(name, content string, mode int64) entry {
		return entry{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode}, content}
	}
	dir := func(name string) entry { return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}} }
	symlink := func(name, target string) entry {
		return entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
	}
	otherArch := "arm64"
	if w.arch == otherArch {
		otherArch = "amd64"
	}

	bs := []broken{
		{"platform is linux/GOARCH", "another architecture", config(func(cf *v1.ConfigFile) { cf.Architecture = otherArch })},
		{"platform is linux/GOARCH", "another OS", config(func(cf *v1.ConfigFile) { cf.OS = "windows" })},
		{"entrypoint is the binary alone", "a shell entrypoint", config(func(cf *v1.ConfigFile) {
			cf.Config.Entrypoint = []string{"/bin/sh", "-c", BinaryPath}
		})},
		{"entrypoint is the binary alone", "a cmd instead of an entrypoint", config(func(cf *v1.ConfigFile) {
			cf.Config.Entrypoint, cf.Config.Cmd = nil, []string{BinaryPath}
		})},
		{"user is numeric and non-root", "user root (0:0)", config(func(cf *v1.ConfigFile) { cf.Config.User = "0:0" })},
		{"user is numeric and non-root", "no user (root)", config(func(cf *v1.ConfigFile) { cf.Config.User = "" })},
		{"user is numeric and non-root", "a user name", config(func(cf *v1.ConfigFile) { cf.Config.User = "nonroot:nonroot" })},
		{"user is numeric and non-root", "a uid without a group (group root)", config(func(cf *v1.ConfigFile) { cf.Config.User = "65532" })},
		{"user is numeric and non-root", "the root group", config(func(cf *v1.ConfigFile) { cf.Config.User = "65532:0" })},
		{"user is numeric and non-root", "another non-root user than the Deployment's", config(func(cf *v1.ConfigFile) { cf.Config.User = "1000:1000" })},
		{"revision label names the commit", "another commit's label", config(func(cf *v1.ConfigFile) {
			cf.Config.Labels[RevisionLabel] = strings.Repeat("0", 40)
		})},
		{"revision label names the commit", "no revision label", config(func(cf *v1.ConfigFile) { cf.Config.Labels = nil })},
		{"no shell anywhere", "/bin/sh", layer(dir("bin/"), reg("bin/sh", "\x7fELF", 0o755))},
		{"no shell anywhere", "busybox and a /bin/sh link to it", layer(
			dir("bin/"), reg("bin/busybox", "\x7fELF", 0o755), symlink("bin/sh", "busybox"))},
		{"no shell anywhere", "/usr/local/bin/bash", layer(reg("usr/local/bin/bash", "\x7fELF", 0o755))},
		{"filesystem is the binary alone", "a CA bundle", layer(reg("etc/ssl/certs/ca-certificates.crt", "-----BEGIN CERTIFICATE-----", 0o644))},
		{"filesystem is the binary alone", "a world-writable binary", layer(reg("sample-controller", "\x7fELF", 0o777))},
		{"binary is static", "a script for a binary", layer(reg("sample-controller", "#!/bin/sh\n", 0o755))},
		{"binary reports the commit", "another commit's binary", layer(reg("sample-controller",
			"#!/bin/sh\necho sample-controller '(devel)' commit "+strings.Repeat("0", 40)+" go1.26\n", 0o755))},
		{"binary reports the commit", "a binary that does not run", layer(reg("sample-controller", "#!/bin/sh\nexit 3\n", 0o755))},
	}
	// A dynamically linked binary (the host's true, on most distributions) must be refused too.
	if tru, err := exec.LookPath("true"); err == nil && CheckStatic(tru) != nil {
		content, err := os.ReadFile(tru)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, broken{"binary is static", "a dynamically linked binary (" + tru + ")", layer(reg("sample-controller", string(content), 0o755))})
	}
	return bs
}
