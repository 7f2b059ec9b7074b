// Package api is the server API: how the application's backend publishes
// to rooms, addresses connections and users, moves members, disconnects
// clients and asks who is online — cluster-wide, whichever node it calls —
// and reads a room's history from the log of the node it calls.
//
// Every method is POST /api/<method> with a JSON object body; success is
// 200 {"result":{…}}, failure a 4xx {"error":{"code":…,"message":…}} with
// a stable code (docs/api.md, docs/openapi.yaml). The listener is
// separate from the public one (-api-addr, loopback by default) and, with
// -api-key, every request needs "Authorization: apikey <key>".
//
// Work never runs on an event loop: each request is served on its
// net/http goroutine, pushes go through the hub and the transport's one
// outbound path, and a change to a session's rooms is handed to the
// session's loop (chat.Hub.ServerJoin). In cluster mode a method that
// needs another node's connections asks that node over NATS
// (cluster.Call) and waits a bounded time for its answer; room lists and
// member lists come from the cluster's replica without a round trip.
package api
