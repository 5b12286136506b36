// courier.js: the browser client of courier (wire protocol: docs/protocol.md,
// reference: docs/courier-js.md). A dependency-free ES module, no build step.
//
//   import { Courier } from "/courier.js";
//   const courier = new Courier({
//     url: location.origin,         // base URL of the server (http or https)
//     mounts: { websocket: "/ws", sse: "/sse", longpoll: "/lp", poll: "/poll" },
//     transports: ["websocket", "sse", "longpoll", "poll"],  // preference order
//     token: undefined,             // bearer token (header on fetch, ?access_token= otherwise)
//     pollInterval: 1000,           // ms between polls
//     longPollTimeout: 25,          // seconds, sent as ?timeout=
//     connectTimeout: 5000,         // ms before a transport that has not opened counts as failed
//     onTransport: (name) => {},    // a negotiation chose a transport
//     onStatus: (status) => {},     // "connecting" | "open" | "reconnecting" | "closed"
//     onError: ({ topic, error, message }) => {},  // refusals; never thrown
//   });
//   const sub = courier.subscribe("room", (envelope) => {}, { since: "<id>", onGap: ({ topic, next }) => {} });
//   sub.close();
//   await courier.publish("room", { text: "hi" });  // {id, topic}; rejects with Error .code .status
//   courier.transport;                              // name of the open transport, or null
//   courier.close();

const TOPIC = /^[A-Za-z0-9._:-]{1,128}$/;
const NAMES = ["websocket", "sse", "longpoll", "poll"];
// Answers that refuse a topic: reported through onError, never retried.
const REFUSALS = new Set([400, 401, 403, 404]);

const DEFAULTS = {
  mounts: { websocket: "/ws", sse: "/sse", longpoll: "/lp", poll: "/poll" },
  transports: NAMES,
  token: undefined,
  pollInterval: 1000,
  longPollTimeout: 25,
  connectTimeout: 5000,
  onTransport: () => {},
  onStatus: () => {},
  onError: () => {},
};

function checkTopic(topic) {
  if (typeof topic !== "string" || !TOPIC.test(topic))
    throw new TypeError(`invalid topic name ${JSON.stringify(topic)}: 1 to 128 characters of A-Z a-z 0-9 . _ : -`);
}

function wireError(code, message, status) {
  const err = new Error(message || code);
  err.code = code;
  if (status !== undefined) err.status = status;
  return err;
}

// 0.5 s doubling to 10 s, each delay drawn between half and all of it so that
// many clients cut at once do not come back in step.
const backoff = (n) => Math.min(10000, 500 * 2 ** n) * (0.5 + Math.random() / 2);

// An exception in the application's callback must not break delivery.
function report(err) {
  if (typeof globalThis.reportError === "function") globalThis.reportError(err);
  else setTimeout(() => { throw err; });
}

// A fetch answer: the JSON body when 200; a refusal (err.refused) for a JSON
// 400/401/403/404; any other answer is a failure of the transport.
async function readAnswer(res) {
  let body = null;
  try { body = await res.json(); } catch { /* not JSON: a proxy page, say */ }
  if (res.ok && body !== null && typeof body === "object") return body;
  if (body && typeof body.error === "string") {
    const err = wireError(body.error, body.message, res.status);
    err.refused = REFUSALS.has(res.status);
    throw err;
  }
  throw wireError("http_error", `HTTP ${res.status}`, res.status);
}

// One WebSocket for every topic: subscribe/unsubscribe/publish ops with refs.
class WebSocketLink {
  constructor(courier, hooks) {
    this.c = courier;
    this.h = hooks;
    this.topics = new Set();  // names subscribed (or to subscribe once open)
    this.refs = new Map();    // ref -> {t} for a subscribe, {topic, resolve, reject} for a publish
    const url = courier._url("websocket", null, { access_token: courier.options.token });
    this.ws = new WebSocket(url.replace(/^http/, "ws"));
    this.ws.onopen = () => {
      this.h.open();
      for (const name of this.topics) {
        const t = this.c._topics.get(name);
        if (t) this.subscribe(t);
      }
    };
    this.ws.onmessage = (e) => this.frame(e.data);
    this.ws.onerror = this.ws.onclose = () => { this.close(); this.h.down(new Error("websocket closed")); };
  }

