# Fallacies — make targets. `make help` lists them.

GO        ?= go
BIN       := bin/fallacies
NAME      ?= latency
TOPOLOGY  ?=
TARGET    ?=
RUNFLAGS  ?=
PKGS      := ./...
GHZ       := bin/ghz
GHZ_VERSION := v0.121.0
GRPCURL_VERSION := v1.9.3
UP_FLAGS  ?=
BENCHFLAGS ?=

# Compose: `docker compose` (v2) when installed, else `docker-compose` (v1).
COMPOSE   ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
PROJECT   ?= fallacies
DOCKERCTX := build/docker
JAEGER    ?=
TOXIPROXY_VERSION := $(patsubst v%,%,$(shell awk '$$1=="github.com/Shopify/toxiproxy/v2"{print $$2}' go.mod))
NATS_VERSION      := $(patsubst v%,%,$(shell awk '$$1=="github.com/nats-io/nats-server/v2"{print $$2}' go.mod))
export TOXIPROXY_VERSION NATS_VERSION
STATIC    := CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w'

.PHONY: tools bench soak explore help build test test-short test-compose vet experiment catalogue up up-embedded down images proto fuzz clean console-screenshots

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-12s %s\n", $$1, $$2}'

build: ## build bin/fallacies
	@mkdir -p bin
	$(GO) build -o $(BIN) ./cmd/fallacies

test: ## run the whole test suite with the race detector (what CI runs; includes the compose test where Docker answers)
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

test-short: ## quick tests only (skips the long accuracy and end-to-end runs)
	$(GO) test -short -count=1 $(PKGS)

experiment: build $(if $(filter compose,$(TOPOLOGY)),images) ## run experiments/$(NAME).yaml (TOPOLOGY=processes, TARGET=endpoints.json optional)
	$(BIN) run $(if $(TOPOLOGY),--topology $(TOPOLOGY)) $(if $(TARGET),--target $(TARGET)) $(RUNFLAGS) experiments/$(NAME).yaml

catalogue: build ## run every experiment of the catalogue as one suite (RUNFLAGS="--parallel 2": two at a time; docs/ci.md)
	$(BIN) run $(if $(TOPOLOGY),--topology $(TOPOLOGY)) $(RUNFLAGS) experiments/

bench: build $(GHZ) ## measure the testbed itself, write BENCHMARKS.md, fail when a target is missed (about 30 min; BENCHFLAGS="--only proxy,load --reps 5")
	@compose=; if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory images || exit 1; compose=--compose; \
	  else echo "bench: Docker does not answer: the compose start-up is not measured"; fi; \
	  $(BIN) bench --check --ghz $(GHZ) $$compose $(BENCHFLAGS)

tools: bin/toxiproxy-cli bin/grpcurl $(GHZ) ## install pinned toxiproxy-cli, grpcurl and ghz into bin/ (from the Go module proxy)

# toxiproxy-cli at the Toxiproxy version of go.mod; go install names it cli.
bin/toxiproxy-cli:
	@mkdir -p bin build/tools
	GOBIN=$(abspath build/tools) $(GO) install github.com/Shopify/toxiproxy/v2/cmd/cli@v$(TOXIPROXY_VERSION)
	mv build/tools/cli $@

bin/grpcurl:
	@mkdir -p bin
	GOBIN=$(abspath bin) $(GO) install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

# ghz cross-checks the load generator; pinned, since @latest resolves to an old release.
$(GHZ):
	@mkdir -p bin
	GOBIN=$(abspath bin) $(GO) install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)

explore: build ## search for the faults the system does not tolerate (EXPLORE_BUDGET=10m, EXPLOREFLAGS=...); findings in explore/findings/
	$(BIN) explore --budget $(or $(EXPLORE_BUDGET),10m) --out explore $(EXPLOREFLAGS)

