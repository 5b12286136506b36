// courier.js, the browser client (include/courier/web/courier.js), in Chromium
// against courier-hub: negotiation picks WebSocket; each transport alone
// delivers in order; fallback when WebSocket (and SSE) are refused or hang;
// resume after the connection is cut, with nothing lost or repeated, and a
// new negotiation after 3 failed reconnects; publish() and refusals (a wrong
// token). Usage: node courier_js.mjs PATH/TO/courier-hub
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deadline, fail, launchBrowser, publish as post, startServer, stopServers } from "./lib.mjs";

const hubPath = process.argv[2];
const proxies = [];  // every proxy we started; closed at exit
const dirs = [];  // temporary directories (the tokens file); removed at exit
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const courierJs = readFileSync(new URL("../../include/courier/web/courier.js", import.meta.url), "utf8");
const APP = "http://app.test";  // the page's origin, served by Playwright (page.route)
deadline(90);

const startHub = (...extra) =>
  startServer(hubPath, ["--threads", "1", "--history", "50", "--allow-origin", APP, ...extra]);

// A TCP proxy in front of a hub, so that the test can cut the page's
// connections (cut: drop every connection and refuse new ones until restore)
// or make WebSocket handshakes hang (swallowUpgrades) while HTTP passes.
function startProxy(target, { swallowUpgrades = false } = {}) {
  const { hostname, port } = new URL(target);
  const pairs = new Set();
  const proxy = { cut: false, connections: 0 };
  const server = net.createServer((client) => {
    proxy.connections++;
    if (proxy.cut) return client.destroy();
    client.once("data", (first) => {
      if (swallowUpgrades && /^upgrade: *websocket/im.test(first.toString("latin1"))) {
        pairs.add([client, client]);
        return;  // read, never answered
      }
      const upstream = net.connect(Number(port), hostname);
      const pair = [client, upstream];
      pairs.add(pair);
      upstream.write(first);
      client.pipe(upstream);
      upstream.pipe(client);
      const end = () => { pairs.delete(pair); client.destroy(); upstream.destroy(); };
      client.on("error", end).on("close", end);
      upstream.on("error", end).on("close", end);
    });
    client.on("error", () => {});
  });
  proxy.cutAll = () => { proxy.cut = true; for (const p of pairs) { p[0].destroy(); p[1].destroy(); } pairs.clear(); };
  proxy.restore = () => { proxy.cut = false; };
  proxy.close = () => { proxy.cutAll(); server.close(); };
  proxies.push(proxy);
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => {
    proxy.base = `http://127.0.0.1:${server.address().port}`;
    resolve(proxy);
  }));
}

// Publishes from node, straight to the hub: returns the id.
const publish = (base, topic, body, headers = {}) => post(`${base}/poll/${topic}`, body, headers);

// Bodies in the form JSON.stringify gives back, so that data can be compared byte for byte.
const bodies = (tag, n) => Array.from({ length: n }, (_, i) =>
  JSON.stringify(i % 2 ? { tag, n: i, text: "h\u00e9llo \u2603 \"q\" \\ line\nbreak" } : [tag, i, null, true, 1.5, { deep: [i] }]));

const PAGE = `<!doctype html><title>courier.js test</title>
<script type="module">
import { Courier } from "/courier.js";
window.Courier = Courier;
window.runs = {};
// One Courier per run, everything it reports recorded for the test to read.
window.start = (name, options, topics, since = "earliest") => {
  const r = window.runs[name] = { got: {}, gaps: [], errors: [], transports: [], statuses: [] };
  r.courier = new Courier({ ...options, onTransport: (n) => r.transports.push(n),
                            onStatus: (s) => r.statuses.push(s), onError: (e) => r.errors.push(e) });
  for (const t of topics) {
    r.got[t] = [];
    r.courier.subscribe(t, (env) => r.got[t].push({ id: env.id, topic: env.topic, data: JSON.stringify(env.data) }),
                        { since, onGap: (g) => r.gaps.push(g) });
  }
};
window.ready = true;
</script>`;

async function newPage(browser, pageErrors) {
  const page = await browser.newPage();
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  await page.route(/^http:\/\/app\.test\//, (route) => {
    const path = new URL(route.request().url()).pathname;
    if (path === "/courier.js") return route.fulfill({ status: 200, contentType: "text/javascript", body: courierJs });
    return route.fulfill({ status: 200, contentType: "text/html", body: PAGE });
  });
  await page.goto(`${APP}/`);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 10000 });
  return page;
}

