//go:build linux

package mesh

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A workload's proxy listener is its identity in the local mesh: what
// comes in on it is from that workload. Its address is no secret (it is
// in /proc/PID/environ), so on Linux the mesh checks who connects: the
// kernel names the inode of the client's end of a loopback connection
// (sock_diag), and the processes of the workloads' replicas (their
// cgroups, Config.Workloads) are searched for it (/proc/PID/fd). A
// connection from another workload's replica is refused; see docs/mesh.md
// for what this does and does not promise.

// peerKey holds, in a connection's context, what the check found.
type peerKey struct{}

// connPeer is the process at the other end of a proxy connection.
type connPeer struct {
	pid      int
	workload string // the service whose replica holds it; "" when none
	err      error  // why it could not be looked up
}

// peerContext looks the client of c up once per connection, among the
// processes of workloads (Config.Workloads).
func peerContext(ctx context.Context, c net.Conn, workloads func() map[int]string) context.Context {
	local, ok1 := c.LocalAddr().(*net.TCPAddr)
	remote, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if workloads == nil || !ok1 || !ok2 || !remote.IP.IsLoopback() {
		return ctx
	}
	p := &connPeer{}
	p.pid, p.workload, p.err = peerWorkload(local, remote, workloads())
	return context.WithValue(ctx, peerKey{}, p)
}

// refusePeer reports why a request on caller's listener is refused: its
// connection comes from a replica or function instance of another
// workload. A process in no workload's cgroup (nubo itself, a shell) is
// not refused: the local mesh cannot tell it from the caller.
func refusePeer(ctx context.Context, caller string) string {
	p, _ := ctx.Value(peerKey{}).(*connPeer)
	if p == nil || p.err != nil || p.workload == "" || strings.EqualFold(p.workload, caller) {
		return ""
	}
	return fmt.Sprintf("mesh: this proxy listener belongs to %s; the connection comes from process %d, a replica of %s, which must use its own (HTTP_PROXY of its environment)", caller, p.pid, p.workload)
}

// socketInode asks the kernel (sock_diag over netlink: one exact lookup,
// not a read of every socket in /proc/net/tcp) for the inode of the
// client's end of the loopback connection from remote to local.
func socketInode(local, remote *net.TCPAddr) (uint32, error) {
	src, dst := remote.IP.To4(), local.IP.To4()
	family := byte(unix.AF_INET)
	if src == nil || dst == nil {
		src, dst, family = remote.IP.To16(), local.IP.To16(), unix.AF_INET6
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return 0, fmt.Errorf("sock_diag: %w", err)
	}
	defer unix.Close(fd)
	// nlmsghdr (16 bytes), then inet_diag_req_v2 (56 bytes).
	req := make([]byte, 16+56)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST)
	r := req[16:]
	r[0], r[1] = family, unix.IPPROTO_TCP
	ne.PutUint32(r[4:], 0xffffffff) // every state
	binary.BigEndian.PutUint16(r[8:], uint16(remote.Port))
	binary.BigEndian.PutUint16(r[10:], uint16(local.Port))
	copy(r[12:28], src)
	copy(r[28:44], dst)
	ne.PutUint32(r[48:], 0xffffffff) // INET_DIAG_NOCOOKIE
	ne.PutUint32(r[52:], 0xffffffff)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("sock_diag: %w", err)
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return 0, fmt.Errorf("sock_diag: %w", err)
	}
	if n < 16 {
		return 0, errors.New("sock_diag: short answer")
	}
	switch ne.Uint16(buf[4:]) {
	case unix.NLMSG_ERROR:
		if n >= 20 {
			if errno := int32(ne.Uint32(buf[16:])); errno != 0 {
				return 0, fmt.Errorf("sock_diag: %w", unix.Errno(-errno))
			}
		}
		return 0, errors.New("sock_diag: no socket")
	case unix.SOCK_DIAG_BY_FAMILY:
		// inet_diag_msg: the inode at offset 68.
		if n < 16+72 {
			return 0, errors.New("sock_diag: short answer")
		}
		return ne.Uint32(buf[16+68:]), nil
	}
	return 0, fmt.Errorf("sock_diag: answer of type %d", ne.Uint16(buf[4:]))
}

// peerWorkload finds which workload's replica holds the client end of
// the connection from remote to local, among the processes workloads
// gives (pid: workload); "" and pid 0 when none does.
func peerWorkload(local, remote *net.TCPAddr, workloads map[int]string) (int, string, error) {
	if len(workloads) == 0 {
		return 0, "", nil
	}
	inode, err := socketInode(local, remote)
	if err != nil {
		return 0, "", err
	}
	want := "socket:[" + strconv.FormatUint(uint64(inode), 10) + "]"
	for pid, w := range workloads {
		if holds(pid, want) {
			return pid, w, nil
		}
	}
	return 0, "", nil
}

// holds reports whether pid has the socket (its link text) open.
func holds(pid int, want string) bool {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	fds, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, fd := range fds {
		if l, err := os.Readlink(dir + "/" + fd.Name()); err == nil && l == want {
			return true
		}
	}
	return false
}
