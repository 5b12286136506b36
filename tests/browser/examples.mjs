// The examples in a real browser (Debian chromium, playwright-core):
//  1. courier-hub's platform pages (fetch polling, fetch long polling,
//     EventSource, WebSocket, courier.js) render the same messages the same way;
//  2. courier-chat: what one person types appears for another of the same
//     tenant on another transport, never for another tenant; refusals show;
//  3. cross-origin polling through CORS (an allowed origin reads, another cannot);
//  4. courier-ticker draws streamed prices; 5. courier-embed shows news
//     published through the application's own endpoint.
// Screenshots of each go to --screenshots DIR (docs/ uses them).
// Usage: node examples.mjs --hub BIN --chat BIN --ticker BIN --embed BIN [--screenshots DIR]
import { mkdirSync } from "node:fs";
import { parseArgs } from "node:util";
import { deadline, fail, launchBrowser, publish, startServer, stopServers } from "./lib.mjs";

const { values: bin } = parseArgs({
  options: { hub: { type: "string" }, chat: { type: "string" }, ticker: { type: "string" },
             embed: { type: "string" }, screenshots: { type: "string" } },
});
for (const name of ["hub", "chat", "ticker", "embed"])
  if (!bin[name]) { console.error(`usage: node examples.mjs --${name} PATH ...`); process.exit(2); }
const shots = bin.screenshots;
if (shots) mkdirSync(shots, { recursive: true });
deadline(150);

const timeout = { timeout: 15000 };
const viewport = { width: 900, height: 560 };
const texts = (page, selector) => page.$$eval(selector, (els) => els.map((e) => e.textContent));
const screenshot = async (page, name) => { if (shots) await page.screenshot({ path: `${shots}/${name}.png` }); };

async function platformPages(browser) {
  const base = await startServer(bin.hub, ["--threads", "1"]);
  const pages = {};
  for (const name of ["poll.html?interval=200&", "longpoll.html?", "sse.html?", "websocket.html?", "courier.html?"]) {
    const page = await browser.newPage({ viewport: { width: 900, height: 260 } });
    await page.goto(`${base}/${name}topic=pages`);
    pages[name.split(".")[0]] = page;
  }
  for (const [name, page] of Object.entries(pages))
    await page.waitForFunction(() => document.getElementById("status").textContent === "open", null, timeout)
      .catch(() => fail(`the ${name} page did not open`));

  const bodies = ['{"n":1}', '{"text":"héllo, wörld"}', "[1,2,3]", "12345678901234567890123456789"];
  const ids = [];
  for (const body of bodies) ids.push(await publish(`${base}/poll/pages`, body));
  for (const [name, page] of Object.entries(pages)) {
    await page.waitForFunction((n) => document.querySelectorAll("#messages li").length >= n, bodies.length, timeout)
      .catch(() => {});
    const lines = await texts(page, "#messages li");
    const shownIds = await page.$$eval("#messages li", (els) => els.map((e) => e.dataset.id));
    // render() shows JSON.stringify(data): the numbers' digits as JavaScript reads them.
    const expected = bodies.map((b) => JSON.stringify(JSON.parse(b)));
    if (JSON.stringify(lines) !== JSON.stringify(expected) || JSON.stringify(shownIds) !== JSON.stringify(ids))
      fail(`the ${name} page shows ${JSON.stringify(lines)} with ids ${shownIds}, expected ${JSON.stringify(expected)} ${ids}`);
  }
  const chosen = await pages.courier.textContent("#transport");
  if (chosen !== "websocket") fail(`courier.js chose ${chosen} on the hub, expected websocket`);
  await screenshot(pages.websocket, "hub-websocket");
  await screenshot(pages.courier, "hub-courier-js");
  for (const page of Object.values(pages)) await page.close();
}

async function chat(browser) {
  const base = await startServer(bin.chat, ["--allow-origin", "http://app.test"]);
  const join = async (token, room, transport) => {
    const page = await browser.newPage({ viewport });
    await page.goto(`${base}/?token=${token}&room=${room}&transport=${transport}`);
    await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("open"), null, timeout)
      .catch(() => fail(`${token} could not join ${room} over ${transport}`));
    return page;
  };
  const say = async (page, text) => {
    await page.fill("#text", text);
    await page.press("#text", "Enter");
  };
  const lines = (page) => texts(page, "#messages li .text");

  const alice = await join("alice", "lobby", "websocket");
  const bob = await join("bob", "lobby", "longpoll");
  const ceo = await join("ceo", "lobby", "poll");
  const carol = await join("carol", "lobby", "sse");  // globex: same room name, another tenant
  const boss = await join("ceo", "lobby", "auto");
  const auto = await boss.evaluate(() => document.body.dataset.transport);
  if (auto !== "websocket") fail(`the automatic choice was ${auto}, expected websocket`);

  await say(alice, "hello from alice");
  await bob.waitForFunction(() => document.body.textContent.includes("hello from alice"), null, timeout)
    .catch(() => fail("bob (long polling) did not get alice's message"));
  await say(bob, "hi alice, bob here");
  await alice.waitForFunction(() => document.body.textContent.includes("bob here"), null, timeout)
    .catch(() => fail("alice (WebSocket) did not get bob's message"));
  await say(carol, "globex only");
  await ceo.waitForFunction(() => document.querySelectorAll("#messages li").length >= 2, null, timeout).catch(() => {});
  await carol.waitForFunction(() => document.body.textContent.includes("globex only"), null, timeout)
    .catch(() => fail("carol did not get her own message"));
  await new Promise((r) => setTimeout(r, 1500));  // a poll or two later: still nothing crossed tenants
  const expected = ["hello from alice", "hi alice, bob here"];
  for (const [name, page] of [["alice", alice], ["bob", bob], ["ceo (polling)", ceo]]) {
    const got = await lines(page);
    if (JSON.stringify(got) !== JSON.stringify(expected)) fail(`${name} sees ${JSON.stringify(got)}`);
  }
  const globex = await lines(carol);
  if (JSON.stringify(globex) !== JSON.stringify(["globex only"])) fail(`carol (globex) sees ${JSON.stringify(globex)}`);

  // History: a late joiner gets what was said before.
  const late = await join("bob", "lobby", "sse");
  await late.waitForFunction((n) => document.querySelectorAll("#messages li").length >= n, expected.length, timeout)
    .catch(() => {});
  if (JSON.stringify(await lines(late)) !== JSON.stringify(expected)) fail(`a late joiner sees ${await lines(late)}`);

  // Refusals are shown, not retried silently: dave may read but not write,
  // bob may not read dev.
  const dave = await join("dave", "lobby", "websocket");
  await say(dave, "may I?");
  await dave.waitForFunction(() => !document.getElementById("error").hidden, null, timeout)
    .catch(() => fail("dave's refused message shows no error"));
  const bobDev = await browser.newPage({ viewport });
  await bobDev.goto(`${base}/?token=bob&room=dev&transport=longpoll`);
  await bobDev.waitForFunction(() => /forbid|may not/i.test(document.getElementById("error").textContent), null, timeout)
    .catch(() => fail("bob reading dev shows no refusal"));

  await say(alice, "see you");
  await alice.waitForFunction(() => document.body.textContent.includes("see you"), null, timeout).catch(() => {});
  await screenshot(alice, "chat");
  await crossOrigin(browser, base);
  for (const page of [alice, bob, ceo, carol, boss, late, dave, bobDev]) await page.close();
}

