# syntax=docker/dockerfile:1
# tcctl, the admin CLI: static, distroless, non-root. Built without cgo, so
# "tcctl sandbox" needs --tpm swtpm:... (the in-process simulator is cgo).
# Build from the repository root:
#   docker build -f deploy/docker/tcctl.Dockerfile --build-arg VERSION=v0.1.0 -t ghcr.io/trustedcompute/tcctl:0.1.0 .
ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -tags tc_nosimulator -ldflags "-s -w -X main.version=${VERSION}" -o /out/tcctl ./cmd/tcctl

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tcctl /usr/local/bin/tcctl
ARG VERSION=dev
ARG REVISION=
LABEL org.opencontainers.image.version="${VERSION}" org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://trustedcompute.io/tc"
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/tcctl"]
