package cluster

import (
	"fmt"
	"testing"
)

func BenchmarkEncodeRoomMessage(b *testing.B) {
	for _, size := range []int{64, 1024, 16384} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			m := &Message{Room: []byte("lobby"), From: "a00000001", Nick: "ann", User: "user-1", Data: make([]byte, size), TS: 1700000000000}
			buf := make([]byte, 0, size+128)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				buf = appendMessage(buf[:0], kindRoom, "node-a", m.Room, m)
			}
		})
	}
}

func BenchmarkDecodeRoomMessage(b *testing.B) {
	m := &Message{Room: []byte("lobby"), From: "a00000001", Nick: "ann", Data: make([]byte, 1024), TS: 1, Attachments: [][]byte{{1}}}
	enc := appendMessage(nil, kindRoom, "node-a", m.Room, m)
	var w wireMsg
	b.ReportAllocs()
	for b.Loop() {
		if err := decode(enc, &w); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishRoom measures the event loop's side of a publish:
// encoding into a pooled buffer and queueing (the writer is not running, so
// the queue is drained here).
func BenchmarkPublishRoom(b *testing.B) {
	c := &Cluster{cfg: Config{Node: "node-a"}, out: make(chan outMsg, 1)}
	m := &Message{Room: []byte("lobby"), From: "a00000001", Nick: "ann", Data: make([]byte, 256), TS: 1}
	b.ReportAllocs()
	for b.Loop() {
		c.PublishRoom(m)
		releaseBuf((<-c.out).buf)
	}
}

func BenchmarkRemoteCount(b *testing.B) {
	c := &Cluster{}
	c.rep.init()
	for i := range 10000 {
		c.rep.add(fmt.Sprintf("room-%d", i%1000), Member{ID: fmt.Sprintf("b%06d", i)})
	}
	room := []byte("room-500")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if c.RemoteCount(room) != 10 {
				b.Fatal("wrong count")
			}
		}
	})
}
