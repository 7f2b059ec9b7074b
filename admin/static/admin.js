// chatgate admin page: polls /admin/state every few seconds and renders it;
// with the API key entered, offers a disconnect button per connection.
// Every value from the server is rendered as text (textContent), never as
// HTML. The key stays in this page's memory only.

const REFRESH_MS = 2500;

const $ = (id) => document.getElementById(id);

let key = '';          // the accepted API key, '' while read-only
let last = null;       // the last state answer
let prev = null;       // the counters and time of the answer before it
let rates = {};        // per-second rates computed from the two
let timer = 0;         // the pending refresh
let inFlight = false;

// ---- helpers ----

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function fmtNum(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return '–';
  if (n >= 100 || Number.isInteger(n)) return Math.round(n).toLocaleString('en-US');
  return n.toFixed(1);
}

function fmtBytes(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? Math.round(n) : n.toFixed(1)) + ' ' + units[i];
}

function fmtUptime(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

function setStatus(state, text) {
  const s = $('status');
  s.dataset.state = state;
  $('status-text').textContent = text;
}

function showKeyMsg(kind, text) {
  const m = $('key-msg');
  m.dataset.kind = kind;
  m.textContent = text;
  m.hidden = !text;
}

async function errorText(res) {
  try {
    const body = await res.json();
    if (body && body.error && body.error.message) return body.error.message;
  } catch { /* not JSON */ }
  return `HTTP ${res.status}`;
}

// ---- filter ----

function filterText() { return $('filter').value.trim().toLowerCase(); }

function matches(c, q) {
  if (!q) return true;
  return [c.client, c.user, c.nick, ...(c.rooms || [])].some((s) => String(s || '').toLowerCase().includes(q));
}

// ---- rendering ----

function render() {
  const st = last;
  if (!st) return;
  $('api-off').hidden = st.api;
  const keyForm = $('key-form');
  keyForm.dataset.actions = st.actions ? 'on' : 'off';
  $('key-input').disabled = !st.api || !st.actions || key !== '';
  $('key-submit').disabled = !st.api || !st.actions || key !== '';
  if (st.api && !st.actions && !key) {
    $('key-input').placeholder = 'Read-only: set -api-key to enable actions';
  }

  $('t-connections').textContent = st.api ? fmtNum(st.connections_total) : '–';
  $('t-rooms').textContent = st.api ? fmtNum(st.rooms_total) : '–';
  $('t-nodes').textContent = st.api ? fmtNum(st.nodes.length) : '–';
  for (const k of ['messages_received', 'messages_delivered', 'connections_opened']) {
    $('r-' + k).textContent = fmtNum(rates[k]);
  }
  for (const k of ['received_bytes', 'sent_bytes']) {
    $('r-' + k).textContent = rates[k] === undefined ? '–' : fmtBytes(rates[k]);
  }

  // Nodes.
  const nodes = $('nodes').tBodies[0];
  nodes.replaceChildren(...st.nodes.map((n) => {
    const tr = el('tr');
    tr.dataset.node = n.node;
    tr.append(el('td', n.node, 'mono'), el('td', n.version), el('td', fmtUptime(n.uptime), 'num'),
      el('td', fmtNum(n.connections), 'num'), el('td', fmtNum(n.rooms), 'num'));
    return tr;
  }));

  // Rooms, busiest first.
  const rooms = $('rooms').tBodies[0];
  rooms.replaceChildren(...st.rooms.map((r) => {
    const tr = el('tr');
    tr.dataset.room = r.room;
    tr.append(el('td', r.room, 'room-name'), el('td', fmtNum(r.count), 'num count'));
    return tr;
  }));
  $('rooms-sub').textContent = st.rooms_total > st.rooms.length
    ? `(busiest ${st.rooms.length} of ${st.rooms_total})` : '';

  // Connections, filtered here too so that typing shows at once.
  const q = filterText();
  const list = st.connections.filter((c) => matches(c, q));
  const actions = key !== '';
  document.querySelectorAll('#conns .actions-col').forEach((th) => { th.hidden = !actions; });
  const conns = $('conns').tBodies[0];
  conns.replaceChildren(...list.map((c) => {
    const tr = el('tr');
    tr.dataset.client = c.client;
    const rooms = el('td', null, 'rooms-cell');
    for (const r of c.rooms) rooms.append(el('span', r, 'chip'));
    tr.append(el('td', c.client, 'mono client'), el('td', c.user, 'user'), el('td', c.nick, 'nick'), rooms,
      el('td', c.transport), el('td', c.remote_addr, 'mono'), el('td', c.node, 'mono'));
    if (actions) {
      const td = el('td', null, 'actions-col');
      const b = el('button', 'Disconnect', 'btn btn-danger disconnect');
      b.type = 'button';
      b.addEventListener('click', () => disconnect(c.client, b));
      td.append(b);
      tr.append(td);
    }
    return tr;
  }));
  let sub = `(${fmtNum(st.connections_total)})`;
  if (q || st.connections_matched > st.connections.length) {
    sub = `(${fmtNum(list.length)} shown of ${fmtNum(st.connections_total)})`;
  }
  $('conns-sub').textContent = st.api ? sub : '';
  const empty = $('conns-empty');
  empty.hidden = list.length > 0;
  empty.textContent = !st.api ? 'API unavailable.' : q ? 'No connection matches the filter.' : 'No connections.';
}

// ---- polling ----

function computeRates(st) {
  if (!st.counters) { rates = {}; prev = null; return; }
  if (prev && st.time > prev.time) {
    const dt = (st.time - prev.time) / 1000;
    const r = {};
    for (const [k, v] of Object.entries(st.counters)) {
      const d = v - (prev.counters[k] ?? v);
      r[k] = d >= 0 ? d / dt : 0; // a smaller value: the gateway restarted
    }
    rates = r;
  }
  prev = { time: st.time, counters: st.counters };
}

async function refresh() {
  clearTimeout(timer);
  timer = 0;
  if (inFlight) return;
  inFlight = true;
  try {
    const res = await fetch('/admin/state?q=' + encodeURIComponent(filterText()), { cache: 'no-store' });
    if (!res.ok) throw new Error(await errorText(res));
    const st = await res.json();
    computeRates(st);
    last = st;
    render();
    const at = new Date(st.time).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    if (st.errors && st.errors.length) {
      setStatus('error', `Error: ${st.errors.join('; ')}`);
    } else if (!st.api) {
      setStatus('live', `Live · API unavailable · ${at}`);
    } else {
      setStatus('live', `Live · updated ${at}`);
    }
  } catch (err) {
    setStatus('error', `Error: ${err.message || err} · retrying`);
  } finally {
    inFlight = false;
    schedule();
  }
}

function schedule() {
  clearTimeout(timer);
  timer = document.hidden ? 0 : setTimeout(refresh, REFRESH_MS);
}

document.addEventListener('visibilitychange', () => {
  if (document.hidden) { clearTimeout(timer); timer = 0; } else if (!inFlight) refresh();
});

// ---- key and actions ----

async function post(path, body, withKey = key) {
  return fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: 'apikey ' + withKey },
    body: JSON.stringify(body ?? {}),
    cache: 'no-store',
  });
}

