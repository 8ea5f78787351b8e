// Command image builds sample-controller's container image offline: no Docker daemon, no
// registry, no base image to pull. It is what `make image` runs.
//
//	go run . [--out DIR] [--ref REF] [--binary PATH] [--arch GOARCH] [--commit SHA]
//
// The image is built FROM scratch (an empty base) with a single layer holding one file, the
// static controller binary at /sample-controller. Nothing else is needed, so nothing else is
// there:
//
//   - no CA bundle: the controller only talks to the API server, whose CA it reads from the
//     service account mount (/var/run/secrets/kubernetes.io/serviceaccount/ca.crt);
//   - no /etc/passwd: the user is numeric (65532:65532), which is what the kubelet needs to
//     enforce runAsNonRoot (a user *name* would make it refuse to start the pod), and the
//     binary never looks a user up (klog writes to stderr, not to files named after the user;
//     the runtime sets $HOME to / when the user has no passwd entry, and in a pod the
//     kubeconfig comes from the service account anyway);
//   - no /etc/nsswitch.conf, /etc/hosts, /etc/resolv.conf: the kubelet mounts the last two,
//     and the API server is reached by the IP in $KUBERNETES_SERVICE_HOST;
//   - no /tmp: the shipped Deployment has a read-only root filesystem, and the controller
//     writes no files;
//   - no shell, no package manager: nothing for an intruder to use.
//
// The binary is built like `make build` does (the commit stamped with -X main.gitCommit, since
// GOFLAGS may carry -buildvcs=false), plus CGO_ENABLED=0 (a static binary: scratch has no C
// library), -trimpath and -s -w. The image is reproducible: the file's time and the image's
// creation time are the commit's time, so one commit built with one Go release gives the same
// digest every time.
//
// It writes, under --out (default _output/image):
//
//	oci/                     an OCI image layout (crane push, skopeo copy oci:..., ctr import)
//	sample-controller.tar    the same image as a `docker load` tarball, tagged --ref
//
// hack/image is a Go module of its own so that go-containerregistry, which only this build
// tool needs, stays out of the controller's go.mod (as hack/cluster-tools does for the local
// control plane's binaries).
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// What the image is made of. The test (image_test.go) checks the written image against these.
const (
	// BinaryPath is where the controller is in the image, and the whole entrypoint.
	BinaryPath = "/sample-controller"
	// User is numeric, non-root, with a non-root group: 65532 is distroless's "nonroot" and
	// the runAsUser/runAsGroup of artifacts/deploy/base/deployment.yaml.
	User = "65532:65532"
	// DefaultRef matches the images: entry of artifacts/deploy/kustomization.yaml.
	DefaultRef = "example.com/sample-controller:v0.1.0"

	// RevisionLabel is the OCI annotation key for the source revision; it is set both as an
	// image config label (docker inspect shows it) and as a manifest annotation.
	RevisionLabel = "org.opencontainers.image.revision"

	// LayoutDir and TarballFile are the outputs' names under --out.
	LayoutDir   = "oci"
	TarballFile = "sample-controller.tar"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

// options are the command line's flags, with their defaults filled in.
type options struct {
	repo   string // the controller's source: the repository root
	out    string // the output directory
	ref    string // the image's name and tag
	binary string // a binary built already; empty to build one
	arch   string // GOARCH of the image
	commit string // the Git commit stamped into the binary and labelled on the image
}

// result says what was written.
type result struct {
	digest  v1.Hash // the image manifest's digest
	layout  string  // the OCI layout directory
	tarball string  // the docker-loadable tarball
}

func run(args []string, log io.Writer) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	fs.SetOutput(log)
	var o options
	fs.StringVar(&o.repo, "repo", "", "the repository root to build the controller from (default: git rev-parse --show-toplevel)")
	fs.StringVar(&o.out, "out", "", "the output directory (default: REPO/_output/image); gets "+LayoutDir+"/ and "+TarballFile)
	fs.StringVar(&o.ref, "ref", DefaultRef, "the image's name and tag")
	fs.StringVar(&o.binary, "binary", "", "use this controller binary (linux, CGO_ENABLED=0, stamped with --commit) instead of building one")
	fs.StringVar(&o.arch, "arch", "", "the image's architecture (default: $GOARCH, else amd64; with --binary, the binary's)")
	fs.StringVar(&o.commit, "commit", "", "the commit the binary was built from, which it reports on --version (default: HEAD; without --binary, it must be HEAD)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	res, err := build(o, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "image: %s %s\n  OCI layout:     %s\n  docker tarball: %s\n", o.ref, res.digest, res.layout, res.tarball)
	tag, _ := name.NewTag(o.ref, name.StrictValidation)
	fmt.Fprintf(log, "  push: crane push %s %s   (or: skopeo copy oci:%s:%s docker://%s)\n", res.layout, o.ref, res.layout, tag.TagStr(), o.ref)
	fmt.Fprintf(log, "  load: docker load -i %s\n", res.tarball)
	return nil
}

// build fills in o's defaults, builds (or takes) the binary, and writes the image.
func build(o options, log io.Writer) (result, error) {
	var res result
	tag, err := name.NewTag(o.ref, name.StrictValidation) // a tag is required: no implicit :latest
	if err != nil {
		return res, fmt.Errorf("--ref %s: want REPOSITORY:TAG: %w", o.ref, err)
	}
	if o.repo == "" {
		if o.repo, err = git("", "rev-parse", "--show-toplevel"); err != nil {
			return res, err
		}
	}
	if o.out == "" {
		o.out = filepath.Join(o.repo, "_output", "image")
	}
	if o.commit == "" {
		o.commit = "HEAD"
	}
	// The full hash, whatever names the commit (HEAD, a tag, an abbreviation).
	if o.commit, err = git(o.repo, "rev-parse", "--verify", o.commit+"^{commit}"); err != nil {
		return res, err
	}
	if o.binary == "" {
		// The work tree is what gets built: it must not be labelled with another commit.
		if head, err := git(o.repo, "rev-parse", "HEAD"); err != nil {
			return res, err
		} else if head != o.commit {
			return res, fmt.Errorf("--commit %s is not HEAD (%s), which is what would be built: check it out, or give its binary with --binary", o.commit, head)
		}
		// Like make build, a build from a modified tree is stamped with HEAD: say so.
		if status, err := git(o.repo, "status", "--porcelain", "--untracked-files=no"); err == nil && status != "" {
			fmt.Fprintln(log, "image: warning: the work tree has uncommitted changes; the image is labelled with HEAD nonetheless")
		}
	}
	// The commit's time, as the image's creation time and the file's: reproducible builds.
	ct, err := git(o.repo, "show", "-s", "--format=%ct", o.commit)
	if err != nil {
		return res, err
	}
	secs, err := strconv.ParseInt(ct, 10, 64)
	if err != nil {
		return res, fmt.Errorf("the time of commit %s: %w", o.commit, err)
	}
	created := time.Unix(secs, 0).UTC()

	binary := o.binary
	if binary == "" {
		if o.arch == "" {
			o.arch = os.Getenv("GOARCH")
		}
		if o.arch == "" {
			o.arch = "amd64"
		}
		tmp, err := os.MkdirTemp("", "sample-controller-image-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(tmp)
		binary = filepath.Join(tmp, "sample-controller")
		if err := buildBinary(o.repo, binary, o.arch, o.commit, log); err != nil {
			return res, err
		}
	}
	if o.arch, err = checkBinary(binary, o.arch, o.commit); err != nil {
		return res, err
	}
	content, err := os.ReadFile(binary)
	if err != nil {
		return res, err
	}
	img, err := Image(content, o.arch, o.commit, created)
	if err != nil {
		return res, err
	}
	if res.digest, err = img.Digest(); err != nil {
		return res, err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return res, err
	}
	res.layout = filepath.Join(o.out, LayoutDir)
	if err := writeLayout(res.layout, img, tag); err != nil {
		return res, fmt.Errorf("writing the OCI layout: %w", err)
	}
	res.tarball = filepath.Join(o.out, TarballFile)
	if err := writeTarball(res.tarball, img, tag); err != nil {
		return res, fmt.Errorf("writing the docker tarball: %w", err)
	}
	return res, nil
}

// buildBinary builds the controller as the image needs it: static (CGO_ENABLED=0, for scratch
// has no C library), for linux/arch, without local paths (-trimpath), without symbol table and
// DWARF (-s -w: smaller; panics still print file:line), and stamped with the commit as make
// build does.
func buildBinary(repo, out, arch, commit string, log io.Writer) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.gitCommit="+commit, "-o", out, ".")
	cmd.Dir = repo
	// The last value of a variable wins: these override the caller's.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building the controller (linux/%s): %w", arch, err)
	}
	return nil
}