  get ready() { return this.ws.readyState === WebSocket.OPEN; }

  add(t) {
    this.topics.add(t.name);
    if (this.ready) this.subscribe(t);
  }

  subscribe(t) {
    const ref = this.c._nextRef();
    this.refs.set(ref, { t });
    const op = { op: "subscribe", topic: t.name, ref };
    if (t.cursor != null) op.since = t.cursor;
    this.ws.send(JSON.stringify(op));
  }

  remove(name) {
    if (this.topics.delete(name) && this.ready) this.ws.send(JSON.stringify({ op: "unsubscribe", topic: name }));
  }

  publish(topic, body) {
    return new Promise((resolve, reject) => {
      const ref = this.c._nextRef();
      this.refs.set(ref, { topic, resolve, reject });
      // body is already JSON text: splice it in rather than parse and re-encode.
      this.ws.send(`{"op":"publish","topic":${JSON.stringify(topic)},"data":${body},"ref":${ref}}`);
    });
  }

  frame(text) {
    let f;
    try { f = JSON.parse(text); } catch { return; }
    if (f === null || typeof f !== "object") return;
    if (!("op" in f)) return this.h.deliver(f.topic, f);  // an envelope
    const pending = this.refs.get(f.ref);
    if (pending) this.refs.delete(f.ref);
    if (f.op === "gap") {
      this.h.gap(f.topic, f.next);
    } else if (f.op === "ack") {
      if (pending?.resolve) pending.resolve({ id: f.id, topic: pending.topic });
      else if (pending?.t) this.h.started(pending.t, f.id);
    } else if (f.op === "error") {
      if (pending?.reject) pending.reject(wireError(f.error, f.message));
      else if (pending?.t) { this.topics.delete(pending.t.name); this.h.refuse(pending.t, wireError(f.error, f.message)); }
      else this.h.refuse(null, wireError(f.error, f.message));
    }
  }

  close() {
    this.ws.onopen = this.ws.onmessage = this.ws.onerror = this.ws.onclose = null;
    if (this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000);
    // A publish without its ack may or may not have happened: say so, never resend.
    for (const p of this.refs.values())
      p.reject?.(wireError("disconnected", "the connection closed before the publish was acknowledged"));
    this.refs.clear();
  }
}

// Base of the transports that carry one stream (or request loop) per topic.
// The link counts as open once every topic it started with has opened or been
// answered (a refusal too: the server was reached).
class PerTopicLink {
  constructor(courier, hooks, name) {
    this.c = courier;
    this.h = hooks;
    this.name = name;
    this.streams = new Map();  // topic name -> stream state {t, ...}
    this.pending = new Set();  // topics not yet opened or answered
  }

  add(t) {
    if (!this.h.isOpen()) this.pending.add(t.name);
    const s = { t };
    this.streams.set(t.name, s);
    this.start(t, s);
  }

  remove(name) {
    const s = this.streams.get(name);
    if (s) { this.streams.delete(name); this.stop(s); }
    if (this.pending.delete(name) && this.pending.size === 0 && this.streams.size > 0) this.h.open();
  }

  live(s) { return this.streams.get(s.t.name) === s; }

  settle(name) {
    if (this.pending.delete(name) && this.pending.size === 0) this.h.open();
  }

  close() {
    for (const s of this.streams.values()) this.stop(s);
    this.streams.clear();
  }
}

// One EventSource per topic. The browser reconnects it by itself (with
// Last-Event-ID); a stream that is CLOSED, or still failing after
// connectTimeout, is a disconnect of the whole link.
class SseLink extends PerTopicLink {
  constructor(courier, hooks) { super(courier, hooks, "sse"); }

