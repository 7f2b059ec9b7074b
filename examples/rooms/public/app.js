// The browser side of the Socket.IO rooms-chat tutorial, on chatgate.
//
// It is the tutorial's app.js with the socket.io-client API unchanged.
// What differs, each marked "chatgate:" below:
//   - io() gets the gateway's URL (the page comes from the backend, the
//     socket from the gateway);
//   - the nickname form is outside the room, so a nickname can be set
//     before entering one;
//   - "bye" has one argument, the nickname: the backend sends it through
//     the gateway's server API, whose events carry one argument
//     (docs/backend.md), followed, like every room event, by its history
//     offset (a string; docs/history.md);
//   - #status shows the connection's state and transport.

// chatgate: the gateway's URL comes from the backend's /config.js.
const socket = io(window.CHATGATE_URL);

const welcome = document.getElementById("welcome");
const form = welcome.querySelector("form");
const room = document.getElementById("room");
// chatgate: outside the room div.
const nameForm = document.getElementById("name");

room.hidden = true;

let roomName;

function addMessage(message) {
  const ul = room.querySelector("ul");
  const li = document.createElement("li");
  li.innerText = message;
  ul.appendChild(li);
}

function handleMessageSubmit(event) {
  event.preventDefault();
  const input = room.querySelector("#msg input");
  const value = input.value;
  socket.emit("new_message", input.value, roomName, () => {
    addMessage(`You: ${value}`);
  });
  input.value = "";
}

function handleNicknameSubmit(event) {
  event.preventDefault();
  const input = nameForm.querySelector("input");
  socket.emit("nickname", input.value);
}

function showRoom() {
  welcome.hidden = true;
  room.hidden = false;
  const h3 = room.querySelector("h3");
  h3.innerText = `Room ${roomName}`;
  const msgForm = room.querySelector("#msg");
  msgForm.addEventListener("submit", handleMessageSubmit);
}

function handleRoomSubmit(event) {
  event.preventDefault();
  const input = form.querySelector("input");
  socket.emit("enter_room", input.value, showRoom);
  roomName = input.value;
  input.value = "";
}

form.addEventListener("submit", handleRoomSubmit);
nameForm.addEventListener("submit", handleNicknameSubmit);

socket.on("welcome", (user, newCount) => {
  const h3 = room.querySelector("h3");
  h3.innerText = `Room ${roomName} (${newCount})`;
  addMessage(`${user} arrived!`);
});

socket.on("bye", (left, newCount) => {
  const h3 = room.querySelector("h3");
  // chatgate: no count comes with "bye" (one argument, then the message's
  // history offset as a string, as socket.io's connection state recovery
  // adds to room events); drop the stale count.
  h3.innerText = typeof newCount !== "number" ? `Room ${roomName}` : `Room ${roomName} (${newCount})`;
  addMessage(`${left} left ㅠㅠ`);
});

socket.on("new_message", addMessage);

socket.on("room_change", (rooms) => {
  const roomList = welcome.querySelector("ul");
  roomList.innerHTML = "";
  if (rooms.length === 0) {
    return;
  }
  rooms.forEach((room) => {
    const li = document.createElement("li");
    li.innerText = room;
    roomList.append(li);
  });
});

// chatgate: the connection's state and transport (polling, then
// websocket once upgraded), in #status.
const statusLine = document.getElementById("status");
function showStatus() {
  const engine = socket.io.engine;
  const transport = socket.connected && engine && engine.transport ? engine.transport.name : "";
  statusLine.dataset.state = socket.connected ? "connected" : "disconnected";
  statusLine.dataset.transport = transport;
  statusLine.innerText = socket.connected ? `connected (${transport})` : "disconnected";
}
socket.io.on("open", () => socket.io.engine.on("upgrade", showStatus));
socket.on("connect", showStatus);
socket.on("disconnect", showStatus);