// checkBinary refuses a binary the image cannot run: not a static Linux Go binary, or of
// another architecture than arch (when given); it returns the binary's architecture. When
// this machine can run it, the binary must also report commit on --version: the label then
// cannot name another commit than the binary's.
func checkBinary(path, arch, commit string) (string, error) {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s is not a Go binary: %w", path, err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["GOOS"] != "linux" {
		return "", fmt.Errorf("%s is built for GOOS=%s, want linux", path, settings["GOOS"])
	}
	if settings["CGO_ENABLED"] != "0" {
		return "", fmt.Errorf("%s is built with CGO_ENABLED=%s, want 0: scratch has no C library", path, settings["CGO_ENABLED"])
	}
	if arch != "" && settings["GOARCH"] != arch {
		return "", fmt.Errorf("%s is built for GOARCH=%s, want %s", path, settings["GOARCH"], arch)
	}
	if err := CheckStatic(path); err != nil {
		return "", err
	}
	if runtime.GOOS == "linux" && runtime.GOARCH == settings["GOARCH"] {
		out, err := exec.Command(path, "--version").CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("%s --version: %w\n%s", path, err, out)
		}
		if !strings.Contains(string(out), "commit "+commit) {
			return "", fmt.Errorf("%s --version says %q, want it to name commit %s (built with -ldflags \"-X main.gitCommit=%s\"?)",
				path, strings.TrimSpace(string(out)), commit, commit)
		}
	}
	return settings["GOARCH"], nil
}