  start(t, s) {
    const o = this.c.options;
    const es = s.es = new EventSource(this.c._url("sse", t.name, { since: t.cursor, access_token: o.token }));
    es.onopen = () => {
      clearTimeout(s.stall);
      s.stall = null;
      this.settle(t.name);
      if (this.h.isOpen()) this.h.status("open");
    };
    es.onmessage = (e) => {
      let env;
      try { env = JSON.parse(e.data); } catch { return; }
      this.h.deliver(t.name, env);
    };
    es.addEventListener("gap", (e) => {
      let info;
      try { info = JSON.parse(e.data); } catch { return; }
      this.h.gap(t.name, info.next);
    });
    es.onerror = () => {
      if (!this.live(s)) return;
      if (es.readyState === EventSource.CLOSED || !this.h.isOpen()) return this.h.down(new Error("event stream failed"));
      if (!s.stall) {
        this.h.status("reconnecting");
        s.stall = setTimeout(() => { if (this.live(s)) this.h.down(new Error("event stream stalled")); }, o.connectTimeout);
      }
    };
  }

  stop(s) {
    clearTimeout(s.stall);
    s.es.onopen = s.es.onmessage = s.es.onerror = null;
    s.es.close();
  }
}

// Long polling and interval polling: the same answer, asked in a loop per topic.
class FetchLink extends PerTopicLink {
  start(t, s) {
    s.ctl = new AbortController();
    this.loop(t, s);
  }

  stop(s) {
    clearTimeout(s.timer);
    clearTimeout(s.guard);
    s.ctl.abort();
  }

  async loop(t, s) {
    const o = this.c.options;
    const long = this.name === "longpoll";
    let first = true;
    while (this.live(s)) {
      // The first long poll does not wait (timeout=0), so that opening is
      // told apart from a quiet topic and any backlog comes at once.
      const params = { since: t.cursor };
      if (long) params.timeout = first ? 0 : o.longPollTimeout;
      // A request that hangs (a dead network often does not say so) is a failure.
      const limit = long && !first ? o.longPollTimeout * 1000 + o.connectTimeout : o.connectTimeout;
      s.guard = setTimeout(() => s.ctl.abort(), limit);
      let answer;
      try {
        const res = await fetch(this.c._url(this.name, t.name, params),
                                { headers: this.c._headers(), signal: s.ctl.signal, cache: "no-store" });
        answer = await readAnswer(res);
      } catch (err) {
        clearTimeout(s.guard);
        if (!this.live(s)) return;  // closed: nothing to report
        if (err.refused) {
          this.streams.delete(t.name);
          this.settle(t.name);
          return this.h.refuse(t, err);
        }
        return this.h.down(err);
      }
      clearTimeout(s.guard);
      if (!this.live(s)) return;
      first = false;
      this.settle(t.name);
      if (answer.gap) this.h.gap(t.name, answer.next);
      for (const env of Array.isArray(answer.messages) ? answer.messages : []) {
        if (!this.live(s)) return;  // a handler closed the subscription
        this.h.deliver(t.name, env);
      }
      if (!this.live(s)) return;
      // next is the last id delivered, or "now" when the request had no since.
      if (typeof answer.next === "string") t.cursor = answer.next;
      if (!long) await new Promise((resolve) => { s.timer = setTimeout(resolve, o.pollInterval); });
    }
  }
}

const LINKS = {
  websocket: (c, h) => new WebSocketLink(c, h),
  sse: (c, h) => new SseLink(c, h),
  longpoll: (c, h) => new FetchLink(c, h, "longpoll"),
  poll: (c, h) => new FetchLink(c, h, "poll"),
};

