# Tasks for github.com/mcp-go-contrib/descope. `make test` is what CI runs.

GO ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: test lint run bench build

## test: vet, then every test with the race detector
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

## lint: formatting, vet and staticcheck
lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

## build: compile everything, including the example server
build:
	$(GO) build ./...

## run: start the example server (dev mode when no DESCOPE_* variable is set)
run:
	$(GO) run ./example

## bench: benchmarks, each with its baseline in the same run
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
