package netpoll

import (
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"unsafe"
)

// BenchmarkCoalesce compares the two ways loop.write can send the k
// frames a connection has queued in one pass with one syscall: copy them
// into one buffer and write(2) it, or writev(2) them from where they are
// (the best case: an iovec array reused from call to call; x/sys/unix's
// Writev, which gnet's Writev calls, also allocates one beyond 8
// entries). One op is one connection's pass: k frames of size bytes to a
// real loopback TCP socket, drained by a reader.
func BenchmarkCoalesce(b *testing.B) {
	for _, size := range []int{64, 512, 2048, 8192} {
		for _, k := range []int{2, 8, 32} {
			for _, how := range []string{"copy", "writev"} {
				b.Run(fmt.Sprintf("size=%d/frames=%d/%s", size, k, how), func(b *testing.B) {
					benchCoalesce(b, size, k, how == "writev")
				})
			}
		}
	}
}

func benchCoalesce(b *testing.B, size, k int, writev bool) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, c)
		c.Close()
	}()
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	f, err := nc.(*net.TCPConn).File() // a blocking descriptor
	nc.Close()
	if err != nil {
		b.Fatal(err)
	}
	fd := int(f.Fd())
	frames := make([][]byte, k)
	for i := range frames {
		frames[i] = make([]byte, size)
	}
	iov := make([]syscall.Iovec, k)
	var buf []byte
	b.SetBytes(int64(size * k))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if writev {
			total := 0
			for j, fr := range frames {
				iov[j].Base = &fr[0]
				iov[j].SetLen(len(fr))
				total += len(fr)
			}
			n, _, errno := syscall.Syscall(syscall.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(k))
			if errno != 0 {
				b.Fatalf("writev: %v", errno)
			}
			// A signal (the Go scheduler's preemption) can cut a blocking
			// writev short: write the rest.
			for j := 0; int(n) < total && j < k; j++ {
				fr := frames[j]
				if int(n) >= len(fr) {
					n -= uintptr(len(fr))
					total -= len(fr)
					continue
				}
				if _, err := syscall.Write(fd, fr[n:]); err != nil {
					b.Fatal(err)
				}
				total -= len(fr)
				n = 0
			}
			continue
		}
		buf = buf[:0]
		for _, fr := range frames {
			buf = append(buf, fr...)
		}
		for rest := buf; len(rest) > 0; {
			n, err := syscall.Write(fd, rest)
			if err != nil {
				b.Fatal(err)
			}
			rest = rest[n:]
		}
	}
	b.StopTimer()
	f.Close()
	<-done
}