const startRun = (page, name, options, topics, since) =>
  page.evaluate(([n, o, t, c]) => window.start(n, o, t, c), [name, options, topics, since]);
const runState = (page, name) => page.evaluate((n) => {
  const r = window.runs[n];
  return { got: r.got, gaps: r.gaps, errors: r.errors, transports: r.transports, statuses: r.statuses,
           transport: r.courier.transport };
}, name);
const waitTransport = (page, name, transport, timeout = 15000) =>
  page.waitForFunction(([n, t]) => window.runs[n].courier.transport === t, [name, transport], { timeout })
    .catch(async () => { throw new Error(`${name}: no ${transport}: ${JSON.stringify(await runState(page, name))}`); });
const waitCount = (page, name, topic, count, timeout = 15000) =>
  page.waitForFunction(([n, t, c]) => window.runs[n].got[t].length >= c, [name, topic, count], { timeout })
    .catch(async () => { throw new Error(`${name}: fewer than ${count} on ${topic}: ${JSON.stringify(await runState(page, name))}`); });
const closeRun = (page, name) => page.evaluate((n) => window.runs[n].courier.close(), name);

// Every envelope exactly once and in order: ids as published, data byte-equal.
function checkDelivery(label, got, topic, ids, sent) {
  if (got.length !== ids.length) fail(`${label}: ${got.length} envelopes, expected ${ids.length}: ${JSON.stringify(got.map((e) => e.id))} vs ${JSON.stringify(ids)}`);
  got.forEach((e, i) => {
    if (e.id !== ids[i] || e.topic !== topic || (sent && e.data !== sent[i]))
      fail(`${label}: envelope ${i} is ${JSON.stringify(e)}, expected id ${ids[i]} data ${sent && sent[i]}`);
  });
}

async function publishAll(base, topic, list) {
  const ids = [];
  for (const b of list) ids.push(await publish(base, topic, b));
  return ids;
}

