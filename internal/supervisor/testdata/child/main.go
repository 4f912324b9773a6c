// Command child is the process the supervisor's tests supervise. Flags pick
// its behaviour; with none it blocks until a signal ends it.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	var (
		serve        = flag.Bool("serve", false, "serve HTTP on $PORT")
		listenDelay  = flag.Duration("listen-delay", 0, "wait this long before listening")
		blockFile    = flag.String("block-file", "", "if this file exists at start, never listen")
		unhealthy    = flag.String("unhealthy-file", "", "/health answers 500 while this file exists")
		notReady     = flag.String("notready-file", "", "/ready answers 503 while this file exists")
		exitCode     = flag.Int("exit", -1, "exit with this code after -after")
		after        = flag.Duration("after", 0, "delay before -exit")
		ignoreTerm   = flag.Bool("ignore-term", false, "ignore SIGTERM")
		termExit     = flag.Int("term-exit", -1, "on SIGTERM, exit with this code")
		burn         = flag.Float64("burn", 0, "burn this fraction of one core")
		burnFile     = flag.String("burn-file", "", "with -burn: burn only while this file exists")
		grandchild   = flag.String("grandchild", "", "start a grandchild that sleeps forever and write its pid here")
		escape       = flag.String("escape", "", "start a grandchild that leaves the process group and the parent (setsid and a double fork), sleeps forever and writes its pid here")
		escapeMid    = flag.String("escape-mid", "", "the middle of -escape: start the sleeper in a new session, write its pid here and exit")
		pidFile      = flag.String("pidfile", "", "write own pid here")
		lines        = flag.Int("lines", 0, "write this many numbered lines to stdout")
		stderrLines  = flag.Int("stderr-lines", 0, "write this many numbered lines to stderr")
		longLine     = flag.Int("long-line", 0, "write one line of this many bytes to stdout")
		allocMB      = flag.Int("alloc", 0, "allocate and touch this many MiB")
		startMessage = flag.String("say", "", "write this line to stdout at start")
	)
	flag.Parse()

	if *ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	}
	if *termExit >= 0 {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		go func() {
			<-c
			fmt.Println("got SIGTERM")
			os.Exit(*termExit)
		}()
	}
	if *pidFile != "" {
		writeFile(*pidFile, fmt.Sprint(os.Getpid()))
	}
	if *startMessage != "" {
		fmt.Println(*startMessage)
	}
	for i := range *lines {
		fmt.Printf("line %d\n", i)
	}
	for i := range *stderrLines {
		fmt.Fprintf(os.Stderr, "err %d\n", i)
	}
	if *longLine > 0 {
		os.Stdout.WriteString(strings.Repeat("x", *longLine) + "\n")
	}
	if *allocMB > 0 {
		ballast = make([]byte, *allocMB<<20)
		for i := 0; i < len(ballast); i += 4096 {
			ballast[i] = 1
		}
	}
	if *grandchild != "" {
		// Same process group: the supervisor must kill it with the replica.
		cmd := exec.Command(os.Args[0])
		if err := cmd.Start(); err != nil {
			fail(err)
		}
		writeFile(*grandchild, fmt.Sprint(cmd.Process.Pid))
	}
	if *escape != "" {
		// setsid, then a double fork: the sleeper has neither this
		// replica's process group nor a parent in it.
		cmd := exec.Command(os.Args[0], "-escape-mid", *escape)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			fail(err)
		}
		go func() { _ = cmd.Wait() }()
	}
	if *escapeMid != "" {
		cmd := exec.Command(os.Args[0])
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			fail(err)
		}
		writeFile(*escapeMid, fmt.Sprint(cmd.Process.Pid))
		os.Exit(0)
	}
	if *burn > 0 {
		go burnCPU(*burn, *burnFile)
	}
	if *exitCode >= 0 {
		go func() {
			time.Sleep(*after)
			os.Exit(*exitCode)
		}()
	}
	if *serve {
		go serveHTTP(*listenDelay, *blockFile, *unhealthy, *notReady)
	}
	select {}
}

// ballast is package-level so that the collector never frees it.
var ballast []byte

func serveHTTP(delay time.Duration, blockFile, unhealthy, notReady string) {
	if blockFile != "" && exists(blockFile) {
		return
	}
	time.Sleep(delay)
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		if unhealthy != "" && exists(unhealthy) {
			http.Error(w, "unhealthy", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		if notReady != "" && exists(notReady) {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		// Reads the whole body first, as an upload handler does: a client
		// that stalls holds the connection open.
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d bytes", n)
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "PORT=%s NUBO_REPLICA=%s NUBO_SERVICE=%s EXTRA=%s",
			os.Getenv("PORT"), os.Getenv("NUBO_REPLICA"), os.Getenv("NUBO_SERVICE"), os.Getenv("EXTRA"))
	})
	l, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		fail(err)
	}
	fail(http.Serve(l, mux))
}

// burnCPU keeps one core busy for fraction of every 100ms, while file (if
// given) exists.
func burnCPU(fraction float64, file string) {
	busy := time.Duration(fraction * float64(100*time.Millisecond))
	for {
		if file != "" && !exists(file) {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		start := time.Now()
		for time.Since(start) < busy {
		}
		time.Sleep(100*time.Millisecond - busy)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func writeFile(path, s string) {
	// Write then rename, so a reader never sees a partial pid.
	if err := os.WriteFile(path+".tmp", []byte(s), 0o644); err != nil {
		fail(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "child:", err)
	os.Exit(2)
}
