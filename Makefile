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

.PHONY: build test test-giouring test-kernels bench bench-giouring fuzz lint demo tidy-check interop bench-interop

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

# The test binaries (static, CGO_ENABLED=0) booted under QEMU on Debian's newest 6.1 and 6.12
# cloud kernels and any image in KERNELS (e.g. KERNELS=/path/to/bzImage), each with io_uring on,
# with kernel.io_uring_disabled=2 (6.6+) and under Docker's EPERM seccomp filter; one table of
# kernel x mode x package. Needs qemu-system-x86 (apt-get install qemu-system-x86), apt-get and
# dpkg-deb; kernels are cached in ~/.cache/ringwire-kernels, never installed. 15-30 minutes under
# TCG; KERNELMATRIX_FLAGS="-series 6.1 -modes on,seccomp" is what CI runs.
KERNELMATRIX_FLAGS ?=
test-kernels:
	nice -n 10 $(GO) run ./internal/kernelmatrix $(KERNELMATRIX_FLAGS)

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
	cd interop && $(GO) run $(GOLANGCI_LINT) run --config $(CURDIR)/.golangci.yml ./...

tidy-check:
	$(GO) mod tidy -diff
	cd $(BENCH_DIR) && $(GO) mod tidy -diff
	cd interop && $(GO) mod tidy -diff

# About a minute: the most telling echo rows and an RTP relay row, every mode interleaved.
demo:
	cd $(BENCH_DIR) && $(GO) run ./cmd/ringbench -preset demo -pin -png $(CURDIR)/ringbench-demo.png -out $(CURDIR)/ringbench-demo.md

# The interop suite: the nested module interop/ runs net/http, TLS, HTTP/2, gRPC, quic-go,
# x/net/ipv4, an io.Copy proxy, SIGTERM restarts, curl and h2load over netio beside package
# net (about 4 minutes on 2 cores). `make test` does not reach it: ./... stops at its go.mod.
interop:
	cd interop && RINGWIRE_STRICT=1 $(GO) test -race -count=1 -timeout 15m ./...

# The interop benchmarks, netio and package net interleaved in each run, then their table
# (ratios are netio/net). Servers and load generators run as pinned child processes.
bench-interop:
	cd interop && bash -o pipefail -c "$(GO) test -run '^$$' -bench 'UDPWriteTo' -benchtime 2s -count 1 ./... | tee ../bench-interop.txt"
	cd interop && bash -o pipefail -c "$(GO) test -run '^$$' -bench 'QUICBulk|ProxyCPU|HTTP|GRPC' -benchtime 3x -count 1 -timeout 30m ./... | tee -a ../bench-interop.txt"
	cd interop && $(GO) run ./cmd/benchtable < ../bench-interop.txt
