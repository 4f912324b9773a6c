// Command databases measures nubo's databases (see bench/README.md): the
// time from Start to a PostgreSQL that answers, on a first run (initdb)
// and on later runs, and pgbench's select-only throughput through the
// allow-list listener against straight to the server.
//
//	go run ./bench/databases [-duration 10s] [-clients 8]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
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
	tpsRE := regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
	var tps [2]float64
	for i, p := range []struct{ name, port string }{{"direct", direct}, {"allow-list listener", listener}} {
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
	return nil
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
