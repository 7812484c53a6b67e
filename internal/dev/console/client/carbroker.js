// carbroker.js: the browser client of a carbroker function (one ES module,
// no dependencies). It gets the ServerSession that TCGSDK.start() needs,
// waits in the function's line, follows Retry-After, keeps the ticket the
// server issues, and gives up with a BrokerError whose code is one of the
// error table (docs/reference.md). Types: carbroker.d.ts next to this file.
//
//   import { createBroker } from "./carbroker.js";
//   const broker = createBroker({ baseUrl: "https://<your function URL>" });
//   const serverSession = await broker.start({
//     clientSession: await TCGSDK.getClientSession(),
//     onQueue: (q) => show(`You are number ${q.position}`),
//   });
//   TCGSDK.start(serverSession);   // from now on the module heartbeats (POST /session/alive)
//   ...
//   await broker.stop();           // also while start() waits: it leaves the line

/** Error codes worth retrying: the function or CAR is busy for a moment. */
const TRANSIENT = new Set(["TooManyRequests", "Unavailable", "UpstreamError", "UpstreamTimeout"]);

/** Seconds between heartbeats until the function says otherwise (contract: HeartbeatSeconds). */
const HEARTBEAT_SECONDS = 30;

/** How long stop() waits for a poll already on the wire before it sends the DELETE anyway. */
const IN_FLIGHT_WAIT_MS = 10000;

/** The longest wait setTimeout keeps (2^31-1 ms, 24.8 days); a longer one runs at once. */
const MAX_TIMEOUT_MS = 2147483647;

/** The codes a status means when a reply is not the function's JSON (a gateway's page). */
const STATUS_CODES = {
  400: "InvalidParameter", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
  405: "MethodNotAllowed", 409: "RoleFull", 413: "RequestTooLarge", 429: "TooManyRequests",
  500: "InternalError", 502: "UpstreamError", 503: "Unavailable", 504: "UpstreamTimeout",
};

/** A refusal the client should not retry by itself, or a transient one that lasted too long. */
export class BrokerError extends Error {
  /**
   * @param {string} code the function's error code (docs/reference.md, "Errors"), or "NetworkError"
   * @param {string} message
   * @param {{status?: number, requestId?: string, retryAfter?: number, cause?: unknown}} [details]
   */
  constructor(code, message, details = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "BrokerError";
    this.code = code;
    this.status = details.status ?? 0;
    this.requestId = details.requestId ?? "";
    this.retryAfter = details.retryAfter ?? 0;
  }
}

/**
 * Returns a client of one carbroker function.
 * @param {import("./carbroker").BrokerOptions} [options]
 * @returns {import("./carbroker").Broker}
 */
