// Live status over the API's WebSocket (config.json's `ws_url`): the server pushes what changed instead of the client
// polling for it. One socket per tab, opened with the Cognito ID token in the query string (browsers cannot set
// headers on a WebSocket; API Gateway checks it on connect), opened again with a fresh token once the token is
// refreshed, re-opened with capped exponential backoff and jitter after a drop, and closed on sign-out. No DOM.
//
// Views subscribe with `live.on(type, listener, { id, active })`: `photo`, `album` (the changed item),
// `photo_deleted`, `album_removed` (the id), for one item (`id`) or all; and `open`/`close` when the socket becomes
// usable or stops being so (messages are not replayed: whoever waits for one checks once after `open`). `active()`
// returning false drops the listener at its next event (a view left behind by the router).

// API Gateway closes a connection idle for 10 minutes: a ping every 5 keeps it; a pong missing for 30 s means the
// connection is dead even if the browser has not noticed (a laptop woken from sleep, a dropped NAT mapping).
const PING_EVERY_MS = 5 * 60 * 1000;
const PONG_TIMEOUT_MS = 30 * 1000;
// A handshake that neither opens nor fails (a black-holed network) is given up after this long.
const CONNECT_TIMEOUT_MS = 10 * 1000;
// Reconnect delays: 1 s, 2 s, 4 s ... up to a minute, each a random 50-100% of that (clients dropped together by a
// deploy or a network blip do not come back in the same instant).
const BACKOFF_FIRST_MS = 1000;
const BACKOFF_MAX_MS = 60 * 1000;
// A connection that lasted this long was a success: the next drop starts the backoff again from the first delay.
// One that the server closes at once (a refused token, a full quota of connections) keeps climbing.
const STABLE_AFTER_MS = 30 * 1000;

// Which field of each message names the item a listener may be waiting for.
const KEYS = {
  photo: (message) => message.photo && message.photo.photo_id,
  photo_deleted: (message) => message.photo_id,
  album: (message) => message.album && message.album.album_id,
  album_removed: (message) => message.album_id,
};
// What a listener of each type receives.
const PAYLOADS = {
  photo: (message) => message.photo,
  photo_deleted: (message) => message.photo_id,
  album: (message) => message.album,
  album_removed: (message) => message.album_id,
};

export function backoffDelay(failures, random = Math.random) {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** Math.max(0, failures - 1));
  return Math.round(ceiling * (0.5 + random() / 2));
}

export class Live {
  // `url`: config.json's `ws_url` (none: never connected, everyone polls). `auth`: ./auth.js's Auth.
  // `WebSocket` and `random` are replaceable for tests.
  constructor(url, auth, { WebSocket = globalThis.WebSocket, random = Math.random } = {}) {
    this.url = url || null;
    this.auth = auth;
    this.Socket = WebSocket;
    this.random = random;
    this.listeners = new Set();
    this.socket = null; // the open socket messages come from
    this.token = null; // the ID token it was opened with
    this.connecting = null; // a socket still in its handshake (the first, a reconnect or a token handover)
    this.isConnected = false;
    this.running = false;
    this.failures = 0;
    this.openedAt = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this.connectTimer = null;
    if (globalThis.addEventListener) {
      // Back online: no need to wait out the rest of a backoff.
      globalThis.addEventListener("online", () => {
        if (this.running && !this.socket && !this.connecting) this.connectNow();
      });
    }
  }

  get connected() {
    return this.isConnected;
  }

  on(type, listener, { id = null, active = () => true } = {}) {
    const entry = { type, listener, id, active };
    this.listeners.add(entry);
    return () => this.listeners.delete(entry);
  }

  // Follow the sign-in state (app.js calls this on every change): signed out closes; signed in opens, or hands the
  // connection over to a new socket when the ID token has been refreshed since it was opened.
  async sync() {
    if (!this.url || !this.Socket) return;
    if (!this.auth.signedIn) {
      this.stop();
      return;
    }
    if (!this.running) {
      this.running = true;
      this.failures = 0;
      this.open();
      return;
    }
    if (this.socket && !this.connecting && (await this.freshToken()) !== this.token) this.open();
  }

  stop() {
    this.running = false;
    clearTimeout(this.retryTimer);
    this.clearConnectTimer();
    for (const socket of [this.connecting, this.socket]) if (socket) this.discard(socket);
    this.connecting = null;
    this.socket = null;
    this.token = null;
    this.lost();
  }

  connectNow() {
    clearTimeout(this.retryTimer);
    this.open();
  }

  async freshToken() {
    try {
      return await this.auth.idToken();
    } catch {
      return null; // signed out meanwhile (sync() closes), or Cognito unreachable (the next attempt asks again)
    }
  }

