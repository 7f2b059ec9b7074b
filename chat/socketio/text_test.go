package socketio

import (
	"testing"

	"github.com/chatgate/chatgate/chat"
)

// TestDecodeEventText: names, rooms, ids and event names that are not text
// (lone surrogate escapes, invalid UTF-8) are refused, not collapsed to
// U+FFFD; a real U+FFFD and escaped pairs pass; data is passed on as is.
func TestDecodeEventText(t *testing.T) {
	tests := []struct {
		in   string
		err  error
		op   chat.Op
		name string
		room string
	}{
		{in: `2["nick","\ud800"]`, err: chat.ErrNickText, op: chat.OpNick},
		{in: `2["nick","a\udfffb"]`, err: chat.ErrNickText, op: chat.OpNick},
		{in: "2[\"nick\",\"\xff\"]", err: chat.ErrNickText, op: chat.OpNick},
		{in: `2["join","\ud800"]`, err: chat.ErrRoomText, op: chat.OpJoin},
		{in: `2["leave","\udc00\ud800"]`, err: chat.ErrRoomText, op: chat.OpLeave},
		{in: `2["members","\udbff"]`, err: chat.ErrRoomText, op: chat.OpMembers},
		{in: `2["message",{"room":"\ud800","data":1}]`, err: chat.ErrRoomText, op: chat.OpSend},
		{in: `2["message",{"to":"\ud800","data":1}]`, err: chat.ErrBadText, op: chat.OpSend},
		{in: `2["message",{"user":"\udfff","data":1}]`, err: chat.ErrBadText, op: chat.OpSend},
		{in: `2["\ud800",1]`, err: chat.ErrBadText, op: chat.OpRPC},
		{in: `2["join","\ufffd"]`, op: chat.OpJoin, room: "\ufffd"},
		{in: "2[\"join\",\"\ufffd\"]", op: chat.OpJoin, room: "\ufffd"},
		{in: `2["nick","\ud83d\ude00"]`, op: chat.OpNick, name: "😀"},
		{in: `2["message",{"room":"r","data":"\ud800"}]`, op: chat.OpSend, room: "r"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			var p Packet
			if err := ParsePacket([]byte(tc.in), &p); err != nil {
				t.Fatal(err)
			}
			var req chat.Request
			err := DecodeEvent(&p, nil, &req)
			if tc.err == nil && err != nil || tc.err != nil && err != tc.err {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if req.Op != tc.op {
				t.Fatalf("op %v, want %v", req.Op, tc.op)
			}
			if err == nil && (string(req.Name) != tc.name || string(req.Room) != tc.room) {
				t.Fatalf("name %q room %q, want %q %q", req.Name, req.Room, tc.name, tc.room)
			}
		})
	}
}
