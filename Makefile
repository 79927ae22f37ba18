# sovdns build, test and benchmark targets.
GO        ?= go
BIN       ?= bin/sovdns
# The release in configs/VERSION and the commit built (what the binary
# computes itself when the build records VCS information).
VERSION   ?= $(shell v=$$(cat configs/VERSION); r=$$(git rev-parse --short=12 HEAD 2>/dev/null) && { v="$$v+$$r"; git diff --quiet HEAD 2>/dev/null || v="$$v-modified"; }; echo "$$v")
LDFLAGS   := -X github.com/sovdns/sovdns/internal/cli.Version=$(VERSION)

.PHONY: build test test-short lint fuzz-smoke bench bench-go bench-dns bench-resolver bench-resolver-ab bench-resolver-soak bench-update bench-registry bench-hostile run deb clean

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/sovdns

# The full suite: vet (also for 386, whose socket system calls differ),
# formatting, unit and end-to-end tests with the race detector, fuzz seed
# corpora included (they run as ordinary tests).
test: lint
	$(GO) test -race -count=1 -timeout 15m ./...

test-short:
	$(GO) test -short -count=1 ./...

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	GOARCH=386 $(GO) vet ./...

# Each fuzz target for a short while beyond its seed corpus. FuzzParse runs
# longer: the records it catches changing between import and export took
# minutes of search to reach. Minimizing a finding is cut short, so that the
# time goes to the search.
FUZZTIME ?= 20s
PARSE_FUZZTIME ?= 3m
fuzz-smoke:
	$(GO) test ./internal/server -run '^$$' -fuzz '^FuzzRespond$$' -fuzztime $(FUZZTIME)
	$(GO) test ./zonestore -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(PARSE_FUZZTIME) -fuzzminimizetime 10s
	$(GO) test ./resolver -run '^$$' -fuzz '^FuzzImportRecord$$' -fuzztime $(FUZZTIME)
	$(GO) test ./resolver -run '^$$' -fuzz '^FuzzParseReply$$' -fuzztime $(FUZZTIME)
	$(GO) test ./resolver -run '^$$' -fuzz '^FuzzUnpackReply$$' -fuzztime $(FUZZTIME)
	$(GO) test ./resolver -run '^$$' -fuzz '^FuzzAppendQuery$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/wire -run '^$$' -fuzz '^FuzzAppendMsg$$' -fuzztime $(FUZZTIME)
	$(GO) test ./resolver -run '^$$' -fuzz '^FuzzResolveUpstream$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/cachedb -run '^$$' -fuzz '^FuzzDecodeRecord$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/cachedb -run '^$$' -fuzz '^FuzzLogChanges$$' -fuzztime $(FUZZTIME)

# Go benchmarks, then dnsperf: the authoritative server beside NSD, the
# resolver's warm cache beside Unbound; then dynamic UPDATE beside Knot DNS;
# then registry scale (many small zones, catalog to Knot); then hostile
# upstream servers beside Unbound (NXNS, malformed answers).
bench: bench-go bench-dns bench-resolver bench-update bench-registry bench-hostile

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./zone ./authoritative ./internal/server ./internal/cli ./zonestore ./resolver ./internal/wire
	$(GO) test -run '^$$' -bench Sign100k -benchtime 2x ./dnssec
	# The cache file's writer beside a waiting goroutine, on one CPU.
	taskset -c 0 $(GO) test -run '^$$' -bench WriteBehindLateness -benchtime 5x ./internal/cachedb

bench-dns: build
	bench/dnsperf.sh

bench-resolver: build
	bench/resolver.sh

# Two builds' CPU per cache miss, measured at the same time on one CPU
# (A=path B=path): for changes smaller than the host's noise between runs.
bench-resolver-ab:
	bench/resolver-ab.sh

# The resolver's resident memory over an hour of new names beside Unbound's
# (MINUTES, RATE): not part of bench, for its length.
bench-resolver-soak: build
	bench/resolver-soak.sh

bench-update: build
	bench/update.sh
	SIGNED=1 bench/update.sh

bench-registry: build
	bench/registry.sh

bench-hostile: build
	BIN=$(BIN) bench/hostile.sh

run: build
	$(BIN) serve

# The Debian package, $(DIST)/sovdns_VERSION_ARCH.deb, for DEB_GOARCH: the
# binary built as by build, but static (CGO_ENABLED=0), the man pages and
# completions of packaging/gen, and the package made by nfpm as a library
# (packaging/deb, a module of its own: the server's dependencies do not
# change). Dated from the last commit, for reproducible packages.
DIST       ?= dist
DEB_GOARCH ?= $(shell $(GO) env GOARCH)
DEB_BUILD  := $(DIST)/build
deb: export SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
deb:
	rm -rf $(DEB_BUILD)
	mkdir -p $(DEB_BUILD)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(DEB_GOARCH) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DEB_BUILD)/sovdns ./cmd/sovdns
	$(GO) run ./packaging/gen -out $(DEB_BUILD) -version '$(VERSION)'
	$(GO) -C packaging/deb run . -src $(CURDIR) -build $(abspath $(DEB_BUILD)) -goarch $(DEB_GOARCH) -out $(abspath $(DIST))

clean:
	rm -rf bin sovdns-data dist
