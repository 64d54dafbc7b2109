# The two commands of the README: `make demo` and `make test`.
#
# `make demo` needs nothing but Go: it builds without cgo, as a static
# binary would be built, and compiles with the Go compiler.
# `make test` installs what the comparisons with libpcap need (libpcap-dev
# for cgo, tcpdump for a second opinion) when it is missing, on Debian or
# Ubuntu, as root or with sudo, and runs the tests with the build tag
# libpcap, then again without cgo, then builds for every platform.

GO ?= go
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

# The platforms `make cross` builds and vets for, without cgo.
PLATFORMS := linux/amd64 linux/386 linux/arm64 linux/arm linux/mipsle \
	darwin/amd64 darwin/arm64 windows/amd64 freebsd/amd64 js/wasm wasip1/wasm

.PHONY: demo test deps lint equivalence cross test386

deps:
	@if [ ! -f /usr/include/pcap.h ] || ! command -v tcpdump >/dev/null 2>&1; then \
		echo "installing libpcap-dev and tcpdump"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq libpcap-dev tcpdump >/dev/null; \
	fi

demo:
	CGO_ENABLED=0 $(GO) run ./cmd/bpfmatch -src 10.1.2.3:40000 -dst 192.0.2.21:21 -payload 'USER anonymous' \
		'tcp dst port 21 and src net 10.0.0.0/8'

lint:
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt would change the files above"; exit 1; }
	$(GO) vet -tags libpcap ./...
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) vet ./...
	$(STATICCHECK) -tags libpcap ./...
	CGO_ENABLED=0 $(STATICCHECK) ./...

# Test runs print each package's result, the output of failed tests, and
# every skipped test with its reason (internal/cmd/testsummary).
SUMMARY := $(GO) run ./internal/cmd/testsummary

test: deps lint
	$(GO) test -json -race -tags libpcap -count=1 ./... | $(SUMMARY)
	@$(MAKE) --no-print-directory equivalence
	CGO_ENABLED=0 $(GO) test -json -count=1 ./... | $(SUMMARY)
	@$(MAKE) --no-print-directory cross test386
	$(GO) test -tags libpcap -run '^$$' -bench . -benchtime 1x ./...

# The differential tests again (against libpcap, tcpdump, the whole program
# or user-space matching), showing how many comparisons they made.
equivalence:
	@out=$$($(GO) test -tags libpcap -count=1 -v -run 'Differential|FlowEqualsMatch|FlowResidualCorpus|FlowResidualPrograms|ShapeCorpus|OptimiserKeepsVerdicts|KernelFilterCorpus|KernelFilterLoopback|StoredPrograms|ReadCountsMatchTcpdump|ReadDamagedCapturesAsTcpdump|ReadWriteAsTcpdump|ImageEqualsLibpcap|CompileNoLeak' ./... 2>&1); code=$$?; \
		echo "$$out" | grep -E 'comparisons|compared|differ|datagrams|segments|flows \(|^(--- FAIL|ok|FAIL|panic)'; exit $$code

# Every package and its tests build and vet on every platform, without cgo.
cross:
	@for p in $(PLATFORMS); do \
		echo "cross: $$p"; \
		CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build ./... && \
		CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) vet ./... || exit 1; \
	done

# The tests run on a 32-bit platform too, where int is 32 bits.
test386:
	CGO_ENABLED=0 GOARCH=386 $(GO) test -json -count=1 -short ./... | $(SUMMARY)
