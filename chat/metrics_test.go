package chat_test

import (
	"testing"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/metrics"
)

// metricValue returns the value of the series name{label=value} ("" label:
// no label) from m's registry: a counter's or gauge's value, a histogram's
// sample count, and for name+"_sum" a histogram's sample sum.
func metricValue(t *testing.T, m *metrics.Metrics, name, label, value string) float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := false
	if n := len(name) - len("_sum"); n > 0 && name[n:] == "_sum" {
		name, sum = name[:n], true
	}
	for _, fam := range fams {
		if fam.GetName() != name {
			continue
		}
	series:
		for _, s := range fam.GetMetric() {
			if label != "" {
				for _, l := range s.GetLabel() {
					if l.GetName() == label && l.GetValue() != value {
						continue series
					}
				}
			}
			switch {
			case s.GetCounter() != nil:
				return s.GetCounter().GetValue()
			case s.GetGauge() != nil:
				return s.GetGauge().GetValue()
			case s.GetHistogram() != nil && sum:
				return s.GetHistogram().GetSampleSum()
			case s.GetHistogram() != nil:
				return float64(s.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

// TestMetrics: requests, error replies by code, room memberships and
// broadcast sizes are counted as the hub applies requests.
func TestMetrics(t *testing.T) {
	m := metrics.New(metrics.Options{})
	f := newHub(t, chat.Config{Presence: true, Metrics: m})
	bob := f.openAs(2, kindNative, identity(t, "bob", []string{"lobby"}))
	a, b, c := f.open(0), f.open(1), f.open(2)
	requests := 0
	do := func(cl *client, req chat.Request) gotReply { requests++; return f.do(cl, req) }

	for _, cl := range []*client{a, b, c} {
		do(cl, reqJoin("lobby")).wantAck(t)
	}
	do(a, reqJoin("lobby")).wantAck(t) // already a member: no new membership
	do(a, reqJoin("r2")).wantAck(t)
	if got := metricValue(t, m, "chatgate_room_members", "", ""); got != 4 {
		t.Errorf("room_members %v after 4 memberships, want 4", got)
	}
	do(b, reqLeave("lobby")).wantAck(t)
	f.hub.Close(a.s) // leaves lobby and r2
	if got := metricValue(t, m, "chatgate_room_members", "", ""); got != 1 {
		t.Errorf("room_members %v, want 1 (c in lobby)", got)
	}

	do(b, reqJoin("lobby")).wantAck(t)
	do(c, reqSendRoom(t, "lobby", `1`)).wantAck(t) // 1 recipient
	do(b, reqJoin("solo")).wantAck(t)
	do(b, reqSendRoom(t, "solo", `1`)).wantAck(t) // nobody: no broadcast
	f.hub.DeliverRoom(&chat.Message{Room: []byte("lobby"), From: "rmt0000001", Data: []byte(`1`)})
	if got := metricValue(t, m, "chatgate_broadcast_fanout_size", "", ""); got != 2 {
		t.Errorf("broadcast_fanout_size count %v, want 2", got)
	}
	if got := metricValue(t, m, "chatgate_broadcast_fanout_size_sum", "", ""); got != 3 {
		t.Errorf("broadcast_fanout_size sum %v, want 1 + 2", got)
	}

	hubErrors := []struct {
		code string
		cl   *client
		req  chat.Request
	}{
		{chat.CodeInvalidName, b, reqNick("")},
		{chat.CodeInvalidRoom, b, reqJoin("")},
		{chat.CodeNotMember, b, reqMembers("nowhere")},
		{chat.CodeNoSuchConnection, b, reqSendTo(t, "nobody", `1`)},
		{chat.CodeForbidden, bob, reqJoin("secret")},
		{chat.CodeUnknownType, b, chat.Request{Op: chat.OpInvalid}},
	}
	for _, e := range hubErrors {
		do(e.cl, e.req).wantErr(t, e.code)
	}
	failed := []*chat.Error{chat.ErrBadJSON, chat.ErrMissingRoom, chat.ErrUnsupported, chat.ErrRateLimited}
	for _, e := range failed {
		req := chat.Request{}
		f.hub.Fail(b.s, &req, e)
		requests++
	}
	for _, e := range hubErrors {
		if got := metricValue(t, m, "chatgate_errors_total", "code", e.code); got != 1 {
			t.Errorf("errors_total{code=%q} = %v, want 1", e.code, got)
		}
	}
	for _, e := range failed {
		if got := metricValue(t, m, "chatgate_errors_total", "code", e.Code); got != 1 {
			t.Errorf("errors_total{code=%q} = %v, want 1 (Hub.Fail)", e.Code, got)
		}
	}
	if got := metricValue(t, m, "chatgate_errors_total", "code", "other"); got != 0 {
		t.Errorf("errors_total{code=\"other\"} = %v, want 0", got)
	}
	if got := metricValue(t, m, "chatgate_messages_received_total", "", ""); got != float64(requests) {
		t.Errorf("messages_received_total %v, want %d (Handle and Fail calls)", got, requests)
	}
}
