package load

import (
	"testing"
	"time"
)

func TestCloseInfo(t *testing.T) {
	frame := func(code uint16, reason string) []byte {
		return append([]byte{byte(code >> 8), byte(code)}, reason...)
	}
	for _, tc := range []struct {
		payload []byte
		code    int
		hint    time.Duration
	}{
		{frame(1012, "server restarting; reconnect=5000"), 1012, 5 * time.Second},
		{frame(1012, "reconnect=250"), 1012, 250 * time.Millisecond},
		{frame(1012, "server restarting"), 1012, 0},
		{frame(1001, "server shutting down"), 1001, 0},
		{frame(1012, "noreconnect=5000"), 1012, 0},
		{frame(1012, "reconnect=x"), 1012, 0},
		{frame(1012, "reconnect=0"), 1012, 0},
		{frame(1012, "reconnect=99999999999"), 1012, time.Minute},
		{nil, 0, 0},
		{[]byte{3}, 0, 0},
	} {
		code, hint := closeInfo(tc.payload)
		if code != tc.code || hint != tc.hint {
			t.Errorf("closeInfo(%q) = %d, %v; want %d, %v", tc.payload, code, hint, tc.code, tc.hint)
		}
	}
}

func TestJitterStaysInTheWindow(t *testing.T) {
	const hint = 10 * time.Millisecond
	var low, high bool
	for range 2000 {
		d := jitter(hint)
		if d < 0 || d > hint {
			t.Fatalf("jitter(%v) = %v", hint, d)
		}
		low = low || d < hint/4
		high = high || d > 3*hint/4
	}
	if !low || !high {
		t.Fatalf("2000 waits did not cover the window (low %v, high %v)", low, high)
	}
	if d := jitter(0); d != 0 {
		t.Fatalf("jitter(0) = %v", d)
	}
}

func TestPeakPer(t *testing.T) {
	for _, tc := range []struct {
		times []int64
		want  int
	}{
		{nil, 0},
		{[]int64{5}, 1},
		{[]int64{0, 50, 99, 100, 150, 300}, 3},
		{[]int64{300, 0, 100, 200}, 1},
		{[]int64{10, 10, 10}, 3},
	} {
		if got := peakPer(tc.times, 100); got != tc.want {
			t.Errorf("peakPer(%v, 100) = %d, want %d", tc.times, got, tc.want)
		}
	}
}
