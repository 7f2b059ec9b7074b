package payload

import (
	"bytes"
	"strconv"
	"testing"
)

func TestTextAndAttachments(t *testing.T) {
	s := Acquire()
	defer s.Release()
	*s.Text() = append(*s.Text(), `451-["m",{"_placeholder":true,"num":0}]`...)
	s.AddAttachment([]byte{1, 2, 3})
	s.AddAttachment(nil)
	s.AddAttachment([]byte{4})
	if got := string(s.Payload()); got != `451-["m",{"_placeholder":true,"num":0}]` {
		t.Fatalf("Payload = %q", got)
	}
	if s.Attachments() != 3 {
		t.Fatalf("Attachments = %d", s.Attachments())
	}
	for i, want := range [][]byte{{1, 2, 3}, {}, {4}} {
		if got := s.Attachment(i); !bytes.Equal(got, want) {
			t.Errorf("Attachment(%d) = %v, want %v", i, got, want)
		}
	}
}

func TestSetHeaderFramesInPlace(t *testing.T) {
	s := New([]byte("hello"))
	defer s.Release()
	if s.Framed() != nil {
		t.Fatal("Framed before SetHeader")
	}
	s.SetHeader([]byte{0x81, 5})
	if got := s.Framed(); !bytes.Equal(got, []byte("\x81\x05hello")) {
		t.Fatalf("Framed = %q", got)
	}
	if got := string(s.Payload()); got != "hello" {
		t.Fatalf("Payload after SetHeader = %q", got)
	}
}

func TestSetFramedOverridesHeader(t *testing.T) {
	s := New([]byte("x"))
	defer s.Release()
	s.SetHeader([]byte{0x81, 1})
	s.SetFramed(func(dst []byte) []byte { return append(dst, "framed"...) })
	if got := string(s.Framed()); got != "framed" {
		t.Fatalf("Framed = %q", got)
	}
}

func TestReleaseTwicePanics(t *testing.T) {
	s := New([]byte("x"))
	s.Retain(1)
	s.Release()
	s.Release()
	defer func() {
		if recover() == nil {
			t.Fatal("no panic on a third Release")
		}
	}()
	s.Release()
}

func TestTooManyAttachmentsDropped(t *testing.T) {
	s := Acquire()
	defer s.Release()
	for i := 0; i < MaxAttachments+5; i++ {
		s.AddAttachment([]byte{byte(i)})
	}
	if s.Attachments() != MaxAttachments {
		t.Fatalf("Attachments = %d, want %d", s.Attachments(), MaxAttachments)
	}
}

func TestAcquireReleaseAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	text := bytes.Repeat([]byte("x"), 200)
	// Warm the pools.
	for i := 0; i < 10; i++ {
		s := New(text)
		s.SetHeader([]byte{0x81, 126, 0, 200})
		s.Release()
	}
	allocs := testing.AllocsPerRun(1000, func() {
		s := New(text)
		s.SetHeader([]byte{0x81, 126, 0, 200})
		s.Retain(3)
		for i := 0; i < 4; i++ {
			s.Release()
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per payload, want 0", allocs)
	}
}

// BenchmarkSharedEncode encodes a broadcast once, frames it for WebSocket
// in place and hands it to four event loops: acquire, append, header,
// retain, release by every holder.
func BenchmarkSharedEncode(b *testing.B) {
	for _, size := range []int{64, 1024, 16 << 10} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			text := bytes.Repeat([]byte("x"), size)
			hdr := []byte{0x81, 126, byte(size >> 8), byte(size)}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				s := New(text)
				s.SetHeader(hdr)
				s.Retain(3)
				for range 4 {
					s.Release()
				}
			}
		})
	}
}
