// Package docs holds the prose documentation. Its test keeps docs/walkthrough.md true to the
// code: the walkthrough is only useful while every place it sends the reader still exists.
package docs

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The walkthrough names code in one notation, in backticks:
//
//	`controller.go: syncFoo`                               a file of this repository, and a Go name declared in it
//	`controller.go: Controller.Run, processNextWorkItem`   several names in one file
//	`k8s.io/client-go/tools/cache: Reflector`              a Go package (any module this one depends on), and a name in it
//	`k8s.io/client-go/util/workqueue: Typed.Done`          TYPE.MEMBER: a method, an interface's method, or a struct's field
//	`hack/tour.sh: step`                                   a shell function in a script (other files: the word appears)
//	`hack/local-cluster.sh`, `test/e2e/`                   a file or folder of this repository on its own (it must exist)
//
// A plain name in a repository .go file may be any declaration in it, methods and fields included;
// in a package it must be declared at the top level. A repository path has an extension (a
// folder: a trailing "/" and a first folder that exists), so that `key: value` prose is not
// taken for a reference.
//
// Diagrams (```mermaid blocks, in the walkthrough and in the README) are not in that notation, so
// their code names are found by their shape. A word in a diagram is taken for code when it is
//
//	Forget(key), Get()             written as a call: a name with "(" right after it (and a lower-case letter)
//	enqueueFoo, resourceVersion    in lower camel case
//	AddRateLimited, RESTMapper     capitalised with another capital after the first letter (not a plural acronym: UIDs)
//
// and must then be declared in this repository's Go code (any declaration, methods and fields
// included, tests and generated code too) or in a package the walkthrough references, or be the
// value of a string constant declared there (a condition reason: DeploymentNotOwned). A lower
// camel case name may also be the JSON name of a Go field (resourceVersion: ResourceVersion).
// Plain words (Deployment, Pods), capitals (GET, NS, and so node IDs) and the diagram's first
// line (its type) are not code; diagramProse lists the few mixed-case words that are not code either.
const walkthrough = "walkthrough.md"

// diagramFiles are the files, relative to the repository's root, whose diagrams are checked.
var diagramFiles = []string{"docs/" + walkthrough, "README.md"}

// diagramProse are mixed-case words that diagrams may use as words, not as code.
var diagramProse = map[string]bool{"OpenAPI": true}

// minDiagramNames keeps the diagram check from passing because it stopped finding names.
const minDiagramNames = 30

// minReferences keeps the test from passing because the notation stopped matching anything.
const minReferences = 40

var (
	// reference is `LOCATION: NAME[, NAME...]`.
	reference = regexp.MustCompile("`([A-Za-z0-9_.\\-/]+): ([A-Za-z_][A-Za-z0-9_]*(?:\\.[A-Za-z_][A-Za-z0-9_]*)?(?:, [A-Za-z_][A-Za-z0-9_]*(?:\\.[A-Za-z_][A-Za-z0-9_]*)?)*)`")
	// fileOnly is a backticked repository path with an extension, or a folder ending in "/".
	fileOnly = regexp.MustCompile("`((?:[A-Za-z0-9_.\\-]+/)*[A-Za-z0-9_\\-]+\\.(?:go|sh|yaml|md|mod)|(?:[A-Za-z0-9_.\\-]+/)+)`")
	// nearMiss is something that looks meant as a reference but does not parse as one (a
	// missing space, a stray character): better to fail than to check nothing silently.
	nearMiss = regexp.MustCompile("`[^`\\s]*(?:\\.go|\\.sh|k8s\\.io/[^`\\s:]*):[^`]*`")
	// mdLink is a relative Markdown link target.
	mdLink = regexp.MustCompile(`\]\(([^)#\s:]+)(?:#[^)]*)?\)`)
	// tourSection is a "quoted" title in an *In the tour:* paragraph: a section of hack/tour.sh.
	tourSection = regexp.MustCompile(`"([^"]+)"`)
	// word is a Go-identifier-like word of a diagram.
	word = regexp.MustCompile(`\b[A-Za-z_][A-Za-z0-9_]*\b`)
	// acronymPlural is GVKs, UIDs: capitals and a plural s, prose rather than code.
	acronymPlural = regexp.MustCompile(`^[A-Z]+s$`)
	// mermaidStyle is a mermaid line that styles rather than says something.
	mermaidStyle = regexp.MustCompile(`^\s*(?:%%|classDef\b|class\b|style\b|linkStyle\b|click\b)`)
)

