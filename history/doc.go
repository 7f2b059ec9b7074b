// Package history keeps the last messages of each chat room in memory, so
// that a client can ask what it missed and a client that reconnects can get
// it back. Memory implements chat.History.
//
// # Offsets and epochs
//
// Every kept message has an offset from one sequence per log, increasing
// across all rooms: a single number tells how far a client has read in all
// its rooms. Position returns the log's last offset (not the room's last
// message): a join at position P means "everything up to P is before you
// joined", whichever room it was sent to.
//
// A room's epoch is derived from the log's (Config.Epoch, random by
// default), so a position taken from another room, or from a log that lost
// its continuity when the process restarted, does not match and is
// reported as chat.ErrUnrecoverable rather than answered wrongly.
//
// # Locking
//
// The caller holds the log's mutex (Lock, Unlock) around Append and the
// fan-out of the appended message, and around a join and the read of its
// position: members then see a room's offsets in increasing order, and a
// joiner either receives a message live or finds it after its join
// position. Append does not lock; PositionLocked and SinceLocked are the
// reads for a caller holding the lock. Position, Since, Stats and Sweep
// take the lock themselves and must not be called with it held (the mutex
// is not reentrant). Epoch never locks.
//
// # Lifetime of returned messages
//
// Since copies entries into the caller's slice; their byte slices (Room,
// Data, Attachments) alias the log's copies. The log never writes to those
// bytes after Append and eviction only drops its reference, so they stay
// valid for as long as the caller keeps them, but they must not be
// modified.
//
// # Bounds and memory accounting
//
// Three bounds apply, all by evicting a room's oldest messages: at most
// Config.Size messages per room; no message older than Config.TTL; and at
// most Config.Memory bytes over all rooms, where the globally oldest
// messages (lowest offsets, any room) go first. A message is accounted as
// its Data and attachments, its From, Nick, User and Event strings, and
// EntryOverhead for its slot in the room's ring and its place in the
// log-wide eviction queue. Rooms left empty by eviction are deleted by
// Sweep (run it with Run); until then they cost their name and epoch.
//
// Each room remembers the offset of its most recently evicted message, its
// floor: a position below the floor is no longer recoverable. A deleted
// room's floor is folded into a log-wide floor that applies to every room
// without kept messages, so forgetting a room never turns a loss into a
// silent gap.
package history
