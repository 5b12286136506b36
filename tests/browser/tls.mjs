// Chromium over TLS: courier-hub serves https and wss with a certificate
// made here (openssl); the EventSource page, the WebSocket page and
// courier.js (which must pick wss) render messages published from the page.
// Usage: node tls.mjs PATH/TO/courier-hub
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deadline, fail, launchBrowser, startServer, stopServers } from "./lib.mjs";

const hubPath = process.argv[2];
deadline(90);
const dir = mkdtempSync(join(tmpdir(), "courier-tls-"));
execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                         "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")], { stdio: "ignore" });
const base = await startServer(hubPath, ["--threads", "1", "--tls-cert", join(dir, "cert.pem"),
                                         "--tls-key", join(dir, "key.pem")]);
const browser = await launchBrowser();
try {
  if (!base.startsWith("https://")) throw new Error(`the hub says ${base}`);
  // The certificate is ours, not a public CA's: this context accepts it
  // (for page loads, fetch, EventSource and WebSocket alike).
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const pages = {};
  for (const name of ["sse", "websocket", "courier"]) {
    const page = await context.newPage();
    await page.goto(`${base}/${name}.html?topic=secure`);
    await page.waitForFunction(() => document.getElementById("status").textContent === "open", null, { timeout: 15000 })
      .catch(() => fail(`the ${name} page did not open over TLS`));
    pages[name] = page;
  }
  const bodies = ['{"n":1}', '{"over":"tls"}', "[true,false]"];
  const ids = await pages.sse.evaluate(async (bodies) => {
    const ids = [];
    for (const body of bodies) {
      const r = await fetch("/poll/secure", { method: "POST", headers: { "Content-Type": "application/json" }, body });
      ids.push((await r.json()).id);
    }
    return ids;
  }, bodies);
  for (const [name, page] of Object.entries(pages)) {
    await page.waitForFunction((n) => document.querySelectorAll("#messages li").length >= n, bodies.length,
                               { timeout: 15000 }).catch(() => {});
    const shown = await page.$$eval("#messages li", (els) => els.map((e) => [e.dataset.id, e.textContent]));
    const expected = bodies.map((b, i) => [ids[i], JSON.stringify(JSON.parse(b))]);
    if (JSON.stringify(shown) !== JSON.stringify(expected))
      fail(`${name} over TLS shows ${JSON.stringify(shown)}, expected ${JSON.stringify(expected)}`);
  }
  const chosen = await pages.courier.textContent("#transport");
  if (chosen !== "websocket") fail(`courier.js chose ${chosen} over TLS, expected websocket (wss)`);
  if (!process.exitCode) console.log(`Chromium over https/wss: EventSource, WebSocket and courier.js (${chosen}) ` +
                                     `rendered ${bodies.length} messages each`);
} catch (e) {
  fail(e.stack || String(e));
} finally {
  await browser.close();
  stopServers();
  rmSync(dir, { recursive: true, force: true });
}
