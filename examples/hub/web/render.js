// What the four platform pages share: every transport delivers the same
// envelope, {"id","topic","data"}, so one function renders them all.
export const params = new URLSearchParams(location.search);
export const topic = params.get("topic") ?? "room";

export function render(envelope) {
  const li = document.createElement("li");
  li.dataset.id = envelope.id;
  li.textContent = JSON.stringify(envelope.data);
  document.getElementById("messages").append(li);
}

// A gap: the server no longer had everything after our cursor and starts
// again from the oldest message it keeps (PROTOCOL.md, "gap").
export function renderGap(info) {
  const li = document.createElement("li");
  li.className = "gap";
  li.textContent = `(gap: some messages of ${info.topic} are no longer kept)`;
  document.getElementById("messages").append(li);
}

// A polling or long-polling answer, {"messages":[...],"next":id,"gap":true?}:
// renders it and returns the cursor to ask from next time. An error answer
// is {"error":code,"message":text}.
export async function renderAnswer(res) {
  const body = await res.json();
  if (!res.ok) throw new Error(body.message);
  if (body.gap) renderGap({ topic, next: body.next });
  body.messages.forEach(render);
  return body.next;
}

export function setStatus(text) {
  document.getElementById("status").textContent = text;
}