  async open() {
    if (!this.running || this.connecting) return;
    const placeholder = {};
    this.connecting = placeholder; // no second attempt while the token is fetched
    const token = await this.freshToken();
    if (this.connecting !== placeholder) return; // stopped meanwhile
    this.connecting = null;
    if (!token || !this.running) {
      if (this.running) this.retry();
      return;
    }
    const separator = this.url.includes("?") ? "&" : "?";
    let socket;
    try {
      socket = new this.Socket(`${this.url}${separator}token=${encodeURIComponent(token)}`);
    } catch {
      this.retry(); // a malformed ws_url, or a URL the page's security policy refuses
      return;
    }
    this.connecting = socket;
    this.clearConnectTimer();
    this.connectTimer = setTimeout(() => {
      if (this.connecting !== socket) return;
      this.connecting = null;
      this.discard(socket);
      if (!this.socket) this.retry();
    }, CONNECT_TIMEOUT_MS);
    socket.addEventListener("open", () => this.opened(socket, token));
    socket.addEventListener("message", (event) => this.received(socket, event.data));
    socket.addEventListener("close", () => this.closed(socket));
  }

  opened(socket, token) {
    if (this.connecting !== socket) return;
    this.clearConnectTimer();
    this.connecting = null;
    const previous = this.socket;
    this.socket = socket;
    this.token = token;
    this.openedAt = Date.now();
    // A handover closes the old socket only now: until the new one was open, messages still came through it.
    if (previous) this.discard(previous);
    this.schedulePing();
    if (!this.isConnected) {
      this.isConnected = true;
      this.emit("open", null, null);
    }
  }

  closed(socket) {
    if (socket === this.connecting) {
      // Refused or failed before opening. After a failed handover the old socket still serves.
      this.clearConnectTimer();
      this.connecting = null;
      if (!this.socket) this.retry();
      return;
    }
    if (socket !== this.socket) return;
    this.dropped();
  }

  // The open socket is gone (closed by the server or the network, or silent past a ping): fall back, then retry.
  dropped() {
    if (this.socket) this.discard(this.socket);
    this.socket = null;
    this.token = null;
    if (Date.now() - this.openedAt > STABLE_AFTER_MS) this.failures = 0;
    this.lost();
    if (this.running && !this.connecting) this.retry();
  }

  lost() {
    clearTimeout(this.pingTimer);
    clearTimeout(this.pongTimer);
    if (this.isConnected) {
      this.isConnected = false;
      this.emit("close", null, null);
    }
  }

  retry() {
    if (!this.running) return;
    this.failures += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), backoffDelay(this.failures, this.random));
  }

  // Close a socket we are done with. Its later events are ignored: every handler first checks that it is still
  // `this.socket` or `this.connecting`.
  discard(socket) {
    if (typeof socket.close !== "function") return; // the placeholder of an attempt still fetching its token
    try {
      socket.close(1000);
    } catch {
      // already closing or closed: gone either way
    }
  }

  clearConnectTimer() {
    clearTimeout(this.connectTimer);
    this.connectTimer = null;
  }

  schedulePing() {
    clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(() => this.ping(), PING_EVERY_MS);
  }

  ping() {
    const socket = this.socket;
    if (!socket) return;
    try {
      socket.send(JSON.stringify({ type: "ping" }));
    } catch {
      this.dropped();
      return;
    }
    clearTimeout(this.pongTimer);
    this.pongTimer = setTimeout(() => {
      if (this.socket === socket) this.dropped();
    }, PONG_TIMEOUT_MS);
    this.schedulePing();
  }

  received(socket, data) {
    if (socket !== this.socket) return;
    // Any frame proves the connection alive.
    clearTimeout(this.pongTimer);
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return; // not JSON: nothing the client understands
    }
    if (!message || typeof message !== "object" || typeof message.type !== "string") return;
    const key = KEYS[message.type];
    if (!key) return; // pong, the server's error answer, or a type this client does not know yet
    const id = key(message);
    if (typeof id !== "string" || !id) return;
    this.emit(message.type, id, PAYLOADS[message.type](message));
  }

  emit(type, id, payload) {
    for (const entry of [...this.listeners]) {
      if (entry.type !== type || (entry.id !== null && entry.id !== id)) continue;
      if (!entry.active()) {
        this.listeners.delete(entry);
        continue;
      }
      try {
        entry.listener(payload);
      } catch (error) {
        // One broken listener must not keep the message from the others; the error still reaches the console.
        if (globalThis.reportError) globalThis.reportError(error);
      }
    }
  }
}
