// The chatgate chat page. Everything other people send (nicknames, room
// names, messages) reaches the DOM through textContent or attributes,
// never as HTML.
import { connect, CONNECTED, RECONNECTING, CLOSED } from './client.js';

const HISTORY = 500; // items kept per conversation
const ROOMS_EVERY = 5000; // room list refresh, ms
const MEMBERS_EVERY = 10000; // member list refresh of the open room, ms
const STORE = 'chatgate.v1';

const FRIENDLY = {
  not_member: 'You are not a member of this room.',
  rate_limited: 'You are sending too fast. Wait a moment and try again.',
  no_such_connection: 'That person is no longer connected. After a reconnect people get a new id: pick them again in the member list.',
  invalid_name: 'Nicknames are 1 to 32 characters.',
  invalid_room: 'Room names are 1 to 128 bytes.',
  missing_field: 'The request was incomplete.',
  queue_full: 'Too many messages are waiting for the connection. This one was not sent.',
  disconnected: 'The connection dropped before the gateway confirmed this.',
  timeout: 'The gateway did not answer in time.',
  closed: 'The connection is closed.',
};

const $ = (id) => document.getElementById(id);
const el = {
  conn: $('conn'), connText: $('conn-text'), connDetail: $('conn-detail'), retry: $('retry-now'),
  meNick: $('me-nick'), meId: $('me-id'), toasts: $('toasts'),
  joinForm: $('join-form'), joinInput: $('join-input'),
  roomList: $('room-list'), roomEmpty: $('room-list-empty'),
  otherSection: $('other-rooms-section'), otherList: $('other-room-list'),
  dmList: $('dm-list'), dmEmpty: $('dm-list-empty'),
  title: $('conv-title'), sub: $('conv-sub'), leave: $('leave-btn'),
  messages: $('messages'), empty: $('empty-state'),
  composer: $('composer'), input: $('composer-input'), send: $('send-btn'),
  memberList: $('member-list'), memberCount: $('member-count'), memberHint: $('member-hint'),
  sidebar: $('sidebar'), membersPane: $('members-pane'), scrim: $('scrim'),
  nickDialog: $('nick-dialog'), nickForm: $('nick-form'), nickInput: $('nick-input'),
  nickError: $('nick-error'), nickCancel: $('nick-cancel'), nickSubmit: $('nick-submit'),
};

// --- state ---

/** conversations by key: 'room:<name>' or 'dm:<connection id>' */
const convs = new Map();
let active = null; // key of the open conversation
let serverRooms = new Map(); // room → count, from the last rooms()
let myNick = null;
const pending = new Set(); // our messages waiting for a connection
const saved = load();

const client = connect('/ws', { minDelay: 300, maxDelay: 8000, timeout: 8000, queueLimit: 50 });

function load() {
  try {
    const v = JSON.parse(localStorage.getItem(STORE) || '{}');
    return { nick: typeof v.nick === 'string' ? v.nick : '', rooms: Array.isArray(v.rooms) ? v.rooms.filter((r) => typeof r === 'string') : [] };
  } catch {
    return { nick: '', rooms: [] };
  }
}

function save() {
  try {
    localStorage.setItem(STORE, JSON.stringify({ nick: myNick || '', rooms: client.joined }));
  } catch { /* private mode: nothing to keep */ }
}

function roomConv(room) {
  const key = 'room:' + room;
  let c = convs.get(key);
  if (!c) {
    c = { key, kind: 'room', room, title: room, items: [], unread: 0, joined: false, members: new Map(), count: 0 };
    convs.set(key, c);
  }
  return c;
}

function dmConv(id, nick) {
  const key = 'dm:' + id;
  let c = convs.get(key);
  if (!c) {
    c = { key, kind: 'dm', peer: id, nick: nick || '', items: [], unread: 0 };
    convs.set(key, c);
  }
  if (nick) c.nick = nick;
  return c;
}

