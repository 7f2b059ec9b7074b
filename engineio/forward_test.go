package engineio

import (
	"bytes"
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
)

// TestClusterSID: in cluster mode a sid is the node tag, a dot and the
// random part, which keeps its 15 random bytes (120 bits); sidNode reads
// the tag back, and a sid without one names no node.
func TestClusterSID(t *testing.T) {
	s := &Server{node: "node-A_1"}
	seen := map[string]bool{}
	for range 1000 {
		sid := s.newSID()
		if got := sidNode(sid); got != "node-A_1" {
			t.Fatalf("sidNode(%q) = %q", sid, got)
		}
		rnd := strings.TrimPrefix(sid, "node-A_1"+sidSep)
		b, err := base64.RawURLEncoding.DecodeString(rnd)
		if err != nil || len(b) != 15 {
			t.Fatalf("random part %q: %d bytes (%v), want 15", rnd, len(b), err)
		}
		if seen[rnd] {
			t.Fatalf("random part %q repeated", rnd)
		}
		seen[rnd] = true
	}
	single := &Server{}
	if sid := single.newSID(); sidNode(sid) != "" || len(sid) != 20 {
		t.Fatalf("single-node sid %q: want 20 characters and no node", sid)
	}
	for sid, want := range map[string]string{"": "", ".x": "", "a.b": "a", "abc": "", "a.b.c": "a.b"} {
		if got := sidNode(sid); got != want {
			t.Errorf("sidNode(%q) = %q, want %q", sid, got, want)
		}
	}
}

// TestForwardCodec: requests and answers come back as they were encoded,
// and every truncation or oversize field is refused, never a panic.
func TestForwardCodec(t *testing.T) {
	req := forwardReq{post: true, sid: "na.abc", origin: []byte("https://x"), authorization: []byte("Bearer t"),
		query: []byte("EIO=4&transport=polling&sid=na.abc"), contentType: []byte("text/plain"), body: []byte(`42["send",{}]`)}
	b := req.append(nil)
	var got forwardReq
	if err := got.decode(b, 64); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, req) {
		t.Fatalf("request: got %+v, want %+v", got, req)
	}
	if err := got.decode(b, 3); err == nil {
		t.Fatal("a body over the limit decoded")
	}
	for i := range len(b) {
		if err := got.decode(b[:i], 64); err == nil {
			t.Fatalf("request truncated to %d bytes decoded", i)
		}
	}
	if err := got.decode(append(bytes.Clone(b), 0), 64); err == nil {
		t.Fatal("request with trailing bytes decoded")
	}
	empty := forwardReq{sid: ""}
	if err := got.decode(empty.append(nil), 64); err == nil {
		t.Fatal("request without a sid decoded")
	}

	res := forwardRes{status: 200, keep: true, contentType: contentTypeText,
		header: []string{"Access-Control-Allow-Origin: https://x", "Vary: Origin"}, body: []byte("4hello")}
	rb := res.append(nil)
	var gr forwardRes
	if err := gr.decode(rb); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gr, res) {
		t.Fatalf("answer: got %+v, want %+v", gr, res)
	}
	for i := range len(rb) {
		if err := gr.decode(rb[:i]); err == nil {
			t.Fatalf("answer truncated to %d bytes decoded", i)
		}
	}
	// A forged answer cannot split the client's response.
	for _, bad := range []forwardRes{
		{status: 200, header: []string{"X: a\r\nSet-Cookie: b"}},
		{status: 200, header: []string{"no colon"}},
		{status: 200, contentType: "text/plain\r\nX: y"},
		{status: 99},
	} {
		if err := gr.decode(bad.append(nil)); err == nil {
			t.Errorf("forged answer %+v decoded", bad)
		}
	}
}

// FuzzForwardDecode: no input panics the decoders of forwarded messages.
func FuzzForwardDecode(f *testing.F) {
	f.Add((&forwardReq{sid: "a.b", body: []byte("x")}).append(nil))
	f.Add((&forwardRes{status: 400, header: []string{"A: b"}}).append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r forwardReq
		_ = r.decode(b, 1<<16)
		var a forwardRes
		_ = a.decode(b)
	})
}