export function createBroker(options = {}) {
  const o = {
    baseUrl: "",
    storageKey: "carbroker.ticket",
    maxRetries: 5,
    heartbeatSeconds: HEARTBEAT_SECONDS,
    ...options,
  };
  const base = String(o.baseUrl).replace(/\/+$/, "");
  // The session's lease (SESSION_MAX on the function): its end, and the
  // onExpiring callback armed expiringBefore ms (default 60 s) before it.
  const lease = { expiresAt: null, timer: null, onExpiring: null };
  function setLease(expiresAt, onExpiring) {
    clearTimeout(lease.timer);
    lease.timer = null;
    const at = expiresAt ? new Date(expiresAt) : null;
    lease.expiresAt = at && !Number.isNaN(at.getTime()) ? at : null;
    if (onExpiring !== undefined) lease.onExpiring = onExpiring;
    const cb = lease.onExpiring ?? o.onExpiring;
    if (!lease.expiresAt || !cb) return;
    const before = o.expiringBefore ?? 60000;
    const end = lease.expiresAt;
    // setTimeout waits at most 2^31-1 ms (24.8 days; longer runs at once):
    // a lease further away is waited for in steps.
    const arm = () => {
      const ms = Math.max(0, end.getTime() - before - Date.now());
      lease.timer = setTimeout(() => {
        if (ms > MAX_TIMEOUT_MS) return arm();
        lease.timer = null;
        cb({ expiresAt: end, secondsLeft: Math.max(0, Math.round((end.getTime() - Date.now()) / 1000)) });
      }, Math.min(ms, MAX_TIMEOUT_MS));
    };
    arm();
  }
  const storage = o.storage === undefined ? globalThis.localStorage ?? null : o.storage;
  const doFetch = o.fetch ?? globalThis.fetch.bind(globalThis);
  let userId = o.userId ?? "";

  // The ticket lives in storage (localStorage by default) so that the same
  // UserId comes back after a reload, and in memory when storage is refused.
  let kept = "";
  const ticket = {
    get() {
      try { return storage?.getItem(o.storageKey) || kept; } catch { return kept; }
    },
    set(t) {
      kept = t;
      try { storage?.setItem(o.storageKey, t); } catch { /* storage full or denied: memory only */ }
    },
    clear() {
      kept = "";
      try { storage?.removeItem(o.storageKey); } catch { /* ignore */ }
    },
  };

  // One HTTP exchange; returns {status, body, retryAfter, requestId}.
  async function exchange(method, path, payload, signal, keepalive = false) {
    const headers = {};
    const t = ticket.get();
    if (t) headers.Authorization = `Bearer ${t}`;
    else if (o.token) headers.Authorization = `Bearer ${await o.token()}`;
    const body = payload === undefined ? undefined : JSON.stringify(payload);
    const url = base + path;
    const began = Date.now();
    // No Content-Type: the function reads JSON whatever it says, and a
    // simple request needs no CORS preflight.
    const init = { method, headers, body, signal, credentials: "omit", cache: "no-store" };
    if (keepalive) init.keepalive = true; // outlives the page
    const res = await doFetch(url, init);
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not the function's JSON */ }
    const out = {
      status: res.status,
      body: json,
      retryAfter: parseRetryAfter(res.headers.get("Retry-After")),
      requestId: json?.RequestId ?? res.headers.get("X-Request-Id") ?? "",
    };
    o.onExchange?.({
      method, url, requestHeaders: headers, request: payload ?? null,
      status: res.status, reply: json ?? text, retryAfter: out.retryAfter, ms: Date.now() - began,
    });
    if (json?.Ticket) ticket.set(json.Ticket);
    if (json?.UserId) userId = json.UserId;
    return out;
  }

  // The starts under way: stop() ends them before it sends its DELETE, so
  // that no poll follows it (a poll would put the user back in line).
  const runs = new Set();

  // Calls until a 200, following 202 (the line) and transient errors. run,
  // when given, is a start that stop() may end: its sleeps end at once, a
  // request already sent is awaited (its reply comes before the DELETE).
  async function call(method, path, payload, { signal, onQueue, run } = {}) {
    let failures = 0;
    const ended = () => run?.stop.signal.aborted || signal?.aborted;
    const reason = () => (run?.stop.signal.aborted ? run.stop.signal.reason : signal.reason);
    const sleepSignal = run ? anySignal(signal, run.stop.signal) : signal;
    const wireSignal = run ? anySignal(signal, run.wire.signal) : signal;
    for (;;) {
      if (ended()) throw reason();
      let r;
      try {
        const p = exchange(method, path, typeof payload === "function" ? payload() : payload, wireSignal);
        if (run) run.pending = p.catch(() => {});
        r = await p;
      } catch (err) {
        if (ended() || err?.name === "AbortError") throw ended() ? reason() : err;
        if (++failures > o.maxRetries) {
          throw new BrokerError("NetworkError", `the function could not be reached: ${err?.message ?? err}`, { cause: err });
        }
        await sleep(backoff(failures), sleepSignal);
        continue;
      } finally {
        if (run) run.pending = null;
      }
      if (ended()) throw reason(); // stopped while this request was on the wire
      if (r.status === 200) return r.body ?? {};
      if (r.status === 202 && r.body?.Queue) {
        // Position, Ahead and EtaSeconds are absent while the function
        // cannot tell the place (its line's store is in trouble): keep
        // waiting all the same.
        failures = 0;
        const q = r.body.Queue;
        onQueue?.({ position: q.Position, ahead: q.Ahead, etaSeconds: q.EtaSeconds, userId: r.body.UserId ?? userId });
        await sleep(r.retryAfter > 0 ? r.retryAfter : 2000, sleepSignal);
        continue;
      }
      const e = errorOf(r);
      if (e.code === "Unauthorized" && ticket.get()) { // expired or revoked: the next start mints anew
        ticket.clear();
        userId = o.userId ?? "";
      }
      if (TRANSIENT.has(e.code) && ++failures <= o.maxRetries) {
        await sleep(r.retryAfter > 0 ? r.retryAfter : backoff(failures), sleepSignal);
        continue;
      }
      throw e;
    }
  }

  // The heartbeat: POST /session/alive every HeartbeatSeconds while the
  // app runs after a successful start, so that the function keeps the
  // user's place as a holder. It ends on stop(), forget(), a start that
  // fails, a reply saying the user holds nothing, a function without the
  // route (404) and any refusal; a transient failure waits for the next beat.
  let beat = null; // {timer, ac, body}
  function stopHeartbeat() {
    if (!beat) return;
    clearTimeout(beat.timer);
    beat.ac.abort();
    beat = null;
  }
  function startHeartbeat(body) {
    stopHeartbeat();
    if (o.heartbeat === false) return;
    const b = { timer: 0, ac: new AbortController(), body };
    beat = b;
    const schedule = (seconds) => {
      if (beat !== b) return;
      b.timer = setTimeout(send, seconds * 1000);
    };
    const send = async () => {
      if (beat !== b) return;
      let r;
      try {
        r = await exchange("POST", "/session/alive", b.body, b.ac.signal);
      } catch {
        return schedule(o.heartbeatSeconds); // no answer: try at the next beat
      }
      if (beat !== b) return;
      const every = Number(r.body?.HeartbeatSeconds);
      if (r.status === 200 && r.body?.Holding === true && every > 0) return schedule(every);
      if (r.status === 200 || !TRANSIENT.has(errorOf(r).code)) return stopHeartbeat();
      schedule(o.heartbeatSeconds);
    };
    schedule(o.heartbeatSeconds);
  }

  return {
    get userId() { return userId; },
    get ticket() { return ticket.get(); },

    /** The session's lease: expiresAt is a Date, or null when no lease applies. */
    get session() { return { userId, expiresAt: lease.expiresAt }; },

    start({ clientSession, onQueue, signal, hostUserId, role, invite, projectId, onExpiring } = {}) {
      const payload = () => strip({
        UserId: userId,
        ClientSession: clientSession,
        ProjectId: projectId ?? o.projectId,
        HostUserId: hostUserId, Role: role, Invite: invite,
      });
      stopHeartbeat(); // a start that fails leaves none running
      const run = { stop: new AbortController(), wire: new AbortController(), pending: null };
      runs.add(run);
      return call("POST", "/session", payload, { signal, onQueue, run })
        .then((b) => {
          setLease(b.ExpiresAt, onExpiring);
          startHeartbeat(strip({ UserId: userId, ProjectId: projectId ?? o.projectId }));
          return b.ServerSession;
        }, (err) => {
          if (err?.code === "SessionEnded") setLease(null);
          throw err;
        })
        .finally(() => runs.delete(run));
    },

    renew({ signal, projectId } = {}) {
      const payload = strip({ UserId: userId, ProjectId: projectId ?? o.projectId });
      return call("POST", "/session/renew", payload, { signal }).then((b) => {
        setLease(b.ExpiresAt);
        return b;
      });
    },

    join(invitation, { clientSession, onQueue, signal } = {}) {
      return this.start({
        clientSession, onQueue, signal,
        hostUserId: invitation.HostUserId, role: invitation.Role, invite: invitation.Invite,
      });
    },

    invite(role, { expiresIn, signal } = {}) {
      const payload = strip({ UserId: userId, Role: role, ExpiresIn: expiresIn });
      return call("POST", "/session/invite", payload, { signal });
    },

    async stop({ signal, keepalive } = {}) {
      stopHeartbeat();
      // End every start under way first: a sleeping one at once, one whose
      // request is on the wire once its reply is in (or after
      // IN_FLIGHT_WAIT_MS), so the DELETE is the last request the function
      // sees. keepalive (a page being closed) cannot wait: it sends now.
      const stopped = new DOMException("stopped: stop() was called", "AbortError");
      const waits = [];
      for (const run of runs) {
        run.stop.abort(stopped);
        if (run.pending) waits.push(run);
      }
      if (waits.length && !keepalive) {
        let timer;
        await Promise.race([
          Promise.all(waits.map((r) => r.pending)),
          new Promise((ok) => { timer = setTimeout(ok, IN_FLIGHT_WAIT_MS); }),
        ]);
        clearTimeout(timer);
      }
      for (const run of waits) run.wire.abort(stopped);
      const payload = strip({ UserId: userId });
      if (keepalive) {
        setLease(null);
        return exchange("DELETE", "/session", payload, signal, true).then((r) => r.body ?? {});
      }
      return call("DELETE", "/session", payload, { signal }).then((b) => { setLease(null); return b; });
    },

    forget() {
      stopHeartbeat();
      // A start under way would go on as a stranger (in ticket mode a new
      // user at the end of the line), and a reply on the wire would bring
      // the ticket back: end them first, their replies unread.
      const forgotten = new DOMException("forgotten: forget() was called", "AbortError");
      for (const run of runs) {
        run.stop.abort(forgotten);
        run.wire.abort(forgotten);
      }
      ticket.clear();
      userId = o.userId ?? "";
      setLease(null);
    },
  };
}

