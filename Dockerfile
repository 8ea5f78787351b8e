# The image, for people with Docker. `make image` builds the same image offline, with no Docker
# and no base image to pull (hack/image/main.go), and `make image-test` checks what it built:
# one static binary at /sample-controller, run as 65532:65532, nothing else, no shell.
#   docker build --build-arg GIT_COMMIT=$(git rev-parse HEAD) -t example.com/sample-controller:v0.1.0 .
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
# The commit --version reports and the revision label names. .git is not in the build context
# (.dockerignore), so it is passed in, as make build and make image stamp it.
ARG GIT_COMMIT
ARG TARGETARCH
RUN test -n "$GIT_COMMIT" || { echo 'pass --build-arg GIT_COMMIT=$(git rev-parse HEAD)' >&2; exit 1; }
WORKDIR /src
# Dependencies first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# As hack/image builds it: static (scratch has no C library), no local paths, stamped.
RUN CGO_ENABLED=0 GOOS=linux GOARCH=$TARGETARCH go build -trimpath -ldflags="-s -w -X main.gitCommit=${GIT_COMMIT}" -o /out/sample-controller .

# scratch, as the offline build, rather than distroless/static: the controller needs no file but
# itself. It talks only to the API server, whose CA it reads from the service account mount (no
# CA bundle); its user is numeric, which is what runAsNonRoot needs (no /etc/passwd); and it
# writes no files (the Deployment's root filesystem is read-only). No shell, no package manager.
FROM scratch
ARG GIT_COMMIT
LABEL org.opencontainers.image.revision=$GIT_COMMIT org.opencontainers.image.title=sample-controller
COPY --from=build /out/sample-controller /sample-controller
USER 65532:65532
ENTRYPOINT ["/sample-controller"]