function displayName(nick, id) {
  return nick || (id ? 'anonymous ' + shortId(id) : 'anonymous');
}

function shortId(id) {
  return String(id).slice(-4);
}

function dataText(data) {
  if (data && typeof data === 'object' && typeof data.text === 'string') return data.text;
  try {
    return JSON.stringify(data);
  } catch {
    return String(data);
  }
}

// --- DOM helpers (text only) ---

function h(tag, props = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') n.className = v;
    else if (k === 'text') n.textContent = v;
    else if (k === 'dataset') { for (const [dk, dv] of Object.entries(v)) if (dv !== undefined) n.dataset[dk] = dv; }
    else if (k === 'vars') { for (const [vk, vv] of Object.entries(v)) n.style.setProperty(vk, vv); }
    else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
    else n.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c) n.append(c);
  return n;
}

function avatar(name, id) {
  const letter = (Array.from((name || '?').trim())[0] || '?').toUpperCase();
  // A CSS variable set through the CSSOM: the page's CSP allows no inline style attributes.
  return h('span', { class: 'avatar', vars: { '--hue': String(hue(id || name)) }, 'aria-hidden': 'true', text: letter });
}

function hue(s) {
  let x = 2166136261;
  for (const ch of String(s)) x = Math.imul(x ^ ch.codePointAt(0), 16777619);
  return (x >>> 0) % 360;
}