// The launch flags of websocket.mjs: LocalNetworkAccessChecks would keep the
// page of http://app.test (a public origin) from reaching 127.0.0.1.
const browser = await launchBrowser();
const pageErrors = [];
const done = [];
try {
  const base = await startHub();
  const page = await newPage(browser, pageErrors);

  // Topic names are checked at once, synchronously.
  const thrown = await page.evaluate(() => {
    const c = new window.Courier({ url: "http://127.0.0.1:9" });
    const kinds = [];
    for (const f of [() => c.subscribe("bad topic", () => {}), () => c.publish("a/b", 1), () => c.publish("x".repeat(129), 1)]) {
      try { f(); kinds.push("none"); } catch (e) { kinds.push(e.constructor.name); }
    }
    c.close();
    return kinds;
  });
  if (thrown.join() !== "TypeError,TypeError,TypeError") fail(`invalid topics: ${thrown}`);

  // a. All four allowed: WebSocket, envelopes in order and byte-equal; publish() over the socket.
  await startRun(page, "a", { url: base }, ["a-room"]);
  await waitTransport(page, "a", "websocket");
  let sent = bodies("a", 6);
  let ids = await publishAll(base, "a-room", sent);
  await waitCount(page, "a", "a-room", 6);
  const acked = await page.evaluate(() => window.runs.a.courier.publish("a-room", { from: "page" }));
  if (acked.topic !== "a-room" || typeof acked.id !== "string") fail(`a: publish() resolved ${JSON.stringify(acked)}`);
  ids.push(acked.id);
  sent.push('{"from":"page"}');
  await waitCount(page, "a", "a-room", 7);
  let s = await runState(page, "a");
  checkDelivery("a (websocket)", s.got["a-room"], "a-room", ids, sent);
  if (s.transports.join() !== "websocket" || s.statuses.join() !== "connecting,open")
    fail(`a: transports ${s.transports}, statuses ${s.statuses}`);
  // A refused subscribe on the socket (the 65th topic of one connection) is an
  // onError for that topic, not a fallback.
  await page.evaluate(() => { for (let i = 0; i < 64; i++) window.runs.a.courier.subscribe(`a-many-${i}`, () => {}); });
  await page.waitForFunction(() => window.runs.a.errors.length > 0, null, { timeout: 10000 }).catch(() => {});
  await sleep(300);
  s = await runState(page, "a");
  if (s.errors.length !== 1 || s.errors[0].topic !== "a-many-63" || s.errors[0].error !== "too_many_subscriptions")
    fail(`a: 65th subscription: errors ${JSON.stringify(s.errors)}`);
  if (s.transport !== "websocket" || s.transports.join() !== "websocket") fail(`a: after a refusal: ${s.transport} ${s.transports}`);
  await closeRun(page, "a");
  const aIds = ids;

  // A cursor from another life of the topic: onGap, then everything retained, on every transport.
  for (const t of ["websocket", "sse", "longpoll", "poll"]) {
    const name = `gap-${t}`;
    await startRun(page, name, { url: base, transports: [t] }, ["a-room"], "zzzzzzzz-1");
    await waitCount(page, name, "a-room", aIds.length);
    await sleep(200);
    s = await runState(page, name);
    checkDelivery(name, s.got["a-room"], "a-room", aIds, null);
    if (s.gaps.length !== 1 || s.gaps[0].topic !== "a-room" || typeof s.gaps[0].next !== "string")
      fail(`${name}: gaps ${JSON.stringify(s.gaps)}`);
    await closeRun(page, name);
  }
  done.push("a");

  // b. Each other transport alone; publish() over HTTP.
  for (const t of ["sse", "longpoll", "poll"]) {
    const name = `b-${t}`;
    await startRun(page, name, { url: base, transports: [t], pollInterval: 200 }, [name]);
    await waitTransport(page, name, t);
    sent = bodies(name, 5);
    ids = await publishAll(base, name, sent);
    const r = await page.evaluate((n) => window.runs[n].courier.publish(n, [n]), name);
    if (r.topic !== name || typeof r.id !== "string") fail(`${name}: publish() resolved ${JSON.stringify(r)}`);
    ids.push(r.id);
    sent.push(JSON.stringify([name]));
    await waitCount(page, name, name, 6);
    await sleep(250);  // room for a duplicate to show up
    s = await runState(page, name);
    checkDelivery(name, s.got[name], name, ids, sent);
    if (s.transports.join() !== t) fail(`${name}: transports ${s.transports}`);
    await closeRun(page, name);
  }
  done.push("b");

  // c. Fallback: WebSocket refused (not a WebSocket mount) -> SSE; SSE refused too -> long polling;
  // WebSocket handshakes that never answer -> SSE after connectTimeout.
  const hang = await startProxy(base, { swallowUpgrades: true });
  const cases = [
    ["c-ws", { url: base, mounts: { websocket: "/nope" } }, "sse"],
    ["c-ws-sse", { url: base, mounts: { websocket: "/nope", sse: "/nope" } }, "longpoll"],
    ["c-hang", { url: hang.base, connectTimeout: 1500 }, "sse"],
  ];
  for (const [name, options, expected] of cases) {
    const t0 = Date.now();
    await startRun(page, name, options, [name]);
    await waitTransport(page, name, expected);
    if (name === "c-hang" && Date.now() - t0 < 1400) fail(`c-hang: on SSE after ${Date.now() - t0} ms, before connectTimeout`);
    sent = bodies(name, 4);
    ids = await publishAll(base, name, sent);
    await waitCount(page, name, name, 4);
    s = await runState(page, name);
    checkDelivery(name, s.got[name], name, ids, sent);
    if (s.transports.join() !== expected || s.errors.length) fail(`${name}: transports ${s.transports}, errors ${JSON.stringify(s.errors)}`);
    await closeRun(page, name);
  }
  hang.close();
  done.push("c");

  // d. Resume: cut every connection of the page (a proxy drops them and refuses
  // new ones for 1.5 s), publish meanwhile, restore: nothing lost or repeated.
  for (const t of ["websocket", "sse", "longpoll", "poll"]) {
    const name = `d-${t}`;
    const proxy = await startProxy(base);
    await startRun(page, name, { url: proxy.base, transports: [t], pollInterval: 200, connectTimeout: 2000 }, [name]);
    await waitTransport(page, name, t);
    ids = await publishAll(base, name, bodies(name, 2));
    await waitCount(page, name, name, 2);
    proxy.cutAll();
    ids.push(...await publishAll(base, name, bodies(name, 3)));
    await sleep(1500);
    proxy.restore();
    ids.push(...await publishAll(base, name, bodies(name, 2)));
    await waitCount(page, name, name, 7, 20000);
    await sleep(300);
    s = await runState(page, name);
    checkDelivery(name, s.got[name], name, ids, null);
    const afterCut = s.statuses.slice(s.statuses.indexOf("open") + 1);
    if (afterCut[0] !== "reconnecting" || afterCut.at(-1) !== "open" || s.transport !== t || s.gaps.length)
      fail(`${name}: statuses ${s.statuses}, transport ${s.transport}, gaps ${JSON.stringify(s.gaps)}`);
    await closeRun(page, name);
    proxy.close();
  }
  // A cut long enough for 3 failed reconnects (at most 0.5 + 1 + 2 s of backoff):
  // negotiation starts again from the top, and picks WebSocket again.
  {
    const name = "d-renegotiate";
    const proxy = await startProxy(base);
    await startRun(page, name, { url: proxy.base }, [name]);
    await waitTransport(page, name, "websocket");
    ids = await publishAll(base, name, bodies(name, 1));
    await waitCount(page, name, name, 1);
    proxy.cutAll();
    ids.push(...await publishAll(base, name, bodies(name, 2)));
    await sleep(4000);
    proxy.restore();
    await waitCount(page, name, name, 3, 25000);
    await sleep(300);
    s = await runState(page, name);
    checkDelivery(name, s.got[name], name, ids, null);
    if (s.transports.join() !== "websocket,websocket" || s.transport !== "websocket")
      fail(`${name}: transports ${s.transports} (expected a second negotiation), now ${s.transport}`);
    await closeRun(page, name);
    proxy.close();
  }
  done.push("d");

  // e. Tokens: a good token publishes ({id, topic}) and receives on WebSocket;
  // a wrong one gets publish() rejected with "unauthorized" and onError for a subscribe.
  const dir = mkdtempSync(join(tmpdir(), "courier-js-"));
  dirs.push(dir);
  writeFileSync(join(dir, "tokens"), "good-token tenant-a\nother-token tenant-b\n");
  const guarded = await startHub("--tokens", join(dir, "tokens"));
  await startRun(page, "e-good", { url: guarded, token: "good-token" }, ["e-room"]);
  await waitTransport(page, "e-good", "websocket");
  const viaPage = await page.evaluate(() => window.runs["e-good"].courier.publish("e-room", { n: 1 }));
  const viaNode = await publish(guarded, "e-room", '{"n":2}', { Authorization: "Bearer good-token" });
  await waitCount(page, "e-good", "e-room", 2);
  s = await runState(page, "e-good");
  checkDelivery("e-good", s.got["e-room"], "e-room", [viaPage.id, viaNode], ['{"n":1}', '{"n":2}']);
  if (viaPage.topic !== "e-room") fail(`e: publish() resolved ${JSON.stringify(viaPage)}`);

  // The wrong token on every transport (the WebSocket handshake and the
  // stream are refused with 401, which a browser sees only as failures, so
  // the fallback reaches long polling, whose 401 is reported), and on long
  // polling alone.
  for (const [name, transports] of [["e-bad", undefined], ["e-bad-lp", ["longpoll"]]]) {
    await startRun(page, name, { url: guarded, token: "wrong-token", transports }, ["e-room"]);
    await page.waitForFunction((n) => window.runs[n].errors.length > 0, name, { timeout: 15000 }).catch(() => {});
    const rejected = await page.evaluate((n) => window.runs[n].courier.publish("e-room", 1)
      .then((r) => ({ resolved: r }), (e) => ({ code: e.code, status: e.status, isError: e instanceof Error })), name);
    if (rejected.code !== "unauthorized" || !rejected.isError || rejected.status !== 401)
      fail(`${name}: publish() with a wrong token: ${JSON.stringify(rejected)}`);
    await sleep(300);
    s = await runState(page, name);
    if (s.errors.length !== 1 || s.errors[0].topic !== "e-room" || s.errors[0].error !== "unauthorized" || s.got["e-room"].length)
      fail(`${name}: subscribe with a wrong token: ${JSON.stringify(s)}`);
    await closeRun(page, name);
  }
  await closeRun(page, "e-good");
  done.push("e");

  if (pageErrors.length) fail(`errors in the page: ${JSON.stringify(pageErrors)}`);
  if (!process.exitCode) {
    console.log("courier.js: websocket chosen and in order; onGap on all four; sse, longpoll, poll alone in order; " +
                "fallback to sse (refused and hanging WebSocket) and to longpoll; resume after a cut on all four " +
                "transports, none lost or repeated, renegotiation after 3 failed reconnects; publish() acked, " +
                "wrong token refused (publish and subscribe)");
  }
} catch (e) {
  fail(`${e.stack || String(e)} (parts done: ${done.join(",")})`);
} finally {
  await browser.close();
  for (const p of proxies) p.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  stopServers();
}
