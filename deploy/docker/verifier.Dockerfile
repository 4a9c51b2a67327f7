# syntax=docker/dockerfile:1
# The verifier (AAS, CMS, HVS, NATS): a static binary on distroless, non-root.
# Build from the repository root:
#   docker build -f deploy/docker/verifier.Dockerfile --build-arg VERSION=v0.1.0 -t ghcr.io/trustedcompute/verifier:0.1.0 .
ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Pure Go (SQLite through modernc.org/sqlite): no cgo, no TPM simulator.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -tags tc_nosimulator -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/verifier ./cmd/verifier

# distroless/static: CA certificates, /etc/passwd with nonroot (65532), no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/verifier /usr/local/bin/verifier
ARG VERSION=dev
ARG REVISION=
LABEL org.opencontainers.image.version="${VERSION}" org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://trustedcompute.io/tc"
USER 65532:65532
# 8443: HTTPS (/aas/v1, /cms/v1, /hvs/v2); 4222: the embedded NATS server.
EXPOSE 8443 4222
ENTRYPOINT ["/usr/local/bin/verifier"]
CMD ["run"]
