# distrod container image: a static binary on distroless, running as non-root.
#
#   docker build -t distro:dev --build-arg VERSION=$(git describe --tags --always) .
#
# Two stages: the Go toolchain builds static binaries (CGO_ENABLED=0, so the
# pure-Go DNS resolver is used, which --members-dns relies on), and the final
# image holds only them, CA certificates and tzdata (gcr.io/distroless/static).

ARG GO_VERSION=1.26
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first, so source edits do not invalidate the download layer.
COPY go.mod go.sum ./
RUN go mod download
COPY api ./api
COPY cmd ./cmd
COPY internal ./internal
ARG VERSION=dev
RUN CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/ ./cmd/distrod ./cmd/distroctl

# The :nonroot variant runs as uid/gid 65532 and has no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/distrod /out/distroctl /usr/local/bin/
USER 65532:65532
# Raft (port-1000), HTTP (Nacos v1 API, /healthz, /readyz, /metrics),
# client gRPC (port+1000), cluster gRPC (port+1001).
EXPOSE 7848 8848 9848 9849
ENTRYPOINT ["/usr/local/bin/distrod"]
