package main

import (
	"strings"
	"testing"
)

// The commit stamped at build time is what --version reports; the image test relies on it.
func TestVersionReportsTheStampedCommit(t *testing.T) {
	old := gitCommit
	defer func() { gitCommit = old }()
	gitCommit = "0123456789abcdef0123456789abcdef01234567"
	if v := version(); !strings.HasPrefix(v, "sample-controller ") || !strings.Contains(v, " commit "+gitCommit) {
		t.Errorf("version() = %q, want it to name commit %s", v, gitCommit)
	}
}
