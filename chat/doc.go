// Package chat holds chatgate's chat semantics: connection ids, nicknames,
// joining and leaving rooms, sending to a room or to one connection, room
// and member lists, and presence.
//
// It is independent of the wire: a Codec (native JSON in chat/native, later
// Socket.IO) turns requests into Request values and replies and events into
// payloads, and a Transport (netpoll) moves encoded frames to connections on
// their event loops. The Hub is the only place where a request changes
// state, so every codec gets the same behaviour.
//
// Threading: a Session belongs to one event loop. Hub.Handle, Hub.Open and
// Hub.Close must be called on the session's own loop; they never block on
// I/O. Broadcasts are encoded once per wire encoding present in the room and
// handed to the Transport, which delivers them on the members' own loops.
package chat
