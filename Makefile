# sample-controller: the developer entry points. `make help` lists them.
SHELL := /usr/bin/env bash
export PATH := /usr/local/go/bin:$(PATH)

BIN := bin/sample-controller

.PHONY: help build image image-test test unit unit-foreign-env generate verify fmt vet e2e bench bench-smoke bench-peers bench-peers-smoke soak fuzz fuzz-smoke tour run cluster-bins cluster-up cluster-down

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## Build the controller into bin/
	go build -ldflags "-X main.gitCommit=$$(git rev-parse HEAD)" -o $(BIN) .

# The image's builder is a Go module of its own (hack/image), built for this machine even when
# GOARCH names the image's architecture. IMAGE_ARGS adds flags: --ref, --out, --binary, --commit.
image: ## Build the container image offline into _output/image/ (OCI layout + docker tarball; GOARCH=arm64 for arm64)
	cd hack/image && env -u GOARCH go run . --arch=$${GOARCH:-amd64} --out=$(CURDIR)/_output/image $(IMAGE_ARGS)

image-test: ## Build the image for this commit and check it: entrypoint, non-root user, no shell, static binary of this commit
	cd hack/image && go test -count=1 -timeout 30m ./...

unit: ## Unit tests only (fake clientsets, no cluster, seconds)
	go test -race ./...

unit-foreign-env: ## The unit tests again, with a broken ~/.kube/config and $$KUBECONFIG: they must not read them
	hack/unit-foreign-env.sh

e2e: ## End-to-end tests: the real controller on the local control plane (builds it the first time)
	hack/build-cluster-bins.sh
	go test -tags e2e -count=1 -timeout 40m -v ./test/e2e/

test: unit unit-foreign-env image-test e2e ## Every test: unit (also with a user's kubeconfig about), the image, then end-to-end on the local control plane

bench: ## The benchmark on a local cluster of its own (N=1000, 3 rounds, about 5 min); see docs/benchmarks.md
	hack/bench.sh

bench-smoke: ## The benchmark at N=50: only checks that it still works
	BENCH_NODES=3 BENCH_ARGS="--n=50 --pods-n=50 --memory-n=50 --latency-duration=2s --resync=5s --json=_output/bench/smoke.json" hack/bench.sh

bench-peers: ## Side by side, each on a fresh cluster: this controller (defaults, tuned), a controller-runtime peer (defaults, 8 workers), a bare client, kubernetes/sample-controller (memory); N=1000, about 15 min
	hack/bench-peers.sh

bench-peers-smoke: ## bench-peers at N=50: only checks that it still works
	PEERS_N=50 PEERS_UNRELATED=200 PEERS_NODES=3 hack/bench-peers.sh

fuzz: ## Fuzz the sync path (syncFoo, driftedFields) for FUZZ_TIME per target (default 5m); a failing input lands in testdata/fuzz/
	FUZZ_TIME=$${FUZZ_TIME:-5m} hack/fuzz.sh

fuzz-smoke: ## Each fuzz target for 20s (CI)
	FUZZ_TIME=20s hack/fuzz.sh

soak: ## Soak (not in CI): 1,000 Foos under steady churn for 30 min on a cluster of its own; fails on leaks (SOAK_DURATION, SOAK_FOOS, SOAK_ARGS; docs/reliability.md)
	hack/soak.sh

tour: ## A live tour of the Kubernetes API on the local cluster (or $$KUBECONFIG's), one explained step at a time (~25 s)
	hack/tour.sh

generate: ## Regenerate deepcopy, clientset, listers, informers and the CRD
	hack/update-codegen.sh

verify: fmt vet ## gofmt, go vet, generated-code freshness, no build outputs tracked
	hack/verify-codegen.sh
	hack/verify-tree.sh

fmt:
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	go vet ./...
	go vet -tags e2e ./test/e2e/
	cd hack/image && go vet ./...
	cd hack/bench-peers/controller-runtime && go vet ./...

run: ## The main job: run the controller on the local cluster (or $$KUBECONFIG's) and show a Foo reconciled
	hack/run.sh

cluster-bins: ## Build the local control plane's binaries into their cache (~12 min cold)
	hack/build-cluster-bins.sh

cluster-up: ## Bring up the local control plane (idempotent)
	hack/local-cluster.sh up

cluster-down: ## Tear down the local control plane
	hack/local-cluster.sh down
