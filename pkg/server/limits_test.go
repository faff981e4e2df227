package server_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/custody/custody/pkg/server"
)

// These tests speak raw TCP and HTTP/2 frames to the server on loopback.
// A read that should end because the server acts has a deadline of
// rawWait, far longer than the short limits the tests configure and far
// shorter than the defaults they would fall back to if a limit were lost.
const rawWait = 10 * time.Second

// HTTP/2 frame types and error codes (RFC 9113) the tests use.
const (
	frameSettings = 0x4
	framePing     = 0x6
	frameGoAway   = 0x7
	flagAck       = 0x1

	errCodeNo              = 0x0
	errCodeEnhanceYourCalm = 0xb
)

type frame struct {
	typ, flags byte
	payload    []byte
}

// rawConn dials the server and sets rawWait as the connection's deadline.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(rawWait))
	return c
}

func writeFrame(t *testing.T, c net.Conn, typ, flags byte, payload []byte) {
	t.Helper()
	hdr := []byte{byte(len(payload) >> 16), byte(len(payload) >> 8), byte(len(payload)), typ, flags, 0, 0, 0, 0}
	if _, err := c.Write(append(hdr, payload...)); err != nil {
		t.Fatal(err)
	}
}

func readFrame(c net.Conn) (frame, error) {
	var hdr [9]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return frame{}, err
	}
	f := frame{typ: hdr[3], flags: hdr[4], payload: make([]byte, int(hdr[0])<<16|int(hdr[1])<<8|int(hdr[2]))}
	_, err := io.ReadFull(c, f.payload)
	return f, err
}

// handshake completes a client's side of the HTTP/2 handshake.
func handshake(t *testing.T, c net.Conn) {
	t.Helper()
	if _, err := io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	writeFrame(t, c, frameSettings, 0, nil)
}

// goAway reads frames until the server's GOAWAY and returns its error code
// and debug data, failing t if the connection ends or stalls first.
func goAway(t *testing.T, c net.Conn) (code uint32, debug string, acks int) {
	t.Helper()
	for {
		f, err := readFrame(c)
		if err != nil {
			t.Fatalf("no GOAWAY from the server (%d ping acks): %v", acks, err)
		}
		switch {
		case f.typ == framePing && f.flags&flagAck != 0:
			acks++
		case f.typ == frameGoAway && len(f.payload) >= 8:
			return binary.BigEndian.Uint32(f.payload[4:8]), string(f.payload[8:]), acks
		}
	}
}

// closedByServer fails t unless the server closes c (EOF or a reset)
// within rawWait; it returns how many bytes the server sent first.
func closedByServer(t *testing.T, c net.Conn) int64 {
	t.Helper()
	n, err := io.Copy(io.Discard, c) // nil at EOF
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the connection open for %s (%d bytes read)", rawWait, n)
	}
	return n
}

// A connection that never completes its handshake is closed after
// HandshakeTimeout (grpc-go's own default: two minutes).
func TestHandshakeTimeout(t *testing.T) {
	e := start(t, server.Config{HandshakeTimeout: 100 * time.Millisecond})
	silent := rawConn(t, e.addr) // says nothing at all
	prefaceOnly := rawConn(t, e.addr)
	if _, err := io.WriteString(prefaceOnly, "PRI * HTTP/2.0\r\n"); err != nil { // half the preface
		t.Fatal(err)
	}
	for name, c := range map[string]net.Conn{"silent": silent, "half a preface": prefaceOnly} {
		t.Run(name, func(t *testing.T) { closedByServer(t, c) })
	}
	// A client that does handshake is served.
	if err := e.conn(t, e.token).Invoke(t.Context(), "/"+svcA+"/Echo", wrapperspb.String("x"), new(wrapperspb.StringValue)); err != nil {
		t.Fatal(err)
	}
}

// Past MaxConnections a new connection is closed at once, before the
// server sends a byte, while the connections already open keep being
// served; once one closes, a new connection gets its place.
func TestMaxConnections(t *testing.T) {
	e := start(t, server.Config{MaxConnections: 2})
	first := e.conn(t, e.token)
	call := func() error {
		return first.Invoke(t.Context(), "/"+svcA+"/Echo", wrapperspb.String("x"), new(wrapperspb.StringValue))
	}
	if err := call(); err != nil { // the first connection is open
		t.Fatal(err)
	}
	second := rawConn(t, e.addr) // the second: the server greets it with its SETTINGS
	if f, err := readFrame(second); err != nil || f.typ != frameSettings {
		t.Fatalf("second connection: frame %v, %v; want the server's SETTINGS", f.typ, err)
	}

	t.Run("third raw connection", func(t *testing.T) {
		if n := closedByServer(t, rawConn(t, e.addr)); n != 0 {
			t.Fatalf("the server sent %d bytes to a connection past the cap", n)
		}
	})
	t.Run("third gRPC client", func(t *testing.T) {
		err := e.conn(t, e.token).Invoke(t.Context(), "/"+svcA+"/Echo", wrapperspb.String("x"), new(wrapperspb.StringValue))
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("call over a refused connection: %v, want Unavailable", err)
		}
	})
	t.Run("open connection still served", func(t *testing.T) {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a freed place is taken", func(t *testing.T) {
		second.Close()
		// The server learns of the close asynchronously: try until a
		// connection is greeted (each refused try ends at once).
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(rawWait)
		for {
			c := rawConn(t, e.addr)
			if f, err := readFrame(c); err == nil && f.typ == frameSettings {
				return
			}
			c.Close()
			select {
			case <-tick.C:
			case <-deadline:
				t.Fatal("no connection admitted after one closed")
			}
		}
	})
}

// The server answers pings, refuses a client that pings too often
// (GOAWAY ENHANCE_YOUR_CALM "too_many_pings"), and closes a connection
// left without calls for IdleTimeout (GOAWAY "max_idle").
func TestKeepalive(t *testing.T) {
	e := start(t, server.Config{IdleTimeout: 100 * time.Millisecond})

	t.Run("ping flood", func(t *testing.T) {
		c := rawConn(t, e.addr)
		handshake(t, c)
		for i := range 4 { // the first ping is free, then 2 strikes are allowed
			writeFrame(t, c, framePing, 0, []byte{0, 0, 0, 0, 0, 0, 0, byte(i)})
		}
		code, debug, acks := goAway(t, c)
		if code != errCodeEnhanceYourCalm || debug != "too_many_pings" || acks == 0 {
			t.Fatalf("GOAWAY %#x %q after %d ping acks, want ENHANCE_YOUR_CALM too_many_pings after some acks", code, debug, acks)
		}
		closedByServer(t, c)
	})
	t.Run("idle", func(t *testing.T) {
		c := rawConn(t, e.addr)
		handshake(t, c)
		if code, debug, _ := goAway(t, c); code != errCodeNo || debug != "max_idle" {
			t.Fatalf("GOAWAY %#x %q, want NO_ERROR max_idle", code, debug)
		}
	})
}
