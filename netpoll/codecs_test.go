package netpoll

import (
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/native"
)

// Codecs returns the codecs the tests' hubs use: netpoll itself serves
// only the native protocol (Socket.IO is package engineio's).
func Codecs() []chat.Codec { return []chat.Codec{KindNative: native.Codec{}} }
