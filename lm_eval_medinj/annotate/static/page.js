// The rating page. Item text (question, context, reference, answer) is untrusted: it is only ever
// written with textContent, never parsed as HTML.
"use strict";

const state = { order: [], items: {}, ratings: {}, scale: null, pos: null, busy: false };
const $ = (id) => document.getElementById(id);

function setStatus(text, kind) {
  $("status").textContent = text;
  $("status").className = kind || "";
}

function ratedCount() {
  return state.order.filter((name) => name in state.ratings).length;
}

// The first unrated item at or after position `start` (wrapping round), or null when all are rated.
function firstUnrated(start) {
  const total = state.order.length;
  for (let k = 0; k < total; k++) {
    const pos = (start + k) % total;
    if (!(state.order[pos] in state.ratings)) return pos;
  }
  return null;
}

function buildScale() {
  const group = $("scale");
  for (const value of state.scale.values) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.value = String(value);
    const key = document.createElement("span");
    key.className = "key";
    key.textContent = String(value);
    button.append(key, " " + state.scale.labels[String(value)]);
    button.addEventListener("click", () => rate(value));
    group.append(button);
  }
  $("keys").textContent = state.scale.values.join(", ");
}

function render() {
  const total = state.order.length;
  $("progress").textContent = `${ratedCount()} / ${total}`;
  const finished = state.pos === null;
  $("rating").hidden = finished;
  $("done").hidden = !finished;
  if (finished) {
    $("position").textContent = "terminé";
    $("item-id").textContent = "";
    return;
  }
  const name = state.order[state.pos];
  const item = state.items[name];
  $("position").textContent = `Réponse ${state.pos + 1} sur ${total}`;
  $("item-id").textContent = name;
  $("question").textContent = item.question;
  $("context-section").hidden = !item.context;
  $("context").textContent = item.context || "";
  $("reference").textContent = item.reference;
  $("answer").textContent = item.answer;
  const given = state.ratings[name];
  for (const button of $("scale").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(given !== undefined && String(given.rating) === button.dataset.value));
  }
  $("comment").value = given ? given.comment : "";
  window.scrollTo(0, 0);
}

function setBusy(busy) {
  state.busy = busy;
  for (const button of document.querySelectorAll("button")) button.disabled = busy;
}

async function rate(value) {
  if (state.busy || state.pos === null) return;
  const name = state.order[state.pos];
  const comment = $("comment").value;
  setBusy(true);
  setStatus("Enregistrement…");
  try {
    const response = await fetch("/api/ratings", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({ item: name, rating: value, comment: comment }),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(answer.error || `erreur ${response.status}`);
    state.ratings[name] = { rating: value, comment: comment };
    setStatus(`Note ${value} enregistrée.`, "ok");
    state.pos = firstUnrated((state.pos + 1) % state.order.length);
    render();
  } catch (error) {
    const reason = error instanceof TypeError ? "serveur injoignable" : error.message; // fetch: network failure
    setStatus(`Non enregistrée : ${reason}. Réessayez ; si le serveur est arrêté, relancez-le puis rechargez la page.`, "error");
  } finally {
    setBusy(false);
  }
}

function back() {
  if (state.busy) return;
  state.pos = state.pos === null ? state.order.length - 1 : Math.max(0, state.pos - 1);
  setStatus("");
  render();
}

function skip() {
  if (state.busy || state.pos === null) return;
  state.pos = (state.pos + 1) % state.order.length;
  setStatus("");
  render();
}

function onKey(event) {
  if (event.target instanceof HTMLTextAreaElement || event.altKey || event.ctrlKey || event.metaKey) return;
  if (event.key === "ArrowLeft") {
    back();
  } else if (event.key === "ArrowRight") {
    skip();
  } else if (state.scale.values.map(String).includes(event.key)) {
    rate(Number(event.key));
  } else {
    return;
  }
  event.preventDefault();
}

async function start() {
  let session;
  try {
    const response = await fetch("/api/session", { credentials: "same-origin" });
    if (!response.ok) throw new Error(`erreur ${response.status}`);
    session = await response.json();
  } catch (error) {
    setStatus(`Impossible de charger les réponses : ${error.message}. Rechargez la page.`, "error");
    return;
  }
  Object.assign(state, { order: session.order, items: session.items, ratings: session.ratings, scale: session.scale });
  $("rater").textContent = session.rater;
  buildScale();
  $("back").addEventListener("click", back);
  $("skip").addEventListener("click", skip);
  $("review").addEventListener("click", back);
  document.addEventListener("keydown", onKey);
  state.pos = firstUnrated(0);
  render();
}

document.addEventListener("DOMContentLoaded", start);
