// Interoperability: the npm package `ws`, a client nobody here wrote, against
// courier-hub's /ws mount (PROTOCOL.md, "WebSocket"), once with
// permessage-deflate and once without.
//
//   node node_ws.mjs PATH/TO/courier-hub
//
// `ws` is the one installed for the browser tests (tests/browser/node_modules).
// Starts its own hub on an ephemeral port, exits 1 with "FAIL: ..." on the
// first failed check, and never runs longer than HARD_TIMEOUT.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";

const require = createRequire(new URL("../browser/package.json", import.meta.url));
const WebSocket = require("ws");

const HARD_TIMEOUT = 60_000;  // ms, for the whole script
const RECV_TIMEOUT = 5_000;   // ms, for any one expected frame

const hubPath = process.argv[2];
let hub = null;  // the courier-hub we started; killed by PID at exit

class Failure extends Error {}
const check = (cond, what) => { if (!cond) throw new Failure(what); };

// The last resort: whatever hangs, the test ends and takes the hub with it.
setTimeout(() => {
  console.error(`FAIL: still running after ${HARD_TIMEOUT / 1000} s`);
  if (hub) process.kill(hub.pid, "SIGKILL");
  process.exit(1);
}, HARD_TIMEOUT).unref();

function startHub() {
  return new Promise((resolve, reject) => {
    hub = spawn(hubPath, ["--port", "0", "--address", "127.0.0.1", "--threads", "1", "--history", "50"],
                { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    hub.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[^ ]+)/);
      if (m) resolve(m[1]);
    });
    hub.on("error", reject);
    hub.on("exit", (code) => reject(new Error(`hub exited ${code}: ${out}`)));
  });
}

