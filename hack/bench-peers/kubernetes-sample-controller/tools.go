//go:build tools

// Package peer only pins k8s.io/sample-controller, whose main package hack/bench-peers.sh
// builds with `go build k8s.io/sample-controller`. (v0.37.2 is not served by the module proxy
// here; v0.37.1 is the same minor line as the product's Kubernetes libraries.)
package peer

import _ "k8s.io/sample-controller"
