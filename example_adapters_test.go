package bpfmatch_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/headlessbpf/bpfmatch"
)

// A listener that takes connections from 127.0.0.1 only, deciding on the
// connection-open packet, as tcpdump would see the SYN.
func ExampleNewListener() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	l, err := bpfmatch.NewListener(ln, bpfmatch.MustCompile("tcp and src host 127.0.0.1"),
		bpfmatch.WithRejectFunc(func(r bpfmatch.Report) {
			fmt.Println("rejected", r.Remote.Addr(), errors.Is(r.Reason, bpfmatch.ErrRejected), r.Packet.Flags)
		}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()

	// Two clients, the first from another loopback address.
	for _, from := range []string{"127.0.0.2", "127.0.0.1"} {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", l.Addr().String())
		if err != nil {
			fmt.Println(err)
			return
		}
		defer c.Close()
	}
	c, err := l.Accept()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	fmt.Println("accepted", c.RemoteAddr().(*net.TCPAddr).IP)
	// Output:
	// rejected 127.0.0.2 true SYN
	// accepted 127.0.0.1
}

// A listener that decides on the first bytes the client sends: here, HTTP
// GET requests only. The bytes read to decide are still there for the
// server to read.
func ExampleWithPayload() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	rejected := make(chan string, 1)
	get := bpfmatch.MustCompile("tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420") // "GET ", IPv4
	l, err := bpfmatch.NewListener(ln, get,
		bpfmatch.WithPayload(4, time.Second), // the filter reads 4 bytes
		bpfmatch.WithRejectFunc(func(r bpfmatch.Report) {
			if errors.Is(r.Reason, bpfmatch.ErrRejected) {
				rejected <- string(r.Packet.Payload) // valid during the call only
			}
		}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()

	send := func(s string) net.Conn {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			fmt.Println(err)
			return nil
		}
		io.WriteString(c, s)
		return c
	}
	if c := send("POST /form HTTP/1.0\r\n\r\n"); c != nil {
		defer c.Close()
		fmt.Printf("rejected %q\n", <-rejected)
	}
	if c := send("GET /index.html HTTP/1.0\r\n\r\n"); c != nil {
		defer c.Close()
		sc, err := l.Accept()
		if err != nil {
			fmt.Println(err)
			return
		}
		defer sc.Close()
		line, _ := bufio.NewReader(sc).ReadString('\n')
		fmt.Printf("accepted %q\n", line)
	}
	// Output:
	// rejected "POST"
	// accepted "GET /index.html HTTP/1.0\r\n"
}

// One port, two protocols: HTTP GET requests go to an http.Server, lines
// starting with "ECHO" to an echo server, anything else to a default
// listener.
func ExampleNewRouter() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	r := bpfmatch.NewRouter(ln, bpfmatch.WithPayload(4, time.Second))
	defer r.Close()
	httpLn, err := r.Listen("tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420") // "GET "
	if err != nil {
		fmt.Println(err)
		return
	}
	echoLn, err := r.Listen("tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x4543484f") // "ECHO"
	if err != nil {
		fmt.Println(err)
		return
	}
	otherLn := r.Default()
	go r.Serve()

	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		fmt.Fprintf(w, "hello from HTTP, %s", req.URL.Path)
	})}
	go srv.Serve(httpLn)
	defer srv.Close()
	serveLines := func(l net.Listener, reply func(line string) string) {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					io.WriteString(c, reply(line))
				}
			}()
		}
	}
	go serveLines(echoLn, func(line string) string { return line })
	go serveLines(otherLn, func(string) string { return "unknown protocol\n" })

	addr := ln.Addr().String()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://" + addr + "/page")
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(body))

	for _, line := range []string{"ECHO hello\n", "HELO example.org\n"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fmt.Println(err)
			return
		}
		io.WriteString(c, line)
		reply, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		fmt.Print(reply)
	}
	// Output:
	// hello from HTTP, /page
	// ECHO hello
	// unknown protocol
}

// A UDP socket that reads only DNS queries from the 127/8 network: other
// datagrams are dropped, and counted.
func ExampleNewPacketConn() {
	inner, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	m := bpfmatch.MustCompile("src net 127.0.0.0/8 and udp[10] & 0x80 = 0") // the QR bit clear
	pc, err := bpfmatch.NewPacketConn(inner, m)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pc.Close()

	client, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	response := []byte{0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0}
	query := []byte{0x12, 0x35, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	client.Write(response)
	client.Write(query)

	buf := make([]byte, 512)
	_, from, err := pc.ReadFrom(buf)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("query %#x from %v\n", buf[:2], from.(*net.UDPAddr).IP)
	fmt.Printf("%+v\n", pc.Stats())
	// Output:
	// query 0x1235 from 127.0.0.1
	// {Received:2 Matched:1 Dropped:1 Truncated:0}
}

// On a socket bound to the unspecified address, outside Linux, the
// destination a datagram was sent to is not known: WithLocalAddr says what
// to match it as. (On Linux the kernel says, and its address is used.)
func ExampleWithLocalAddr() {
	inner, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	m := bpfmatch.MustCompile("dst host 127.0.0.1")
	pc, err := bpfmatch.NewPacketConn(inner, m, bpfmatch.WithLocalAddr(netip.MustParseAddr("127.0.0.1")))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pc.Close()
	port := inner.LocalAddr().(*net.UDPAddr).Port
	client, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	client.Write([]byte("hello"))
	buf := make([]byte, 512)
	n, _, err := pc.ReadFrom(buf)
	fmt.Println(string(buf[:n]), err)
	// Output:
	// hello <nil>
}
