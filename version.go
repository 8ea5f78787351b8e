package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// gitCommit is set at build time by `-ldflags "-X main.gitCommit=$(git rev-parse HEAD)"` (make
// build and make image do), since the commit `go build` records on its own is left out where
// GOFLAGS has -buildvcs=false.
var gitCommit string

// version says which source a binary was built from: the module version and the Git commit
// (with "+dirty" when go build recorded uncommitted changes). `sample-controller --version`
// prints it; the image test uses it to check that an image holds the binary of this commit.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "sample-controller (no build information) commit " + gitCommit + " " + runtime.Version()
	}
	commit, dirty := "unknown", ""
	if gitCommit != "" {
		commit = gitCommit
	}
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision" && gitCommit == "":
			commit = s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "+dirty"
		}
	}
	return fmt.Sprintf("sample-controller %s commit %s%s %s", info.Main.Version, commit, dirty, info.GoVersion)
}