type ref struct {
	line     int
	location string // repository path, or Go import path
	name     string // "" for a file-only reference
}

func (r ref) String() string {
	if r.name == "" {
		return fmt.Sprintf("%s:%d: `%s`", walkthrough, r.line, r.location)
	}
	return fmt.Sprintf("%s:%d: `%s: %s`", walkthrough, r.line, r.location, r.name)
}

func TestWalkthroughReferencesExist(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	refs, links, tourSections, malformed := parseReferences(t, root, filepath.Join(root, "docs", walkthrough))
	for _, m := range malformed {
		t.Errorf("%s: looks like a code reference but is not in the notation `LOCATION: NAME` (see docs_test.go): %s", walkthrough, m)
	}

	var inRepo, inPackages int
	pkgRefs := map[string][]ref{}
	for _, r := range refs {
		if isImportPath(r.location) {
			pkgRefs[r.location] = append(pkgRefs[r.location], r)
			inPackages++
			continue
		}
		inRepo++
		if err := checkRepoRef(root, r); err != nil {
			t.Errorf("%s: %v", r, err)
		}
	}
	if len(tourSections) < 5 {
		t.Errorf("found only %d tour sections named in *In the tour:* paragraphs; want at least 5", len(tourSections))
	}
	tour, err := os.ReadFile(filepath.Join(root, "hack", "tour.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range tourSections {
		if !bytes.Contains(tour, []byte(`section "`+s.location+`"`)) {
			t.Errorf("%s:%d: the tour has no section %q (hack/tour.sh: section)", walkthrough, s.line, s.location)
		}
	}
	for _, l := range links {
		if _, err := os.Stat(filepath.Join(root, "docs", l.location)); err != nil {
			t.Errorf("%s:%d: link to %s: %v", walkthrough, l.line, l.location, err)
		}
	}

	// Every declaration of the referenced packages: the diagrams may name them too.
	declared := []*decls{}
	if len(pkgRefs) > 0 {
		dirs, err := packageDirs(t, root, sortedKeys(pkgRefs))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range sortedKeys(pkgRefs) {
			decls, err := packageDecls(dirs[path])
			if err != nil {
				t.Errorf("%s: %v", path, err)
				continue
			}
			declared = append(declared, decls)
			for _, r := range pkgRefs[path] {
				if !decls.has(r.name, false) {
					t.Errorf("%s: %s is not declared in package %s (%s)", r, r.name, path, dirs[path])
				}
			}
		}
	}

	t.Logf("checked %d references: %d to this repository, %d to %d Go packages; %d links; %d tour sections",
		len(refs), inRepo, inPackages, len(pkgRefs), len(links), len(tourSections))
	if len(refs) < minReferences || inRepo < 10 || inPackages < 10 {
		t.Errorf("found only %d references (%d in this repository, %d in packages); want at least %d, 10 and 10: "+
			"has the notation changed?", len(refs), inRepo, inPackages, minReferences)
	}

	repo, err := repositoryDecls(root)
	if err != nil {
		t.Fatal(err)
	}
	checkDiagrams(t, root, append(declared, repo))
}

// checkDiagrams checks that every code name in a diagram (see the comment on walkthrough) is
// declared in one of declared.
func checkDiagrams(t *testing.T, root string, declared []*decls) {
	t.Helper()
	known := func(name string) bool {
		for _, d := range declared {
			if d.any[name] || d.values[name] {
				return true
			}
		}
		return false
	}
	for _, file := range diagramFiles {
		names, diagrams, err := diagramNames(filepath.Join(root, filepath.FromSlash(file)))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if !known(n.name) && !(isLowerCamel(n.name) && known(upperFirst(n.name))) {
				t.Errorf("%s:%d: the diagram names %s, which is declared neither in this repository's Go code nor in "+
					"a package the walkthrough references (not code? write it as plain words, or see diagramProse in docs_test.go)",
					file, n.line, n.name)
			}
		}
		t.Logf("checked %d code names in %d diagrams of %s", len(names), diagrams, file)
		if diagrams == 0 || (file == diagramFiles[0] && len(names) < minDiagramNames) {
			t.Errorf("%s: found %d diagrams and %d code names in them; want at least one diagram and, in the "+
				"walkthrough, %d names: has the notation changed?", file, diagrams, len(names), minDiagramNames)
		}
	}
}

