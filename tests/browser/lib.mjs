// What the browser tests share: starting a courier example on a free
// loopback port, launching Debian's chromium, publishing, failing, and a
// deadline that ends a test that hangs. Every process started here is
// stopped by its PID at exit.
import { spawn } from "node:child_process";
import { chromium } from "playwright-core";

const children = [];

export const fail = (msg) => { console.error("FAIL:", msg); process.exitCode = 1; };

/// Starts `binary` with `args` (plus --address 127.0.0.1 and --port, 0 for
/// a free one) and resolves its base URL from the "listening on http://..." line.
export function startServer(binary, args = [], port = 0) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ["--port", String(port), "--address", "127.0.0.1", ...args]);
    children.push(child);
    let out = "";
    const onOutput = (d) => {
      out += d;
      const m = out.match(/listening on (https?:\/\/[^ /]+)/);
      if (m) {
        child.base = m[1];
        resolve(m[1]);
      }
    };
    child.stdout.on("data", onOutput);
    child.stderr.on("data", (d) => { out += d; });
    child.on("exit", (code) => reject(new Error(`${binary} exited ${code}: ${out}`)));
  });
}

/// Stops the server listening at `base` (SIGTERM); resolves once it exited.
export function stopServer(base) {
  const child = children.find((c) => c.base === base && c.exitCode === null);
  if (!child) return Promise.resolve();
  child.removeAllListeners("exit");
  const exited = new Promise((resolve) => child.on("exit", resolve));
  child.kill("SIGTERM");
  return exited;
}

export function stopServers() {
  for (const c of children) {
    c.removeAllListeners("exit");
    if (c.exitCode === null) c.kill("SIGTERM");
  }
}

/// The last resort: whatever hangs, the test ends and takes its servers along.
export function deadline(seconds) {
  setTimeout(() => {
    console.error(`FAIL: still running after ${seconds} s`);
    for (const c of children) if (c.exitCode === null) process.kill(c.pid, "SIGKILL");
    process.exit(1);
  }, seconds * 1000).unref();
}

/// Debian's chromium, headless. LocalNetworkAccessChecks would stop pages of
/// public-looking origins served by Playwright (http://app.test) from
/// reaching 127.0.0.1 before any request is made; off, so that courier's own
/// CORS and Origin checks are what the tests see.
export function launchBrowser() {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-features=LocalNetworkAccessChecks"],
  });
}

/// POSTs `body` (a JSON text) to `url`; resolves the id the server assigned.
export async function publish(url, body, headers = {}) {
  const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`publish to ${url} answered ${r.status}: ${text}`);
  return JSON.parse(text).id;
}
