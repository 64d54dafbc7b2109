package pcapfilter

import (
	"strings"
	"testing"
)

// TestLayoutLongJumps checks that conditional jumps farther than 255
// instructions go through trampolines, and land where they should.
func TestLayoutLongJumps(t *testing.T) {
	for _, n := range []int{1, 100, 254, 255, 256, 300, 1000} {
		g := &gen{expr: "test", snap: 100}
		c := g.eq(abs(0), 1, 1)
		for i := 0; i < n; i++ {
			c = or(c, g.eq(abs(uint32(i)), 1, uint32(i)))
		}
		accept := g.newBlock(blockRet, nil)
		accept.k = 100
		reject := g.newBlock(blockRet, nil)
		patch(c.t, accept)
		patch(c.f, reject)
		prog, err := g.layout(c.entry)
		if err != nil {
			t.Fatalf("%d terms: %v", n, err)
		}
		// Follow every path: each test's true edge must reach "ret 100".
		for i, in := range prog {
			if in.Op != opJeq {
				continue
			}
			pc := i + 1 + int(in.Jt)
			for prog[pc].Op == opJa {
				pc += 1 + int(prog[pc].K)
			}
			if prog[pc].Op != opRetK || prog[pc].K != 100 {
				t.Fatalf("%d terms: the true edge of instruction %d lands on %d: %+v", n, i, pc, prog[pc])
			}
		}
		if got := prog[len(prog)-1]; got.Op != opRetK || got.K != 0 {
			t.Fatalf("%d terms: the last instruction is %+v, not ret #0", n, got)
		}
	}
}

// TestNewBlockLimit checks that a graph of more than maxBlocks blocks is
// an error, found when the block after the last allowed one is asked for.
func TestNewBlockLimit(t *testing.T) {
	g := &gen{expr: "test"}
	g.nblocks = maxBlocks - 40 // as if 40 short of the limit
	var err *Error
	made := func() (n int) {
		defer func() {
			if r := recover(); r != nil {
				err = r.(compileError).err
			}
		}()
		for ; n < 100; n++ {
			g.newBlock(blockRet, nil)
		}
		return n
	}()
	if made != 40 || err == nil || !strings.Contains(err.Msg, "too large") {
		t.Fatalf("made %d blocks past %d, then error %v; want 40, then \"too large\"", made, maxBlocks-40, err)
	}
}
