# ringwire: the two commands a newcomer needs are `make demo` and `make test`.
GO            ?= go
GOLANGCI_LINT ?= github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
BENCHSTAT     ?= golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
# The library is the root module. bench/ is a nested module with a replace to
# the root: the benchmark program behind demo and bench (cmd/ringbench, with
# gnet and the chart), the giouring reference (giouringref) and the pion/rtp
# interop tests (rtpinterop), so that the library's go.mod lists none of them.
BENCH_DIR     = bench
# giouring links only with this flag on Go >= 1.23 (its go:linkname to syscall.munmap);
# it is confined to files behind the giouring build tag, in $(BENCH_DIR)/giouringref.
GIOURING_FLAGS = -tags giouring -ldflags=-checklinkname=0
TESTFLAGS     ?= -race -shuffle=on -timeout 15m

.PHONY: build test test-giouring bench bench-giouring fuzz lint demo tidy-check

build:
	$(GO) build ./...
	GOOS=darwin $(GO) build ./...
	cd $(BENCH_DIR) && $(GO) build ./... && GOOS=darwin $(GO) build ./...

test: build tidy-check
	$(GO) vet ./...
	cd $(BENCH_DIR) && $(GO) vet ./...
	RINGWIRE_STRICT=1 $(GO) test $(TESTFLAGS) ./...
	cd $(BENCH_DIR) && RINGWIRE_STRICT=1 $(GO) test $(TESTFLAGS) ./...

test-giouring:
	cd $(BENCH_DIR) && $(GO) vet $(GIOURING_FLAGS) ./giouringref/
	cd $(BENCH_DIR) && RINGWIRE_STRICT=1 $(GO) test $(GIOURING_FLAGS) -run 'Giouring' -count=1 ./giouringref/

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./... | tee bench.txt
	cd $(BENCH_DIR) && $(GO) test -run '^$$' -bench . -benchmem -count 5 ./... | tee -a $(CURDIR)/bench.txt
	cd $(BENCH_DIR) && $(GO) run ./cmd/ringbench -preset full -pin -png $(CURDIR)/ringbench-full.png -out $(CURDIR)/ringbench-full.md

bench-giouring:
	cd $(BENCH_DIR) && $(GO) test $(GIOURING_FLAGS) -run '^$$' -bench 'Nop' -benchmem -count 6 ./giouringref/ | tee $(CURDIR)/bench-giouring.txt
	$(GO) run $(BENCHSTAT) -col /impl bench-giouring.txt

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseRecvmsgOut -fuzztime 20s ./ring/

lint:
	$(GO) run $(GOLANGCI_LINT) run ./...
	cd $(BENCH_DIR) && $(GO) run $(GOLANGCI_LINT) run --config $(CURDIR)/.golangci.yml ./...

tidy-check:
	$(GO) mod tidy -diff
	cd $(BENCH_DIR) && $(GO) mod tidy -diff

# About a minute: the most telling echo rows and an RTP relay row, every mode interleaved.
demo:
	cd $(BENCH_DIR) && $(GO) run ./cmd/ringbench -preset demo -pin -png $(CURDIR)/ringbench-demo.png -out $(CURDIR)/ringbench-demo.md
