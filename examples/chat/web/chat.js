// The chat page: courier.js subscribes to a room over the chosen transport
// (or the best one that connects), shows the room's history and new
// messages, and publishes what the user types.
import { Courier } from "/courier.js";

const $ = (id) => document.getElementById(id);
let courier = null;

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

// One line per message; the envelope is the same whichever transport brought it.
function render(envelope) {
  const li = document.createElement("li");
  li.dataset.id = envelope.id;
  const data = envelope.data ?? {};
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = typeof data.at === "number" ? new Date(data.at).toLocaleTimeString() : "";
  const from = document.createElement("span");
  from.className = "from";
  from.textContent = String(data.from ?? "?");
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = String(data.text ?? JSON.stringify(data));
  li.append(time, from, text);
  appendLine(li);
}

function note(text) {
  const li = document.createElement("li");
  li.className = "note";
  li.textContent = text;
  appendLine(li);
}

function appendLine(li) {
  const list = $("messages");
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  list.append(li);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function join(event) {
  event.preventDefault();
  courier?.close();
  $("messages").replaceChildren();
  showError("");
  const token = $("token").value;
  const room = $("room").value;
  const choice = $("transports").value;
  courier = new Courier({
    token,
    ...(choice === "auto" ? {} : { transports: [choice] }),
    onTransport: (name) => { document.body.dataset.transport = name; },
    onStatus: (status) => {
      $("status").textContent = `${status}${courier?.transport ? ` via ${courier.transport}` : ""} as ${token} in ${room}`;
      $("text").disabled = $("send").disabled = status !== "open";
    },
    onError: (err) => showError(`${err.topic ?? ""}: ${err.message ?? err.error}`),
  });
  // "earliest": the room's history first, then what is said from now on.
  courier.subscribe(room, render, {
    since: "earliest",
    onGap: () => note("(older messages are no longer kept)"),
  });
}

async function say(event) {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text || !courier) return;
  try {
    await courier.publish($("room").value, { from: $("token").value, text, at: Date.now() });
    $("text").value = "";
    showError("");
  } catch (e) {
    showError(`not sent: ${e.message}`);
  }
}

$("join").addEventListener("submit", join);
$("say").addEventListener("submit", say);
// Join at once with the page's query (?token=bob&room=dev&transport=sse), so
// that a link opens a ready chat.
const params = new URLSearchParams(location.search);
for (const [param, id] of [["token", "token"], ["room", "room"], ["transport", "transports"]])
  if (params.has(param)) $(id).value = params.get(param);
$("join").requestSubmit();
