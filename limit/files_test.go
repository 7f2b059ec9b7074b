package limit

import "testing"

func TestCapByOpenFiles(t *testing.T) {
	for _, tt := range []struct {
		max    int
		nofile uint64
		want   int
		capped bool
	}{
		{100_000, 20_000, 19_600, true}, // the default above this machine's limit
		{-1, 20_000, 19_600, true},      // unlimited is not above the files
		{10_000, 20_000, 10_000, false}, // below: kept
		{19_600, 20_000, 19_600, false},
		{100_000, 1_024, 768, true}, // the reserve's minimum
		{100_000, 300, 150, true},   // at most half kept back
		{5, 1_048_576, 5, false},
		{-1, 1 << 62, (1 << 62) - (1<<62)/50, true},
	} {
		got, capped := CapByOpenFiles(tt.max, tt.nofile)
		if got != tt.want || capped != tt.capped {
			t.Errorf("CapByOpenFiles(%d, %d) = %d, %v; want %d, %v", tt.max, tt.nofile, got, capped, tt.want, tt.capped)
		}
	}
}

func TestOpenFiles(t *testing.T) {
	n, ok := OpenFiles()
	if !ok || n == 0 {
		t.Fatalf("OpenFiles() = %d, %v: this process has an open-files limit", n, ok)
	}
}