// diagramNames returns the words of the ```mermaid blocks of a Markdown file that are taken
// for code, and the number of such blocks.
func diagramNames(path string) (names []ref, diagrams int, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	inFence, inDiagram, sawType := false, false, false
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if fence := strings.TrimSpace(line); strings.HasPrefix(fence, "```") {
			inFence = !inFence
			inDiagram = inFence && strings.TrimSpace(strings.TrimPrefix(fence, "```")) == "mermaid"
			if inDiagram {
				diagrams++
				sawType = false
			}
			continue
		}
		if !inDiagram || strings.TrimSpace(line) == "" || mermaidStyle.MatchString(line) {
			continue
		}
		if !sawType { // flowchart LR, sequenceDiagram: the diagram's type
			sawType = true
			continue
		}
		for _, m := range word.FindAllStringIndex(line, -1) {
			name := line[m[0]:m[1]]
			isCall := m[1] < len(line) && line[m[1]] == '(' && strings.ToUpper(name) != name
			if isCall || (isMixedCase(name) && !diagramProse[name]) {
				names = append(names, ref{line: n, location: path, name: name})
			}
		}
	}
	return names, diagrams, sc.Err()
}

// isMixedCase: a lower-case letter, and a capital after the first letter (enqueueFoo,
// DeltaFIFO), but not a plural acronym (UIDs).
func isMixedCase(name string) bool {
	return strings.ToUpper(name) != name && strings.ToLower(name[1:]) != name[1:] && !acronymPlural.MatchString(name)
}

func isLowerCamel(name string) bool { return name[0] >= 'a' && name[0] <= 'z' }

func upperFirst(name string) string { return strings.ToUpper(name[:1]) + name[1:] }

// repositoryDecls are the declarations of every Go file of the repository (nested modules, tests
// and generated code included; folders starting with "." or "_" excluded). A file that does not
// parse (someone is editing it) still gives the declarations before the error.
func repositoryDecls(root string) (*decls, error) {
	d := newDecls()
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if path != root && (strings.HasPrefix(e.Name(), ".") || strings.HasPrefix(e.Name(), "_") || e.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, _ := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if f != nil {
			d.merge(astDecls(f))
		}
		return nil
	})
	return d, err
}

// parseReferences reads the references, file-only references included, relative links, and
// the tour's sections named in "*In the tour:*" paragraphs, outside fenced code blocks (shell
// examples are not references; diagrams are checked apart, by checkDiagrams).
func parseReferences(t *testing.T, root, path string) (refs, links, tourSections []ref, malformed []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	inFence, inTourParagraph := false, false
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		// A tour paragraph starts with *In the tour:* and ends at a blank line; its titles may
		// wrap across lines, so they are read from the whole paragraph at its end.
		if strings.HasPrefix(line, "*In the tour:*") {
			inTourParagraph = true
			tourSections = append(tourSections, ref{line: n})
		}
		if inTourParagraph {
			if strings.TrimSpace(line) == "" {
				inTourParagraph = false
			} else {
				last := &tourSections[len(tourSections)-1]
				last.name += " " + line
			}
		}
		matched := map[string]bool{}
		for _, m := range reference.FindAllStringSubmatch(line, -1) {
			if !isImportPath(m[1]) && !strings.Contains(pathBase(m[1]), ".") {
				continue // `controller: true` is YAML, not a reference
			}
			matched[m[0]] = true
			for _, name := range strings.Split(m[2], ", ") {
				refs = append(refs, ref{line: n, location: m[1], name: name})
			}
		}
		for _, m := range fileOnly.FindAllStringSubmatch(line, -1) {
			if strings.HasSuffix(m[1], "/") {
				first, _, _ := strings.Cut(m[1], "/")
				if _, err := os.Stat(filepath.Join(root, first)); err != nil {
					continue // `namespaces/NS/` is part of a URL, not a folder of this repository
				}
			}
			matched[m[0]] = true
			refs = append(refs, ref{line: n, location: m[1]})
		}
		for _, m := range nearMiss.FindAllString(line, -1) {
			if !matched[m] {
				malformed = append(malformed, fmt.Sprintf("line %d: %s", n, m))
			}
		}
		for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
			links = append(links, ref{line: n, location: m[1]})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	// Each paragraph becomes one ref per quoted title (location is the title).
	var sections []ref
	for _, p := range tourSections {
		for _, m := range tourSection.FindAllStringSubmatch(strings.Join(strings.Fields(p.name), " "), -1) {
			sections = append(sections, ref{line: p.line, location: m[1]})
		}
	}
	return refs, links, sections, malformed
}

