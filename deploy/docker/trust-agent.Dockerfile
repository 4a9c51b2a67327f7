# syntax=docker/dockerfile:1
# The trust agent: static, without the TPM simulator (tc_nosimulator), on
# distroless. Build from the repository root:
#   docker build -f deploy/docker/trust-agent.Dockerfile --build-arg VERSION=v0.1.0 -t ghcr.io/trustedcompute/trust-agent:0.1.0 .
ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# tc_nosimulator leaves the reference TPM simulator (cgo) out of the node
# binary: it can only talk to a real TPM (/dev/tpmrm0) or a swtpm socket.
# -gcflags=all=-l builds it without inlining: 0.6 MB smaller, and as much
# less resident, for about 10 ms more CPU per report (docs/performance.md).
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -tags tc_nosimulator -gcflags=all=-l -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/trust-agent ./cmd/trust-agent

# The agent runs as root (uid 0) but with no capabilities: the TCG and IMA
# logs in securityfs are mode 0440 root:root and /dev/tpmrm0 is root:tss 0660.
# Reading files one owns needs no capability; the Helm chart drops them all,
# makes the root file system read-only and says how the device is reached
# (charts/trust-agent/values.yaml, tpm.deviceAccess). It never listens.
FROM gcr.io/distroless/static-debian12
COPY --from=build /out/trust-agent /usr/local/bin/trust-agent
ARG VERSION=dev
ARG REVISION=
LABEL org.opencontainers.image.version="${VERSION}" org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://trustedcompute.io/tc"
USER 0:0
ENTRYPOINT ["/usr/local/bin/trust-agent"]
CMD ["run"]
