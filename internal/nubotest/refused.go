package nubotest

import (
	"fmt"
	"net"
	"syscall"
	"testing"
)

// RefusedAddr returns a loopback address HOST:PORT where connections are
// refused for the rest of the test: a TCP socket bound to it that never
// listens. Tests of "nothing answers there" need it; the habit of listening
// on port 0 and closing the listener leaves a free port that a test running
// beside may listen on before it is dialled. The socket does not set
// SO_REUSEADDR, so no other socket can bind the port while it is held.
func RefusedAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("refused address: socket: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("refused address: bind 127.0.0.1:0: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("refused address: getsockname: %v", err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		t.Fatalf("refused address: the socket is bound to %T, not an IPv4 address", sa)
	}
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(in4.Port))
}
