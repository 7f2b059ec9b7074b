// Package proc reads the resource figures of a process from Linux /proc:
// resident memory, CPU time, open file descriptors and threads. The load
// tool samples the server under test with it.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat. The kernel
// reports them in USER_HZ, which is 100 on every Linux architecture the
// tool runs on (sysconf(_SC_CLK_TCK)).
const userHZ = 100

// ErrFormat is returned when a /proc file does not look as expected.
var ErrFormat = errors.New("proc: unexpected /proc file format")

// Sample is one reading of a process.
type Sample struct {
	// At is when the sample was taken.
	At time.Time `json:"at"`
	// RSS is the resident set size in bytes (VmRSS).
	RSS int64 `json:"rss"`
	// Anon is the anonymous part of RSS in bytes (RssAnon): the heap,
	// stacks and runtime, without the executable's pages. Per-connection
	// figures read it too, because the first handshakes touch code pages
	// (file-backed, shared, paid once) that VmRSS counts as growth. 0 on
	// kernels older than 4.5, which do not report it.
	Anon int64 `json:"rss_anon,omitempty"`
	// CPU is user plus system CPU time since the process started, with a
	// resolution of 10 ms.
	CPU time.Duration `json:"cpu_ns"`
	// FDs is the number of open file descriptors.
	FDs int `json:"fds"`
	// Threads is the number of OS threads.
	Threads int `json:"threads"`
}

// Read samples process pid. Root, dir may be "" to mean "/proc"; tests
// point it at a fake tree.
func Read(root string, pid int) (Sample, error) {
	if root == "" {
		root = "/proc"
	}
	s := Sample{At: time.Now()}
	dir := fmt.Sprintf("%s/%d", root, pid)
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return s, err
	}
	if s.RSS, s.Anon, s.Threads, err = parseStatus(status); err != nil {
		return s, err
	}
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return s, err
	}
	if s.CPU, err = parseStat(stat); err != nil {
		return s, err
	}
	fds, err := os.ReadDir(dir + "/fd")
	if err != nil {
		return s, err
	}
	s.FDs = len(fds)
	return s, nil
}

// parseStatus extracts VmRSS and RssAnon (in bytes, RssAnon optional) and
// Threads from /proc/<pid>/status.
func parseStatus(b []byte) (rss, anon int64, threads int, err error) {
	seen := 0
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		key, val, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		fields := bytes.Fields(val)
		if len(fields) == 0 {
			continue
		}
		switch string(key) {
		case "VmRSS":
			kb, err := strconv.ParseInt(string(fields[0]), 10, 64)
			if err != nil {
				return 0, 0, 0, ErrFormat
			}
			rss = kb * 1024
			seen++
		case "RssAnon":
			kb, err := strconv.ParseInt(string(fields[0]), 10, 64)
			if err != nil {
				return 0, 0, 0, ErrFormat
			}
			anon = kb * 1024
		case "Threads":
			n, err := strconv.Atoi(string(fields[0]))
			if err != nil {
				return 0, 0, 0, ErrFormat
			}
			threads = n
			seen++
		}
	}
	if seen != 2 {
		return 0, 0, 0, ErrFormat
	}
	return rss, anon, threads, nil
}

// parseStat extracts utime+stime from /proc/<pid>/stat. The command name
// in field 2 may hold spaces and parentheses, so fields are counted from
// the last ')'.
func parseStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, ErrFormat
	}
	// After ")" come fields 3 (state) onwards; utime and stime are fields
	// 14 and 15 (proc(5)).
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, ErrFormat
	}
	ut, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	st, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, ErrFormat
	}
	return time.Duration(ut+st) * (time.Second / userHZ), nil
}

// ReadPIDFile returns the process id written in a pid file.
func ReadPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("proc: bad pid file %s: %q", path, bytes.TrimSpace(b))
	}
	return pid, nil
}

// Machine is a reading of the whole machine's CPU time from /proc/stat,
// summed over all CPUs.
type Machine struct {
	// Busy is time spent not idle: user, nice, system, irq, softirq and
	// steal.
	Busy time.Duration
	// SoftIRQ is the part of Busy spent in soft interrupts, which no
	// process is charged for; on loopback it is mostly the network
	// traffic of the processes being measured.
	SoftIRQ time.Duration
	// Total adds idle and iowait to Busy.
	Total time.Duration
}

// ReadMachine reads the aggregate "cpu" line of /proc/stat. Root may be ""
// to mean "/proc".
func ReadMachine(root string) (Machine, error) {
	if root == "" {
		root = "/proc"
	}
	b, err := os.ReadFile(root + "/stat")
	if err != nil {
		return Machine{}, err
	}
	return parseMachine(b)
}

func parseMachine(b []byte) (Machine, error) {
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return Machine{}, ErrFormat
	}
	var v [8]uint64 // user nice system idle iowait irq softirq steal
	for i := range v {
		n, err := strconv.ParseUint(string(f[i+1]), 10, 64)
		if err != nil {
			return Machine{}, ErrFormat
		}
		v[i] = n
	}
	tick := time.Second / userHZ
	busy := v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
	return Machine{
		Busy:    time.Duration(busy) * tick,
		SoftIRQ: time.Duration(v[6]) * tick,
		Total:   time.Duration(busy+v[3]+v[4]) * tick,
	}, nil
}
