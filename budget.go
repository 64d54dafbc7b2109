package bpfmatch

// loopBudget bounds a run: once the backward jumps it took have gone back
// over more than loopBudget instructions in all (divisions and remainders
// counting divCost each, and loads off the fast path adding slowLoadCost
// each), the run stops and returns 0, a rejection. Between two backward
// jumps the pc only goes forward, so a run executes at most
// len(program)+loopBudget instructions, a few milliseconds
// (BenchmarkHostileProgram), whatever the program, the packet and the snap
// length. Programs without backward jumps never reach it, and pay nothing
// for it: only backward jumps check it.
//
// Why no program libpcap or this package's compiler emits reaches it on
// what they are meant for. Both emit backward jumps only for protochain,
// whose loop follows the chain of IPv4 or IPv6 headers: at its top, A is
// the type of the next header and X its offset from the network header.
// A type of extension header (hop-by-hop, destination options, routing,
// fragment) goes back over 15 instructions, after X += 8*(P[X+1]+1); AH
// goes back over 28 (16 in the IPv4 loop, which knows only AH) after
// X = 4*(P[X+1]+2), which libpcap computes from 0, not from X, so that an
// AH header can point at itself or back and the loop never ends. Any other
// type leaves the loop. So what happens next depends only on the kind of
// type (extension or AH) and on X, which is a multiple of 4 (40 in IPv6,
// 4*IHL in IPv4, and each step keeps it one) below the captured length c,
// since the loop reads P[X+1]. A run that ends meets each such state once:
//   - at most c/4+1 turns through the extension branch;
//   - at most 513 through AH: after one, X is one of 256 values and the
//     kind one of two, and each such state that continues comes at most
//     once.
//
// An IPv6 loop goes back at most 15*(c/4+1) + 28*513 = 3.75c+14,379, an
// IPv4 loop 16*513 = 8,208; its one-byte loads leave the fast path only
// on the two bytes of a lazy checksum, at most 8 times (64). A run passes
// each loop at most once (the loops are disjoint and only their own jumps
// go back), and its other loads leave the fast path at most once each
// (8 per instruction). At c = 262,144 (libpcap's maximum snap length and
// DefaultSnapLen) an IPv6 loop needs at most 997,483, so any compiled
// program with up to four IPv6 protochain loops (two "protochain" terms,
// IPv4 loops besides) and some thousands of other instructions stays
// below the budget; with one loop, so do frames up to 1 MiB. Beyond that
// (only MatchFrame with WithSnapLen above 1 MiB gets there), a chain of
// more than 270,000 headers, which no IPv6 packet without a jumbo payload
// can hold (its payload length has 16 bits), is cut short and rejected. TestBudgetProtochain checks these
// bounds on the programs both compilers emit and on frames built to make
// their loops turn as often as possible.
const loopBudget = 1 << 22

// divCost is what a division or a remainder counts for in a loop: on
// some processors it takes as long as 8 other instructions.
const divCost = 8

// budgetSpent is what runCounted returns for a run the budget stopped.
const budgetSpent = ^uint64(0)

// slowLoadCost is what a load the interpreter cannot serve on its fast
// path costs the budget: it takes about as long as 8 instructions.
const slowLoadCost = 8
