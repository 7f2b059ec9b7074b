// Package netpoll is chatgate's network edge: the only package that imports
// gnet. Its event loops (epoll, one per core by default) accept TCP
// connections, parse the HTTP/1.1 request head as it arrives, answer plain
// HTTP requests, complete the WebSocket upgrade with gobwas/ws, feed frames
// to the incremental frame reader and write the replies.
//
// There is no goroutine per connection. Each connection's state machine
// (HTTP head → WebSocket open → closing) runs only on the loop that owns it.
// Work for a connection on another loop — a room broadcast, a direct
// message — goes through that loop's mailbox: one gnet EventLoop.Execute per
// batch, never a write from a foreign goroutine. When the loop drains its
// mailbox it queues every frame for every recipient first and then writes
// each recipient once with writev, so a burst of broadcasts costs one
// system call per connection, not one per message.
//
// Timeouts (handshake, idle ping, ping timeout, close handshake) are checked
// by a periodic sweep on each loop instead of one timer per connection, so
// an idle connection costs only its small state struct.
package netpoll
