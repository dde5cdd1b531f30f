// VerdictFeed: a user's live verdicts from the kubejudge gateway over one WebSocket.
//
// It reconnects after any drop with exponential backoff and full jitter (so a gateway restart
// does not bring every browser back in the same millisecond), and resumes from the id of the
// last event it saw, which it keeps in `storage` so a page reload resumes too. The gateway
// replays what was missed while away, or says `resync` when its history no longer reaches back
// that far; then `onResync` should refetch state over HTTP.
//
// The same socket carries the worker pools' view (`pools`, not per user), for `onPools`.
//
//   const feed = new VerdictFeed({ url, getToken, onEvent, onResync, onState, onPools });
//   feed.start();  ...  feed.stop();

const CLOSE_BAD_TOKEN = 4401;
const CLOSE_POLICY = 1008;
const BAD_LAST_EVENT_ID = "bad last_event_id"; // the gateway's reason when it refuses our id

export function compareEventIds(a, b) {
  // "<ms>-<seq>" in Redis stream order; both parts are integers well inside 2^53.
  const [aMs, aSeq] = a.split("-").map(Number);
  const [bMs, bSeq] = b.split("-").map(Number);
  return aMs - bMs || aSeq - bSeq;
}

export function backoffDelayMs(attempt, { baseMs = 500, maxMs = 30000, random = Math.random } = {}) {
  // "Full jitter": uniform in [0, min(max, base * 2^attempt)).
  return Math.floor(random() * Math.min(maxMs, baseMs * 2 ** attempt));
}

export class VerdictFeed {
  constructor({
    url, // ws://host:2359/ws
    getToken, // async ({ refresh }) => JWT; refresh=true after the gateway refused the last one
    onEvent = () => {}, // ({ type: "status"|"verdict", id, data }) for every new event, in order
    onResync = () => {}, // () => refetch over HTTP; the history could not cover the gap
    onState = () => {}, // ({ state: "connecting"|"live"|"waiting"|"stopped", retryInMs, code })
    onPools = null, // ([{ pool, waiting, in_flight, live, busy, wanted, reason }]) on change
    storage = window.sessionStorage, // per tab: each tab resumes from what it has shown
    storageKey = "kubejudge.lastEventId",
    baseDelayMs = 500,
    maxDelayMs = 30000,
    pingIntervalMs = 25000,
    pongTimeoutMs = 10000,
  }) {
    Object.assign(this, {
      url, getToken, onEvent, onResync, onState, onPools, storage, storageKey,
      baseDelayMs, maxDelayMs, pingIntervalMs, pongTimeoutMs,
    });
    this.watchPools = onPools !== null; // the gateway sends the view only when asked
    this.socket = null;
    this.attempt = 0;
    this.stopped = true;
    this.refreshToken = false;
    this.timers = new Set();
  }

  get lastEventId() {
    return this.storage.getItem(this.storageKey);
  }

  set lastEventId(id) {
    if (id === null) this.storage.removeItem(this.storageKey);
    else this.storage.setItem(this.storageKey, id);
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    this.clearTimers();
    if (this.socket) this.socket.close(1000, "bye");
    this.socket = null;
    this.onState({ state: "stopped" });
  }

  async connect() {
    if (this.stopped) return;
    this.onState({ state: "connecting" });
    let token;
    try {
      token = await this.getToken({ refresh: this.refreshToken });
    } catch (error) {
      console.warn("kubejudge: could not get a token", error);
      this.retry(undefined);
      return;
    }
    if (this.stopped) return;
    this.refreshToken = false;
    const query = new URLSearchParams({ token });
    if (this.lastEventId) query.set("last_event_id", this.lastEventId);
    if (this.watchPools) query.set("pools", "1");
    const socket = new WebSocket(`${this.url}?${query}`);
    this.socket = socket;
    socket.onopen = () => {
      this.alive(socket);
      this.onState({ state: "live" });
    };
    socket.onmessage = (message) => this.receive(socket, message);
    socket.onclose = (closed) => this.closed(socket, closed);
  }

  receive(socket, { data }) {
    if (socket !== this.socket) return;
    const message = JSON.parse(data);
    this.alive(socket);
    switch (message.type) {
      case "welcome":
        if (!this.lastEventId) this.lastEventId = message.id;
        break;
      case "resync":
        this.lastEventId = message.id;
        this.onResync();
        break;
      case "status":
      case "verdict":
        // The gateway never repeats an event on one connection; this guards across them.
        if (this.lastEventId && compareEventIds(message.id, this.lastEventId) <= 0) return;
        this.lastEventId = message.id;
        this.onEvent(message);
        break;
      case "pools":
        this.onPools(message.data.pools);
        break;
      case "error":
        console.warn("kubejudge gateway refused a message:", message.data.message);
        break;
      default: // "pong": liveness only
    }
    // Backoff resets only once the gateway has talked: one that accepts and then drops every
    // connection (no event feed, say) keeps getting longer waits.
    this.attempt = 0;
  }

  alive(socket) {
    // Browsers hide WebSocket pings, so liveness is an app-level ping answered by `pong`.
    this.clearTimers();
    this.later(() => {
      if (socket.readyState !== WebSocket.OPEN) return;
      socket.send(JSON.stringify({ type: "ping" }));
      this.later(() => socket.close(4000, "no pong"), this.pongTimeoutMs);
    }, this.pingIntervalMs);
  }

  closed(socket, { code, reason }) {
    if (socket !== this.socket) return;
    this.socket = null;
    this.clearTimers();
    if (this.stopped) return;
    if (code === CLOSE_BAD_TOKEN) this.refreshToken = true;
    if (code === CLOSE_POLICY && reason === BAD_LAST_EVENT_ID) this.lastEventId = null;
    this.retry(code);
  }

  retry(code) {
    const retryInMs = backoffDelayMs(this.attempt, {
      baseMs: this.baseDelayMs,
      maxMs: this.maxDelayMs,
    });
    this.attempt += 1;
    this.onState({ state: "waiting", retryInMs, code });
    this.later(() => this.connect(), retryInMs);
  }

  later(fn, ms) {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  clearTimers() {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }
}
