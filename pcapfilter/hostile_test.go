package pcapfilter_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/headlessbpf/bpfmatch/pcapfilter"
)

// TestCompileHostile compiles huge and deeply nested expressions: each
// gets a program or an error, within generous bounds of time and of
// memory per byte of expression (the package doc's promise: linear).
func TestCompileHostile(t *testing.T) {
	if testing.Short() {
		t.Skip("huge expressions take seconds under -short's budget")
	}
	hosts := make([]string, 50000)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("host 10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	}
	tests := []struct {
		name    string
		expr    string
		wantErr bool
	}{
		{"50,000 or-ed hosts", strings.Join(hosts, " or "), false},
		{"5,000 and-ed ports", strings.Repeat("port 80 and ", 5000) + "ip", false},
		{"100,000 nested parentheses", strings.Repeat("(", 100000) + "ip" + strings.Repeat(")", 100000), true},
		{"100,000 nots", strings.Repeat("not ", 100000) + "ip", true},
		{"nesting at the limit", strings.Repeat("(", pcapfilter.MaxDepth) + "ip" + strings.Repeat(")", pcapfilter.MaxDepth), false},
		{"over 1 MB", strings.Repeat("tcp port 80 or ", pcapfilter.MaxExprLen/15) + "ip", true},
		{"100,000 additions", "len = " + strings.Repeat("1 + ", 100000) + "1", false},
		{"30,000 loads", "len = " + strings.Repeat("ip[0] + ", 30000) + "1", false},
		{"a 1 MB name", "host " + strings.Repeat("a", pcapfilter.MaxExprLen-5), true},
		{"vlan chain", strings.Repeat("vlan and ", 2000) + "ip", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			prog, err := pcapfilter.Compile(tt.expr, pcapfilter.Options{})
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d bytes: %d instructions, error %v; %v, %d MB allocated", len(tt.expr), len(prog), err, took, alloc>>20)
			if (err != nil) != tt.wantErr {
				t.Errorf("error %v, want an error: %v", err, tt.wantErr)
			}
			if err != nil {
				if _, ok := err.(*pcapfilter.Error); !ok {
					t.Errorf("the error is a %T, not a *pcapfilter.Error", err)
				}
				if len(err.Error()) > 500 {
					t.Errorf("the error's message is %d bytes long", len(err.Error()))
				}
			}
			if took > 60*time.Second {
				t.Errorf("took %v", took)
			}
			if perByte := alloc / uint64(len(tt.expr)); perByte > 1000 {
				t.Errorf("allocated %d bytes per byte of expression", perByte)
			}
		})
	}
}
