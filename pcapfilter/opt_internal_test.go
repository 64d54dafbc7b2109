package pcapfilter

import "testing"

// TestUseDefTable checks the optimiser's table of opcodes against the
// switches it is built from, for every opcode and every scratch memory
// word: a wrong entry would make the optimiser drop a live statement.
func TestUseDefTable(t *testing.T) {
	for op := 0; op < 0x200; op++ {
		for k := uint32(0); k < 2*memWords; k++ {
			s := insn{Op: uint16(op), K: k}
			use, def := useDef(s)
			wantUse, wantDef := useDefOf(s)
			if use != wantUse || def != wantDef {
				t.Errorf("op %#x k %d: use %#x def %#x from the table, want %#x %#x", op, k, use, def, wantUse, wantDef)
			}
		}
		if op <= 0xff && optOps[op].known != optKnownOp(uint16(op)) {
			t.Errorf("op %#x: known %v in the table, want %v", op, optOps[op].known, optKnownOp(uint16(op)))
		}
	}
}
