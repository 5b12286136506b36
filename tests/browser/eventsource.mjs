// A browser's own EventSource against courier-hub: receives every published
// message as an event, resumes with Last-Event-ID after the server drops the
// stream, and sees the gap event. Usage: node eventsource.mjs PATH/TO/courier-hub
import { deadline, fail, launchBrowser, publish as post, startServer, stopServer, stopServers } from "./lib.mjs";

const hubPath = process.argv[2];
const hubArgs = ["--threads", "1", "--history", "50"];
const publish = (base, topic, data) => post(`${base}/sse/${topic}`, JSON.stringify(data));
deadline(90);

let base = await startServer(hubPath, hubArgs);
const browser = await launchBrowser();
try {
  const page = await browser.newPage();
  await page.goto(`${base}/poll/room`);  // any page of the hub: same origin
  await page.evaluate(() => {
    window.got = [];
    window.gaps = [];
    window.opened = 0;
    const es = new EventSource("/sse/room");
    es.onopen = () => { window.opened++; };
    es.onmessage = (e) => window.got.push({ lastEventId: e.lastEventId, envelope: JSON.parse(e.data) });
    es.addEventListener("gap", (e) => window.gaps.push(JSON.parse(e.data)));
  });
  await page.waitForFunction(() => window.opened === 1, null, { timeout: 10000 });

  const ids = [];
  for (let n = 0; n < 3; n++) ids.push(await publish(base, "room", { n }));
  await page.waitForFunction(() => window.got.length === 3, null, { timeout: 10000 });
  const got = await page.evaluate(() => window.got);
  got.forEach((m, i) => {
    if (m.envelope.id !== ids[i] || m.lastEventId !== ids[i]) fail(`event ${i} has id ${m.envelope.id}, expected ${ids[i]}`);
    if (m.envelope.topic !== "room" || m.envelope.data.n !== i) fail(`event ${i} is ${JSON.stringify(m.envelope)}`);
  });

  // Multi-topic stream in the same page, and a gap: a cursor from an earlier life.
  await page.evaluate(() => {
    window.multi = [];
    const es = new EventSource("/sse?topic=a&topic=b&since=old-1_old-2");
    es.onmessage = (e) => window.multi.push({ lastEventId: e.lastEventId, envelope: JSON.parse(e.data) });
    es.addEventListener("gap", (e) => window.gaps.push(JSON.parse(e.data)));
  });
  await publish(base, "a", "first");
  await publish(base, "b", "second");
  await page.waitForFunction(() => window.multi.length === 2, null, { timeout: 10000 });
  const multi = await page.evaluate(() => window.multi);
  if (multi[0].envelope.data !== "first" || multi[1].envelope.data !== "second") fail(`multi-topic: ${JSON.stringify(multi)}`);
  if (!multi[1].lastEventId.includes("_")) fail(`multi-topic id is not composite: ${multi[1].lastEventId}`);
  const gaps = await page.evaluate(() => window.gaps);
  if (gaps.length !== 2 || gaps[0].topic !== "a" || gaps[1].topic !== "b") fail(`gaps: ${JSON.stringify(gaps)}`);

  // The server restarts: EventSource reconnects by itself after `retry`,
  // sending Last-Event-ID; the new server life reports that cursor as a gap
  // (without the header the stream would start silently from now).
  await page.evaluate(() => { window.got = []; window.gaps = []; });
  const port = new URL(base).port;
  await stopServer(base);
  base = await startServer(hubPath, hubArgs, port);
  await page.waitForFunction(() => window.opened === 2, null, { timeout: 15000 });
  await publish(base, "room", { n: 3 });
  await page.waitForFunction(() => window.got.length === 1, null, { timeout: 10000 });
  const after = await page.evaluate(() => ({ got: window.got, gaps: window.gaps }));
  if (!after.gaps.some((g) => g.topic === "room")) fail(`no gap after the restart: ${JSON.stringify(after.gaps)}`);
  if (after.got[0].envelope.data.n !== 3) fail(`after restart: ${JSON.stringify(after.got)}`);
  console.log(`EventSource received ${got.length} + ${multi.length} + ${after.got.length} events and ` +
              `${gaps.length + after.gaps.length} gap events, across a server restart`);
} catch (e) {
  fail(e.stack || String(e));
} finally {
  await browser.close();
  stopServers();
}
