// Command databases measures nubo's databases (see bench/README.md): the
// time from Start to a PostgreSQL that answers, on a first run (initdb)
// and on later runs, and pgbench's select-only throughput through the
// allow-list listener against straight to the server.
//
//	go run ./bench/databases [-duration 10s] [-clients 8]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/nubo-dev/nubo/internal/databases"
	"github.com/nubo-dev/nubo/internal/secrets"
	"github.com/nubo-dev/nubo/internal/spec"
)

const specText = `name: bench
databases:
  main:
    type: postgres
    security:
      network:
        ingress:
          - from: [{service: bench}]
services:
  bench: {run: "true"}
`

func main() {
	duration := flag.Duration("duration", 10*time.Second, "pgbench run time, each path")
	clients := flag.Int("clients", 8, "pgbench clients")
	runs := flag.Int("runs", 3, "later runs timed")
	flag.Parse()
	if err := run(*duration, *clients, *runs); err != nil {
		log.Fatal(err)
	}
}

func run(duration time.Duration, clients, runs int) error {
	dir, err := os.MkdirTemp("", "nubo-bench-db")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	_ = os.Chmod(dir, 0o711) // as root, postgres runs as its own user and must pass through
	file := filepath.Join(dir, "nubo.yaml")
	if err := os.WriteFile(file, []byte(specText), 0o644); err != nil {
		return err
	}
	app, err := spec.Load(file)
	if err != nil {
		return err
	}
	store, err := secrets.OpenStore(app.StatePath(), filepath.Join(dir, "identity.txt"))
	if err != nil {
		return err
	}
	start := func() (*databases.Databases, time.Duration, error) {
		d, err := databases.New(databases.Config{App: app, StateDir: app.StatePath(), Store: store})
		if err != nil {
			return nil, 0, err
		}
		began := time.Now()
		if err := d.Start(context.Background()); err != nil {
			return nil, 0, err
		}
		took := time.Since(began)
		if f := d.Get("main").Failure(); f != "" {
			return nil, 0, fmt.Errorf("main: %s", f)
		}
		return d, took, nil
	}
	stop := func(d *databases.Databases) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = d.Stop(ctx)
	}

	d, first, err := start()
	if err != nil {
		return err
	}
	stop(d)
	fmt.Printf("ready, first run (initdb): %s\n", first.Round(time.Millisecond))
	var later []time.Duration
	for range runs {
		var took time.Duration
		d, took, err = start()
		if err != nil {
			return err
		}
		later = append(later, took)
		if len(later) < runs {
			stop(d)
			continue
		}
		defer stop(d)
	}
	fmt.Printf("ready, later runs: %v\n", roundAll(later))

	db := d.Get("main")
	pgbench, err := db.Binaries().Client("pgbench")
	if err != nil {
		return err
	}
	admin := db.Admin()
	env := append(os.Environ(), "PGPASSWORD="+admin.Password.Reveal())
	listener, err := d.Lookup("main", "port", "bench")
	if err != nil {
		return err
	}
	direct := strconv.Itoa(db.Port())
	bench := func(port string, args ...string) (string, error) {
		cmd := exec.Command(pgbench, append([]string{"-h", "127.0.0.1", "-p", port, "-U", admin.User, "-n"}, append(args, "app")...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("pgbench %v: %w: %s", args, err, out)
		}
		return string(out), nil
	}
	if _, err := bench(direct, "-i", "-s", "1", "-q"); err != nil {
		return err
	}
	paths := []struct{ name, port string }{{"direct", direct}, {"allow-list listener", listener}}
	// The peer: haproxy as a plain TCP proxy in front of the same server,
	// what any user-space hop costs on this machine.
	if peer, stopPeer, err := startHAProxy(direct); err != nil {
		fmt.Printf("haproxy peer: %v\n", err)
	} else {
		defer stopPeer()
		paths = append(paths, struct{ name, port string }{"haproxy (tcp mode)", peer})
	}
	tpsRE := regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
	tps := make([]float64, len(paths))
	for i, p := range paths {
		out, err := bench(p.port, "-S", "-c", strconv.Itoa(clients), "-j", "2", "-T", strconv.Itoa(int(duration.Seconds())))
		if err != nil {
			return err
		}
		m := tpsRE.FindStringSubmatch(out)
		if m == nil {
			return fmt.Errorf("no tps in pgbench's output:\n%s", out)
		}
		tps[i], _ = strconv.ParseFloat(m[1], 64)
		fmt.Printf("pgbench -S -c %d, %s: %.0f tps\n", clients, p.name, tps[i])
	}
	fmt.Printf("listener / direct: %.2f\n", tps[1]/tps[0])
	if len(tps) > 2 {
		fmt.Printf("haproxy / direct: %.2f; listener / haproxy: %.2f\n", tps[2]/tps[0], tps[1]/tps[2])
	}
	return nil
}

// startHAProxy runs haproxy (Debian's package) in TCP mode on a free
// loopback port, forwarding to the server's port, with one thread per core
// as its default; it returns the port and how to stop it.
func startHAProxy(server string) (string, func(), error) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		return "", nil, errors.New("not installed (apt-get install haproxy)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	dir, err := os.MkdirTemp("", "haproxy")
	if err != nil {
		return "", nil, err
	}
	cfg := filepath.Join(dir, "haproxy.cfg")
	conf := fmt.Sprintf("defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\nlisten pg\n  bind 127.0.0.1:%s\n  server pg 127.0.0.1:%s\n", port, server)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "-f", cfg)
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); os.RemoveAll(dir) }
	for range 50 {
		if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			c.Close()
			return port, stop, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	return "", nil, errors.New("haproxy did not listen")
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
