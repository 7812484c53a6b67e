// The dev console. It drives simulated users through the public routes with
// the same client module apps use (/carbroker.js), and reads the emulator's
// pool from the dev-only GET /dev/state once a second.
import { createBroker } from "/carbroker.js";

const $ = (sel) => document.querySelector(sel);
const POLL_MS = 1000;
const LOG_MAX = 100;
const TICKET_PREFIX = "carbroker.console.ticket.";

const page = {
  state: null,      // the last GET /dev/state
  authMode: "",
  users: new Map(), // key → user
  next: 1,
};

// --- small DOM helpers -------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null && c !== false) e.append(c);
  }
  return e;
}

function announce(text) {
  const a = $("#announce");
  a.textContent = "";
  // a fresh text node so that screen readers read repeats too
  setTimeout(() => { a.textContent = text; }, 50);
}

function json(v) {
  return typeof v === "string" ? v : JSON.stringify(v, null, 2);
}

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

function short(s, n = 24) {
  return s && s.length > n ? `${s.slice(0, n)}…` : s;
}

// --- the exchange log --------------------------------------------------------

function logExchange(who, x) {
  const path = x.url.replace(location.origin, "");
  const headers = Object.entries(x.requestHeaders ?? {}).map(([k, v]) => `${k}: ${v}\n`).join("");
  const reqText = `${x.method} ${path}\n${headers}${x.request === null || x.request === undefined ? "" : "\n" + json(x.request)}`;
  const retry = x.retryAfter ? `Retry-After: ${Math.round(x.retryAfter / 1000)}\n` : "";
  const repText = `HTTP ${x.status}\n${retry}\n${json(x.reply)}`;
  const ok = x.status >= 200 && x.status < 300;
  const item = el("li", { class: ok ? "ok" : "refused" },
    el("details", { open: true },
      el("summary", {},
        el("span", { class: "who" }, who), " ",
        el("code", {}, `${x.method} ${path}`), " → ",
        el("strong", {}, String(x.status)), ok ? "" : " (refused)", ` · ${x.ms} ms`),
      el("div", { class: "pair" },
        el("div", {}, el("h3", {}, "Request"), el("pre", { tabindex: "0" }, reqText)),
        el("div", {}, el("h3", {}, "Reply"), el("pre", { tabindex: "0" }, repText)))));
  const log = $("#log");
  log.prepend(item);
  while (log.children.length > LOG_MAX) log.lastElementChild.remove();
}

// POST to a dev endpoint, logged like the module's exchanges.
async function dev(path, body, who) {
  const began = Date.now();
  const headers = { "Content-Type": "application/json" };
  const res = await fetch(path, { method: "POST", headers, body: JSON.stringify(body), cache: "no-store" });
  const reply = await res.json().catch(() => null);
  logExchange(who, { method: "POST", url: path, requestHeaders: headers, request: body, status: res.status, reply, retryAfter: 0, ms: Date.now() - began });
  return reply;
}

// --- users -------------------------------------------------------------------

const STATUS = {
  new: "Not started",
  starting: "Starting",
  queued: "Waiting in line",
  session: "In session",
  disconnected: "Client gone",
  stopped: "Stopped",
  error: "Refused",
};

function addUser({ userId = "", guestOf = null, invitation = null } = {}) {
  const key = userId || `user-${page.next}`;
  page.next++;
  const u = {
    key, guestOf, invitation,
    status: "new", error: null, queue: null, abort: null, slot: null,
    broker: createBroker({
      userId: page.authMode === "ticket" ? undefined : userId,
      storageKey: TICKET_PREFIX + key,
      onExchange: (x) => logExchange(label(u), x),
    }),
  };
  u.broker.forget(); // a fresh simulated user: no ticket from an earlier visit
  page.users.set(key, u);
  u.el = renderUser(u);
  $("#users").append(u.el);
  update(u);
  return u;
}

function label(u) {
  return u.broker.userId || u.key;
}

