package cluster

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/history"
)

// benchHandler counts room messages (over core NATS or from the stream)
// and, as a HistoryHandler, records those with an offset like the hub.
type benchHandler struct {
	*recorder
	log  chat.History
	n    atomic.Int64
	each chan struct{} // one per message, when set
}

func (h *benchHandler) got() {
	h.n.Add(1)
	if h.each != nil {
		h.each <- struct{}{}
	}
}

func (h *benchHandler) RoomMessage(*Message)                        { h.got() }
func (h *benchHandler) UseHistory(log chat.History)                 { h.log = log }
func (h *benchHandler) KeepRemote(string, string, string, []string) {}
func (h *benchHandler) ForgetRemote(string)                         {}
func (h *benchHandler) Sequenced(m *Message, local bool) {
	if m.Offset != 0 {
		cm := chat.Message{Room: m.Room, From: m.From, Nick: m.Nick, Data: m.Data, TS: m.TS, Offset: m.Offset}
		h.log.Lock()
		h.log.Append(&cm)
		h.log.Unlock()
	}
	if !local {
		h.got()
	}
}

// BenchmarkRoomBus compares a room message's way to another node over
// core NATS (Cluster.PublishRoom) and through the JetStream history
// stream (Cluster.SequenceRoom, read back by every node with its offset),
// against an in-process NATS server with JetStream on file storage.
// "pipelined" sends b.N messages and waits for the last (throughput);
// "one-by-one" waits for each before the next (latency). Allocations are
// the whole process's: the sender, the receiver and the NATS server.
func BenchmarkRoomBus(b *testing.B) {
	s := startJetStream(b)
	data := []byte(`"` + string(make([]byte, 254)) + `"`)
	for i := 1; i < len(data)-1; i++ {
		data[i] = 'x'
	}
	m := &Message{Room: []byte("lobby"), From: "a000001", Nick: "ann", Data: data, TS: 1}
	for _, mode := range []string{"core", "jetstream"} {
		start := func(b *testing.B, tag string, each bool) (*Cluster, *benchHandler) {
			h := &benchHandler{recorder: newRecorder()}
			if each {
				h.each = make(chan struct{}, 1)
			}
			cfg := Config{URL: s.ClientURL(), Node: tag, Logger: quiet, Heartbeat: testHB, TTL: testTTL}
			var hh Handler
			if mode == "jetstream" {
				cfg.History = history.Config{Size: 100, TTL: time.Minute}
				hh = h
			} else {
				hh = &coreOnly{h}
			}
			c, err := New(cfg, hh)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.Close() })
			return c, h
		}
		send := func(c *Cluster) {
			if mode == "jetstream" {
				for !c.SequenceRoom(m) {
					time.Sleep(time.Millisecond) // queue full: let the publisher catch up
				}
			} else {
				for !c.PublishRoom(m) {
					time.Sleep(time.Millisecond)
				}
			}
		}
		b.Run(mode+"/pipelined", func(b *testing.B) {
			a, _ := start(b, "a", false)
			r, h := start(b, fmt.Sprintf("r%d", b.N), false)
			meshed(b, a, r)
			r.LocalOpened("r000001", "", "")
			r.LocalJoined("r000001", "lobby")
			eventually(b, time.Second, "a sees r's member", func() bool { return a.RemoteCount([]byte("lobby")) == 1 })
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for range b.N {
				send(a)
			}
			// Wait for the last message, or for the receiver to have
			// passed it: a flood faster than a node reads loses messages
			// (the stream trims them; NATS drops them for a slow
			// consumer), counted in lost/op.
			deadline := time.Now().Add(time.Minute)
			for h.n.Load() < int64(b.N) && time.Now().Before(deadline) {
				st := r.Stats()
				if h.n.Load()+int64(st.HistoryMissing+st.Dropped) >= int64(b.N) {
					break
				}
				time.Sleep(100 * time.Microsecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(int64(b.N)-h.n.Load())/float64(b.N), "lost/op")
		})
		b.Run(mode+"/one-by-one", func(b *testing.B) {
			a, _ := start(b, "a", false)
			r, h := start(b, fmt.Sprintf("r%d", b.N), true)
			meshed(b, a, r)
			r.LocalOpened("r000001", "", "")
			r.LocalJoined("r000001", "lobby")
			eventually(b, time.Second, "a sees r's member", func() bool { return a.RemoteCount([]byte("lobby")) == 1 })
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				send(a)
				<-h.each
			}
		})
	}
}

// coreOnly hides benchHandler's HistoryHandler methods: a node without the
// shared history.
type coreOnly struct{ h *benchHandler }

func (c *coreOnly) RoomMessage(m *Message) { c.h.got() }
func (c *coreOnly) Direct(*Message)        {}
func (c *coreOnly) User(*Message)          {}
func (c *coreOnly) All(*Message)           {}
func (c *coreOnly) Presence(*Presence)     {}
