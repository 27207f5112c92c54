# scribeq — `make help` lists the targets.
GO      ?= go
BIN     := bin/scribeq
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
PKG     ?= ./...
T       ?=

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_\/-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/scribeq
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/scribeq

.PHONY: demo
demo: build ## Run the whole pipeline on testdata/audio (embedded NATS, local Postgres, emulator) and print the results
	./$(BIN) --log-level=warn demo --nats-port=-1 --ingress-addr=127.0.0.1:0 --emulator-addr=127.0.0.1:0

.PHONY: dev
dev: build ## Run every worker in one process until Ctrl-C
	./$(BIN) dev

.PHONY: test
test: ## Run the test suite with the race detector (Postgres: TEST_DATABASE_URL, else Docker, else a throwaway local cluster)
	$(GO) test -race -count=1 -timeout 30m $(if $(T),-run '$(T)') $(PKG)

.PHONY: chaos
chaos: ## The fault suite at full size: real processes killed, NATS and Postgres restarted, faulty provider; prints one line per scenario
	CHAOS_JOBS=full $(GO) test -tags chaos -count=1 -v -run 'TestChaos$(if $(T),/$(T))' -timeout 3h ./pkg/chaos/

.PHONY: chaos-ci
chaos-ci: ## The fault suite at CI size (what .ci/run runs)
	$(GO) test -tags chaos -count=1 -v -run 'TestChaos$(if $(T),/$(T))' -timeout 60m ./pkg/chaos/

.PHONY: bench
bench: ## Performance figures beside this machine's limits, one table (BENCH_MARKDOWN=docs/performance.md also writes it)
	$(GO) test -tags bench -count=1 -v -run 'TestBench$(if $(T),/$(T))' -timeout 30m ./pkg/bench/

.PHONY: lint
lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "run gofmt -w"; exit 1; }
	$(GO) vet ./...

.PHONY: clean
clean: ## Remove the binary and the dev data folder
	rm -rf bin .scribeq