function lock(message, kind) {
  key = '';
  $('key-lock').hidden = true;
  $('key-input').value = '';
  $('key-form').dataset.key = message ? 'refused' : 'none';
  showKeyMsg(kind || '', message || '');
  render();
}

$('key-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const candidate = $('key-input').value;
  if (!candidate) return;
  let res;
  try {
    res = await post('/admin/auth', {}, candidate);
  } catch (err) {
    lock(`Could not check the key: ${err.message || err}`, 'error');
    return;
  }
  if (res.status !== 204) {
    lock(`Key refused: ${await errorText(res)}`, 'error');
    return;
  }
  key = candidate;
  $('key-input').value = '';
  $('key-lock').hidden = false;
  $('key-form').dataset.key = 'accepted';
  showKeyMsg('ok', 'Actions enabled.');
  render();
});

$('key-lock').addEventListener('click', () => lock());

async function disconnect(client, button) {
  button.disabled = true;
  let res;
  try {
    res = await post('/admin/disconnect', { client });
  } catch (err) {
    showKeyMsg('error', `Disconnect failed: ${err.message || err}`);
    button.disabled = false;
    return;
  }
  if (res.status === 401 || res.status === 403) {
    lock(`Key refused: ${await errorText(res)}`, 'error');
    return;
  }
  if (!res.ok) {
    showKeyMsg('error', `Disconnect ${client} failed: ${await errorText(res)}`);
    button.disabled = false;
    return;
  }
  const body = await res.json();
  const n = body.result && body.result.disconnected;
  showKeyMsg(n ? 'ok' : 'warn', n ? `Disconnected ${client}.` : `${client} was already gone.`);
  refresh();
}

// Typing filters the rows shown at once, then asks the server (which
// filters before capping a long list) shortly after the last keystroke.
let filterTimer = 0;
$('filter').addEventListener('input', () => {
  render();
  clearTimeout(filterTimer);
  filterTimer = setTimeout(refresh, 300);
});

refresh();
