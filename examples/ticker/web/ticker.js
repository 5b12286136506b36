// The ticker page: one EventSource for every symbol
// (/sse?topic=ACME&topic=GLOBEX...), starting with the history the server
// keeps (?since=earliest), so the charts fill at once and then move. The
// browser reconnects by itself and resumes with Last-Event-ID.
const params = new URLSearchParams(location.search);
const symbols = (params.get("symbols") ?? "ACME,GLOBEX,INITECH,UMBRELLA,HOOLI,STARK").split(",");
const keep = 600;  // points drawn per chart

const charts = new Map();
for (const symbol of symbols) {
  const card = document.getElementById("card").content.firstElementChild.cloneNode(true);
  card.dataset.symbol = symbol;
  card.querySelector(".symbol").textContent = symbol;
  document.getElementById("board").append(card);
  charts.set(symbol, { card, prices: [], open: null, dirty: false });
}

let received = 0;
const query = symbols.map((s) => `topic=${encodeURIComponent(s)}`).join("&");
const events = new EventSource(`/sse?${query}&since=earliest`);
events.onopen = () => { document.getElementById("status").textContent = "live"; };
events.onerror = () => { document.getElementById("status").textContent = "reconnecting"; };
events.onmessage = (e) => {
  const { data } = JSON.parse(e.data);
  const chart = charts.get(data.symbol);
  if (!chart) return;
  chart.prices.push(data.price);
  if (chart.prices.length > keep) chart.prices.shift();
  chart.open = data.open;
  chart.dirty = true;
  received += 1;
};

// Draw at most once a frame, whatever the message rate.
function draw() {
  document.getElementById("count").textContent = received;
  for (const chart of charts.values()) {
    if (!chart.dirty) continue;
    chart.dirty = false;
    const { card, prices, open } = chart;
    const last = prices[prices.length - 1];
    const change = ((last - open) / open) * 100;
    card.querySelector(".price").textContent = last.toFixed(2);
    const label = card.querySelector(".change");
    label.textContent = `${change >= 0 ? "+" : ""}${change.toFixed(2)}%`;
    label.className = `change ${change >= 0 ? "up" : "down"}`;
    plot(card.querySelector("canvas"), prices, change >= 0 ? "#4cc38a" : "#ef5d5d");
  }
  requestAnimationFrame(draw);
}

function plot(canvas, prices, color) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  if (prices.length < 2) return;
  const lo = Math.min(...prices), hi = Math.max(...prices);
  const span = hi - lo || 1;
  const slots = Math.max(prices.length, 120);  // a young chart fills a fifth of the width, then grows
  ctx.beginPath();
  prices.forEach((p, i) => {
    const x = (i / (slots - 1)) * width;
    const y = height - 4 - ((p - lo) / span) * (height - 8);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.5;
  ctx.stroke();
}

requestAnimationFrame(draw);