function renderUser(u) {
  const id = `u-${u.key.replace(/[^A-Za-z0-9_-]/g, "_")}`;
  const act = (name, text, fn, extra = {}) =>
    el("button", { type: "button", "data-action": name, onclick: () => fn(u), ...extra }, text);
  const buttons = [
    act("start", "Start", start),
    act("disconnect", "Disconnect", disconnect, { title: "the client vanishes without stopping: CAR retains the concurrency" }),
    act("stop", "Stop", stop),
  ];
  if (!u.guestOf) {
    buttons.push(act("invite-viewer", "Invite a Viewer", (h) => invite(h, "Viewer")));
    buttons.push(act("invite-player", "Invite a Player", (h) => invite(h, "Player")));
  }
  buttons.push(act("remove", "Remove", remove));
  const li = el("li", { class: "card", "data-user": u.key, "aria-labelledby": `${id}-h` },
    el("h3", { id: `${id}-h` }, el("span", { class: "name" }, label(u)),
      u.guestOf ? el("span", { class: "tag" }, ` guest (${u.invitation.Role}) of ${label(u.guestOf)}`) : ""),
    el("p", { class: "status", "data-state": "new", id: `${id}-s` }),
    el("p", { class: "ticket" }),
    el("div", { class: "actions", role: "group", "aria-label": `actions for ${label(u)}` }, buttons));
  for (const b of li.querySelectorAll("button")) b.setAttribute("aria-describedby", `${id}-s`);
  return li;
}

