/*
Package frame reads and writes server-side WebSocket frames (RFC 6455 §5)
on top of the github.com/gobwas/ws types. It is pure: no I/O, no goroutines,
no event loop. The netpoll package pushes the bytes it reads into a Reader
and writes the bytes built here.

Reading:

	var r frame.Reader
	r.Init(maxMessage) // once per connection; the zero value uses 64 KiB

	// On every read of the connection's event loop:
	if err := r.Feed(data, handler); err != nil {
		conn.Write(frame.CompiledClose(frame.CloseCode(err)))
		conn.Close()
	}

	// When the connection closes:
	r.Reset()

Writing:

	out = frame.AppendFrame(out, ws.OpText, msg)
	out = append(out, frame.PingFrame...)

	// A header for a payload that already sits in a buffer (a shared
	// broadcast, see package payload):
	hdr := frame.AppendHeader(scratch[:0], ws.OpText, len(msg))

# Why a push parser

An event loop serves thousands of connections and must never block, so the
Reader cannot pull bytes from an io.Reader as ws.ReadHeader does. Instead
the loop pushes whatever arrived, which may be half a header or several
frames, and the Reader keeps a small state between calls: up to 14 header
bytes in a fixed array, the bytes left in the current payload, the mask
offset (ws.Cipher unmasks a payload in chunks), the open message and the
UTF-8 validator. Nothing is allocated per connection while it is idle.

The Reader checks each header as its bytes arrive, in the order of the
bytes, so a violation is reported with the byte that shows it and a message
over the limit is refused from its header, before its payload is read or
buffered (RFC 6455 §10.4). Text is validated as it arrives and refused as
soon as it cannot become valid UTF-8 (§8.1), even in the middle of a
fragmented message. Because checks depend only on the bytes seen, not on
how they were split, any split of a stream yields the same messages and the
same error; the tests and fuzz targets check exactly that.

# Zero copy and pooling

Chat messages are small and usually arrive in one read, so the common case
is a whole unfragmented frame inside the bytes passed to Feed. It is
unmasked in place and handed to the Handler as a subslice, without copying
or allocating. Only a message that is fragmented (§5.4) or cut by the end of
a read is copied into a buffer from a bytebufferpool.Pool, acquired with its
first byte and returned as soon as the message is delivered. Control frames
cut by a read are treated the same, with a pool of their own. Payloads
handed to a Handler are therefore valid only until the method returns.

Outgoing frames are appended to caller-owned slices (AppendHeader,
AppendFrame, AppendClose) or taken from frames compiled once (PingFrame,
CloseFrame, CompiledClose). A broadcast is encoded once into a
payload.Shared, which reserves room in front of its text where the
WebSocket transport writes the header from AppendHeader, once, before
every event loop writes the same bytes.

# Errors

Protocol violations are *Error values carrying the close code to send
(1002, 1007 or 1009). CloseCode maps any error, including a Handler's, to
the close code; it is the single place where that mapping lives.
*/
package frame
