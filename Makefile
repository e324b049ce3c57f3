# distro — build, test and verification targets. `make help` lists them.
SHELL := /bin/bash
GO ?= go
GOBIN_DIR := $(shell $(GO) env GOPATH)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
PKGS := ./...
FUZZTIME ?= 10s
GOLANGCI_VERSION ?= v2.15.0

.PHONY: help build test unit race integ compat deploy-check fmt fmt-check vet lint tidy-check gen gen-check verify bench bench-report bench-smoke fuzz chaos chaos-short scale clean

help: ## list targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build distrod, distroctl and distrobench into ./bin (static, trimmed)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...

test: race compat deploy-check ## the full test suite (what README and CI run): race-enabled unit, scenario and integration tests, the Nacos SDK compatibility tests, the Kubernetes manifest checks

unit: ## fast unit tests, no race detector
	$(GO) test -count=1 $(PKGS)

race: ## unit, in-memory cluster and real-binary integration tests with the race detector
	$(GO) test -race -count=1 -timeout 15m $(PKGS)
	cd chaos/lincheck && $(GO) test -count=1 ./...

integ: ## only the tests that start real distrod processes
	$(GO) test -race -count=1 -run 'Integration' ./internal/server/...

compat: ## compatibility tests with the real Nacos clients (Go SDK v1/v2 in compat/, npm nacos@2.6.3)
	bash compat/run.sh

deploy-check: ## Kubernetes manifests and Dockerfile: strict decoding into the API types, wiring and distrod flag checks (deploy/ module)
	cd deploy && $(GO) test -count=1 ./...

fmt: ## format the code
	gofmt -s -w $$(git ls-files '*.go')

fmt-check: ## fail if gofmt would change anything
	@out=$$(gofmt -s -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet: ## go vet, root and nested modules (compat, chaos/lincheck)
	$(GO) vet $(PKGS)
	cd compat && $(GO) vet ./...
	cd deploy && $(GO) vet ./...
	cd chaos/lincheck && $(GO) vet ./...

lint: ## golangci-lint (pinned; downloaded and built on first use)
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION) run ./...

tidy-check: ## fail if go.mod/go.sum are not tidy
	$(GO) mod tidy -diff
	cd deploy && $(GO) mod tidy -diff
	cd chaos/lincheck && $(GO) mod tidy -diff

gen: ## regenerate protobuf code (needs Debian protobuf-compiler; installs the Go plugins)
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install -y protobuf-compiler"; exit 1; }
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
	PATH=$(GOBIN_DIR):$$PATH $(GO) generate ./api/...

gen-check: gen ## fail if the committed generated code is stale
	git diff --exit-code -- api/

verify: fmt-check vet tidy-check ## formatting, vet and module tidiness

bench: ## Go micro-benchmarks with allocation counts
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1s $(PKGS)

bench-report: ## regenerate docs/benchmarks.md (pinned A/B runs against a trivial net/http ceiling)
	bash scripts/bench/run.sh

bench-smoke: ## a ~3 min benchmark run into /tmp (does not touch docs/)
	bash scripts/bench/run.sh --quick --out /tmp/bench-smoke --doc /tmp/bench-smoke/benchmarks.md --img /tmp/bench-smoke/img

fuzz: ## run every fuzz target for FUZZTIME each (default 10s)
	bash scripts/fuzz.sh $(FUZZTIME)

scale: ## regenerate the simulation figures of docs/scale.md (docs/scale-results, docs/img/scale; about 20 min)
	bash scripts/scale/run.sh

chaos: ## full fault-injection matrix with real binaries in network namespaces (root)
	bash chaos/run.sh

chaos-short: ## the short chaos subset CI runs
	bash chaos/run.sh --short

clean:
	rm -rf bin
