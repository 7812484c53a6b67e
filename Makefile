# The two commands that matter: `make run` (the function locally, with an
# embedded CAR emulator, no credentials) and `make test`.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -buildid= -X main.version=$(VERSION)
FUZZTIME ?= 10s
URL      ?=
SMOKE_FLAGS ?=
TESTPKGS ?= ./...
# make deploy / make remove: from make's arguments or the environment.
DIST     ?= dist
ZIP      ?=
STAGE    ?=
VARIANT  ?=
DRY_RUN  ?=
SMOKE    ?= 1
CONFIRM  ?=
DEPLOY_FILE = $(if $(VARIANT),docs/deploy/$(VARIANT)/serverless.yml,serverless.yml)
DEPLOY_ARGS = -file $(DEPLOY_FILE) $(if $(STAGE),-stage $(STAGE))
DEPLOY_ZIP  = $(if $(ZIP),$(ZIP),$(DIST)/function.zip)
yes = $(filter 1 true yes,$(1))

# A VARIANT without a file stops make before anything is built.
ifneq ($(filter deploy deploy-local remove,$(MAKECMDGOALS)),)
ifneq ($(VARIANT),)
ifeq ($(wildcard docs/deploy/$(VARIANT)/serverless.yml),)
$(error VARIANT=$(VARIANT): there is no docs/deploy/$(VARIANT)/serverless.yml; the variants are: $(notdir $(patsubst %/serverless.yml,%,$(wildcard docs/deploy/*/serverless.yml))) (leave VARIANT unset for serverless.yml))
endif
endif
endif

.PHONY: run jwt test build package deploy deploy-local remove smoke fuzz bench loadtest screenshot clean

run: ## serve the function on 127.0.0.1:9000 with the embedded CAR emulator; make run PORT=9001 for another port (the shell's PORT is not read)
	@echo "make run: building… (the first run compiles for a minute or so; later runs start at once)"
	@$(GO) run ./function -dev $(if $(filter command line,$(origin PORT)),-listen 127.0.0.1:$(PORT))

jwt: ## a JWT for trying AUTH_MODE=jwt locally: make jwt USER=alice [TTL=2h]; signs with JWT_SECRET from the shell (dev only: not in the deployed binary)
	@test "$(origin USER)" = "command line" || { echo "usage: make jwt USER=alice [TTL=2h] (the shell's USER is not read)"; exit 2; }
	@$(GO) run ./internal/cmd/jwt -user "$(USER)" $(if $(TTL),-ttl $(TTL))

test: ## vet, format check, and every test with the race detector (without it, said so, when cgo is unavailable)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	@command -v $${CHROMIUM:-chromium} >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  echo "make test: SKIPPING the browser tests (internal/dev/console): chromium is not on PATH (apt-get install -y chromium, or set CHROMIUM)"
	@if command -v redis-server >/dev/null 2>&1; then echo "make test: the waiting-line suites use a real redis-server ($$(command -v redis-server))"; \
	  else echo "make test: redis-server is not on PATH: the waiting-line suites use the embedded store (miniredis) instead (apt-get install -y redis-server for the real one)"; fi
	@if [ "$$($(GO) env CGO_ENABLED)" = 1 ]; then race=-race; else race=; \
	  echo "make test: running WITHOUT the race detector: cgo is unavailable (-race needs a C compiler: apt-get install -y gcc, or set CC)"; fi; \
	  echo "$(GO) test $$race -count=1 $(TESTPKGS)"; $(GO) test $$race -count=1 $(TESTPKGS)

build: ## static linux/amd64 binary for SCF, without dev mode (-tags scf; CGO off here only: -race needs cgo); DIST=dir instead of dist
	mkdir -p $(DIST)
	GOOS=linux GOARCH=amd64 CGO_ENABLED=0 $(GO) build -tags scf -trimpath -buildvcs=false -ldflags='$(LDFLAGS)' -o $(DIST)/main ./function

package: build ## dist/function/ (staged) and dist/function.zip, byte-for-byte reproducible
	$(GO) run ./internal/cmd/pack -bin $(DIST)/main -bootstrap function/scf_bootstrap -dir $(DIST)/function -zip $(DIST)/function.zip

deploy: $(if $(ZIP),,package) ## create or update the function, its Function URL and timer through the SCF API; STAGE=prod VARIANT=apigw|web DRY_RUN=1 SMOKE=0 ZIP=built.zip
	@mkdir -p $(DIST) && rm -f $(DIST)/function-url
	$(GO) run ./internal/cmd/deploy $(DEPLOY_ARGS) -zip $(DEPLOY_ZIP) -url-file $(DIST)/function-url $(if $(call yes,$(DRY_RUN)),-dry-run)
	@if [ -z "$(call yes,$(DRY_RUN))" ] && [ "$(SMOKE)" != 0 ]; then \
	  url=$$(cat $(DIST)/function-url 2>/dev/null); \
	  if [ -n "$$url" ]; then $(MAKE) --no-print-directory smoke URL="$$url"; \
	  else echo "no Function URL to smoke-test (API Gateway variant: make smoke URL=https://…)"; fi; fi

deploy-local: $(if $(ZIP),,package) ## rehearse make deploy against a local SCF API emulator: no Tencent account, nothing leaves the machine
	$(GO) run ./internal/cmd/deploy -local $(DEPLOY_ARGS) -zip $(DEPLOY_ZIP)

remove: ## delete the Function URL and the function (STAGE, VARIANT as deployed); needs CONFIRM=1
	$(GO) run ./internal/cmd/deploy -remove $(DEPLOY_ARGS) $(if $(call yes,$(CONFIRM)),-confirm)

smoke: ## post-deploy check against a deployed function: make smoke URL=https://…
	@test -n "$(URL)" || { echo "usage: make smoke URL=https://your-function-url"; exit 2; }
	@# not echoed: SMOKE_FLAGS may hold a ClientSession or a token (the command prints what it sends, masked)
	@$(GO) run ./internal/cmd/smoke -url "$(URL)" $(SMOKE_FLAGS)

fuzz: ## every fuzz target for FUZZTIME each; reports every failure at the end
	GO=$(GO) FUZZTIME=$(FUZZTIME) .ci/fuzz

bench: ## Go benchmarks (per-request overhead, cold start, size, RSS); see docs/performance.md
	$(GO) test -run '^$$' -bench . -benchmem ./...

loadtest: ## many simulated users against the function + emulator, invariants checked; then the launch scenario (the waiting line), plain and hostile; then the lease scenario (SESSION_MAX)
	$(GO) run ./internal/cmd/loadtest
	$(GO) run ./internal/cmd/loadtest -launch
	$(GO) run ./internal/cmd/loadtest -launch -hostile
	$(GO) run ./internal/cmd/loadtest -lease

screenshot: ## docs/console.png: the dev console in a real headless Chromium (needs chromium)
	$(GO) run ./internal/cmd/screenshot -out docs/console.png

clean:
	rm -rf $(DIST)
