package pcapfilter_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/headlessbpf/bpfmatch/pcapfilter"
	"golang.org/x/net/bpf"
)

// A program from Compile runs in any classic BPF machine; here
// golang.org/x/net/bpf's, on an Ethernet frame of a TCP SYN to port 21.
func ExampleCompile() {
	prog, err := pcapfilter.Compile("tcp dst port 21 and src net 10.0.0.0/8", pcapfilter.Options{})
	if err != nil {
		log.Fatal(err)
	}
	insns, ok := bpf.Disassemble(prog)
	if !ok {
		log.Fatal("not a program x/net/bpf knows")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		log.Fatal(err)
	}
	frame := []byte{
		2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00, // Ethernet, IPv4
		0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, // IPv4, TCP
		10, 1, 2, 3, 192, 0, 2, 21, // 10.1.2.3 > 192.0.2.21
		0x9c, 0x40, 0, 21, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0, // 40000 > 21, SYN
	}
	n, err := vm.Run(frame)
	fmt.Println(n > 0, err)
	// Output: true <nil>
}

// Errors say what is wrong and where.
func ExampleCompile_error() {
	_, err := pcapfilter.Compile("tcp port 21 or udp prt 53", pcapfilter.Options{})
	var e *pcapfilter.Error
	if errors.As(err, &e) {
		fmt.Printf("offset %d, token %q: %s\n", e.Offset, e.Token, e.Msg)
	}
	// Output: offset 19, token "prt": unexpected name 'prt': expected 'and', 'or' or the end of the expression
}

// Compile knows raw IP and Linux cooked captures too.
func ExampleCompile_linkType() {
	_, err := pcapfilter.Compile("vlan 100", pcapfilter.Options{LinkType: pcapfilter.LinkRaw})
	fmt.Println(err)
	prog, err := pcapfilter.Compile("ip6 and udp port 53", pcapfilter.Options{LinkType: pcapfilter.LinkLinuxSLL2})
	fmt.Println(len(prog) > 0, err)
	// Output:
	// at offset 0 ("vlan"): no VLAN support for Raw IP
	// true <nil>
}

// Parse gives the syntax tree, with the qualifiers each primitive
// inherits.
func ExampleParse() {
	root, err := pcapfilter.Parse("tcp port 21 or 22")
	if err != nil {
		log.Fatal(err)
	}
	or := root.(*pcapfilter.Binary)
	second := or.Y.(*pcapfilter.Qualified)
	fmt.Println(second.ID.Text, second.Q.Proto == pcapfilter.ProtoTCP, second.Q.Type == pcapfilter.TypePort)
	// Output: 22 true true
}
