// Type declarations of @notification-service/client (client.js beside this file).

export declare const VERSION: string;

/** How the client talks to the service. `auto`: SSE, falling back to WebSocket where SSE cannot get through. */
export type TransportOption = 'auto' | 'sse' | 'ws';

/** A transport actually in use. */
export type Transport = 'sse' | 'ws';

/** Where a cursor is kept across page reloads: localStorage by default. */
export interface CursorStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export interface BackoffOptions {
  /** First retry ceiling in ms (the n-th retry waits a random time in [0, min(cap, base * 2^n))). Default 1000. */
  base?: number;
  /** Largest ceiling in ms. Default 30000. */
  cap?: number;
  /** Source of randomness in [0, 1): for tests. Default Math.random. */
  random?: () => number;
}

interface CommonOptions {
  /** The service's base URL, e.g. `https://notify.example.com`. Default: the page's origin. */
  url?: string;
  /** Channels this tab subscribes to from the start. */
  channels?: string[];
  /** Default `auto`. */
  transport?: TransportOption;
  /** Reconnect policy. */
  backoff?: { base?: number; cap?: number };
  /** Where the resume cursor survives a reload; `null` keeps it in memory only. Default localStorage. */
  storage?: CursorStorage | null;
  /** Share one connection between this browser's tabs (Web Locks + BroadcastChannel). Default true. */
  shareConnection?: boolean;
  /** ms to wait for the stream's `ready`; in `auto`, SSE without `ready` in time falls back to WebSocket. Default 5000. */
  readyTimeout?: number;
  /** ms of silence (no event, heartbeat or pong) after which the connection is replaced; 0 disables. Keep it above twice the server's HEARTBEAT_INTERVAL. Default 90000. */
  idleTimeout?: number;
  /** ms between the client's WebSocket pings (which the idle timeout relies on). Default 25000. */
  pingInterval?: number;
  /** ms a connection must stay open before the backoff starts again from its first step. Default 5000. */
  stableAfter?: number;
  /** fetch's credentials mode for SSE and REST calls; `include` sends the auth cookie cross-origin. Default `same-origin`. */
  credentials?: RequestCredentials;
  /** Replacements for the globals, for tests or other runtimes. */
  fetch?: typeof fetch;
  WebSocket?: typeof WebSocket;
}

/** Open mode: the service has no JWT_SECRET and the user names itself. */
export interface OpenModeOptions extends CommonOptions {
  userId: string | number;
  token?: undefined;
  getToken?: undefined;
}

/** Token mode: an HS256 JWT (sub = the user), and where to get a fresh one. */
export interface TokenModeOptions extends CommonOptions {
  /** The current token; optional when getToken is given. */
  token?: string;
  /** Called when the token has expired (and before the first connection without a token); resolves to a new token. Without it, an expired token stops the client (status `closed`, reason `token_expired`). */
  getToken?: () => string | Promise<string>;
  /** Optional: when given it must be the token's sub. */
  userId?: string | number;
}

export type ConnectOptions = OpenModeOptions | TokenModeOptions;

/** A notification as the stream delivers it. */
export interface Notification {
  event: 'notification';
  /** Resume cursor (`<epoch>-<sequence>`). */
  cursor: string;
  /** UUID. */
  id: string;
  type: string;
  title?: string;
  message?: string;
  /** Absent on broadcasts. */
  user_id?: string;
  channels?: string[];
  data?: Record<string, unknown>;
  /** RFC 3339, UTC, milliseconds. */
  timestamp: string;
}

/** A notification as the inbox lists it. */
export interface InboxEntry extends Omit<Notification, 'event' | 'cursor'> {
  read: boolean;
  read_at?: string;
}

export interface InboxPage {
  user_id: string;
  notifications: InboxEntry[];
  /** Counts of the whole inbox, not the page. */
  total: number;
  unread: number;
  /** Pass to list({cursor}) for the next page; null on the last. */
  next_cursor: string | null;
}

export interface ListOptions {
  /** 1 to the server's INBOX_MAX_PAGE_SIZE (200); default 50. */
  limit?: number;
  /** A next_cursor from an earlier page. */
  cursor?: string;
  /** Only unread entries. */
  unread?: boolean;
}

export interface Inbox {
  /** One page, newest first; also updates unreadCount. */
  list(options?: ListOptions): Promise<InboxPage>;
  /** Marks one read (idempotent); every tab gets a `read` event. */
  markRead(id: string): Promise<InboxEntry>;
  /** Marks all read; every tab gets a `read_all` event when something changed. */
  readAll(): Promise<{ updated: number }>;
  /** Removes one; every tab gets a `deleted` event. */
  remove(id: string): Promise<void>;
}

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface Status {
  state: ConnectionState;
  /** Why the last connection ended (`network_error`, `server_shutdown`, `rate_limited`, `token_expired`, …), or why the client closed. */
  reason?: string;
  /** `reconnecting`: ms until the next attempt, and when that is (ms since the epoch). */
  retryIn?: number;
  retryAt?: number;
  /** Failed attempts since the last stable connection. */
  attempt?: number;
  transport?: Transport | null;
  /** The server's id of the live connection (the leader's, in a follower tab). */
  connectionId?: string | null;
  /** True in the tab that holds the connection (or a tab on its own). */
  leader: boolean;
  /** True when tabs share one connection. */
  shared: boolean;
  /** `closed` after a refusal: what refused. */
  error?: NotificationError;
}

