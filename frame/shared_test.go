package frame

import (
	"bytes"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/gobwas/ws"
)

func TestSharedSeal(t *testing.T) {
	for _, size := range []int{0, 1, 125, 126, 65535, 65536, 70000} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			payload := bytes.Repeat([]byte{'p'}, size)
			s := AcquireShared()
			if s.Bytes() != nil {
				t.Errorf("Bytes() before Seal is not nil")
			}
			s.AppendPayload(payload[:size/2])
			s.AppendPayloadString(string(payload[size/2:]))
			if !bytes.Equal(s.Payload(), payload) {
				t.Fatalf("Payload() before Seal differs")
			}
			s.Seal(ws.OpText)
			s.Seal(ws.OpBinary) // no-op
			want := AppendFrame(nil, ws.OpText, payload)
			if !bytes.Equal(s.Bytes(), want) {
				t.Fatalf(
					"Bytes() = % x...; want % x...",
					s.Bytes()[:min(12, len(s.Bytes()))], want[:min(12, len(want))])
			}
			if !bytes.Equal(s.Payload(), payload) {
				t.Errorf("Payload() after Seal differs")
			}
			s.Release()
		})
	}
}

func TestSharedMultipleFrames(t *testing.T) {
	s := AcquireShared()
	fmt.Fprintf(s, `451-["file",{"_placeholder":true,"num":%d}]`, 0)
	pb := s.PayloadBuffer()
	*pb = strconv.AppendInt(*pb, 7, 10)
	s.Seal(ws.OpText)
	s.AppendFrame(ws.OpBinary, []byte{1, 2, 3})
	s.AppendFrame(ws.OpBinary, bytes.Repeat([]byte{9}, 300))

	r := bytes.NewReader(s.Bytes())
	var got []string
	for r.Len() > 0 {
		f, err := ws.ReadFrame(r)
		if err != nil {
			t.Fatal(err)
		}
		if !f.Header.Fin || f.Header.Masked {
			t.Errorf(
				"header %+v",
				f.Header)
		}
		got = append(got, fmt.Sprintf("%s:%d:%.3q", opName(f.Header.OpCode), len(f.Payload), f.Payload))
	}
	want := []string{
		`text:43:"451"`,
		`binary:3:"\x01\x02\x03"`,
		`binary:300:"\t\t\t"`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf(
			"frames = %q; want %q",
			got, want)
	}
	if string(s.Payload()) != `451-["file",{"_placeholder":true,"num":0}]7` {
		t.Errorf(
			"Payload() = %q",
			s.Payload())
	}
	s.Release()
}

func TestSharedNewSharedFrame(t *testing.T) {
	s := NewSharedFrame(ws.OpBinary, []byte("abc"))
	if want := AppendFrame(nil, ws.OpBinary, []byte("abc")); !bytes.Equal(s.Bytes(), want) {
		t.Errorf(
			"Bytes() = %q; want %q",
			s.Bytes(), want)
	}
	s.Release()
}

// TestSharedConcurrentRelease hands one frame to several goroutines, as a
// broadcast hands it to event loops; run it with -race.
func TestSharedConcurrentRelease(t *testing.T) {
	const loops = 8
	for range 100 {
		s := NewSharedFrame(ws.OpText, []byte("broadcast"))
		want := AppendFrame(nil, ws.OpText, []byte("broadcast"))
		s.Retain(loops - 1)
		var wg sync.WaitGroup
		for range loops {
			wg.Go(func() {
				if !bytes.Equal(s.Bytes(), want) {
					t.Errorf("corrupt shared frame")
				}
				s.Release()
			})
		}
		wg.Wait()
	}
}

func TestSharedDoubleRelease(t *testing.T) {
	s := AcquireShared()
	s.Retain(1)
	s.Release()
	s.Release() // last
	defer func() {
		if recover() == nil {
			t.Errorf("double Release did not panic")
		}
	}()
	s.Release()
}

func TestSharedAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	payload := bytes.Repeat([]byte{'x'}, 512)
	encode := func() {
		s := AcquireShared()
		s.AppendPayload(payload)
		s.Seal(ws.OpText)
		s.Retain(3)
		for range 4 {
			_ = s.Bytes()
			s.Release()
		}
	}
	for range 10 {
		encode() // warm up the pools
	}
	if n := testing.AllocsPerRun(100, encode); n != 0 {
		t.Errorf(
			"Acquire, append, Seal, Release: %v allocs; want 0",
			n)
	}
}