// A page of another origin polls the chat with fetch: the preflight (for the
// Authorization header) and the answers carry CORS headers for the allowed
// origin only.
async function crossOrigin(browser, base) {
  const poll = ([base, token]) => fetch(`${base}/poll/lobby?since=earliest`, { headers: { Authorization: `Bearer ${token}` } })
    .then((r) => r.json()).then((body) => body.messages.map((m) => m.data.text), (e) => `failed: ${e.message}`);
  const page = await browser.newPage();
  await page.route(/^http:\/\/(app|evil)\.test\//, (route) =>
    route.fulfill({ status: 200, contentType: "text/html", body: "<!doctype html><title>another origin</title>" }));
  await page.goto("http://app.test/");
  const allowed = await page.evaluate(poll, [base, "bob"]);
  if (!Array.isArray(allowed) || !allowed.includes("hello from alice")) fail(`polling from http://app.test: ${allowed}`);
  const id = await publish(`${base}/poll/lobby`, '{"from":"bob","text":"from node"}', { Authorization: "Bearer bob" });
  const again = await page.evaluate(([base, id]) =>
    fetch(`${base}/poll/lobby?since=${encodeURIComponent(id)}&access_token=bob`).then((r) => r.json()), [base, id]);
  if (again.messages.length !== 0 || again.next !== id) fail(`a poll from the newest id answered ${JSON.stringify(again)}`);
  await page.goto("http://evil.test/");
  const refused = await page.evaluate(poll, [base, "bob"]);
  if (typeof refused !== "string" || !refused.startsWith("failed")) fail(`polling from http://evil.test was not refused: ${refused}`);
  await page.close();
}

async function ticker(browser) {
  const base = await startServer(bin.ticker, ["--interval-ms", "50"]);
  await new Promise((r) => setTimeout(r, 1500));  // some history to draw at once
  const page = await browser.newPage({ viewport: { width: 1220, height: 520 } });
  await page.goto(`${base}/`);
  await page.waitForFunction(() => Number(document.getElementById("count").textContent) >= 150, null, timeout)
    .catch(() => fail("the ticker page counted fewer than 150 prices"));
  const prices = await texts(page, ".card .price");
  if (prices.length !== 6 || !prices.every((p) => /^\d+\.\d\d$/.test(p))) fail(`ticker prices: ${JSON.stringify(prices)}`);
  const first = await page.textContent("#count");
  await page.waitForFunction((n) => Number(document.getElementById("count").textContent) > n + 20, Number(first), timeout)
    .catch(() => fail("the ticker stopped moving"));
  await screenshot(page, "ticker");
  await page.close();
}

async function embed(browser) {
  const base = await startServer(bin.embed);
  const page = await browser.newPage({ viewport: { width: 900, height: 220 } });
  await page.goto(`${base}/`);
  await page.waitForFunction(() => document.getElementById("state").textContent === "live", null, timeout)
    .catch(() => fail("the embed page did not go live"));
  for (const headline of ["courier inside your own Asio server", "the application keeps its routes"])
    await publish(`${base}/api/news`, JSON.stringify({ headline }));
  await page.waitForFunction(() => document.querySelectorAll("#news li").length === 2, null, timeout)
    .catch(() => fail("the embed page did not show the news"));
  await screenshot(page, "embed");
  await page.close();
}

const browser = await launchBrowser();
try {
  for (const [name, test] of Object.entries({ platformPages, chat, ticker, embed })) {
    const before = process.exitCode;
    await test(browser);
    console.log(`${process.exitCode && !before ? "FAIL" : "ok  "} ${name}`);
  }
  if (!process.exitCode) console.log("every example works in Chromium" + (shots ? `; screenshots in ${shots}` : ""));
} catch (e) {
  fail(e.stack || String(e));
} finally {
  await browser.close();
  stopServers();
}