soak: build ## resilient variants of the catalogue in a loop at 2x load (SOAK_DURATION=10m); fails on leaks or lost events
	SOAK_DURATION=$(or $(SOAK_DURATION),10m) $(BIN) soak experiments/

up-embedded: build ## start the system under test on loopback until Ctrl-C (endpoints in endpoints.json; UP_FLAGS="--toxiproxy-api 127.0.0.1:18474")
	$(BIN) up --endpoints-file endpoints.json $(if $(TOPOLOGY),--topology $(TOPOLOGY)) $(UP_FLAGS)

console-screenshots: ## retake the screenshots of docs/console.md with the console's browser test (needs chromium)
	FALLACIES_CONSOLE_SCREENSHOTS=$(CURDIR)/docs/console go test -count=1 -run '^TestConsoleInBrowser$$' -v ./cmd/fallacies

# fallacies/toxiproxy-guarded runs `fallacies serve toxiproxy` (Toxiproxy of go.mod as
# a library, its API behind the cross-site guard); fallacies/nats runs
# nats-server built at the version of go.mod.
images: ## build the container images FROM scratch from static binaries (no registry needed)
	@mkdir -p $(DOCKERCTX)/bin $(DOCKERCTX)/cache
	$(STATIC) -o $(DOCKERCTX)/bin/fallacies ./cmd/fallacies
	@$(MAKE) --no-print-directory $(DOCKERCTX)/cache/nats-server-$(NATS_VERSION)
	@rm -f $(DOCKERCTX)/bin/toxiproxy-server
	@cmp -s $(DOCKERCTX)/cache/nats-server-$(NATS_VERSION) $(DOCKERCTX)/bin/nats-server || cp $(DOCKERCTX)/cache/nats-server-$(NATS_VERSION) $(DOCKERCTX)/bin/nats-server
	docker build -q -f docker/fallacies.Dockerfile -t fallacies/fallacies:dev $(DOCKERCTX)
	docker build -q -f docker/toxiproxy.Dockerfile -t fallacies/toxiproxy-guarded:$(TOXIPROXY_VERSION) $(DOCKERCTX)
	docker build -q -f docker/nats.Dockerfile -t fallacies/nats:$(NATS_VERSION) $(DOCKERCTX)
	@docker image prune -f --filter label=org.fallacies.image >/dev/null

$(DOCKERCTX)/cache/nats-server-%:
	$(STATIC) -o $@ github.com/nats-io/nats-server/v2

up: build images ## start the compose stack (JAEGER=1 adds Jaeger; endpoints in endpoints.compose.json)
	$(if $(JAEGER),FALLACIES_OTLP_ENDPOINT=http://jaeger:4317) $(COMPOSE) -p $(PROJECT) $(if $(JAEGER),--profile jaeger) up -d --remove-orphans
	$(BIN) compose-wait --project $(PROJECT) --endpoints-file endpoints.compose.json $(if $(JAEGER),--jaeger-ui http://127.0.0.1:16686)

test-compose: ## the compose smoke test: builds the images, runs experiments in containers (needs Docker)
	$(GO) test -count=1 -timeout 15m -run 'TestCompose' -v ./topology/

down: ## remove the compose stack: containers, network and volumes
	$(COMPOSE) -p $(PROJECT) --profile jaeger down -v --remove-orphans

proto: ## regenerate services/api from the .proto files (needs protoc: apt-get install protobuf-compiler)
	@command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler"; exit 2; }
	@mkdir -p bin
	$(GO) build -o bin/ google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc
	cd services/api && $(GO) generate ./...

fuzz: ## fuzz the experiment loader and the hypothesis parser for 30 s each
	$(GO) test -run='^$$' -fuzz=FuzzParse$$ -fuzztime=30s ./experiments/definition
	$(GO) test -run='^$$' -fuzz=FuzzParseExpr -fuzztime=30s ./experiments/check

clean: ## remove build output and reports
	rm -rf bin reports build