// statusText completes the card's status word (STATUS) with the details.
function statusText(u) {
  const slot = u.slot;
  switch (u.status) {
    case "new": return u.guestOf ? `Start joins ${label(u.guestOf)}'s room as ${u.invitation.Role}.` : "press Start to get a ServerSession.";
    case "starting": return "asking the function for a ServerSession…";
    case "queued": {
      const q = u.queue;
      if (q.position === undefined || q.position === null) {
        return "the function cannot tell the place right now (its line's store is in trouble); still waiting, as Retry-After says.";
      }
      const why = whyWaiting(q.position);
      return `Position ${q.position} (${q.ahead} ahead), ${etaText(u)}.${why ? ` ${why}` : ""}`;
    }
    case "session":
      if (u.guestOf) return `in ${label(u.guestOf)}'s room as ${u.invitation.Role}${slot ? ` (concurrency #${slot.Id})` : ""}.`;
      if (!slot) return "but its concurrency is gone (stopped, or freed after its retention).";
      if (slot.State === "retained") return `but concurrency #${slot.Id} is retained (no client connected): ${slot.SecondsLeft ?? "?"} s left to reconnect.`;
      if (slot.State !== "session") return `concurrency #${slot.Id} is ${slot.State}.`;
      return `on concurrency #${slot.Id}, ${slot.Connected ? "client connected" : `waiting for its client (${slot.SecondsLeft ?? "?"} s)`}.`;
    case "disconnected":
      if (u.guestOf) return "left the room. Join again to come back.";
      if (slot && slot.State === "retained") return `concurrency #${slot.Id} retained, ${slot.SecondsLeft} s left to reconnect to it.`;
      return "the retention is over and the concurrency was freed: Reconnect gets a new one.";
    case "stopped": return "DELETE /session answered; CAR frees the concurrency.";
    case "error": {
      const e = u.error;
      if (e?.code === "NoIdleConcurrency") {
        return `no concurrency is free and the function has no waiting line. Try again later (NoIdleConcurrency${e.retryAfter ? `, Retry-After ${Math.round(e.retryAfter / 1000)} s` : ""}).`;
      }
      return `${e?.message ?? e} (${e?.code ?? e?.name ?? "error"}).`;
    }
  }
  return u.status;
}

// leaseText is the countdown of the session's lease (SESSION_MAX), "" without one.
function leaseText(u) {
  const end = u.broker.session.expiresAt;
  if (!end || (u.status !== "session" && u.status !== "disconnected")) return "";
  const left = Math.ceil((end.getTime() - Date.now()) / 1000);
  return left > 0 ? ` Lease ends in ${left} s (SESSION_MAX).` : " Lease ended: the function ends this session (SESSION_MAX).";
}

// slotOf finds the concurrency the user owns, or whose room it is in.
function slotOf(u) {
  const id = u.broker.userId;
  if (!id || !page.state) return null;
  return page.state.Slots.find((s) => s.UserId === id || s.Guests.some((g) => g.UserId === id)) ?? null;
}

function update(u) {
  u.slot = slotOf(u);
  const li = u.el;
  li.querySelector(".name").textContent = label(u);
  const st = li.querySelector(".status");
  const text = statusText(u) + leaseText(u);
  const word = STATUS[u.status];
  if (st.textContent !== `${word}: ${text}`) {
    st.replaceChildren(el("strong", {}, word), `: ${text}`);
    st.dataset.state = u.status;
  }
  st.dataset.slot = u.slot ? String(u.slot.Id) : "";
  const t = u.broker.ticket;
  li.querySelector(".ticket").replaceChildren(t ? el("span", {}, "Ticket (localStorage): ", el("code", { title: t }, short(t, 32))) : "");
  const busy = u.status === "starting" || u.status === "queued";
  const live = u.status === "session";
  const set = (name, disabled, text) => {
    const b = li.querySelector(`[data-action="${name}"]`);
    if (!b) return;
    if (b.disabled !== disabled) b.disabled = disabled;
    if (text && b.textContent !== text) b.textContent = text;
  };
  const startText = u.guestOf ? (u.status === "new" ? `Join as ${u.invitation.Role}` : "Join again")
    : u.status === "disconnected" ? "Reconnect" : "Start";
  set("start", busy, startText);
  set("disconnect", !live);
  set("stop", u.status === "new" || u.status === "stopped");
  set("invite-viewer", !live);
  set("invite-player", !live);
  set("remove", busy || live || u.status === "disconnected");
}

function setStatus(u, status, error = null) {
  const before = u.status;
  u.status = status;
  u.error = error;
  update(u);
  if (before !== status || status === "error") announce(`${label(u)}: ${u.el.querySelector(".status").textContent}`);
}

async function start(u) {
  u.abort?.abort();
  const ac = new AbortController();
  u.abort = ac;
  setStatus(u, "starting");
  const opts = {
    clientSession: `console-client-session-of-${u.key}`,
    signal: ac.signal,
    onQueue: (q) => { u.queue = q; u.eta = nextEta(u.eta, q); setStatus(u, "queued"); },
  };
  try {
    if (u.guestOf) {
      await u.broker.join(u.invitation, opts);
    } else {
      await u.broker.start(opts);
      // What TCGSDK.start(serverSession) does in a real app: the client connects.
      await dev("/dev/connect", { UserId: u.broker.userId }, label(u));
    }
    await refresh().catch(() => {});
    if (u.abort === ac) setStatus(u, "session");
  } catch (e) {
    if (e?.name !== "AbortError" && u.abort === ac) setStatus(u, "error", e);
  } finally {
    if (u.abort === ac) u.abort = null;
  }
}

async function disconnect(u) {
  u.abort?.abort();
  await dev("/dev/disconnect", { UserId: u.broker.userId }, label(u));
  await refresh();
  setStatus(u, "disconnected");
}

async function stop(u) {
  // Leaving the line: the module ends the start under way itself (a poll
  // on the wire is answered first), then sends DELETE /session, so no poll
  // follows the stop.
  const running = u.abort;
  u.abort = null;
  try {
    if (u.broker.userId || running) await u.broker.stop();
    running?.abort();
    setStatus(u, "stopped");
  } catch (e) {
    setStatus(u, "error", e);
  }
}

async function invite(host, role) {
  try {
    const invitation = page.authMode === "none"
      ? { HostUserId: host.broker.userId, Role: role } // none mode: the host's UserId is enough
      : await host.broker.invite(role);
    const n = [...page.users.values()].filter((x) => x.guestOf === host).length + 1;
    const guest = addUser({
      userId: page.authMode === "none" ? `${host.broker.userId}-${role.toLowerCase()}${n}` : "",
      guestOf: host, invitation,
    });
    guest.el.querySelector('[data-action="start"]').focus();
    announce(`${label(guest)} added: a ${role} guest of ${label(host)}`);
  } catch (e) {
    setStatus(host, "error", e);
  }
}

function remove(u) {
  u.abort?.abort();
  u.broker.forget();
  page.users.delete(u.key);
  u.el.remove();
  $("#new-user-id").focus();
}

// The ETA shown does not grow while the Position holds: the function's
// estimate is the recent rate of grants, which slows while nobody gets a
// concurrency, so each reply may say more than the last. The page keeps the
// earliest moment it was told, and counts down to it.
function nextEta(prev, q) {
  const now = Date.now();
  const told = q.etaSeconds === undefined || q.etaSeconds === null ? null : now + q.etaSeconds * 1000;
  if (!prev || prev.position !== q.position) return { position: q.position, at: told };
  if (told === null) return prev;
  return { position: q.position, at: prev.at === null ? told : Math.min(prev.at, told) };
}

function etaText(u) {
  const at = u.eta?.at;
  if (at === null || at === undefined) return "ETA unknown";
  const left = Math.ceil((at - Date.now()) / 1000);
  return left > 0 ? `ETA about ${left} s` : "ETA any moment now";
}

// whyWaiting explains, in words, a wait while a concurrency is idle: the
// line hands idle concurrencies out first come, first served, and a place
// whose client is gone (a closed page, a crashed app) keeps its rank until
// it has not polled for QUEUE_ABANDON.
function whyWaiting(position) {
  const s = page.state;
  if (!s?.Line) return "";
  const idle = s.Slots.filter((x) => x.State === "idle").length;
  if (idle === 0) return "";
  const abandon = s.AbandonSeconds;
  const ahead = (s.Line.Waiting ?? []).filter((w) => w.Position < position);
  const stale = ahead.filter((w) => (w.SincePollSeconds ?? 0) > 5);
  const idleText = `${plural(idle, "concurrency is", "concurrencies are")} idle`;
  if (stale.length) {
    const w = stale[0];
    return `Why wait while ${idleText}? The line serves those ahead first, and ${w.UserId} (Position ${w.Position}) has not polled for ${w.SincePollSeconds} s: ` +
      `its client is probably gone, but its place holds until it has not polled for QUEUE_ABANDON (${abandon} s); ` +
      `it is then dropped at the line's next poll and everyone moves up.${s.CanStop ? " Stop it in the line above to drop it now." : ""}`;
  }
  if (ahead.length >= idle) {
    return `${idleText[0].toUpperCase()}${idleText.slice(1)}, and ${plural(ahead.length, "user is", "users are")} ahead: they are served first, at their next poll.`;
  }
  return `${idleText[0].toUpperCase()}${idleText.slice(1)}: the next poll (after Retry-After) takes one.`;
}

// Stop from the pool or line panel: the page's own user through its
// client module; anyone else (left by an earlier page, or curl) through
// the dev-only POST /dev/stop.
async function stopUser(userId) {
  const own = [...page.users.values()].find((u) => u.broker.userId === userId && !u.guestOf);
  if (own) return stop(own);
  await dev("/dev/stop", { UserId: userId }, userId);
  await refresh().catch(() => {});
}

// A page that goes away takes its simulated clients with it, as closing an
// app does: each connected client disconnects (CAR retains its concurrency
// for the retention, then frees it) and no user polls any more (its place
// lapses after QUEUE_ABANDON). keepalive lets the requests outlive the page.
function leavePage() {
  for (const u of page.users.values()) {
    u.abort?.abort();
    const id = u.broker.userId;
    if (id && u.status === "session") {
      fetch("/dev/disconnect", {
        method: "POST", keepalive: true, cache: "no-store",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify({ UserId: id }),
      }).catch(() => {});
    }
  }
}

// --- pool and line -----------------------------------------------------------

const STATE_TEXT = {
  idle: "○ idle",
  locked: "◔ locked",
  session: "● in session",
  retained: "◑ retained",
  stopping: "◌ stopping",
};

function renderPool(s) {
  const counts = {};
  for (const slot of s.Slots) counts[slot.State] = (counts[slot.State] ?? 0) + 1;
  $("#pool-summary").textContent = `${plural(s.Slots.length, "concurrency", "concurrencies")}: ` +
    Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(", ") + ".";
  $("#slots").replaceChildren(...s.Slots.map((slot) => {
    let detail = "";
    if (slot.State === "session") detail = slot.Connected ? "client connected" : `no client yet: retained in ${slot.SecondsLeft} s`;
    else if (slot.State === "retained") detail = `reconnect within ${slot.SecondsLeft} s`;
    else if (slot.State === "locked") detail = `lock ends in ${slot.SecondsLeft} s`;
    else if (slot.State === "stopping") detail = `idle in ${slot.SecondsLeft} s`;
    const guests = slot.Guests.map((g) => `${g.UserId} (${g.Role})`).join(", ");
    const stoppable = s.CanStop && slot.UserId && slot.State !== "stopping";
    return el("li", { class: `slot ${slot.State}`, "data-slot": String(slot.Id), "data-state": slot.State, "data-user": slot.UserId || undefined },
      el("span", { class: "id" }, `#${slot.Id}`),
      el("span", { class: "state" }, STATE_TEXT[slot.State] ?? slot.State),
      el("span", { class: "user" }, slot.UserId ? slot.UserId : "—"),
      detail ? el("span", { class: "detail" }, detail) : "",
      guests ? el("span", { class: "guests" }, `guests: ${guests}`) : "",
      stoppable ? el("button", { type: "button", "data-action": "stop-session", "aria-label": `Stop ${slot.UserId}'s session`,
        onclick: () => stopUser(slot.UserId) }, "Stop") : "");
  }));
}

function renderLine(s) {
  // The server's line when it can be listed here; else the page's own
  // users' places, from their 202 replies.
  const mine = new Map([...page.users.values()].filter((u) => u.broker.userId).map((u) => [u.broker.userId, u]));
  const own = [...page.users.values()].filter((u) => u.status === "queued" && u.queue.position)
    .map((u) => ({ userId: label(u), position: u.queue.position }));
  let waiting = own;
  const status = $("#line-status");
  if (!s.Line) {
    status.textContent = "This function has no waiting line: a user who finds every concurrency busy gets 503 NoIdleConcurrency.";
  } else if (s.Line.Error) {
    status.textContent = `The waiting line is on, but could not be read here: ${s.Line.Error}`;
  } else if (s.Line.Waiting) {
    waiting = s.Line.Waiting.map((w) => ({ userId: w.UserId, position: w.Position, since: w.SincePollSeconds }));
    status.textContent = waiting.length
      ? `The waiting line is on: ${plural(waiting.length, "user waits", "users wait")}, first come, first served; a place not polled for QUEUE_ABANDON (${s.AbandonSeconds} s) is dropped.`
      : "The waiting line is on; nobody waits.";
  } else {
    status.textContent = own.length ? "The waiting line is on. This page's users in it:" : "The waiting line is on; none of this page's users waits.";
  }
  waiting.sort((a, b) => a.position - b.position);
  $("#line").replaceChildren(...waiting.map((w) => {
    const u = mine.get(w.userId);
    const eta = u?.status === "queued" ? etaText(u) : "";
    const since = w.since === undefined ? "" : w.since > 5 ? `not polled for ${w.since} s` : "polling";
    return el("li", { "data-user": w.userId, class: w.since > 5 ? "stale" : undefined },
      el("span", { class: "pos" }, `Position ${w.position}`), " ",
      el("span", { class: "user" }, w.userId), " ",
      u ? el("span", { class: "tag" }, "(this page) ") : "",
      eta ? el("span", { class: "eta" }, `${eta} `) : "",
      since ? el("span", { class: "since" }, since) : "",
      s.CanStop || u ? el("button", { type: "button", "data-action": "stop-waiter", "aria-label": `Stop ${w.userId}: leave the line`,
        onclick: () => stopUser(w.userId) }, "Stop") : "");
  }));
  const head = waiting[0];
  const why = head ? whyWaiting(waiting[waiting.length - 1].position + 1) : "";
  $("#line-why").textContent = why;
}

function renderSummary(s) {
  $("#summary").replaceChildren(
    "AUTH_MODE=", el("strong", { id: "auth-mode" }, s.AuthMode),
    ` · project ${s.ProjectId} · ${plural(s.Slots.length, "concurrency", "concurrencies")} · retention ${s.RetentionSeconds} s` +
    ` · a session with no client is retained after ${s.ClientWaitSeconds} s`);
}

async function refresh() {
  const res = await fetch("/dev/state", { cache: "no-store" });
  if (!res.ok) throw new Error(`GET /dev/state: HTTP ${res.status}`);
  const s = await res.json();
  page.state = s;
  renderSummary(s);
  renderPool(s);
  for (const u of page.users.values()) update(u);
  renderLine(s);
  return s;
}

async function poll() {
  try {
    await refresh();
    document.body.dataset.ready = "true";
  } catch (e) {
    $("#pool-summary").textContent = `The function is not answering (${e.message}); retrying.`;
  }
  setTimeout(poll, POLL_MS);
}

// --- setup -------------------------------------------------------------------

function setupAuth(mode) {
  page.authMode = mode;
  const input = $("#new-user-id");
  const form = $("#add-user");
  const notes = {
    none: "AUTH_MODE=none: the UserId you type is trusted as is. A guest joins a room with the host's UserId (HostUserId), no invite.",
    ticket: "AUTH_MODE=ticket: the server chooses each user's UserId and returns a Ticket, which the client module keeps in localStorage and sends as Authorization: Bearer. A guest needs an invite from its host (POST /session/invite).",
  };
  $("#auth-note").textContent = notes[mode] ??
    `AUTH_MODE=${mode}: this console cannot produce this mode's credentials; use curl (see the README).`;
  if (mode === "ticket") {
    input.remove();
    form.querySelector("label").remove();
    form.querySelector(".help").textContent = "The server will choose the UserId.";
  } else if (mode === "none") {
    input.value = `user-${page.next}`;
  } else {
    form.querySelector("button").disabled = true;
  }
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (mode === "ticket") {
      addUser().el.querySelector('[data-action="start"]').focus();
      return;
    }
    const id = input.value.trim();
    if (!input.checkValidity() || !id) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    if (page.users.has(id)) {
      announce(`${id} is already in the list.`);
      input.focus();
      return;
    }
    input.removeAttribute("aria-invalid");
    addUser({ userId: id });
    input.value = `user-${page.next}`;
  });
}

async function main() {
  for (let i = localStorage.length - 1; i >= 0; i--) {
    const k = localStorage.key(i);
    if (k?.startsWith(TICKET_PREFIX)) localStorage.removeItem(k);
  }
  $("#clear-log").addEventListener("click", () => $("#log").replaceChildren());
  addEventListener("pagehide", leavePage);
  // Back from the browser's page cache: the clients were disconnected when
  // the page was hidden, so say so.
  addEventListener("pageshow", (ev) => {
    if (!ev.persisted) return;
    for (const u of page.users.values()) {
      if (u.status === "session") setStatus(u, "disconnected");
      else if (u.status === "starting" || u.status === "queued") setStatus(u, "new");
    }
  });
  let s = null;
  while (!s) {
    try { s = await refresh(); } catch { await new Promise((r) => setTimeout(r, POLL_MS)); }
  }
  setupAuth(s.AuthMode);
  document.body.dataset.ready = "true";
  setTimeout(poll, POLL_MS);
}

main();
