package socketio

import "testing"

func TestParseUint(t *testing.T) {
	tests := []struct {
		in    string
		limit uint64
		n     uint64
		end   int
		ok    bool
	}{
		{"0", 10, 0, 1, true},
		{"10x", 10, 10, 2, true},
		{"11", 10, 0, 1, false},
		{"x", 10, 0, 0, false},
		{"18446744073709551615", 1<<64 - 1, 1<<64 - 1, 20, true},
		{"18446744073709551616", 1<<64 - 1, 0, 19, false},
		{"9223372036854775807", 1<<63 - 1, 1<<63 - 1, 19, true},
		{"9223372036854775808", 1<<63 - 1, 0, 18, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			n, end, ok := parseUint([]byte(tt.in), 0, tt.limit)
			if ok != tt.ok || ok && (n != tt.n || end != tt.end) {
				t.Fatalf("got (%d, %d, %v), want (%d, %d, %v)", n, end, ok, tt.n, tt.end, tt.ok)
			}
		})
	}
}