async function publish(base, mount, topic, body) {
  const r = await fetch(`${base}/${mount}/${topic}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body,
  });
  check(r.status === 200, `POST /${mount}/${topic} answered ${r.status}`);
  const answer = await r.json();
  check(answer.topic === topic && typeof answer.id === "string", `publish answer ${JSON.stringify(answer)}`);
  return answer.id;
}

// The exact bytes PROTOCOL.md promises for a message.
const envelope = (id, topic, data) => `{"id":"${id}","topic":"${topic}","data":${data}}`;

// Opens a socket and queues every text frame, so that a check can wait for
// "the next frame" without missing any that came early.
function open(url, options) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    const frames = [];
    const waiters = [];
    ws.on("upgrade", (res) => { ws.extensionsHeader = res.headers["sec-websocket-extensions"] ?? ""; });
    ws.on("message", (data, isBinary) => {
      const f = isBinary ? { binary: data } : data.toString("utf8");
      if (waiters.length) waiters.shift()(f); else frames.push(f);
    });
    ws.next = (what) => frames.length ? Promise.resolve(frames.shift()) : new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Failure(`no frame within ${RECV_TIMEOUT / 1000} s while waiting for ${what}`)),
                           RECV_TIMEOUT);
      waiters.push((f) => { clearTimeout(t); res(f); });
    });
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

// Sends a publish op and returns [ack, envelope]; their order on the wire is
// not specified, so either is accepted.
async function publishOverSocket(ws, topic, data, ref, what) {
  ws.send(`{"op":"publish","topic":"${topic}","data":${data},"ref":${JSON.stringify(ref)}}`);
  const frames = [await ws.next(`ack of ${what}`), await ws.next(`envelope of ${what}`)];
  const ack = frames.find((f) => typeof f === "string" && f.startsWith('{"op":"ack"'));
  check(ack !== undefined, `${what}: no ack among ${JSON.stringify(frames).slice(0, 300)}`);
  const id = JSON.parse(ack).id;
  check(ack === `{"op":"ack","ref":${JSON.stringify(ref)},"id":"${id}"}`, `${what}: ack is ${ack}`);
  const env = frames[0] === ack ? frames[1] : frames[0];
  check(env === envelope(id, topic, data), `${what}: envelope is ${String(env).slice(0, 300)}`);
  return id;
}

function closeCleanly(ws, what) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Failure(`${what}: no close within ${RECV_TIMEOUT / 1000} s`)), RECV_TIMEOUT);
    ws.addEventListener("close", (e) => {
      clearTimeout(t);
      if (e.code !== 1000 || !e.wasClean) reject(new Failure(`${what}: closed with ${e.code}, wasClean ${e.wasClean}`));
      else resolve();
    });
    ws.close(1000);
  });
}

async function run(base, deflate) {
  const mode = deflate ? "deflate" : "plain";
  const wsBase = base.replace("http://", "ws://");

  // Connect to P/{topic}: subscribed at once.
  const ws = await open(`${wsBase}/ws/room-${mode}`, { perMessageDeflate: deflate });
  const ext = ws.extensionsHeader;  // the Sec-WebSocket-Extensions response header
  if (deflate) check(ws.extensions === "permessage-deflate" && /^permessage-deflate\b/.test(ext) &&
                     /\bserver_no_context_takeover\b/.test(ext), `${mode}: Sec-WebSocket-Extensions ${JSON.stringify(ext)}`);
  else check(ws.extensions === "" && ext === "", `${mode}: Sec-WebSocket-Extensions ${JSON.stringify(ext)} without an offer`);

  // Published over HTTP: arrives as the envelope, in order.
  const ids = [];
  for (let n = 0; n < 3; n++) ids.push(await publish(base, "sse", `room-${mode}`, `{"n":${n}}`));
  for (let n = 0; n < 3; n++) {
    const got = await ws.next(`message ${n}`);
    check(got === envelope(ids[n], `room-${mode}`, `{"n":${n}}`), `${mode}: message ${n} is ${got}`);
  }

  // Publish over the socket, with an ack; then a large compressible one. With
  // deflate the server must have sent it compressed: far fewer bytes read.
  await publishOverSocket(ws, `room-${mode}`, '{"text":"héllo ✓","n":123456789012345678901234567890,"x":1.50}',
                          1, "publish ref 1");
  const big = JSON.stringify({ text: "courier ".repeat(640) });  // about 5 KB
  const bytesBefore = ws._socket.bytesRead;  // net.Socket underneath `ws`
  const bigId = await publish(base, "ws", `room-${mode}`, big);
  const got = await ws.next("the 5 KB message");
  check(got === envelope(bigId, `room-${mode}`, big), `${mode}: the 5 KB message arrived changed (${got.length} bytes)`);
  const wire = ws._socket.bytesRead - bytesBefore;
  if (deflate) check(wire < 1000, `${mode}: the 5 KB message took ${wire} bytes on the wire (not compressed?)`);
  else check(wire > 5000, `${mode}: the 5 KB message took only ${wire} bytes on the wire`);
  await publishOverSocket(ws, `room-${mode}`, big, "big", "the 5 KB publish");

  // A ping from the client gets a pong with the same payload.
  const pong = new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Failure(`${mode}: no pong`)), RECV_TIMEOUT);
    ws.once("pong", (data) => { clearTimeout(t); res(data.toString()); });
  });
  ws.ping("are you there");
  check(await pong === "are you there", `${mode}: pong payload`);

  // A malformed op: an error frame, and the connection stays open.
  ws.send('{"op":"nope","ref":"bad"}');
  const err = JSON.parse(await ws.next("error for an unknown op"));
  check(err.op === "error" && err.ref === "bad" && typeof err.error === "string", `${mode}: unknown op answered ${JSON.stringify(err)}`);
  await closeCleanly(ws, `${mode}: /ws/room`);

  // Several topics on one connection through subscribe ops.
  const multi = await open(`${wsBase}/ws`, { perMessageDeflate: deflate });
  const topics = ["x", "y", "z"].map((t) => `${t}-${mode}`);
  for (const t of topics) {
    multi.send(`{"op":"subscribe","topic":"${t}","ref":"sub-${t}"}`);
    const ack = JSON.parse(await multi.next(`ack of subscribe ${t}`));
    check(ack.op === "ack" && ack.ref === `sub-${t}`, `${mode}: subscribe ${t} answered ${JSON.stringify(ack)}`);
  }
  for (const t of topics) {
    const id = await publish(base, "poll", t, `"to ${t}"`);
    const got = await multi.next(`message on ${t}`);
    check(got === envelope(id, t, `"to ${t}"`), `${mode}: on ${t} came ${got}`);
  }

  // Unsubscribe stops delivery: after it, a message to y is not delivered,
  // and one to x published after it is the very next frame.
  multi.send(`{"op":"unsubscribe","topic":"${topics[1]}","ref":"unsub"}`);
  const unack = JSON.parse(await multi.next("ack of unsubscribe"));
  check(unack.op === "ack" && unack.ref === "unsub", `${mode}: unsubscribe answered ${JSON.stringify(unack)}`);
  await publish(base, "poll", topics[1], '"after unsubscribe"');
  const xId = await publish(base, "poll", topics[0], '"still subscribed"');
  const next = await multi.next(`message on ${topics[0]}`);
  check(next === envelope(xId, topics[0], '"still subscribed"'), `${mode}: after unsubscribing ${topics[1]} came ${next}`);
  await closeCleanly(multi, `${mode}: /ws with ops`);
}

let exitCode = 1;
try {
  check(hubPath, "usage: node node_ws.mjs PATH/TO/courier-hub");
  const base = await startHub();
  await run(base, true);
  await run(base, false);
  console.log(`ws ${require("ws/package.json").version}: every check passed, with and without permessage-deflate, against ${base}`);
  exitCode = 0;
} catch (e) {
  console.error("FAIL:", e instanceof Failure ? e.message : (e.stack || String(e)));
} finally {
  if (hub && hub.exitCode === null) {
    hub.removeAllListeners("exit");
    hub.kill("SIGTERM");
  }
}
process.exitCode = exitCode;
