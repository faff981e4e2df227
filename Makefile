# Custody build entry point. Needs only GNU make, bash and Go; every other tool
# is installed into ./bin at a pinned version on first use. `make help` lists
# the targets.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

BIN := $(CURDIR)/bin
TMP := $(CURDIR)/.tmp

# Pinned tool versions (newest the module proxy serves). Bumping one reinstalls
# just that tool on the next run.
BUF_VERSION                := v1.60.0
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GRPCURL_VERSION            := v1.9.4

BUF                := $(BIN)/buf
PROTOC_GEN_GO      := $(BIN)/protoc-gen-go
PROTOC_GEN_GO_GRPC := $(BIN)/protoc-gen-go-grpc
GRPCURL            := $(BIN)/grpcurl
TOOLS := $(BUF) $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC) $(GRPCURL)
PROTO_TOOLS := $(BUF) $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC)

# Every module of the workspace (go.work) as a package pattern: `./...` at the
# root does not cross module boundaries.
MODULES := $(shell go list -m -f '{{.Dir}}/...')

# Knobs: make test TESTFLAGS=-race, make bench BENCHTIME=10s, make run ARGS=...
TESTFLAGS  ?=
BENCH      ?= .
BENCHTIME  ?= 2s
BENCHCOUNT ?= 1
BENCH_PKGS ?= ./pkg/eventstore/...
FUZZTIME   ?= 10s
DATA_DIR   ?= $(CURDIR)/data
ARGS       ?=

##@ Tools

.PHONY: tools
tools: $(TOOLS) ## Install the pinned code-generation and debugging tools into ./bin

# A tool depends on a stamp file named after its version, so it is installed
# once and again only when its version changes.
$(BUF):                $(BIN)/.versions/buf-$(BUF_VERSION)
$(PROTOC_GEN_GO):      $(BIN)/.versions/protoc-gen-go-$(PROTOC_GEN_GO_VERSION)
$(PROTOC_GEN_GO_GRPC): $(BIN)/.versions/protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION)
$(GRPCURL):            $(BIN)/.versions/grpcurl-$(GRPCURL_VERSION)

$(BUF):
	GOBIN=$(BIN) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	@touch $@
$(PROTOC_GEN_GO):
	GOBIN=$(BIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@touch $@
$(PROTOC_GEN_GO_GRPC):
	GOBIN=$(BIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@touch $@
$(GRPCURL):
	GOBIN=$(BIN) go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
	@touch $@

$(BIN)/.versions/%:
	@mkdir -p $(@D)
	@touch $@

##@ Protobuf

.PHONY: generate
generate: $(PROTO_TOOLS) ## Regenerate the Go code next to the .proto files (buf generate)
	$(BUF) generate

# Generates into a scratch directory and compares with proto/, so it needs no
# git state: it works in a fresh clone and before the first commit, and fails
# on hand edits, stale code and generated files whose .proto is gone.
.PHONY: check-generated
check-generated: $(PROTO_TOOLS) ## Fail if the committed generated code differs from what the protos generate
	@rm -rf $(TMP)/gen && mkdir -p $(TMP)/gen/want/proto $(TMP)/gen/have
	@$(BUF) generate --output $(TMP)/gen/want
	@cd proto && find . -name '*.pb.go' -print0 | tar --null -cf - -T - | tar -xf - -C $(TMP)/gen/have
	@if ! diff -ru $(TMP)/gen/have $(TMP)/gen/want/proto; then \
		echo >&2 "check-generated: generated code under proto/ is out of date; run 'make generate' and commit the result"; \
		exit 1; \
	fi
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && \
		untracked=$$(git ls-files --others --exclude-standard -- 'proto/*.pb.go') && [ -n "$$untracked" ]; then \
		echo >&2 "check-generated: warning: generated files not yet added to git:"; \
		echo >&2 "$$untracked"; \
	fi
	@rm -rf $(TMP)/gen
	@echo "check-generated: proto/ is up to date"

##@ Quality

.PHONY: lint
lint: $(BUF) ## buf lint the protos and go vet every module
	$(BUF) lint
	go vet $(MODULES)

.PHONY: test
test: check-generated lint test-cluster ## Check generated code, lint, the cluster fault test, then test every module
	go test -count=1 -timeout 20m -skip '^TestClusterUnderFault$$' $(TESTFLAGS) $(MODULES)

# The cluster fault test runs nine processes (three NATS nodes, six services)
# for about a minute: it runs on its own, before the other tests, so that it
# has the machine to itself; -v prints its figures.
.PHONY: test-cluster
test-cluster: ## Only the fault test on a 3-node NATS cluster with one process per service
	go test -count=1 -timeout 5m -v -run '^TestClusterUnderFault$$' $(TESTFLAGS) ./cmd/custody

.PHONY: bench
bench: ## Run benchmarks (event store append by default; BENCH, BENCHTIME, BENCH_PKGS)
	go test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -count $(BENCHCOUNT) -benchmem $(BENCH_PKGS)

# `go test -fuzz` takes one package and one target at a time, so list every
# Fuzz target in the workspace and run each for FUZZTIME.
.PHONY: fuzz
fuzz: ## Run every Fuzz target in the workspace for FUZZTIME (default 10s) each
	@targets=$$(go test -list '^Fuzz' $(MODULES) | \
		awk '/^Fuzz/ { names[n++] = $$1; next } /^ok/ { for (i = 0; i < n; i++) print $$2, names[i]; n = 0 }'); \
	if [ -z "$$targets" ]; then echo "fuzz: no Fuzz targets found"; exit 0; fi; \
	while read -r pkg name; do \
		echo "== $$pkg $$name ($(FUZZTIME))"; \
		go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$pkg" </dev/null; \
	done <<< "$$targets"

##@ Build and run

.PHONY: build
build: ## Build bin/custody and bin/custodyctl
	go build -o $(BIN)/ ./cmd/custody ./cmd/custodyctl

.PHONY: run
run: build $(GRPCURL) ## Run everything in one process (DATA_DIR, ARGS); also installs bin/grpcurl
	$(BIN)/custody run --data-dir $(DATA_DIR) $(ARGS)

.PHONY: demo
demo: ## Run the end-to-end demo against a fresh server on a fake clock (scripts/demo.sh; DEMO_ADDR, DEMO_DATA_DIR)
	scripts/demo.sh

.PHONY: clean
clean: ## Remove built binaries and scratch files (keeps tools and DATA_DIR)
	rm -rf $(BIN)/custody $(BIN)/custodyctl $(TMP)

.PHONY: distclean
distclean: clean ## Also remove the installed tools
	rm -rf $(BIN)

.PHONY: help
help: ## List the targets
	@awk 'BEGIN { FS = ":.*## " } \
		/^##@/ { printf "\n%s\n", substr($$0, 5); next } \
		/^[a-zA-Z_-]+:.*## / { printf "  %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
