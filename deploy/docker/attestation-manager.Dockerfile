# syntax=docker/dockerfile:1
# The attestation manager (Kubernetes controller): static, distroless, non-root.
# Build from the repository root:
#   docker build -f deploy/docker/attestation-manager.Dockerfile --build-arg VERSION=v0.1.0 -t ghcr.io/trustedcompute/attestation-manager:0.1.0 .
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
    go build -trimpath -tags tc_nosimulator -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/attestation-manager ./cmd/attestation-manager

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/attestation-manager /usr/local/bin/attestation-manager
ARG VERSION=dev
ARG REVISION=
LABEL org.opencontainers.image.version="${VERSION}" org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://trustedcompute.io/tc"
USER 65532:65532
# No port: the manager only calls the verifier, NATS, the API server and EIM.
ENTRYPOINT ["/usr/local/bin/attestation-manager"]
CMD ["run"]
