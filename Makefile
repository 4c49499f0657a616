# Tasks for github.com/mcp-go-contrib/descope. `make test` is what CI runs.

GO ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

FUZZTIME ?= 30s
SOAK_DURATION ?= 60s

.PHONY: test lint run bench build fuzz fuzz-brief soak

## test: vet, then every test with the race detector, then the end-to-end
## tests with real MCP clients (their own module; the TypeScript client
## needs node and npm, and installs its pinned SDK with npm ci)
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	cd e2e && $(GO) vet ./... && $(GO) test -race -count=1 ./...
	$(MAKE) fuzz-brief

## lint: formatting, vet and staticcheck
lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cd e2e && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...

## build: compile everything, including the example server
build:
	$(GO) build ./...

## run: start the example server (dev mode when no Descope project is configured)
run:
	$(GO) run ./example

## bench: benchmarks, each with its baseline in the same run
##   micro: verification (raw RSA, plain jwt/v5, ours cold and hot), middleware vs bare handler,
##          a DPoP request (ES256 proof) beside a bearer one; proofs beside a plain ECDSA check
##   load:  a protected mcp-go server vs the same server unprotected, on loopback
##   operator load: the same as their own processes, 32 MCP sessions per era, hot and cold
##          tokens, server CPU per call from /proc (Linux; about 2 minutes)
##   memory: 1,000,000 invalid tokens and 100,000 valid ones against the cache bound
bench:
	$(GO) test -run '^$$' -bench 'BenchmarkVerify|BenchmarkMiddleware|BenchmarkPolicyHooks|BenchmarkSessionUsable' -benchmem -count 5 ./auth/ ./auth/descope/
	$(GO) test -run '^$$' -bench 'BenchmarkVerifyProof' -benchmem -benchtime 2000x -count 3 ./auth/dpop/
	$(GO) test -run '^$$' -bench 'BenchmarkLoad' -benchtime 24000x -count 3 ./auth/descope/
	cd e2e && $(GO) test -run '^$$' -bench '^BenchmarkOperatorLoad$$' -benchtime 1x -timeout 10m .
	$(GO) test -run '^$$' -bench 'BenchmarkMemory' -benchtime 1x ./auth/descope/

## fuzz: each fuzz target for FUZZTIME (default 30s); seeds live in testdata/fuzz
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzBearerToken$$' -fuzztime $(FUZZTIME) ./auth/
	$(GO) test -run '^$$' -fuzz '^FuzzScanMessage$$' -fuzztime $(FUZZTIME) ./auth/
	$(GO) test -run '^$$' -fuzz '^FuzzVerifyToken$$' -fuzztime $(FUZZTIME) ./auth/descope/
	$(GO) test -run '^$$' -fuzz '^FuzzVerifyProof$$' -fuzztime $(FUZZTIME) ./auth/dpop/

## fuzz-brief: 5s of each fuzz target, as CI runs them. A failure that
## leaves no new crasher under testdata/fuzz is the fuzzing engine's own
## hiccup, not a finding, and gets one more try.
fuzz-brief:
	@for t in 'FuzzBearerToken ./auth/' 'FuzzScanMessage ./auth/' 'FuzzVerifyToken ./auth/descope/' 'FuzzVerifyProof ./auth/dpop/'; do \
	  set -- $$t; \
	  for try in 1 2; do \
	    if $(GO) test -run '^$$' -fuzz "^$$1$$" -fuzztime 5s $$2; then break; fi; \
	    if [ -n "$$(git status --porcelain -- '*/testdata/fuzz/*')" ] || [ $$try = 2 ]; then exit 1; fi; \
	    echo "fuzz-brief: $$1 failed without a crasher; trying once more"; \
	  done; \
	done

## soak: a protected server under mixed load while keys rotate and Descope goes down and back
soak:
	SOAK_DURATION=$(SOAK_DURATION) $(GO) test -run '^TestSoak$$' -count=1 -timeout 0 -v ./auth/descope/