function errorOf(r) {
  const e = r.body?.Error;
  const code = typeof e?.Code === "string" ? e.Code : STATUS_CODES[r.status] ?? "UpstreamError";
  const message = typeof e?.Message === "string" ? e.Message : `HTTP ${r.status} without the function's error body`;
  return new BrokerError(code, message, { status: r.status, requestId: r.requestId, retryAfter: r.retryAfter });
}

// Retry-After in milliseconds: delta-seconds or an HTTP date; 0 when absent.
function parseRetryAfter(v) {
  if (!v) return 0;
  if (/^\d+$/.test(v.trim())) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? 0 : Math.max(0, at - Date.now());
}

function backoff(n) {
  const ms = Math.min(8000, 500 * 2 ** (n - 1));
  return ms / 2 + Math.random() * (ms / 2);
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => { signal?.removeEventListener("abort", onAbort); resolve(); }, ms);
    function onAbort() { clearTimeout(t); reject(signal.reason); }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

// anySignal aborts when either signal does (AbortSignal.any, for browsers
// without it).
function anySignal(a, b) {
  if (!a) return b;
  if (!b) return a;
  const ac = new AbortController();
  const on = (s) => () => ac.abort(s.reason);
  for (const s of [a, b]) {
    if (s.aborted) { ac.abort(s.reason); break; }
    s.addEventListener("abort", on(s), { once: true });
  }
  return ac.signal;
}

function strip(obj) {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined && v !== ""));
}
