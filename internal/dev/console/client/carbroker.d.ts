// Types of carbroker.js, the browser client of a carbroker function.

/**
 * Where the caller stands in the function's waiting line (a 202 reply).
 * position and ahead are undefined while the function cannot tell the place
 * (its line's store is in trouble): the caller still waits, and start()
 * keeps following Retry-After.
 */
export interface QueuePlace {
  /** 1 means next. Never increases while the client keeps polling. */
  position?: number;
  /** position - 1 */
  ahead?: number;
  /** An estimate in seconds; undefined while the function cannot tell. */
  etaSeconds?: number;
  /** The caller's UserId (the server's choice in ticket mode). */
  userId: string;
}

/** One request and its reply, as the client saw them (for debugging panels). */
export interface Exchange {
  method: string;
  url: string;
  requestHeaders: Record<string, string>;
  request: unknown;
  status: number;
  /** The parsed JSON reply, or its text when it was not JSON. */
  reply: unknown;
  /** Retry-After in milliseconds, 0 when absent. */
  retryAfter: number;
  ms: number;
}

export interface BrokerOptions {
  /** The function's base URL (e.g. "https://…/release"); "" means this page's origin. */
  baseUrl?: string;
  /** AUTH_MODE=none or sign: the UserId to act as. Ticket mode: leave it out, the server chooses. */
  userId?: string;
  /** AUTH_MODE=jwt: returns the bearer JWT (called before each request without a ticket). */
  token?: () => string | Promise<string>;
  /** ProjectId for every start (default: the function's CAR_PROJECT_ID). */
  projectId?: string;
  /** Where the ticket is kept; default localStorage, null for memory only. */
  storage?: Pick<Storage, "getItem" | "setItem" | "removeItem"> | null;
  /** The storage key of the ticket; default "carbroker.ticket". */
  storageKey?: string;
  /** Consecutive transient failures (network, 429, 502, 503 Unavailable, 504) before giving up; default 5. */
  maxRetries?: number;
  /** Replaces globalThis.fetch. */
  fetch?: typeof fetch;
  /** Called after every HTTP exchange (heartbeats included). */
  onExchange?: (x: Exchange) => void;
  /**
   * After a successful start, POST /session/alive every HeartbeatSeconds
   * (30 until the function says otherwise) so that the function knows the
   * app still runs. Stops on stop(), forget(), a start that fails, a reply
   * with Holding false, and a function without the route (404). Default true.
   */
  heartbeat?: boolean;
  /** Seconds before the first heartbeat, and between them until a reply says HeartbeatSeconds; default 30. */
  heartbeatSeconds?: number;
  /** Called once, expiringBefore ms before the session's lease ends (SESSION_MAX); start() may set its own. */
  onExpiring?: (e: Expiring) => void;
  /** How long before the lease's end onExpiring is called, in ms; default 60000. */
  expiringBefore?: number;
}

/** The session's lease is about to end (SESSION_MAX on the function). */
export interface Expiring {
  expiresAt: Date;
  /** Whole seconds left when the callback ran. */
  secondsLeft: number;
}

/** The reply of POST /session/renew. */
export interface Renewal {
  UserId: string;
  /** RFC 3339 UTC: the lease's new end. */
  ExpiresAt: string;
  RenewalsLeft: number;
  RequestId: string;
}

export interface StartOptions {
  /** TCGSDK.getClientSession() */
  clientSession: string;
  /** Called on each 202 reply while the caller waits in line. */
  onQueue?: (place: QueuePlace) => void;
  /**
   * Aborting it rejects with signal.reason (an AbortError DOMException by
   * default). It does not leave the line: the place lapses after
   * QUEUE_ABANDON. To leave at once, call stop().
   */
  signal?: AbortSignal;
  /** Multiplayer: the room's owner (a guest's own start uses join()). */
  hostUserId?: string;
  role?: "Player" | "Viewer";
  invite?: string;
  projectId?: string;
  /** Called once, expiringBefore ms before this session's lease ends; overrides the option. */
  onExpiring?: (e: Expiring) => void;
}