// CheckStatic fails unless path is an ELF executable that needs no dynamic loader and no
// shared library: on scratch there are none, and such a binary would not even start.
func CheckStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s is not an ELF executable: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked (it has an ELF interpreter): scratch has no dynamic loader", path)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("%s: reading its imported libraries: %w", path, err)
	}
	if len(libs) > 0 {
		return fmt.Errorf("%s needs shared libraries %v: scratch has none", path, libs)
	}
	return nil
}

// Image assembles the image in memory: scratch, plus one layer holding binary at BinaryPath,
// run as User. Its media types are OCI's. The same inputs give the same digest.
func Image(binary []byte, arch, commit string, created time.Time) (v1.Image, error) {
	layer, err := binaryLayer(binary, created)
	if err != nil {
		return nil, err
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "hack/image: COPY sample-controller " + BinaryPath + " (CGO_ENABLED=0 go build -trimpath, commit " + commit + ")",
			Comment:   "the static controller binary; the base is scratch",
		},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: created}
	cf.Config = v1.Config{
		Entrypoint: []string{BinaryPath},
		User:       User,
		Labels: map[string]string{
			RevisionLabel:                    commit,
			"org.opencontainers.image.title": "sample-controller",
		},
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, err
	}
	// The manifest carries the revision too, for registries and tools that read only manifests.
	return mutate.Annotations(img, map[string]string{RevisionLabel: commit}).(v1.Image), nil
}

// binaryLayer is a gzipped tar with one entry: the binary, owned by root and not writable by
// the image's user, executable by everyone.
func binaryLayer(binary []byte, modTime time.Time) (v1.Layer, error) {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     strings.TrimPrefix(BinaryPath, "/"),
		Mode:     0o755,
		Size:     int64(len(binary)),
		ModTime:  modTime,
	}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(binary); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	// Compressed once here (the library would otherwise gzip again each time it needs the
	// digest or the blob); compress/gzip's output depends only on its input.
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	compressed := gz.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(compressed)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// writeLayout writes img as the only image of a fresh OCI layout at dir, annotated with its
// tag (org.opencontainers.image.ref.name, as skopeo's oci:DIR:TAG reads it) and its full name
// (io.containerd.image.name, as ctr import reads it). It is written beside dir and renamed
// over it, so dir is never half written nor holds an older image beside the new one.
func writeLayout(dir string, img v1.Image, tag name.Tag) error {
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": tag.TagStr(),
		"io.containerd.image.name":          tag.Name(),
	})); err != nil {
		return err
	}
	// The library writes blobs 0600 and index.json 0755: make it an ordinary readable tree.
	if err := filepath.WalkDir(tmp, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	}); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// writeTarball writes img as a docker-loadable tarball (manifest.json with RepoTags: tag).
func writeTarball(path string, img v1.Image, tag name.Tag) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	err = tarball.Write(tag, img, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// git runs git in dir and returns its trimmed output.
func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	s := strings.TrimSpace(string(out))
	if s == "" && args[0] != "status" {
		return "", errors.New("git " + strings.Join(args, " ") + ": no output")
	}
	return s, nil
}
