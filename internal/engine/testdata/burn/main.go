// Command burn is a service whose use is known from the inside: it holds
// -mem MiB touched, waits for the file -go, then spins until its own CPU
// time (getrusage) has grown by -cpu seconds, and writes what it used to
// -out: "cpu=SECONDS rss=BYTES", its RSS from /proc/self/status.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var sink []byte

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func rss() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func main() {
	goFile := flag.String("go", "go.flag", "start burning when this file exists")
	out := flag.String("out", "used.txt", "where to write what was used")
	cpu := flag.Float64("cpu", 2, "CPU seconds to burn")
	mem := flag.Int("mem", 64, "MiB to hold")
	flag.Parse()
	sink = make([]byte, *mem<<20)
	for i := range sink {
		sink[i] = byte(i)
	}
	os.WriteFile(*out+".ready", []byte(fmt.Sprintf("rss=%d\n", rss())), 0o644)
	for {
		if _, err := os.Stat(*goFile); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := cpuSeconds()
	x := 0
	for cpuSeconds()-start < *cpu {
		for i := 0; i < 1e6; i++ {
			x += i
		}
	}
	used := cpuSeconds() - start
	os.WriteFile(*out+".tmp", []byte(fmt.Sprintf("cpu=%f rss=%d x=%d\n", used, rss(), x&1)), 0o644)
	os.Rename(*out+".tmp", *out)
	for {
		time.Sleep(time.Hour)
		sink[0]++
	}
}
