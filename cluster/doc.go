// Package cluster spans chatgate's rooms over several gateway nodes through
// a NATS server: room messages, direct messages to connections on other
// nodes, a cluster-wide replica of sessions and room membership, and, when
// the server has JetStream, a room history shared by every node
// (history.go) so that a client resumes on any node. It knows nothing of
// WebSocket or of the codecs; it meets package chat only in its adapters
// (hub.go: HubBroker, HubHandler), the history log it gives the hub
// (history.go) and the bounds it shares with it (validate.go).
// docs/cluster.md describes the protocol and its guarantees.
//
// Typical wiring (the hub's side):
//
//	c, err := cluster.New(cluster.Config{URL: natsURL, Node: tag}, handler)
//	// Hub.Open:   c.LocalOpened(id, nick, user)
//	// OpNick:     c.LocalNick(id, nick)
//	// OpJoin:     c.LocalJoined(id, room)   (when the table added the member)
//	// OpLeave:    c.LocalLeft(id, room)
//	// Hub.Close:  c.LocalClosed(id, recoverable)
//	// OpSend:     c.PublishRoom(&cluster.Message{Room: room, From: id, ...})
//	//             or, when c.Sequencing(): c.SequenceRoom(&cluster.Message{...})
//	// DM:         if node, ok := c.NodeOf(to); ok { c.PublishDirect(node, msg) }
//	// Counts:     local + c.RemoteCount(room)
//
// Goroutines: New starts three, and nats.go runs its own per connection.
//   - The writer publishes what the event loops queued, (un)subscribes room
//     subjects as local interest changes, and sends heartbeats. Event loops
//     never touch the NATS connection, so a slow socket cannot stall them.
//   - The dispatcher receives every subscribed subject through one shared
//     channel (nats.ChanSubscribe), so thousands of room subscriptions cost
//     no goroutine each and messages keep the order NATS delivered them in.
//     It calls the Handler, and it alone writes the replica.
//   - The syncer fetches membership snapshots from peers (request/reply
//     waits, so it does not run on the dispatcher).
//   - With the shared history (Sequencing), three more: the stream
//     publisher, the stream reader (whose messages the dispatcher
//     delivers) and the sweeper of the node's copy of the history.
//
// Thread rules: the Local*, Publish* and SequenceRoom methods, the replica reads
// (RemoteCount, RemoteMembers, RemoteRooms, NodeOf) and Stats are safe from
// any goroutine and never block; Local* take one short package mutex,
// replica reads one shard read-lock. Handler methods run on the dispatcher
// only.
package cluster
