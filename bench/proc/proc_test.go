package proc

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		rss     int64
		anon    int64
		threads int
		err     error
	}{
		{"typical", "Name:\tgateway\nVmPeak:\t  10 kB\nVmRSS:\t   20480 kB\nRssAnon:\t    9452 kB\nRssFile:\t   11028 kB\nThreads:\t5\n", 20480 * 1024, 9452 * 1024, 5, nil},
		{"no RssAnon (kernel before 4.5)", "VmRSS:\t20480 kB\nThreads:\t5\n", 20480 * 1024, 0, 5, nil},
		{"no trailing newline", "VmRSS: 4 kB\nThreads: 1", 4096, 0, 1, nil},
		{"kernel thread without VmRSS", "Name:\tkthreadd\nThreads:\t1\n", 0, 0, 0, ErrFormat},
		{"garbage number", "VmRSS: x kB\nThreads: 1\n", 0, 0, 0, ErrFormat},
		{"garbage RssAnon", "VmRSS: 4 kB\nRssAnon: x kB\nThreads: 1\n", 0, 0, 0, ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rss, anon, th, err := parseStatus([]byte(tt.in))
			if err != tt.err || rss != tt.rss || anon != tt.anon || th != tt.threads {
				t.Fatalf("got (%d, %d, %d, %v), want (%d, %d, %d, %v)", rss, anon, th, err, tt.rss, tt.anon, tt.threads, tt.err)
			}
		})
	}
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name string
		in   string
		cpu  time.Duration
		err  error
	}{
		{"typical", "1234 (gateway) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 9 0 1000 1000 100\n", 2870 * time.Millisecond, nil},
		{"name with spaces and parens", "99 (a) b (c)) R 1 1 1 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0\n", 100 * time.Millisecond, nil},
		{"truncated", "1 (x) S 1 2 3", 0, ErrFormat},
		{"no paren", "1 x S", 0, ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cpu, err := parseStat([]byte(tt.in))
			if err != tt.err || cpu != tt.cpu {
				t.Fatalf("got (%v, %v), want (%v, %v)", cpu, err, tt.cpu, tt.err)
			}
		})
	}
}

func TestReadFakeTree(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "42")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "fd"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "status"), []byte("VmRSS:\t1000 kB\nThreads:\t3\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "stat"), []byte("42 (x) S 1 1 1 0 -1 0 0 0 0 0 100 50 0 0\n"), 0o644))
	for _, n := range []string{"0", "1", "2", "7"} {
		must(os.WriteFile(filepath.Join(dir, "fd", n), nil, 0o644))
	}
	s, err := Read(root, 42)
	must(err)
	if s.RSS != 1000*1024 || s.Threads != 3 || s.CPU != 1500*time.Millisecond || s.FDs != 4 {
		t.Fatalf("got %+v", s)
	}
}

func TestReadSelf(t *testing.T) {
	s, err := Read("", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 || s.FDs <= 0 || s.Threads <= 0 {
		t.Fatalf("implausible sample of ourselves: %+v", s)
	}
}

func TestReadPIDFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.pid")
	bad := filepath.Join(dir, "bad.pid")
	if err := os.WriteFile(good, []byte("1234\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if pid, err := ReadPIDFile(good); err != nil || pid != 1234 {
		t.Fatalf("good: %d, %v", pid, err)
	}
	if _, err := ReadPIDFile(bad); err == nil {
		t.Fatal("bad pid file accepted")
	}
}

func TestParseMachine(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		busy, total time.Duration
		err         error
	}{
		{"typical", "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n", 1610 * time.Millisecond, 11810 * time.Millisecond, nil},
		{"per-cpu line first", "cpu0 1 2 3 4 5 6 7 8\n", 0, 0, ErrFormat},
		{"short", "cpu 1 2 3\n", 0, 0, ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseMachine([]byte(tt.in))
			if err != tt.err || m.Busy != tt.busy || m.Total != tt.total || (err == nil && m.SoftIRQ != 20*time.Millisecond) {
				t.Fatalf("got %+v, %v", m, err)
			}
		})
	}
	if _, err := ReadMachine(""); err != nil {
		t.Fatal(err)
	}
}
