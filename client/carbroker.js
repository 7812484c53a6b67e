// carbroker.js: the browser client of a carbroker function (one ES module,
// no dependencies). It gets the ServerSession that TCGSDK.start() needs,
// waits in the function's line, follows Retry-After, keeps the ticket the
// server issues, and gives up with a BrokerError whose code is one of the
// README's error table. Types: carbroker.d.ts next to this file.
//
//   import { createBroker } from "./carbroker.js";
//   const broker = createBroker({ baseUrl: "https://<your function URL>" });
//   const serverSession = await broker.start({
//     clientSession: await TCGSDK.getClientSession(),
//     onQueue: (q) => show(`You are number ${q.position}`),
//   });
//   TCGSDK.start(serverSession);

/** Error codes worth retrying: the function or CAR is busy for a moment. */
const TRANSIENT = new Set(["TooManyRequests", "Unavailable", "UpstreamError", "UpstreamTimeout"]);

/** The codes a status means when a reply is not the function's JSON (a gateway's page). */
const STATUS_CODES = {
  400: "InvalidParameter", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
  405: "MethodNotAllowed", 409: "RoleFull", 413: "RequestTooLarge", 429: "TooManyRequests",
  500: "InternalError", 502: "UpstreamError", 503: "Unavailable", 504: "UpstreamTimeout",
};

/** A refusal the client should not retry by itself, or a transient one that lasted too long. */
export class BrokerError extends Error {
  /**
   * @param {string} code the function's error code (README, "Errors"), or "NetworkError"
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
    const ms = Math.max(0, lease.expiresAt.getTime() - before - Date.now());
    const end = lease.expiresAt;
    lease.timer = setTimeout(() => {
      lease.timer = null;
      cb({ expiresAt: end, secondsLeft: Math.max(0, Math.round((end.getTime() - Date.now()) / 1000)) });
    }, ms);
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
  async function exchange(method, path, payload, signal) {
    const headers = {};
    const t = ticket.get();
    if (t) headers.Authorization = `Bearer ${t}`;
    else if (o.token) headers.Authorization = `Bearer ${await o.token()}`;
    const body = payload === undefined ? undefined : JSON.stringify(payload);
    const url = base + path;
    const began = Date.now();
    // No Content-Type: the function reads JSON whatever it says, and a
    // simple request needs no CORS preflight.
    const res = await doFetch(url, { method, headers, body, signal, credentials: "omit", cache: "no-store" });
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

  // Calls until a 200, following 202 (the line) and transient errors.
  async function call(method, path, payload, { signal, onQueue } = {}) {
    let failures = 0;
    for (;;) {
      signal?.throwIfAborted();
      let r;
      try {
        r = await exchange(method, path, typeof payload === "function" ? payload() : payload, signal);
      } catch (err) {
        if (signal?.aborted || err?.name === "AbortError") throw signal?.reason ?? err;
        if (++failures > o.maxRetries) {
          throw new BrokerError("NetworkError", `the function could not be reached: ${err?.message ?? err}`, { cause: err });
        }
        await sleep(backoff(failures), signal);
        continue;
      }
      if (r.status === 200) return r.body ?? {};
      if (r.status === 202 && r.body?.Queue) {
        failures = 0;
        const q = r.body.Queue;
        onQueue?.({ position: q.Position, ahead: q.Ahead, etaSeconds: q.EtaSeconds, userId: r.body.UserId ?? userId });
        await sleep(r.retryAfter > 0 ? r.retryAfter : 2000, signal);
        continue;
      }
      const e = errorOf(r);
      if (e.code === "Unauthorized" && ticket.get()) { // expired or revoked: the next start mints anew
        ticket.clear();
        userId = o.userId ?? "";
      }
      if (TRANSIENT.has(e.code) && ++failures <= o.maxRetries) {
        await sleep(r.retryAfter > 0 ? r.retryAfter : backoff(failures), signal);
        continue;
      }
      throw e;
    }
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
      return call("POST", "/session", payload, { signal, onQueue }).then((b) => {
        setLease(b.ExpiresAt, onExpiring);
        return b.ServerSession;
      }, (err) => {
        if (err?.code === "SessionEnded") setLease(null);
        throw err;
      });
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

    stop({ signal } = {}) {
      const payload = strip({ UserId: userId });
      return call("DELETE", "/session", payload, { signal }).then((b) => { setLease(null); return b; });
    },

    forget() { ticket.clear(); userId = o.userId ?? ""; setLease(null); },
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

function strip(obj) {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined && v !== ""));
}
