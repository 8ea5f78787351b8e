# A static binary on a minimal, non-root base image with no shell.
#   docker build -t example.com/sample-controller:v0.1.0 .
FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/sample-controller .

# distroless/static: CA certificates, /etc/passwd with "nonroot" (65532), no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sample-controller /sample-controller
USER 65532:65532
ENTRYPOINT ["/sample-controller"]
