package metrics

import (
	"testing"
	"time"
)

// BenchmarkHotPath measures each method an event loop calls, alone
// (uncontended) and from every P at once (the counter's cache line shared by
// all loops, the worst case). Every case must report 0 allocs/op.
func BenchmarkHotPath(b *testing.B) {
	m := New(Options{})
	cases := []struct {
		name string
		fn   func(i int)
	}{
		{"MessagesDelivered", func(i int) { m.MessagesDelivered(64) }},
		{"MessagesReceived", func(i int) { m.MessagesReceived(1) }},
		{"BytesSent", func(i int) { m.BytesSent(4096) }},
		{"BytesReceived", func(i int) { m.BytesReceived(512) }},
		{"Closed", func(i int) { m.Closed(CloseCode(1000 + i&15)) }},
		{"Opened", func(i int) { m.Opened() }},
		{"Handshake", func(i int) { m.Handshake(TransportWebSocket) }},
		{"HandshakeFailed", func(i int) { m.HandshakeFailed(HandshakeStatus(400 + i&31)) }},
		{"JoinedLeft", func(i int) { m.Joined(); m.Left() }},
		{"Broadcast", func(i int) { m.Broadcast(i & 0xffff) }},
		{"ObserveDeliveryLatency", func(i int) { m.ObserveDeliveryLatency(time.Duration(i&0xfffff) * time.Microsecond) }},
		{"SlowConsumerClosed", func(i int) { m.SlowConsumerClosed() }},
		{"Error", func(i int) { m.Error(errorCodes[i%len(errorCodes)]) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				c.fn(i)
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					c.fn(i)
				}
			})
		})
	}
}

// BenchmarkNil is the cost of metrics turned off (a nil *Metrics).
func BenchmarkNil(b *testing.B) {
	var m *Metrics
	b.ReportAllocs()
	for b.Loop() {
		m.MessagesDelivered(64)
		m.BytesSent(4096)
		m.Closed(CloseNormal)
	}
}

// TestHotPathAllocs keeps the zero-allocation property under go test, not
// only in benchmark output.
func TestHotPathAllocs(t *testing.T) {
	m := New(Options{})
	for _, nm := range []*Metrics{m, nil} {
		allocs := testing.AllocsPerRun(1000, func() {
			m := nm
			m.Opened()
			m.Closed(CloseCode(1001))
			m.Handshake(TransportSocketIO)
			m.HandshakeFailed(HandshakeStatus(404))
			m.Joined()
			m.Left()
			m.MessagesReceived(1)
			m.MessagesDelivered(100)
			m.BytesReceived(100)
			m.BytesSent(100)
			m.Broadcast(100)
			m.ObserveDeliveryLatency(time.Millisecond)
			m.SlowConsumerClosed()
			m.SlowConsumerDropped()
			m.Error("invalid_room")
			m.SetReady(true)
			m.SetDraining(false)
		})
		if allocs != 0 {
			t.Errorf("hot path (nil=%v): %v allocs per run, want 0", nm == nil, allocs)
		}
	}
}
