// Package rooms is chatgate's room table: which connections are in which
// room.
//
// The table is split into shards chosen by an FNV-1a hash of the room name,
// each with its own lock, so joins and leaves on different rooms rarely
// contend. A room keeps a member set for joins and leaves (a slice searched
// linearly while the room has at most 128 members, 16 bytes a member; a map
// past that) and, for broadcasts, an immutable Snapshot of its members
// grouped by the event loop that owns them. Broadcasts read the snapshot
// without holding any lock and hand each loop its group in one piece; the
// snapshot is rebuilt lazily, on the first broadcast after a change, so a
// burst of joins costs O(1) each (at most 128 comparisons in a small room).
//
// The package knows nothing about sockets or event loops beyond the Member
// interface.
package rooms
