# medsettle — see README.md.
GO ?= go
BIN := bin/medsettle

.PHONY: all build test demo bench fuzz vet clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/medsettle

# The whole test suite: unit, golden, property and integration tests (the
# integration tests start a throwaway PostgreSQL, or use $$DATABASE_URL), and
# the integrators' module adapters/fsi, which ./... of this module leaves out.
test:
	$(GO) vet ./...
	cd adapters/fsi && $(GO) vet ./... && $(GO) test -count=1 ./...
	$(GO) test -count=1 -timeout 30m ./...

demo: build
	./scripts/demo.sh

bench: build
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1 ./rules/

# Each fuzz target for a short while (CI runs only their seed corpora, in `make test`).
FUZZTIME ?= 30s
fuzz:
	for t in FuzzDecodeRequest FuzzLoadRegion FuzzLoadCatalog FuzzParseMoney; do \
		$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) ./rules/ || exit 1; done
	for t in FuzzEnvelope FuzzInputs FuzzHelpers; do \
		$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) ./adapters/httpapi/ || exit 1; done
	cd adapters/fsi && for t in FuzzParseMoney FuzzMoneyJSON FuzzRatioJSON FuzzText FuzzDecodeAnswer FuzzCheckMsgid; do \
		$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) . || exit 1; done
	cd adapters/fsi && $(GO) test -run '^$$' -fuzz '^FuzzAnswer$$' -fuzztime $(FUZZTIME) ./client/

vet:
	$(GO) vet ./...
	cd adapters/fsi && $(GO) vet ./...

clean:
	rm -rf bin
