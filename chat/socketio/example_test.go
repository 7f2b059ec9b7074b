package socketio_test

import (
	"errors"
	"fmt"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/socketio"
)

// The read path of one WebSocket text message, and the acknowledgement.
func Example() {
	payload := []byte(`4212["join","lobby"]`)

	t, data, err := socketio.ParseEIO(payload)
	if err != nil || t != socketio.EIOMessage {
		fmt.Println("close:", err)
		return
	}
	var p socketio.Packet
	if err := socketio.ParsePacket(data, &p); err != nil {
		fmt.Println("close:", err)
		return
	}
	var req chat.Request
	err = socketio.DecodeEvent(&p, nil, &req)
	var ce *chat.Error
	switch {
	case errors.As(err, &ce):
		fmt.Println("error ack:", ce.Code)
	case err != nil:
		fmt.Println("close:", err)
	default:
		fmt.Printf("%v %s, ack id %s\n", req.Op, req.Room, req.ID)
	}

	// What the hub answers, as the codec encodes it.
	reply := chat.Reply{ID: req.ID, Op: req.Op, Room: req.Room, Count: 2}
	fmt.Printf("%s\n", socketio.Codec{}.AppendReply(nil, &reply))
	// Output:
	// join lobby, ack id 12
	// 4312[{"room":"lobby","count":2}]
}

func ExampleParsePacket() {
	var p socketio.Packet
	err := socketio.ParsePacket([]byte(`51-/chat,7["upload",{"_placeholder":true,"num":0}]`), &p)
	fmt.Println(err)
	fmt.Printf("%v attachments=%d nsp=%s id=%d data=%s\n", p.Type, p.Attachments, p.Namespace, p.ID, p.Data)

	err = socketio.ParsePacket([]byte(`2[1]`), &p)
	fmt.Println(err)
	// Output:
	// <nil>
	// BINARY_EVENT attachments=1 nsp=/chat id=7 data=["upload",{"_placeholder":true,"num":0}]
	// socketio: payload kind not allowed for packet type
}

func ExampleAppendPayloadPacket() {
	var body []byte
	body = socketio.AppendPayloadPacket(body, []byte(`451-["img",{"_placeholder":true,"num":0}]`), false)
	body = socketio.AppendPayloadPacket(body, []byte{1, 2, 3}, true)
	fmt.Printf("%q\n", body)

	_ = socketio.SplitPayload(body, func(packet []byte) error {
		binary, data, err := socketio.DecodePollingPacket(packet)
		fmt.Printf("%v %q %v\n", binary, data, err)
		return nil
	})
	// Output:
	// "451-[\"img\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID"
	// false "451-[\"img\",{\"_placeholder\":true,\"num\":0}]" <nil>
	// true "\x01\x02\x03" <nil>
}

func ExampleInlineAttachments() {
	data := []byte(`{"text":"hi","img":{"_placeholder":true,"num":0}}`)
	out, err := socketio.InlineAttachments(nil, data, [][]byte{{1, 2, 3, 4}})
	fmt.Println(string(out), err)
	// Output:
	// {"text":"hi","img":{"_binary":"AQIDBA=="}} <nil>
}
