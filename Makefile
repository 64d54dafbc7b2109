# The two commands of the README: `make demo` and `make test`. Both install
# what the build needs (libpcap-dev for cgo, tcpdump for the tests' second
# opinion) when it is missing, on Debian or Ubuntu, as root or with sudo.

GO ?= go
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test deps lint equivalence

deps:
	@if [ ! -f /usr/include/pcap.h ] || ! command -v tcpdump >/dev/null 2>&1; then \
		echo "installing libpcap-dev and tcpdump"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq libpcap-dev tcpdump >/dev/null; \
	fi

demo: deps
	$(GO) run ./cmd/bpfmatch -src 10.1.2.3:40000 -dst 192.0.2.21:21 -payload 'USER anonymous' \
		'tcp dst port 21 and src net 10.0.0.0/8'

lint:
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt would change the files above"; exit 1; }
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

test: deps lint
	$(GO) test -race -count=1 ./...
	@$(MAKE) --no-print-directory equivalence
	CGO_ENABLED=0 $(GO) test -count=1 ./...
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

# The differential tests again, showing how many comparisons with libpcap
# and tcpdump they made.
equivalence:
	@out=$$($(GO) test -count=1 -v -run 'Differential|FlowEqualsMatch|StoredPrograms|ReadCountsMatchTcpdump' ./... 2>&1); code=$$?; \
		echo "$$out" | grep -E 'comparisons|compared|^(--- FAIL|ok|FAIL|panic)'; exit $$code