export interface ReadEvent {
  event: 'read';
  user_id: string;
  id: string;
  read_at: string;
  unread: number;
}

export interface ReadAllEvent {
  event: 'read_all';
  user_id: string;
  updated: number;
  unread: number;
}

export interface DeletedEvent {
  event: 'deleted';
  user_id: string;
  id: string;
  unread: number;
}

export interface SubscriptionEvent {
  event: 'subscribed' | 'unsubscribed';
  connection_id: string;
  /** The channels changed. */
  channels: string[];
  /** The connection's channels now. */
  subscriptions: string[];
}

export interface ResetEvent {
  event: 'reset';
  /** `cursor_expired`: the server could not replay what was missed. */
  reason: string;
  /** The inbox's first page, refetched; null if that failed. */
  inbox: InboxPage | null;
}

export interface ClientEvents {
  notification: Notification;
  read: ReadEvent;
  read_all: ReadAllEvent;
  deleted: DeletedEvent;
  reset: ResetEvent;
  status: Status;
  /** The unread count changed. */
  unread: number;
  error: NotificationError;
  subscribed: SubscriptionEvent;
  unsubscribed: SubscriptionEvent;
}

export interface NotificationClient {
  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof ClientEvents>(event: K, listener: (payload: ClientEvents[K]) => void): () => void;
  off<K extends keyof ClientEvents>(event: K, listener: (payload: ClientEvents[K]) => void): void;
  /** Adds channels to this tab's; resolves with them once the server has them (or the next connection will). */
  subscribe(channels: string | string[]): Promise<string[]>;
  unsubscribe(channels: string | string[]): Promise<string[]>;
  readonly inbox: Inbox;
  /** The user's unread count, live; null until first known. */
  readonly unreadCount: number | null;
  readonly status: Status;
  /** This tab's channels. */
  readonly channels: string[];
  /** The newest cursor delivered. */
  readonly cursor: string | null;
  readonly userId: string | null;
  readonly isLeader: boolean;
  readonly connectionId: string | null;
  /** Closes this tab's client; a leader hands the connection to another tab. */
  close(): void;
}

/** Connects and returns the client. Failures later show as `status` and `error` events, never as exceptions. */
export declare function connect(options: ConnectOptions): NotificationClient;

export declare class NotificationError extends Error {
  constructor(code: string, message?: string, options?: { status?: number; retryAfter?: number | null; field?: string; fatal?: boolean });
  /** The API's error code (`rate_limited`, `token_expired`, `forbidden_channel`, …) or the client's (`network_error`, `leader_timeout`, …). */
  code: string;
  /** HTTP status; 0 when there was none. */
  status: number;
  /** ms the server asked to wait (Retry-After), or null. */
  retryAfter: number | null;
  field?: string;
  /** True when the client stopped because of it. */
  fatal: boolean;
}

// Building blocks, exported for tests and for other clients.

/** Exponential backoff with full jitter; Retry-After wins. */
export declare class Backoff {
  constructor(options?: BackoffOptions);
  base: number;
  cap: number;
  attempt: number;
  /** The ceiling of the next draw. */
  ceiling(): number;
  /** The next delay in ms; `retryAfter` (ms), when given, is returned instead of a draw. */
  next(options?: { retryAfter?: number | null }): number;
  reset(): void;
}

/** A Retry-After value (seconds or HTTP date) in ms, or null. */
export declare function parseRetryAfter(value: string | null | undefined, now?: number): number | null;

export declare function parseCursor(cursor: string): { epoch: string; seq: string } | null;

/** Compares decimal strings without leading zeros. */
export declare function compareSeq(a: string, b: string): -1 | 0 | 1;

/** The newest cursor delivered and the ids delivered lately. */
export declare class CursorTracker {
  constructor(options?: { cursor?: string | null; remember?: number });
  value: string | null;
  /** True when the notification is new (and records it). */
  accept(cursor: string | null | undefined, id?: string | null): boolean;
  /** The cursor a new connection starts from (its `ready`). */
  ready(cursor: string): void;
}

export interface SSEEvent {
  /** `message` unless the event named one. */
  type: string;
  data: string;
  /** The last event id seen. */
  id: string;
}

/** An incremental text/event-stream parser. */
export declare class SSEParser {
  constructor(onEvent: (event: SSEEvent) => void, onComment?: (text: string) => void);
  lastEventId: string;
  /** The last `retry:` in ms, or null. */
  retry: number | null;
  push(chunk: string): void;
  end(): void;
}

/** Whether a token's `channels` patterns (`*` matches any run) allow channel. */
export declare function channelAllowed(patterns: unknown, channel: string): boolean;
