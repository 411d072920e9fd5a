# ringwire: the two commands a newcomer needs are `make demo` and `make test`.
GO            ?= go
GOLANGCI_LINT ?= github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
BENCHSTAT     ?= golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
# giouring links only with this flag on Go >= 1.23 (its go:linkname to syscall.munmap);
# it is confined to files behind the giouring build tag.
GIOURING_FLAGS = -tags giouring -ldflags=-checklinkname=0
TESTFLAGS     ?= -race -shuffle=on -timeout 15m

.PHONY: build test test-giouring test-kernels bench bench-giouring fuzz lint demo tidy-check

build:
	$(GO) build ./...
	GOOS=darwin $(GO) build ./...

test: build
	$(GO) mod tidy -diff
	$(GO) vet ./...
	RINGWIRE_STRICT=1 $(GO) test $(TESTFLAGS) ./...

test-giouring:
	$(GO) vet $(GIOURING_FLAGS) ./ring/...
	RINGWIRE_STRICT=1 $(GO) test $(GIOURING_FLAGS) -run 'Giouring' -count=1 ./ring/...

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
	$(GO) run ./cmd/ringbench -preset full -pin -png ringbench-full.png -out ringbench-full.md

bench-giouring:
	$(GO) test $(GIOURING_FLAGS) -run '^$$' -bench 'Nop' -benchmem -count 6 ./ring/ | tee bench-giouring.txt
	$(GO) run $(BENCHSTAT) -col /impl bench-giouring.txt

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseRecvmsgOut -fuzztime 20s ./ring/

lint:
	$(GO) run $(GOLANGCI_LINT) run ./...

tidy-check:
	$(GO) mod tidy -diff

# About a minute: the most telling echo rows and an RTP relay row, every mode interleaved.
demo:
	$(GO) run ./cmd/ringbench -preset demo -pin -png ringbench-demo.png -out ringbench-demo.md
