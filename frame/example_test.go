package frame_test

import (
	"fmt"

	"github.com/chatgate/chatgate/frame"
	"github.com/gobwas/ws"
)

type printer struct{}

func (printer) OnMessage(op ws.OpCode, payload []byte) error {
	fmt.Printf("message op=%d %q\n", op, payload)
	return nil
}

func (printer) OnControl(op ws.OpCode, payload []byte) error {
	fmt.Printf("control op=%d %q\n", op, payload)
	return nil
}

func ExampleReader() {
	// A masked client text frame "Hi" split across two reads, then a ping
	// and a frame with a reserved opcode.
	stream := []byte{
		0x81, 0x82, 1, 2, 3, 4, 'H' ^ 1, 'i' ^ 2,
		0x89, 0x80, 0, 0, 0, 0,
		0x83, 0x80, 0, 0, 0, 0,
	}
	var r frame.Reader
	r.Init(1 << 20)
	defer r.Reset()
	for _, read := range [][]byte{stream[:5], stream[5:]} {
		if err := r.Feed(read, printer{}); err != nil {
			fmt.Println(err, frame.CloseCode(err))
			fmt.Printf("reply % x\n", frame.CompiledClose(frame.CloseCode(err)))
		}
	}
	// Output:
	// message op=1 "Hi"
	// control op=9 ""
	// frame: reserved opcode 1002
	// reply 88 02 03 ea
}

func ExampleAppendClose() {
	out := frame.AppendClose(nil, 4001, "slow consumer")
	fmt.Printf("% x\n", out)
	// Output:
	// 88 0f 0f a1 73 6c 6f 77 20 63 6f 6e 73 75 6d 65 72
}
