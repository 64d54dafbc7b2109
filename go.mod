module github.com/headlessbpf/bpfmatch

go 1.24.0

require (
	github.com/google/gopacket v1.1.19
	golang.org/x/net v0.50.0
)

require golang.org/x/sys v0.41.0
