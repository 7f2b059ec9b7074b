// Package e2e holds chatgate's end-to-end tests: they build the real
// gateway binary, start it on a loopback port and talk to it over real TCP
// with independent client implementations (gorilla/websocket and raw
// sockets; the Node `ws` tests live in tests/node).
package e2e
