package jsontext

import "testing"

func BenchmarkAppendString(b *testing.B) {
	tests := []struct{ name, in string }{
		{name: "ascii", in: "general-discussion-room"},
		{name: "utf8", in: "café für alle 😀 ✓"},
		{name: "escapes", in: "say \"hi\" <b>\n"},
	}
	for _, tc := range tests {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.in)))
			var dst []byte
			for b.Loop() {
				dst = AppendString(dst[:0], tc.in)
			}
		})
	}
}