/** The reply of POST /session/invite; join() takes it as is. */
export interface Invitation {
  Invite?: string;
  HostUserId: string;
  Role: "Player" | "Viewer";
  ExpiresAt?: string;
  RequestId?: string;
}

export interface Broker {
  /** The UserId in use: the option's, or the one the server chose. */
  readonly userId: string;
  /** The ticket kept, "" when none. */
  readonly ticket: string;
  /** The session's lease: expiresAt is when the function ends the session, null when no lease applies. */
  readonly session: { userId: string; expiresAt: Date | null };
  /** Extends the lease by SESSION_MAX from now (SESSION_RENEW on the function); re-arms onExpiring. */
  renew(options?: { signal?: AbortSignal; projectId?: string }): Promise<Renewal>;
  /**
   * Starts or resumes the caller's session; resolves to the ServerSession for
   * TCGSDK.start(), then heartbeats while the app runs (see
   * BrokerOptions.heartbeat). It waits in the line (202) as long as the
   * function says, and rejects with a BrokerError on anything else after
   * maxRetries transient failures in a row; stop() makes it reject with an
   * AbortError DOMException.
   */
  start(options: StartOptions): Promise<string>;
  /** Joins a host's room as a guest (AUTH_MODE=none: { HostUserId, Role } is enough). */
  join(invitation: Invitation, options: Omit<StartOptions, "hostUserId" | "role" | "invite">): Promise<string>;
  /** Mints an invite to the caller's own room (needs AUTH_SECRET on the function). */
  invite(role: "Player" | "Viewer", options?: { expiresIn?: number; signal?: AbortSignal }): Promise<Invitation>;
  /**
   * Stops the caller's session, or leaves the line, and stops the heartbeat.
   * A start() under way ends first (it rejects with an AbortError
   * DOMException): a start waiting out Retry-After at once, one whose request
   * is on the wire when its reply is in (at most 10 s), so the DELETE is the
   * last request the function gets. keepalive (for a pagehide handler) sends
   * the DELETE at once with fetch's keepalive, without waiting or retrying.
   */
  stop(options?: { signal?: AbortSignal; keepalive?: boolean }): Promise<{ UserId: string; RequestId: string }>;
  /**
   * Drops the kept ticket (the next start in ticket mode gets a new UserId) and stops the heartbeat.
   * A start under way rejects with an AbortError (its reply, if one is on the wire, is not read);
   * it does not leave the line: its place lapses after QUEUE_ABANDON (stop() first to leave at once).
   */
  forget(): void;
}

/** Codes from the error table (docs/reference.md), and NetworkError when the function could not be reached. */
export type BrokerErrorCode =
  | "InvalidParameter" | "RequestTooLarge" | "Unauthorized" | "Forbidden" | "NotFound"
  | "MethodNotAllowed" | "RoleFull" | "TooManyRequests" | "NoIdleConcurrency" | "Unavailable"
  | "UpstreamTimeout" | "UpstreamError" | "InternalError" | "NetworkError"
  /** 403: the session's lease ended (SESSION_MAX); retryAfter is the cooldown left, if any. Not retried. */
  | "SessionEnded";

export class BrokerError extends Error {
  constructor(code: BrokerErrorCode | string, message: string,
    details?: { status?: number; requestId?: string; retryAfter?: number; cause?: unknown });
  readonly name: "BrokerError";
  readonly code: BrokerErrorCode | string;
  /** HTTP status, 0 for NetworkError. */
  readonly status: number;
  readonly requestId: string;
  /** Retry-After in milliseconds, 0 when absent (NoIdleConcurrency carries one). */
  readonly retryAfter: number;
}

export function createBroker(options?: BrokerOptions): Broker;
