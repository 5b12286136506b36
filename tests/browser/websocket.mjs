// A browser's own WebSocket against courier-hub: receives published
// envelopes byte for byte, publishes with an ack, closes cleanly; and the
// handshake's Origin check (PROTOCOL.md, "Browsers"): same origin and the
// allow-list pass, any other origin gets 403.
// Usage: node websocket.mjs PATH/TO/courier-hub
import WebSocket from "ws";
import { deadline, fail, launchBrowser, publish as post, startServer, stopServers } from "./lib.mjs";

const hubPath = process.argv[2];
deadline(90);
const startHub = (...extra) => startServer(hubPath, ["--threads", "1", "--history", "50", ...extra]);
const publish = (base, topic, body) => post(`${base}/ws/${topic}`, body);

const envelope = (id, topic, data) => `{"id":"${id}","topic":"${topic}","data":${data}}`;

// In the page: opens a WebSocket and records what happens to it in window.sockets[name].
function openInPage(page, name, url) {
  return page.evaluate(([name, url]) => {
    window.sockets ??= {};
    const s = window.sockets[name] = { got: [], opened: false, closed: null, extensions: null };
    const ws = new WebSocket(url);
    s.ws = ws;
    ws.onopen = () => { s.opened = true; s.extensions = ws.extensions; };
    ws.onmessage = (e) => s.got.push(e.data);
    ws.onclose = (e) => { s.closed = { code: e.code, wasClean: e.wasClean }; };
  }, [name, url]);
}
const socketState = (page, name) => page.evaluate((name) => {
  const { got, opened, closed, extensions } = window.sockets[name];
  return { got, opened, closed, extensions };
}, name);

// A node `ws` client with the given Origin: resolves "open" or the error message.
function nodeClientWithOrigin(url, origin) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { origin });
    ws.on("open", () => { ws.close(1000); resolve("open"); });
    ws.on("error", (e) => resolve(e.message));
  });
}

// Chromium's Local Network Access checks are off (lib.mjs), so that the
// hub's Origin check is what is tested for pages of public-looking origins.
const browser = await launchBrowser();
try {
  // 1. Same origin, default hub: a page of the hub opens ws://.../ws/room.
  const base = await startHub();
  const wsBase = base.replace("http://", "ws://");
  const page = await browser.newPage();
  await page.goto(`${base}/poll/room`);  // any page of the hub: same origin
  await openInPage(page, "room", `${wsBase}/ws/room`);
  await page.waitForFunction(() => window.sockets.room.opened, null, { timeout: 10000 });

  const ids = [];
  for (let n = 0; n < 3; n++) ids.push(await publish(base, "room", `{"n":${n}}`));
  // A large compressible one too: Chromium offers permessage-deflate.
  const big = JSON.stringify({ text: "courier ".repeat(640) });
  ids.push(await publish(base, "room", big));
  await page.waitForFunction(() => window.sockets.room.got.length === 4, null, { timeout: 10000 });
  let state = await socketState(page, "room");
  if (!/^permessage-deflate\b/.test(state.extensions)) fail(`extensions negotiated: ${JSON.stringify(state.extensions)}`);
  state.got.forEach((f, i) => {
    const expected = envelope(ids[i], "room", i < 3 ? `{"n":${i}}` : big);
    if (f !== expected) fail(`frame ${i} is ${f.slice(0, 200)}, expected ${expected.slice(0, 200)}`);
  });

  // Publish through the socket with a ref: an ack and the envelope (either order).
  await page.evaluate(() => window.sockets.room.ws.send('{"op":"publish","topic":"room","data":{"from":"browser"},"ref":42}'));
  await page.waitForFunction(() => window.sockets.room.got.length === 6, null, { timeout: 10000 });
  state = await socketState(page, "room");
  const pair = state.got.slice(4);
  const ack = pair.find((f) => f.startsWith('{"op":"ack"'));
  const ackId = ack && JSON.parse(ack).id;
  if (!ack || ack !== `{"op":"ack","ref":42,"id":"${ackId}"}`) fail(`no proper ack: ${JSON.stringify(pair)}`);
  else if (!pair.includes(envelope(ackId, "room", '{"from":"browser"}'))) fail(`no envelope for the ack: ${JSON.stringify(pair)}`);

  // Close cleanly from the page.
  await page.evaluate(() => window.sockets.room.ws.close(1000));
  await page.waitForFunction(() => window.sockets.room.closed !== null, null, { timeout: 10000 });
  state = await socketState(page, "room");
  if (state.closed.code !== 1000 || !state.closed.wasClean) fail(`close: ${JSON.stringify(state.closed)}`);

  // 2. Origin check, on a hub that allows only http://allowed.example.
  const guarded = await startHub("--allow-origin", "http://allowed.example");
  const guardedWs = `${guarded.replace("http://", "ws://")}/ws/room`;
  const evil = await nodeClientWithOrigin(guardedWs, "http://evil.example");
  if (evil !== "Unexpected server response: 403") fail(`Origin http://evil.example: ${evil}`);
  const allowed = await nodeClientWithOrigin(guardedWs, "http://allowed.example");
  if (allowed !== "open") fail(`Origin http://allowed.example: ${allowed}`);

  // The same from real pages: the hub's own page (same origin, not on the
  // list) and pages of the two other origins, served by Playwright.
  // (Chromium's Local Network Access checks are off, see the launch flags.)
  // Chromium says why a handshake failed only on the console: keep it.
  const page2 = await browser.newPage();
  const consoleLines = [];
  page2.on("console", (m) => consoleLines.push(m.text()));
  const origins = { same: `${guarded}/poll/room`, allowed: "http://allowed.example/", evil: "http://evil.example/" };
  await page2.route(/^http:\/\/(allowed|evil)\.example\//, (route) =>
    route.fulfill({ status: 200, contentType: "text/html", body: "<!doctype html><title>origin test</title>" }));
  for (const [name, url] of Object.entries(origins)) {
    await page2.goto(url);
    await openInPage(page2, name, guardedWs);
    await page2.waitForFunction((name) => window.sockets[name].opened || window.sockets[name].closed, name,
                               { timeout: 10000 });
    const s = await socketState(page2, name);
    if (name === "evil" && (s.opened || s.closed.code !== 1006 || !consoleLines.some((l) => /response code: 403/.test(l))))
      fail(`page of http://evil.example: ${JSON.stringify(s)}, console: ${JSON.stringify(consoleLines)}`);
    if (name !== "evil" && !s.opened) fail(`page of ${url} could not connect: ${JSON.stringify(s)}, console: ${JSON.stringify(consoleLines)}`);
    if (s.opened) await page2.evaluate((name) => window.sockets[name].ws.close(1000), name);
  }

  if (!process.exitCode) {
    console.log(`browser WebSocket received ${state.got.length} frames, published with an ack and closed cleanly; ` +
                `Origin check: same origin and allow-list open, http://evil.example refused with 403`);
  }
} catch (e) {
  fail(e.stack || String(e));
} finally {
  await browser.close();
  stopServers();
}