func pathBase(p string) string { return p[strings.LastIndex(p, "/")+1:] }

// isImportPath: a Go import path starts with a domain (k8s.io/..., example.com/...), a
// repository path does not.
func isImportPath(location string) bool {
	first, _, _ := strings.Cut(location, "/")
	return strings.Contains(first, ".") && !strings.HasSuffix(location, ".go") && strings.Contains(location, "/")
}

func checkRepoRef(root string, r ref) error {
	path := filepath.Join(root, filepath.FromSlash(r.location))
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no such file in the repository: %v", err)
	}
	if r.name == "" {
		return nil
	}
	switch filepath.Ext(path) {
	case ".go":
		decls, err := fileDecls(token.NewFileSet(), path)
		if err != nil {
			return err
		}
		if !decls.has(r.name, true) {
			return fmt.Errorf("%s is not declared in %s", r.name, r.location)
		}
	case ".sh":
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fn := regexp.MustCompile(`(?m)^\s*(?:function\s+)?` + regexp.QuoteMeta(r.name) + `\s*\(\)`)
		if !fn.Match(data) {
			return fmt.Errorf("no shell function %s in %s", r.name, r.location)
		}
	default:
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !regexp.MustCompile(`\b` + regexp.QuoteMeta(r.name) + `\b`).Match(data) {
			return fmt.Errorf("%s does not appear in %s", r.name, r.location)
		}
	}
	return nil
}

// packageDirs finds each package's folder in the module cache (or this repository) from the
// build list of this module: `go list -m all` gives each module's folder, and a package's
// folder is its module's plus the rest of its import path. (`go list PACKAGE` would refuse a
// package of a module that is only an indirect dependency, such as k8s.io/apiserver.)
func packageDirs(t *testing.T, root string, importPaths []string) (map[string]string, error) {
	t.Helper()
	modules, err := moduleDirs(root)
	if err != nil {
		return nil, err
	}
	dirs := map[string]string{}
	for pass := 0; pass < 2; pass++ {
		var missing []string
		for _, p := range importPaths {
			mod := longestModulePrefix(modules, p)
			if mod == "" {
				return nil, fmt.Errorf("%s is in no module of this module's build list (go list -m all)", p)
			}
			if modules[mod] == "" {
				missing = append(missing, mod)
				continue
			}
			dirs[p] = filepath.Join(modules[mod], filepath.FromSlash(strings.TrimPrefix(p, mod)))
		}
		if len(missing) == 0 {
			return dirs, nil
		}
		if pass == 1 {
			return nil, fmt.Errorf("modules not in the module cache even after go mod download: %v", missing)
		}
		// A module the build never needed (say, k8s.io/apiserver on a fresh machine): fetch it,
		// through the module proxy as any build would.
		cmd := exec.Command("go", append([]string{"mod", "download"}, missing...)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go mod download %v: %v\n%s", missing, err, out)
		}
		if modules, err = moduleDirs(root); err != nil {
			return nil, err
		}
	}
	return dirs, nil
}

func moduleDirs(root string) (map[string]string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Path}}\t{{.Dir}}", "all")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -m all: %v\n%s", err, stderr.String())
	}
	modules := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, dir, _ := strings.Cut(line, "\t")
		modules[path] = dir
	}
	return modules, nil
}