function clock(ts) {
  return new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

// --- toasts ---

// clip shortens a user-supplied name for a one-line context.
function clip(s, n = 40) {
  const cps = Array.from(String(s));
  return cps.length > n ? cps.slice(0, n - 1).join('') + '…' : String(s);
}

function toast(err, context) {
  const code = err?.code || 'error';
  const text = FRIENDLY[code] || err?.message || String(err);
  const t = h('div', { class: 'toast', role: 'alert', dataset: { code } },
    h('div', { class: 'toast-body' },
      h('strong', { text: context || 'Error' }),
      h('span', { text: ' ' + text }),
      h('code', { class: 'toast-code', text: code })),
    h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss', text: '×', onclick: () => t.remove() }));
  el.toasts.append(t);
  while (el.toasts.children.length > 4) el.toasts.firstChild.remove();
  setTimeout(() => t.remove(), 8000);
}

// --- conversation items ---

function push(conv, item) {
  item.ts ??= Date.now();
  conv.items.push(item);
  if (conv.items.length > HISTORY) {
    const old = conv.items.shift();
    old.node?.remove();
  }
  if (conv.key === active) {
    const stick = nearBottom();
    el.messages.append(renderItem(item));
    if (stick || item.mine) scrollDown();
    el.empty.hidden = true;
  } else if (item.kind === 'msg' && !item.mine) {
    conv.unread++;
    renderNav();
  }
}

function system(conv, text, tone = 'info') {
  push(conv, { kind: 'sys', text, tone });
}

function renderItem(item) {
  let n;
  if (item.kind === 'sys') {
    n = h('li', { class: `sys sys-${item.tone}` }, h('span', { text: item.text }), h('time', { text: clock(item.ts) }));
  } else {
    const name = item.mine ? (myNick || 'you') : displayName(item.nick, item.from);
    n = h('li', { class: 'msg' + (item.mine ? ' mine' : ''), dataset: { from: item.from || '' } },
      avatar(name, item.mine ? client.id : item.from),
      h('div', { class: 'bubble' },
        h('div', { class: 'meta' },
          h('span', { class: 'author', text: name, title: item.from ? `id ${item.from}` : undefined }),
          h('time', { text: clock(item.ts), datetime: new Date(item.ts).toISOString(), title: new Date(item.ts).toLocaleString() })),
        h('div', { class: 'body', text: item.text }),
        h('div', { class: 'status' })));
  }
  item.node = n;
  if (item.kind === 'msg') paintStatus(item);
  return n;
}

function paintStatus(item) {
  const n = item.node;
  if (!n) return;
  n.dataset.status = item.status || 'received';
  const s = n.querySelector('.status');
  s.replaceChildren();
  if (item.status === 'pending') {
    s.append(h('span', { class: 'pending', text: 'Pending: will be sent when the connection is back' }));
  } else if (item.status === 'failed') {
    s.append(
      h('span', { class: 'failed' },
        h('strong', { text: 'Not sent' }),
        h('code', { class: 'failed-code', text: item.error?.code || 'error' }),
        h('span', { text: FRIENDLY[item.error?.code] || item.error?.message || '' })),
      h('button', { type: 'button', class: 'link-btn', text: 'Retry', onclick: () => deliver(item) }));
  }
}

function nearBottom() {
  const m = el.messages;
  return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
}

function scrollDown() {
  el.messages.scrollTop = el.messages.scrollHeight;
}

// --- rendering ---

function renderAll() {
  renderNav();
  renderConv();
  renderMembers();
}

function navItem(conv, label, extra, onclick) {
  return h('li', { dataset: { key: conv?.key || '', room: conv?.room || undefined } },
    h('button', { type: 'button', class: 'nav-item' + (conv && conv.key === active ? ' active' : ''), onclick, 'aria-current': conv && conv.key === active ? 'true' : undefined },
      label,
      extra));
}

function renderNav() {
  const mine = [...convs.values()].filter((c) => c.kind === 'room' && c.joined).sort((a, b) => a.room.localeCompare(b.room));
  el.roomList.replaceChildren(...mine.map((c) => navItem(c,
    h('span', { class: 'nav-label' }, h('span', { class: 'hash', text: '#' }), h('span', { class: 'room-name', text: c.room })),
    h('span', { class: 'nav-extra' },
      c.unread ? h('span', { class: 'badge', text: String(c.unread) }) : null,
      h('span', { class: 'count', title: 'members', text: String(serverRooms.get(c.room) ?? c.count ?? '') })),
    () => open(c.key))));
  el.roomEmpty.hidden = mine.length > 0;

  const others = [...serverRooms].filter(([room]) => !convs.get('room:' + room)?.joined);
  el.otherSection.hidden = others.length === 0;
  el.otherList.replaceChildren(...others.map(([room, count]) => h('li', { dataset: { room } },
    h('button', { type: 'button', class: 'nav-item other', title: `Join ${room}`, onclick: () => joinRoom(room) },
      h('span', { class: 'nav-label' }, h('span', { class: 'hash', text: '#' }), h('span', { class: 'room-name', text: room })),
      h('span', { class: 'nav-extra' }, h('span', { class: 'join-hint', text: 'Join' }), h('span', { class: 'count', text: String(count) }))))));

  const dms = [...convs.values()].filter((c) => c.kind === 'dm');
  el.dmList.replaceChildren(...dms.map((c) => navItem(c,
    h('span', { class: 'nav-label' }, avatar(displayName(c.nick, c.peer), c.peer), h('span', { class: 'dm-name', text: displayName(c.nick, c.peer) })),
    h('span', { class: 'nav-extra' }, c.unread ? h('span', { class: 'badge', text: String(c.unread) }) : null),
    () => open(c.key))));
  el.dmEmpty.hidden = dms.length > 0;
}

function renderConv() {
  const c = convs.get(active);
  el.leave.hidden = !(c && c.kind === 'room' && c.joined);
  if (!c) {
    el.title.textContent = 'Welcome';
    el.sub.textContent = '';
    el.messages.replaceChildren();
    el.empty.hidden = false;
    setComposer(false);
    return;
  }
  if (c.kind === 'room') {
    el.title.textContent = '#' + c.room;
    const n = serverRooms.get(c.room) ?? c.count;
    el.sub.textContent = c.joined ? `${n} ${n === 1 ? 'member' : 'members'}` : 'You left this room';
  } else {
    el.title.textContent = '@' + displayName(c.nick, c.peer);
    el.sub.textContent = 'Direct message · id ' + c.peer;
  }
  el.messages.replaceChildren(...c.items.map(renderItem));
  el.empty.hidden = c.items.length > 0;
  el.empty.firstElementChild.textContent = c.kind === 'room' ? 'No messages yet. Say hello!' : 'No messages yet.';
  setComposer(c.kind === 'dm' || c.joined);
  el.input.placeholder = c.kind === 'room' ? `Message #${c.room}` : `Message @${displayName(c.nick, c.peer)}`;
  scrollDown();
}

function setComposer(on) {
  el.input.disabled = !on;
  el.send.disabled = !on;
}

function renderMembers() {
  const c = convs.get(active);
  let list = [];
  if (c?.kind === 'room' && c.joined) list = [...c.members].map(([id, nick]) => ({ id, nick }));
  else if (c?.kind === 'dm') list = [{ id: c.peer, nick: c.nick }, { id: client.id, nick: myNick }];
  list.sort((a, b) => displayName(a.nick, a.id).localeCompare(displayName(b.nick, b.id)) || String(a.id).localeCompare(String(b.id)));
  el.memberCount.textContent = list.length ? String(list.length) : '';
  el.memberHint.hidden = !(c?.kind === 'room');
  el.memberList.replaceChildren(...list.map(({ id, nick }) => {
    const me = id === client.id;
    const name = me ? (myNick || displayName(nick, id)) : displayName(nick, id);
    return h('li', { dataset: { id } },
      h('button', { type: 'button', class: 'member' + (me ? ' me' : ''), disabled: me, title: me ? 'You' : `Message ${name} directly`,
        onclick: () => { const d = dmConv(id, nick); open(d.key); } },
      avatar(name, id),
      h('span', { class: 'member-name', text: name }),
      me ? h('span', { class: 'you', text: 'you' }) : h('code', { class: 'member-id', text: shortId(id) })));
  }));
}

function renderMe() {
  el.meNick.textContent = myNick || 'Pick a nickname';
  el.meId.textContent = client.id || '…';
}

let lastInfo = {};
function renderState(state = client.state, info = lastInfo) {
  lastInfo = info;
  let view = state;
  let text;
  let detail = '';
  if (state === CONNECTED) text = 'Connected';
  else if (state === RECONNECTING) {
    if (!navigator.onLine) { view = 'offline'; text = 'Offline'; detail = 'waiting for the network'; }
    else { text = 'Reconnecting'; if (info.delay) detail = `in ${Math.max(1, Math.round(info.delay / 1000))} s`; }
  } else if (state === CLOSED) { view = 'offline'; text = 'Offline'; }
  else text = 'Connecting…';
  if (pending.size && state !== CONNECTED) detail += `${detail ? ' · ' : ''}${pending.size} pending`;
  el.conn.dataset.state = view;
  el.connText.textContent = text;
  el.connDetail.textContent = detail;
  el.retry.hidden = state !== RECONNECTING;
  document.body.dataset.conn = view;
}

// --- actions ---

function open(key) {
  const c = convs.get(key);
  if (!c) return;
  active = key;
  c.unread = 0;
  closeDrawers();
  renderAll();
  if (c.kind === 'room' && c.joined) refreshMembers(c);
  if (window.matchMedia('(min-width: 761px)').matches) el.input.focus();
}

async function joinRoom(room) {
  room = room.trim();
  if (!room) return;
  const c = roomConv(room);
  if (c.joined) { open(c.key); return; }
  try {
    const ack = await client.join(room);
    c.joined = true;
    c.count = ack.count;
    serverRooms.set(room, ack.count);
    system(c, 'You joined #' + room);
    save();
    open(c.key);
    refreshRooms();
  } catch (err) {
    toast(err, `Could not join #${clip(room)}:`);
  }
}

async function leaveRoom(c) {
  try {
    await client.leave(c.room);
  } catch (err) {
    if (err.code !== 'not_member') { toast(err, `Could not leave #${clip(c.room)}:`); return; }
  }
  c.joined = false;
  c.members.clear();
  system(c, 'You left #' + c.room);
  save();
  const next = [...convs.values()].find((x) => x.kind === 'room' && x.joined);
  active = next ? next.key : active;
  renderAll();
  refreshRooms();
}

// deliver sends (or re-sends) one of our messages and tracks its status.
// Sent while disconnected, it waits in the client's bounded queue with a
// visible "pending" marker; if the queue is full or the send fails it is
// marked failed with a Retry button. Nothing is dropped silently.
async function deliver(item) {
  const queued = client.state !== CONNECTED;
  item.status = queued ? 'pending' : 'sending';
  if (queued) pending.add(item);
  paintStatus(item);
  renderState();
  try {
    if (item.room) await client.send(item.room, { text: item.text });
    else await client.sendTo(item.to, { text: item.text });
    item.status = 'sent';
  } catch (err) {
    item.status = 'failed';
    item.error = { code: err.code, message: err.message };
    if (err.code !== 'queue_full' && err.code !== 'disconnected') toast(err, 'Message not sent:');
  }
  pending.delete(item);
  paintStatus(item);
  renderState();
}

function sendMessage(text) {
  const c = convs.get(active);
  if (!c || !text.trim()) return;
  const item = { kind: 'msg', mine: true, text, ts: Date.now(), from: client.id };
  if (c.kind === 'room') item.room = c.room;
  else item.to = c.peer;
  push(c, item);
  deliver(item);
}

async function refreshRooms() {
  if (client.state !== CONNECTED) return; // never pile refreshes into the offline queue
  try {
    const list = await client.rooms();
    serverRooms = new Map(list.map((r) => [r.room, r.count]));
    renderNav();
    const c = convs.get(active);
    if (c?.kind === 'room') renderConvHead(c);
  } catch { /* the next refresh retries */ }
}

function renderConvHead(c) {
  if (!c.joined) return;
  const n = serverRooms.get(c.room) ?? c.count;
  el.sub.textContent = `${n} ${n === 1 ? 'member' : 'members'}`;
}

async function refreshMembers(c) {
  if (client.state !== CONNECTED || !c.joined) return;
  try {
    const list = await client.members(c.room);
    c.members = new Map(list.map((m) => [m.id, m.nick]));
    c.count = list.length;
    if (c.key === active) renderMembers();
  } catch (err) {
    if (err.code === 'not_member') { c.joined = false; renderAll(); }
  }
}

let roomsSoon = null;
function refreshRoomsSoon() {
  clearTimeout(roomsSoon);
  roomsSoon = setTimeout(refreshRooms, 250);
}

async function setNick(name) {
  el.nickError.textContent = '';
  el.nickSubmit.disabled = true;
  if (client.state !== CONNECTED) el.nickError.textContent = 'Waiting for the connection…';
  try {
    const ack = await client.nick(name);
    myNick = ack.name;
    el.nickError.textContent = '';
    save();
    renderMe();
    el.nickDialog.close();
    if (!client.joined.length) {
      const rooms = saved.rooms.length ? saved.rooms : ['lobby'];
      saved.rooms = [];
      for (const r of rooms) await joinRoom(r);
    }
    renderAll();
  } catch (err) {
    el.nickError.textContent = FRIENDLY[err.code] || err.message;
  } finally {
    el.nickSubmit.disabled = false;
  }
}

function askNick() {
  el.nickInput.value = myNick || saved.nick || '';
  el.nickCancel.hidden = !myNick;
  el.nickError.textContent = '';
  if (!el.nickDialog.open) el.nickDialog.showModal();
  el.nickInput.select();
}

function closeDrawers() {
  document.body.classList.remove('show-rooms', 'show-members');
  el.scrim.hidden = true;
}

function toggleDrawer(cls) {
  const on = !document.body.classList.contains(cls);
  closeDrawers();
  if (on) {
    document.body.classList.add(cls);
    el.scrim.hidden = false;
  }
}

// --- client events ---

client.on('state', (state, info) => {
  renderState(state, info);
  if (state === RECONNECTING && info.previous === CONNECTED) {
    for (const c of convs.values()) if (c.kind === 'room' && c.joined) system(c, 'Connection lost. Reconnecting…', 'warn');
  }
});

client.on('welcome', ({ reconnected, rooms }) => {
  renderMe();
  if (reconnected) {
    const now = new Set(rooms);
    for (const c of convs.values()) {
      if (c.kind !== 'room' || !c.joined) continue;
      if (now.has(c.room)) system(c, 'Reconnected. You are back in #' + c.room, 'ok');
      else { c.joined = false; system(c, 'Reconnected, but could not rejoin #' + c.room, 'error'); }
    }
  }
  renderAll();
  refreshRooms();
  const c = convs.get(active);
  if (c?.kind === 'room') refreshMembers(c);
});

client.on('message', (m) => {
  const item = { kind: 'msg', from: m.from, nick: m.nick, text: dataText(m.data), ts: m.ts || Date.now() };
  if (m.room !== undefined) {
    const c = convs.get('room:' + m.room);
    if (!c) return;
    if (m.from) c.members.set(m.from, m.nick);
    push(c, item);
  } else {
    const fresh = !convs.has('dm:' + m.from);
    const c = dmConv(m.from, m.nick);
    push(c, item);
    if (fresh) renderNav();
  }
});

client.on('presence', (p) => {
  if (typeof p.count === 'number') {
    if (p.count > 0) serverRooms.set(p.room, p.count);
    else serverRooms.delete(p.room);
  }
  const c = convs.get('room:' + p.room);
  if (c) {
    const name = displayName(p.nick, p.id);
    if (p.event === 'join') { c.members.set(p.id, p.nick); system(c, `${name} joined`); }
    else { c.members.delete(p.id); system(c, `${name} left`); }
    c.count = p.count;
    if (c.key === active) { renderMembers(); renderConvHead(c); }
  }
  renderNav();
  refreshRoomsSoon();
});

// A room whose messages sent while we were away could not all be
// delivered after a reconnect (client.js 'gap'): say so in the room.
client.on('gap', ({ room }) => {
  const c = convs.get('room:' + room);
  if (c?.joined) system(c, 'Some messages sent while you were away may be missing.', 'warn');
});

client.on('error', (err) => toast(err, 'Gateway error:'));

// --- wiring ---

el.nickForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const name = el.nickInput.value.trim();
  if (name) setNick(name);
});
el.nickCancel.addEventListener('click', () => el.nickDialog.close());
el.nickDialog.addEventListener('cancel', (e) => { if (!myNick) e.preventDefault(); });
el.meNick.addEventListener('click', askNick);
el.joinForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const room = el.joinInput.value;
  el.joinInput.value = '';
  joinRoom(room);
});
el.composer.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = el.input.value;
  if (!text.trim()) return;
  el.input.value = '';
  sendMessage(text);
});
el.leave.addEventListener('click', () => {
  const c = convs.get(active);
  if (c?.kind === 'room') leaveRoom(c);
});
el.retry.addEventListener('click', () => client.reconnectNow());
$('toggle-rooms').addEventListener('click', () => toggleDrawer('show-rooms'));
$('toggle-members').addEventListener('click', () => toggleDrawer('show-members'));
el.scrim.addEventListener('click', closeDrawers);
window.addEventListener('online', () => { client.reconnectNow(); renderState(); });
window.addEventListener('offline', () => renderState());

setInterval(refreshRooms, ROOMS_EVERY);
setInterval(() => {
  const c = convs.get(active);
  if (c?.kind === 'room') refreshMembers(c);
}, MEMBERS_EVERY);

renderMe();
renderState();
renderAll();
askNick();

// For debugging from the console and for tests; not an API.
window.chatgate = { client };