export class Courier {
  constructor(options = {}) {
    // An option given as undefined takes its default.
    const given = (o) => Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined));
    this.options = { ...DEFAULTS, ...given(options), mounts: { ...DEFAULTS.mounts, ...given(options.mounts) } };
    const base = options.url ?? (typeof location !== "undefined" ? location.origin : undefined);
    if (typeof base !== "string" || !/^https?:\/\//.test(base)) throw new TypeError("url must be an http(s) URL");
    this.url = base.replace(/\/+$/, "");
    const list = this.options.transports;
    if (!Array.isArray(list) || list.length === 0 || list.some((n) => !NAMES.includes(n)))
      throw new TypeError(`transports must be a non-empty list of ${NAMES.join(", ")}`);
    this.transport = null;    // name of the open transport, or null
    this._topics = new Map(); // name -> {name, cursor, listeners}; cursor: last id received
    this._link = null;        // the transport being tried or in use
    this._index = 0;          // its place in the transports list
    this._mode = "negotiate"; // or "reconnect": retry the transport that worked
    this._failures = 0;       // consecutive failed reconnects
    this._attempt = 0;        // consecutive attempts without an open transport (backoff)
    this._timer = null;       // the next attempt
    this._ref = 0;
    this._status = null;
    this._closed = false;
  }

  subscribe(topic, handler, { since, onGap } = {}) {
    checkTopic(topic);
    if (typeof handler !== "function") throw new TypeError("handler must be a function");
    if (since !== undefined && typeof since !== "string") throw new TypeError("since must be an id string");
    if (this._closed) throw new Error("courier is closed");
    const listener = { handler, onGap };
    let t = this._topics.get(topic);
    if (!t) {  // a second subscription to a topic shares the first one's stream (and ignores since)
      t = { name: topic, cursor: since ?? null, listeners: new Set([listener]) };
      this._topics.set(topic, t);
      if (this._link) this._link.add(t);
      else this._connect();
    } else {
      t.listeners.add(listener);
    }
    return {
      close: () => {
        if (!t.listeners.delete(listener) || t.listeners.size > 0 || this._topics.get(topic) !== t) return;
        this._topics.delete(topic);
        this._link?.remove(topic);
        this._idleIfEmpty();
      },
    };
  }

  publish(topic, data) {
    checkTopic(topic);
    const body = JSON.stringify(data);
    if (body === undefined) throw new TypeError("data must be a JSON value");
    if (this._closed) return Promise.reject(wireError("closed", "courier is closed"));
    if (this._link?.isOpen && this._link.publish) return this._link.publish(topic, body);
    return this._post(topic, body);
  }

  close() {
    if (this._closed) return;
    this._closed = true;
    this._stopLink();
    this._topics.clear();
    this._setStatus("closed");
  }

  // Publishing over HTTP: the mount of the HTTP transport in use, else the first one listed.
  async _post(topic, body) {
    const http = this._link?.isOpen && this._link.name ? this._link.name
      : this.options.transports.find((n) => n !== "websocket") ?? "sse";
    let res;
    try {
      res = await fetch(this._url(http, topic), {
        method: "POST", body, headers: { ...this._headers(), "Content-Type": "application/json" },
      });
    } catch (err) {
      throw wireError("network_error", err.message);
    }
    const answer = await readAnswer(res);
    return { id: answer.id, topic: answer.topic };
  }

  _url(name, topic, params = {}) {
    let url = this.url + this.options.mounts[name];
    if (topic != null) url += "/" + encodeURIComponent(topic);
    const query = Object.entries(params).filter(([, v]) => v != null && v !== "")
      .map(([k, v]) => `${k}=${encodeURIComponent(v)}`);
    return query.length ? `${url}?${query.join("&")}` : url;
  }

  _headers() {
    return this.options.token ? { Authorization: `Bearer ${this.options.token}` } : {};
  }

  _nextRef() { return ++this._ref; }

  // The application's callbacks run outside the state machine: a throw is reported, not propagated.
  _call(name, arg) {
    try { this.options[name](arg); } catch (err) { report(err); }
  }

  _setStatus(status) {
    if (status === this._status) return;
    this._status = status;
    this._call("onStatus", status);
  }

  _connect() {
    if (this._closed || this._link || this._timer) return;
    this._mode = "negotiate";
    this._setStatus(this._status === null ? "connecting" : "reconnecting");
    this._try(0);
  }

  // Start transport number index with every topic.
  _try(index) {
    this._timer = null;
    if (this._closed || this._topics.size === 0) return;  // nothing to carry: wait for a subscribe
    this._index = index;
    const name = this.options.transports[index];
    let link;
    const live = () => this._link === link;
    const hooks = {
      isOpen: () => link.isOpen,
      status: (s) => { if (live()) this._setStatus(s); },
      open: () => {
        if (!live() || link.isOpen) return;
        link.isOpen = true;
        clearTimeout(link.connectTimer);
        this._failures = this._attempt = 0;
        this.transport = name;
        this._setStatus("open");
        if (this._mode === "negotiate") this._call("onTransport", name);
        this._mode = "reconnect";
      },
      down: () => { if (live()) this._down(link); },
      deliver: (topic, env) => { if (live()) this._deliver(topic, env); },
      gap: (topic, next) => { if (live()) this._gap(topic, next); },
      started: (t, id) => { if (live() && this._topics.get(t.name) === t && t.cursor == null) t.cursor = id; },
      refuse: (t, err) => { if (live()) this._refuse(t, err); },
    };
    try {
      link = this._link = LINKS[name](this, hooks);
      link.isOpen = false;
      link.connectTimer = setTimeout(hooks.down, this.options.connectTimeout);
      for (const t of this._topics.values()) link.add(t);
    } catch {  // a URL the browser will not open (a bad mount, say): a failed transport
      if (!link) link = this._link = { isOpen: false, close() {} };
      hooks.down();
    }
  }

  // The link failed (before opening) or was lost (after): what to try next.
  _down(link) {
    const wasOpen = link.isOpen;
    this._stopLink();
    if (this._closed) return;
    this._setStatus("reconnecting");
    if (wasOpen) {
      this._failures = 0;
      this._later(this._index);
    } else if (this._mode === "negotiate") {
      // Not yet worked: the next transport at once; after the last, start over later.
      if (this._index + 1 < this.options.transports.length) this._try(this._index + 1);
      else this._later(0);
    } else if (++this._failures >= 3) {
      this._mode = "negotiate";
      this._try(0);
    } else {
      this._later(this._index);
    }
  }

  _later(index) {
    this._timer = setTimeout(() => this._try(index), backoff(this._attempt++));
  }

  _stopLink() {
    clearTimeout(this._timer);
    this._timer = null;
    const link = this._link;
    this._link = null;
    this.transport = null;
    if (link) { clearTimeout(link.connectTimer); link.close(); }
  }

  // Without topics there is nothing to negotiate for: stop trying (an open link stays).
  _idleIfEmpty() {
    if (this._topics.size === 0 && !this._link?.isOpen) this._stopLink();
  }

  _deliver(topic, env) {
    const t = this._topics.get(topic);
    if (!t || env === null || typeof env !== "object" || typeof env.id !== "string") return;
    // Ids are opaque: equality with the cursor is the one overlap a resume can bring.
    if (env.id === t.cursor) return;
    t.cursor = env.id;
    for (const l of [...t.listeners]) {
      if (!t.listeners.has(l)) continue;  // closed by an earlier handler
      try { l.handler(env); } catch (err) { report(err); }
    }
  }

  // The cursor stays: next's meaning differs between transports, and the old
  // cursor, if used again, is only announced as a gap again.
  _gap(topic, next) {
    const t = this._topics.get(topic);
    if (!t) return;
    for (const l of [...t.listeners]) {
      try { l.onGap?.({ topic, next }); } catch (err) { report(err); }
    }
  }

  // A refused subscription ends (subscribe again to retry); t is null for an error without a ref.
  _refuse(t, err) {
    if (t) {
      if (this._topics.get(t.name) !== t) return;
      this._topics.delete(t.name);
      this._link?.remove(t.name);
    }
    this._call("onError", { topic: t ? t.name : null, error: err.code, message: err.message });
    this._idleIfEmpty();
  }
}
