// Command image builds the product's container images (verifier,
// trust-agent, attestation-manager, tcctl) from the source tree without a
// container engine and without pulling a base image, and pushes them to a
// registry or writes them to a tarball that `docker load` reads.
//
//	go run ./hack/image build --registry registry.example.net/trusted-compute --version v0.1.0
//	go run ./hack/image build --registry registry.example.net/trusted-compute --version v0.1.0 --tarball images.tar
//
// Each image holds one layer: the static binary (CGO_ENABLED=0, -trimpath,
// -tags tc_nosimulator, -ldflags "-s -w -X main.version=...", and the trust
// agent without inlining, -gcflags=all=-l) at
// /usr/local/bin/<name>, /etc/passwd and /etc/group with root and nonroot
// (65532), /home/nonroot and /tmp. Its configuration is that of the
// Dockerfiles in deploy/docker (user, entrypoint, command, exposed ports)
// plus the OCI labels version, source and revision. File times and the
// creation time are SOURCE_DATE_EPOCH (default 0), so the same source and
// flags give the same digests.
//
// Pushing uses the Docker credential helpers and ~/.docker/config.json
// (`docker login`). A registry on the loopback (localhost, 127.0.0.1, [::1])
// may answer over plain HTTP; every other registry is reached over HTTPS
// only.
package main

import (
	"context"
	"io"
	"log/slog"

	"trustedcompute.io/tc/internal/cli"
)

const usage = `usage: go run ./hack/image build --registry REPOSITORY [flags] [image ...]

Builds the images (default all: verifier trust-agent attestation-manager
tcctl) as REPOSITORY/<image>:<tag> and pushes them, or with --tarball writes
them to a file for "docker load". "build --help" lists the flags.`

func main() {
	cli.Program{Name: "image", Version: "dev", Usage: usage, Commands: map[string]cli.Func{"build": build}}.Main()
}

// build is the composition root: flags in, images out.
func build(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := cli.NewFlagSet("build", stderr)
	var o options
	fs.StringVar(&o.registry, "registry", "", "repository the images are named under, e.g. registry.example.net/trusted-compute (required)")
	fs.StringVar(&o.version, "version", "dev", "version built into the binaries (main.version) and the image label")
	fs.StringVar(&o.tag, "tag", "", "image tag (default: the version without a leading v)")
	fs.StringVar(&o.platforms, "platform", "linux/amd64", "comma-separated platforms; more than one pushes an image index")
	fs.StringVar(&o.tarball, "tarball", "", "write the images to this file (docker load) instead of pushing them")
	fs.StringVar(&o.source, "source", ".", "the repository's root")
	fs.StringVar(&o.revision, "revision", "", "commit for the revision label (default: git rev-parse HEAD in --source, none outside a checkout)")
	fs.StringVar(&o.sourceURL, "source-url", defaultSourceURL, "URL for the source label")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.images = fs.Args()
	o.sourceDateEpoch = getenv("SOURCE_DATE_EPOCH")
	log := slog.New(slog.NewTextHandler(stderr, nil))
	p, err := o.plan(ctx)
	if err != nil {
		return err
	}
	return p.execute(ctx, log, stdout)
}
