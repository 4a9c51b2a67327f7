# Trusted Compute — the commands a developer and CI use. `make help` lists them.
SHELL := /bin/bash
GO ?= go
BIN ?= bin
GOLANGCI_LINT_VERSION ?= v2.15.0
FUZZTIME ?= 20s
PKGS ?= ./...

.PHONY: help build test test-short lint fuzz bench loadtest sandbox deps clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build every binary into ./bin
	@mkdir -p $(BIN)
	CGO_ENABLED=1 $(GO) build -trimpath -o $(BIN)/ ./cmd/...

deps: ## Install the system packages the tests and the sandbox need (Debian, as root)
	@hack/deps.sh test

test: ## Run every test (installs and starts swtpm, PostgreSQL, ... as needed)
	@hack/test.sh $(PKGS)

test-short: ## Run the unit tests only, without starting external services
	CGO_ENABLED=1 $(GO) test -count=1 -short $(PKGS)

lint: ## gofmt, go vet and golangci-lint (installed through the Go module proxy if missing)
	@hack/lint.sh $(GOLANGCI_LINT_VERSION)

fuzz: ## Run every fuzz target for FUZZTIME (default 20s) each
	@hack/fuzz.sh $(FUZZTIME)

bench: ## Run the benchmarks
	CGO_ENABLED=1 $(GO) test -run '^$$' -bench . -benchmem $(PKGS)

loadtest: ## Load-test the verifier binary (SQLite, PostgreSQL) with a simulated fleet, loopback only, ≤10 min (ARGS="-steps 100,1000,3000")
	@hack/loadtest.sh $(ARGS)

sandbox: ## Run the whole system locally: verifier, 3 simulated nodes, manager (ARGS="--scenario all")
	@hack/sandbox.sh $(ARGS)

clean: ## Remove build output
	rm -rf $(BIN)
