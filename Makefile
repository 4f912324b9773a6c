# nubo's build and test entry points. `make test` is what CI runs (.ci/run).

GO        ?= go
# Packages with concurrency run under the race detector too.
RACE_PKGS ?= ./internal/netguard/... ./internal/procgroup/... ./internal/supervisor/... ./internal/engine/... ./internal/console/... ./internal/logs/... ./internal/secrets/... ./internal/cli/... ./internal/mesh/... ./internal/metrics/... ./internal/alerting/... ./internal/slo/... ./internal/k8s/... ./internal/functions/... ./internal/events/... ./internal/broker/... ./sdk/... ./internal/gateway/... ./internal/upstream/... ./internal/h1server/... ./internal/host/... ./internal/mcpserver/... ./internal/serve/... ./internal/audit/... ./internal/eventstore/... ./internal/databases/... ./internal/backup/... ./internal/tracing/...

.PHONY: all build image static test test-deps k8s-control-plane vet fmt-check unit race conformance fuzz-smoke fuzz generate

all: build

# A release-like binary: no local paths, no symbol table or DWARF (the
# Dockerfile builds with the same flags).
BUILD_FLAGS ?= -trimpath -ldflags "-s -w"

build:
	$(GO) build $(BUILD_FLAGS) -o bin/nubo ./cmd/nubo

# image builds the container image `nubo render` names for nubo's own
# components (nubo serve); it needs a container builder (docker or podman).
IMAGE ?= nubo:dev
image:
	docker build -t $(IMAGE) .

# static is the Dockerfile's build stage without a container builder: the
# same static, trimmed build must succeed (CI has no Docker engine).
static:
	CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -o /dev/null ./cmd/nubo

# test installs what the tests need, then runs every check CI runs.
test: test-deps k8s-control-plane vet fmt-check static unit race conformance

test-deps:
	@scripts/install-test-deps

# k8s-control-plane builds the kube-apiserver, etcd, controller-manager,
# scheduler and kwok that internal/k8s and internal/cli test against, from
# tools/k8s (cached in ~/.cache/nubo/k8s-<hash>: minutes once, then seconds).
k8s-control-plane:
	@scripts/k8s-control-plane >/dev/null

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

unit:
	$(GO) test -count=1 ./...

race:
	$(GO) test -count=1 -race $(RACE_PKGS)

# conformance runs the checks that need other projects' code, each in a
# module of its own under tools/ so that it never reaches the nubo binary:
# Knative Serving's admission validation of the rendered Knative Services.
conformance:
	cd tools/knative && $(GO) vet ./... && $(GO) test -count=1 ./...

# fuzz-smoke runs the spec loader's fuzzer and the HTTP/1.1 server loop's
# (differential against net/http's server) briefly; not part of `make test`.
fuzz-smoke:
	$(GO) test ./internal/spec -run XXX -fuzz FuzzParse -fuzztime 60s
	$(GO) test ./internal/h1server -run XXX -fuzz FuzzRequest -fuzztime 60s

# FUZZ_TARGETS lists every fuzz target as package:Name. Their seed corpora
# (f.Add and testdata/fuzz) run in `make test` like any test; `make fuzz`
# runs each for FUZZTIME, one after the other (Go fuzzes one target at a
# time). A crash it finds is written to the package's testdata/fuzz, and
# stays there as a regression test. Not part of `make test`.
FUZZTIME ?= 30s
FUZZ_TARGETS ?= \
	./internal/spec:FuzzParse \
	./internal/urlpath:FuzzClean \
	./internal/gateway:FuzzRouterMatch \
	./internal/gateway:FuzzGatewayPath \
	./internal/gateway:FuzzJWT \
	./internal/cebinding:FuzzValue \
	./internal/cebinding:FuzzStructured \
	./internal/events:FuzzReadEvents \
	./internal/events:FuzzCESQL \
	./internal/events:FuzzJQFilter \
	./internal/mesh:FuzzIngressRoute \
	./internal/h1server:FuzzRequest

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t#*:}; \
		echo "== $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test $$pkg -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME); \
	done

generate:
	$(GO) generate ./...
