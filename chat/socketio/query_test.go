package socketio

import (
	"errors"
	"net/url"
	"testing"
)

// refParseQueryAllow is ParseQueryAllow as it was written on net/url
// alone: the reference scanQuery must read every query as.
func refParseQueryAllow(rawQuery []byte, allowEIO3 bool) (Query, error) {
	v, err := url.ParseQuery(string(rawQuery))
	if err != nil {
		return Query{}, ErrBadRequest
	}
	q := Query{EIO: 4, Transport: v.Get("transport"), SID: v.Get("sid")}
	switch {
	case allowEIO3 && v.Get("EIO") == "3":
		q.EIO = 3
	case v.Get("EIO") != "4":
		return Query{}, ErrUnsupportedProtocol
	}
	if q.Transport != "websocket" && q.Transport != "polling" {
		return Query{}, ErrUnknownTransport
	}
	if q.EIO == 3 && v.Has("j") {
		return Query{}, ErrJSONP
	}
	return q, nil
}

// TestParseQueryHandshakeDoesNotAllocate: the query of a handshake (no
// sid, no escapes) is read in place: no garbage per Socket.IO handshake
// (net/url's map, its strings and slices were about 60 bytes).
func TestParseQueryHandshakeDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under -race")
	}
	for _, allow := range []bool{false, true} {
		raw := []byte("EIO=4&transport=websocket&t=PXk2zQa&token=eyJhbGciOi.eyJzdWIiOi.c2ln")
		var q Query
		var err error
		if n := testing.AllocsPerRun(100, func() { q, err = ParseQueryAllow(raw, allow) }); n != 0 {
			t.Errorf("allowEIO3=%v: %v allocations per handshake query, want 0", allow, n)
		}
		if err != nil || q != (Query{EIO: 4, Transport: "websocket"}) {
			t.Errorf("allowEIO3=%v: got %+v, %v", allow, q, err)
		}
	}
}

// FuzzParseQuery: ParseQuery and ParseQueryAllow read every query as
// net/url does (refParseQueryAllow): the same Query, the same error.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"EIO=4&transport=polling&t=N8hyd6w",
		"EIO=4&transport=websocket&sid=lv_VI97HAXpY6yYWAAAC",
		"transport=polling&EIO=4&sid=a%2Fb",
		"EIO=4&EIO=3&transport=polling",
		"EIO=3&transport=polling&j=0",
		"EIO=3&transport=polling&b64=1",
		"EIO=4&transport=polling&sid=%zz",
		"EIO=4&transport=polling;x=1",
		"EI%4F=4&transport=web%73ocket",
		"EIO=4&transport=polling&sid=a+b",
		"&&EIO=4&=x&sid&transport=polling&sid=b",
		"",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, raw []byte, allow bool) {
		want, wantErr := refParseQueryAllow(raw, allow)
		got, err := ParseQueryAllow(raw, allow)
		if got != want || !errors.Is(err, wantErr) || (err == nil) != (wantErr == nil) {
			t.Fatalf("ParseQueryAllow(%q, %v) = %+v, %v; net/url reads %+v, %v", raw, allow, got, err, want, wantErr)
		}
		if !allow {
			got, err = ParseQuery(raw)
			if got != want || !errors.Is(err, wantErr) {
				t.Fatalf("ParseQuery(%q) = %+v, %v; net/url reads %+v, %v", raw, got, err, want, wantErr)
			}
		}
	})
}
