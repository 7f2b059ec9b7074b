"use strict";
// Socket.IO baseline chat server for the chatgate benchmarks.
//
// It implements the events the load tool speaks (bench/cmd/load -proto
// socketio), written the way the Socket.IO documentation recommends:
// the ws native add-ons (bufferutil, utf-8-validate) are installed as
// optional dependencies, the initial HTTP request of each session is
// discarded to save memory, and only the WebSocket transport is enabled.
//
// Events (client to server):
//   nick    (name, ack)              ack({ok:true})
//   join    (room, ack)              ack({room, count})
//   leave   (room, ack)              ack({room, count})
//   message ({room, data}, ack)      others in room get "message"
//                                    {room, from, nick, data, ts}; ack({ok:true})
//   message ({to, data}, ack)        the socket with id `to` gets "message"
// Server to client: "message" as above, and "presence"
//   {room, event: "join"|"leave", id, nick, count} unless --presence=false.
// Errors are acked as {error: code, message}.
//
// GET /stats answers {server, connections, rooms, rss, heap_used}.
//
// Usage: node server.js [--host 127.0.0.1] [--port 3000] [--presence=false]
//                       [--pidfile FILE]
// PORT, HOST and PRESENCE environment variables are read as defaults.

const { createServer } = require("node:http");
const { writeFileSync } = require("node:fs");
const { parseArgs } = require("node:util");
const { Server } = require("socket.io");

const { values: opts } = parseArgs({
  options: {
    host: { type: "string", default: process.env.HOST || "127.0.0.1" },
    port: { type: "string", default: process.env.PORT || "3000" },
    presence: { type: "string", default: process.env.PRESENCE || "true" },
    pidfile: { type: "string", default: "" },
  },
});
const presence = opts.presence !== "false";

const httpServer = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/stats") {
    const adapter = io.of("/").adapter;
    const mem = process.memoryUsage();
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(
      JSON.stringify({
        server: "socketio",
        connections: io.engine.clientsCount,
        // Every socket also sits in a room named after its id.
        rooms: adapter.rooms.size - adapter.sids.size,
        rss: mem.rss,
        heap_used: mem.heapUsed,
      }),
    );
    return;
  }
  res.writeHead(404).end();
});

const io = new Server(httpServer, {
  transports: ["websocket"],
  serveClient: false,
  perMessageDeflate: false,
});

// The handshake request is kept by Engine.IO for the life of the session
// unless dropped; the performance guide recommends dropping it.
io.engine.on("connection", (rawSocket) => {
  rawSocket.request = null;
});

function roomSize(room) {
  const members = io.of("/").adapter.rooms.get(room);
  return members ? members.size : 0;
}

function reply(ack, value) {
  if (typeof ack === "function") ack(value);
}

io.on("connection", (socket) => {
  socket.data.nick = "";

  socket.on("nick", (name, ack) => {
    if (typeof name !== "string" || name === "") {
      return reply(ack, { error: "bad_request", message: "name is required" });
    }
    socket.data.nick = name;
    reply(ack, { ok: true });
  });

  socket.on("join", (room, ack) => {
    if (typeof room !== "string" || room === "") {
      return reply(ack, { error: "bad_request", message: "room is required" });
    }
    const already = socket.rooms.has(room);
    socket.join(room);
    const count = roomSize(room);
    if (presence && !already) {
      socket.to(room).emit("presence", { room, event: "join", id: socket.id, nick: socket.data.nick, count });
    }
    reply(ack, { room, count });
  });

  socket.on("leave", (room, ack) => {
    if (!socket.rooms.has(room)) {
      return reply(ack, { error: "not_joined", message: "not a member of this room" });
    }
    socket.leave(room);
    const count = roomSize(room);
    if (presence && count > 0) {
      io.to(room).emit("presence", { room, event: "leave", id: socket.id, nick: socket.data.nick, count });
    }
    reply(ack, { room, count });
  });

  socket.on("message", (msg, ack) => {
    if (msg === null || typeof msg !== "object" || msg.data === undefined) {
      return reply(ack, { error: "bad_request", message: "data is required" });
    }
    const ts = Date.now();
    if (typeof msg.to === "string" && msg.to !== "") {
      if (!io.of("/").sockets.has(msg.to)) {
        return reply(ack, { error: "no_such_client", message: "no connection with this id" });
      }
      io.to(msg.to).emit("message", { from: socket.id, nick: socket.data.nick, data: msg.data, ts });
    } else if (typeof msg.room === "string" && socket.rooms.has(msg.room)) {
      // The packet is encoded once by the adapter and written to every
      // other member of the room.
      socket.to(msg.room).emit("message", { room: msg.room, from: socket.id, nick: socket.data.nick, data: msg.data, ts });
    } else {
      return reply(ack, { error: "not_joined", message: "not a member of this room" });
    }
    reply(ack, { ok: true });
  });

  if (presence) {
    socket.on("disconnecting", () => {
      for (const room of socket.rooms) {
        if (room === socket.id) continue;
        socket.to(room).emit("presence", {
          room,
          event: "leave",
          id: socket.id,
          nick: socket.data.nick,
          count: roomSize(room) - 1,
        });
      }
    });
  }
});

// A listen backlog as deep as the Go servers get (net.core.somaxconn), so
// connect-rate figures compare the servers rather than their accept queues.
httpServer.listen({ host: opts.host, port: Number(opts.port), backlog: 4096 }, () => {
  if (opts.pidfile) writeFileSync(opts.pidfile, `${process.pid}\n`);
  const a = httpServer.address();
  console.error(`socket.io baseline listening on ${a.address}:${a.port} presence=${presence}`);
});

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    io.close();
    process.exit(0);
  });
}
