package native_test

import (
	"errors"
	"fmt"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/native"
)

func ExampleDecode() {
	var req chat.Request
	err := native.Decode([]byte(`{"type":"send","id":7,"room":"lobby","data":{"text":"hi"}}`), &req)
	fmt.Println(err, req.Op, string(req.ID), string(req.Room), string(req.Data))

	// A failed request still yields its id, so the error reply can echo it.
	err = native.Decode([]byte(`{"type":"join","id":"j1"}`), &req)
	var ce *chat.Error
	if errors.As(err, &ce) {
		reply := native.Codec{}.AppendReply(nil, &chat.Reply{ID: req.ID, Err: ce})
		fmt.Println(string(reply))
	}
	// Output:
	// <nil> send 7 lobby {"text":"hi"}
	// {"type":"error","id":"j1","code":"missing_field","message":"missing \"room\""}
}

func ExampleCodec_AppendMessage() {
	var c native.Codec
	buf := make([]byte, 0, 256) // reused for every payload: no allocation
	buf = c.AppendMessage(buf[:0], &chat.Message{
		Room: []byte("lobby"),
		From: "c1",
		Nick: "<alice>",
		Data: []byte(`{"text":"hi"}`),
		TS:   1700000000000,
	})
	fmt.Println(string(buf))
	buf = c.AppendMessage(buf[:0], &chat.Message{From: "c1", Data: []byte(`"psst"`), TS: 1700000000001})
	fmt.Println(string(buf))
	// Output:
	// {"type":"message","room":"lobby","from":"c1","nick":"\u003calice\u003e","data":{"text":"hi"},"ts":1700000000000}
	// {"type":"message","from":"c1","nick":"","data":"psst","ts":1700000000001}
}
