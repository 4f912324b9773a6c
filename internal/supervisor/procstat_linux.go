package supervisor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// atClkTck is AT_CLKTCK, the auxiliary vector entry holding sysconf's
// _SC_CLK_TCK; x/sys does not name it.
const atClkTck = 17

// clockTicks returns the unit of /proc/<pid>/stat times. It is USER_HZ,
// which the kernel passes in the auxiliary vector; 100 on every common
// architecture, and the fallback. Reading it is a copy of a few words, so it
// is not cached (no package state).
func clockTicks() int64 {
	if auxv, err := unix.Auxv(); err == nil {
		for _, kv := range auxv {
			if kv[0] == atClkTck && kv[1] > 0 {
				return int64(kv[1])
			}
		}
	}
	return 100
}

func readGroupUsage(procDir string, pgids []int) (map[int]GroupUsage, error) {
	want := make(map[int]bool, len(pgids))
	for _, g := range pgids {
		want[g] = true
	}
	out := make(map[int]GroupUsage, len(pgids))
	if len(want) == 0 {
		return out, nil
	}
	d, err := os.Open(procDir)
	if err != nil {
		return nil, fmt.Errorf("read process usage: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read process usage: %w", err)
	}
	tick := time.Second / time.Duration(clockTicks())
	for _, name := range names {
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		st, err := readStat(filepath.Join(procDir, name, "stat"))
		if err != nil || !want[st.pgrp] {
			// A process that exited during the scan is simply not counted.
			continue
		}
		if st.zombie {
			// Its times are still in its stat and will move to its parent
			// when reaped; its memory is gone.
			u := out[st.pgrp]
			u.CPUTime += time.Duration(st.ticks) * tick
			out[st.pgrp] = u
			continue
		}
		rss, _ := readVmRSS(filepath.Join(procDir, name, "status"))
		u := out[st.pgrp]
		u.CPUTime += time.Duration(st.ticks) * tick
		u.RSS += rss
		u.Processes++
		out[st.pgrp] = u
	}
	return out, nil
}

type procStat struct {
	pgrp   int
	ticks  int64 // utime + stime + cutime + cstime
	zombie bool
}

// readStat parses /proc/<pid>/stat (proc(5)). The command name, field 2, is
// in parentheses and may contain spaces and parentheses, so fields are
// counted from the last ')'.
func readStat(path string) (procStat, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("malformed stat")
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 15 {
		return procStat{}, errors.New("malformed stat")
	}
	var st procStat
	st.zombie = string(f[0]) == "Z" || string(f[0]) == "X"
	if st.pgrp, err = strconv.Atoi(string(f[5-3])); err != nil {
		return procStat{}, err
	}
	for n := 14; n <= 17; n++ { // utime, stime, cutime, cstime
		v, err := strconv.ParseInt(string(f[n-3]), 10, 64)
		if err != nil {
			return procStat{}, err
		}
		st.ticks += v
	}
	return st, nil
}

// readVmRSS returns VmRSS from /proc/<pid>/status, in bytes. Kernel threads
// and zombies have none.
func readVmRSS(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:"))
		if !ok {
			continue
		}
		fields := bytes.Fields(rest) // "123456 kB"
		if len(fields) == 0 {
			return 0, errors.New("malformed VmRSS")
		}
		kb, err := strconv.ParseUint(string(fields[0]), 10, 64)
		if err != nil {
			return 0, err
		}
		return kb << 10, nil
	}
	return 0, sc.Err()
}