func longestModulePrefix(modules map[string]string, importPath string) string {
	best := ""
	for mod := range modules {
		if (importPath == mod || strings.HasPrefix(importPath, mod+"/")) && len(mod) > len(best) {
			best = mod
		}
	}
	return best
}

// decls are the names a Go file or package declares.
type decls struct {
	topLevel map[string]bool // funcs, types, vars, consts
	members  map[string]bool // "Type.Method", "Interface.Method", "Struct.Field"
	any      map[string]bool // every name above, members by their own name too
	values   map[string]bool // the values of string constants
}

func newDecls() *decls {
	return &decls{topLevel: map[string]bool{}, members: map[string]bool{}, any: map[string]bool{}, values: map[string]bool{}}
}

// merge adds o's names to d.
func (d *decls) merge(o *decls) {
	for _, m := range []struct{ dst, src map[string]bool }{{d.topLevel, o.topLevel}, {d.members, o.members}, {d.any, o.any}, {d.values, o.values}} {
		for k := range m.src {
			m.dst[k] = true
		}
	}
}

// has reports whether name is declared: "T.M" as a member, a plain name at the top level or,
// when anyLevel, as any declaration.
func (d *decls) has(name string, anyLevel bool) bool {
	if strings.Contains(name, ".") {
		return d.members[name]
	}
	if anyLevel {
		return d.any[name]
	}
	return d.topLevel[name]
}

func packageDecls(dir string) (*decls, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	d := newDecls()
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		fd, err := fileDecls(fset, f)
		if err != nil {
			return nil, err
		}
		d.merge(fd)
	}
	if len(d.topLevel) == 0 {
		return nil, fmt.Errorf("no Go declarations in %s", dir)
	}
	return d, nil
}

func fileDecls(fset *token.FileSet, path string) (*decls, error) {
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	return astDecls(f), nil
}

func astDecls(f *ast.File) *decls {
	d := newDecls()
	add := func(top string, member string) {
		if member == "" {
			d.topLevel[top] = true
			d.any[top] = true
			return
		}
		d.members[top+"."+member] = true
		d.any[member] = true
	}
	for _, decl := range f.Decls {
		switch decl := decl.(type) {
		case *ast.FuncDecl:
			if decl.Recv == nil || len(decl.Recv.List) == 0 {
				add(decl.Name.Name, "")
			} else {
				add(receiverType(decl.Recv.List[0].Type), decl.Name.Name)
			}
		case *ast.GenDecl:
			for _, spec := range decl.Specs {
				switch spec := spec.(type) {
				case *ast.TypeSpec:
					add(spec.Name.Name, "")
					for _, member := range typeMembers(spec.Type) {
						add(spec.Name.Name, member)
					}
				case *ast.ValueSpec:
					for i, n := range spec.Names {
						add(n.Name, "")
						if decl.Tok != token.CONST || i >= len(spec.Values) {
							continue
						}
						if lit, ok := spec.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							if v, err := strconv.Unquote(lit.Value); err == nil {
								d.values[v] = true
							}
						}
					}
				}
			}
		}
	}
	return d
}

// receiverType is the base type name of a method receiver: T, *T, T[K], *T[K, V].
func receiverType(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.StarExpr:
		return receiverType(e.X)
	case *ast.IndexExpr:
		return receiverType(e.X)
	case *ast.IndexListExpr:
		return receiverType(e.X)
	case *ast.Ident:
		return e.Name
	}
	return ""
}

// typeMembers are a struct's fields or an interface's methods (embedded ones by type name).
func typeMembers(e ast.Expr) []string {
	var fields *ast.FieldList
	switch e := e.(type) {
	case *ast.StructType:
		fields = e.Fields
	case *ast.InterfaceType:
		fields = e.Methods
	default:
		return nil
	}
	var names []string
	for _, f := range fields.List {
		if len(f.Names) == 0 {
			if n := receiverType(f.Type); n != "" {
				names = append(names, n)
			} else if sel, ok := f.Type.(*ast.SelectorExpr); ok {
				names = append(names, sel.Sel.Name)
			}
			continue
		}
		for _, n := range f.Names {
			names = append(names, n.Name)
		}
	}
	return names
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
