/**
 * A chat session: one logical conversation with the chat API that survives dropped connections.
 *
 * It owns the protocol state both clients need (rooms joined and their members, the current room,
 * messages not yet acknowledged, replies still awaited) and the connection policy:
 * - a `ping` every 5 minutes, well before API Gateway's 10-minute idle timeout
 *   (AWS-FACTS "Limits": idle timeout 10 minutes);
 * - reconnection with capped exponential backoff and jitter when the connection drops, e.g. at the
 *   2-hour maximum connection duration (AWS-FACTS "Limits"), so that many clients cut at once do not
 *   come back in lockstep ("Exponential Backoff And Jitter", AWS Architecture Blog);
 * - after reconnecting, the rooms are joined again and unacknowledged chat and private messages are
 *   sent again with the same `clientMessageId`, which the server stores only once (docs/protocol.md
 *   "Idempotent retries").
 *
 * It knows nothing of Node or the DOM: the socket is given as a factory (the `ws` package in the
 * terminal, the browser's WebSocket in the page) and the user interface listens to events.
 */
import {
  DEFAULT_ROOM,
  connectUrl,
  encodeFrame,
  newClientMessageId,
  parseServerFrame,
  type ClientFrame,
  type InvalidFrame,
  type Member,
  type ServerFrame,
} from "./protocol";

export interface CloseInfo {
  /** WebSocket close code (1006 when the connection dropped without a close frame). */
  readonly code: number;
  readonly reason: string;
  /** HTTP status of a refused handshake, when the platform exposes it (Node's `ws` does, browsers do not). */
  readonly handshakeStatus?: number;
}

export interface SocketHandlers {
  onOpen(): void;
  onMessage(text: string): void;
  /** Called exactly once per socket, whether it opened or not. */
  onClose(info: CloseInfo): void;
}

export interface SocketHandle {
  send(text: string): void;
  close(code?: number, reason?: string): void;
}

export type SocketFactory = (url: string, handlers: SocketHandlers) => SocketHandle;

export type SessionStatus = "idle" | "connecting" | "open" | "reconnecting" | "closed";

export type FatalReason =
  /** The handshake was refused with 401/403: the token is missing, invalid or expired. */
  | "rejected"
  /** The very first connection could not be opened (endpoint unreachable, or refused by a browser). */
  | "unreachable"
  /** The connection dropped and every reconnection attempt failed. */
  | "gave-up"
  /** The token provider failed (e.g. the local token endpoint is down). */
  | "token";

export type SessionEvent =
  | { readonly type: "status"; readonly status: SessionStatus; readonly url?: string; readonly attempt?: number; readonly delayMs?: number; readonly close?: CloseInfo }
  | {
      readonly type: "frame";
      readonly frame: ServerFrame;
      /**
       * A presence event that changes nothing: `joined` for a user already listed or `left` for one
       * not listed (two devices of one user can cause both; docs/protocol.md "Presence").
       */
      readonly redundant?: boolean;
    }
  | { readonly type: "invalid"; readonly frame: InvalidFrame }
  | { readonly type: "local-error"; readonly message: string; readonly clientMessageId?: string }
  | { readonly type: "queued"; readonly frame: ClientFrame }
  | { readonly type: "rejoined"; readonly rooms: readonly string[]; readonly resent: number }
  | { readonly type: "fatal"; readonly reason: FatalReason; readonly message: string };

export interface ReconnectPolicy {
  /** First delay before reconnecting (default 500 ms). */
  readonly baseDelayMs?: number;
  /** Largest delay between attempts (default 30 s). */
  readonly maxDelayMs?: number;
  /** Attempts after a drop before giving up (default 20, about 8 minutes with the defaults). */
  readonly maxAttempts?: number;
  /** Random source in [0, 1); replaceable in tests. */
  readonly random?: () => number;
}

export interface SessionOptions {
  /** `ws://` or `wss://` URL of the API stage. */
  readonly endpoint: string;
  /** Called before every connection, so a local token can be minted afresh after a 2-hour cut. */
  readonly token: () => string | Promise<string>;
  /** Display name sent as `username` on connect. */
  readonly username?: string;
  /** The user's own id when known (the terminal client knows it; otherwise learnt from echoes). */
  readonly userId?: string;
  /** Room joined on connect (default `general`). */
  readonly room?: string;
  readonly socketFactory: SocketFactory;
  readonly onEvent: (event: SessionEvent) => void;
  /** Default 5 minutes: half of API Gateway's 10-minute idle timeout. */
  readonly pingIntervalMs?: number;
  readonly reconnect?: ReconnectPolicy;
  /** How long `settled()` and `close()` wait for replies at most (default 10 s). */
  readonly replyTimeoutMs?: number;
}

export const DEFAULT_PING_INTERVAL_MS = 5 * 60 * 1000;

/**
 * Delay before reconnection attempt `attempt` (1-based): capped exponential backoff with "equal
 * jitter" (half fixed, half random), so it never collapses to zero yet spreads clients apart.
 */
export function backoffDelay(attempt: number, policy: ReconnectPolicy = {}): number {
  const base = policy.baseDelayMs ?? 500;
  const cap = policy.maxDelayMs ?? 30_000;
  const random = policy.random ?? Math.random;
  const ceiling = Math.min(cap, base * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

interface Expectation {
  readonly key: string;
  readonly requestType: ClientFrame["type"];
  readonly resend?: ClientFrame;
}

/** Key of the reply a request waits for (matched again when the reply or its error arrives). */
function expectationKey(frame: ClientFrame): string {
  switch (frame.type) {
    case "chat":
    case "private":
      return `${frame.type}:${frame.clientMessageId ?? ""}`;
    case "join":
    case "leave":
      return `${frame.type}:${frame.roomId}`;
    case "history":
      return "roomId" in frame ? `history:#${frame.roomId}` : `history:@${frame.withUserId}`;
    case "rooms":
    case "ping":
      return frame.type;
  }
}

/**
 * The server's answer when it no longer knows this connection (`NOT_CONNECTED`: its item expired or
 * was cleaned up after a failed delivery): every later frame on it would fail the same way, so the
 * only cure is a new connection.
 */
export function isUnregisteredConnectionError(frame: ServerFrame): boolean {
  return frame.type === "error" && frame.code === "NOT_CONNECTED";
}

export class ChatSession {
  private readonly options: SessionOptions;
  private socket: SocketHandle | undefined;
  private statusValue: SessionStatus = "idle";
  private everOpened = false;
  private openedThisSocket = false;
  private attempt = 0;
  private userClosed = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  /** Joined rooms in join order (last = most recent), each with its members by userId. */
  private readonly joined = new Map<string, Map<string, Member>>();
  private current: string | undefined;
  /** Rooms being joined and whether the join should make the room current. */
  private readonly joining = new Map<string, boolean>();
  /** Frames written while not connected, sent on open. */
  private readonly outbox: ClientFrame[] = [];
  /** Replies awaited, oldest first. */
  private expectations: Expectation[] = [];
  private readonly idleWaiters: Array<() => void> = [];
  /** Recipient of each private message awaiting its `delivered`, for display. */
  private readonly privateTargets = new Map<string, string>();
  private selfId: string | undefined;
  /** Reconnections forced by "not registered" answers since the last good reply (for backoff and give-up). */
  private forcedStreak = 0;
  private forcing = false;

  constructor(options: SessionOptions) {
    this.options = options;
    this.selfId = options.userId;
    this.current = options.room ?? DEFAULT_ROOM;
  }

  get status(): SessionStatus {
    return this.statusValue;
  }

  /** The room plain text goes to. */
  get currentRoom(): string | undefined {
    return this.current;
  }

  get userId(): string | undefined {
    return this.selfId;
  }

  /** Joined rooms, most recently joined last. */
  get rooms(): readonly string[] {
    return [...this.joined.keys()];
  }

  members(roomId: string): readonly Member[] {
    const m = this.joined.get(roomId);
    return m ? [...m.values()].sort((a, b) => a.username.localeCompare(b.username) || a.userId.localeCompare(b.userId)) : [];
  }

  /** Recipient of a private message sent with this clientMessageId, until it is acknowledged. */
  privateTarget(clientMessageId: string): string | undefined {
    return this.privateTargets.get(clientMessageId);
  }

  /** Number of replies still awaited. */
  get pendingReplies(): number {
    return this.expectations.length;
  }

  /** Opens the first connection. Events report the outcome. */
  start(): void {
    if (this.statusValue !== "idle") return;
    void this.connect();
  }

  /** Makes `roomId` the room plain text goes to (it must be joined). */
  selectRoom(roomId: string): boolean {
    if (!this.joined.has(roomId)) return false;
    this.current = roomId;
    return true;
  }

  chat(message: string, roomId?: string): string | undefined {
    const room = roomId ?? this.current;
    if (!room) {
      this.emit({ type: "local-error", message: "you are in no room: /join <room> first" });
      return undefined;
    }
    if (!message.trim()) {
      this.emit({ type: "local-error", message: "empty message not sent" });
      return undefined;
    }
    const clientMessageId = newClientMessageId();
    return this.send({ type: "chat", roomId: room, message, clientMessageId }) ? clientMessageId : undefined;
  }

  private(toUserId: string, message: string): string | undefined {
    if (!message.trim()) {
      this.emit({ type: "local-error", message: "empty message not sent" });
      return undefined;
    }
    const clientMessageId = newClientMessageId();
    this.privateTargets.set(clientMessageId, toUserId);
    if (this.send({ type: "private", toUserId, message, clientMessageId })) return clientMessageId;
    this.privateTargets.delete(clientMessageId);
    return undefined;
  }

  join(roomId: string): boolean {
    this.joining.set(roomId, true);
    return this.send({ type: "join", roomId });
  }

  leave(roomId: string): boolean {
    if (!this.joined.has(roomId) && !this.joining.has(roomId)) {
      this.emit({ type: "local-error", message: `you are not in #${roomId}` });
      return false;
    }
    return this.send({ type: "leave", roomId });
  }

  listRooms(): boolean {
    return this.send({ type: "rooms" });
  }

  history(target: { roomId: string } | { withUserId: string }, options: { limit?: number; before?: string } = {}): boolean {
    const extra = { ...(options.limit !== undefined ? { limit: options.limit } : {}), ...(options.before ? { before: options.before } : {}) };
    return this.send("roomId" in target ? { type: "history", roomId: target.roomId, ...extra } : { type: "history", withUserId: target.withUserId, ...extra });
  }

  ping(): boolean {
    return this.send({ type: "ping" });
  }

  /** Resolves true once every awaited reply has arrived, false after `timeoutMs`. */
  settled(timeoutMs = this.options.replyTimeoutMs ?? 10_000): Promise<boolean> {
    if (this.expectations.length === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const i = this.idleWaiters.indexOf(done);
        if (i >= 0) this.idleWaiters.splice(i, 1);
        resolve(false);
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      this.idleWaiters.push(done);
    });
  }

  /** Closes for good (no reconnection). Resolves when the socket has closed or after a short wait. */
  close(): Promise<void> {
    this.userClosed = true;
    this.clearTimers();
    const socket = this.socket;
    if (!socket || this.statusValue === "closed") {
      this.setStatus("closed");
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.setStatus("closed");
        resolve();
      }, 2000);
      this.closeWaiter = () => {
        clearTimeout(timer);
        resolve();
      };
      socket.close(1000, "client quit");
    });
  }

  private closeWaiter: (() => void) | undefined;

  // -------------------------------------------------------------------------------------------

  private emit(event: SessionEvent): void {
    this.options.onEvent(event);
  }

  private setStatus(status: SessionStatus, extra: Omit<Extract<SessionEvent, { type: "status" }>, "type" | "status"> = {}): void {
    this.statusValue = status;
    this.emit({ type: "status", status, ...extra });
  }

  private send(frame: ClientFrame): boolean {
    const encoded = encodeFrame(frame);
    if (!encoded.ok) {
      this.emit({ type: "local-error", message: `not sent: ${encoded.reason}` });
      return false;
    }
    if (this.statusValue === "closed" || this.userClosed) {
      this.emit({ type: "local-error", message: "not sent: the session is closed" });
      return false;
    }
    const expectation: Expectation = {
      key: expectationKey(frame),
      requestType: frame.type,
      ...(frame.type === "chat" || frame.type === "private" ? { resend: frame } : {}),
    };
    this.expectations.push(expectation);
    if (this.statusValue !== "open" || !this.socket) {
      // Chat and private frames are resent from their expectation on open; others wait in the outbox.
      if (!expectation.resend) this.outbox.push(frame);
      this.emit({ type: "queued", frame });
      return true;
    }
    this.socket.send(encoded.text);
    return true;
  }

  private async connect(): Promise<void> {
    this.setStatus(this.everOpened ? "reconnecting" : "connecting", this.attempt ? { attempt: this.attempt } : {});
    let token: string;
    try {
      token = await this.options.token();
    } catch (err) {
      if (this.userClosed) return;
      // Before the first connection this is a configuration problem; later, most likely the same
      // network outage that dropped the connection, so it counts as one more failed attempt.
      if (!this.everOpened) this.fail("token", `could not obtain a token: ${(err as Error).message}`);
      else this.scheduleReconnect({ code: 1006, reason: `no token: ${(err as Error).message}` });
      return;
    }
    if (this.userClosed) return;
    let url: string;
    try {
      url = connectUrl(this.options.endpoint, { token, roomId: this.current ?? DEFAULT_ROOM, username: this.options.username });
    } catch (err) {
      this.fail("unreachable", (err as Error).message);
      return;
    }
    this.openedThisSocket = false;
    const socket = this.options.socketFactory(url, {
      onOpen: () => {
        if (this.socket === socket) this.onOpen(url);
      },
      onMessage: (text) => {
        if (this.socket === socket) this.onMessage(text);
      },
      onClose: (info) => {
        if (this.socket === socket) this.onClose(info);
      },
    });
    this.socket = socket;
  }

  private onOpen(url: string): void {
    const reconnected = this.everOpened;
    this.everOpened = true;
    this.openedThisSocket = true;
    // `attempt` is reset by the first frame the server sends, not here: a server that accepts and
    // at once drops connections must still meet a growing backoff and, in the end, the give-up.
    // The connection joined `this.current` on $connect, but nothing can be sent from inside $connect
    // (AWS-FACTS "Routing"), so the member list of that room comes from an explicit, idempotent join.
    const connectRoom = this.current ?? DEFAULT_ROOM;
    // Rooms joined before the drop, and rooms whose join was not answered yet.
    const rooms = reconnected ? [...new Set([...this.joined.keys(), ...this.joining.keys()])] : [];
    // A user who had left every room still joins one on $connect (the protocol's default room):
    // leave it again at once rather than put them back in a room they left.
    const unwanted = reconnected && rooms.length === 0 && this.current === undefined ? connectRoom : undefined;
    if (!unwanted && !rooms.includes(connectRoom)) rooms.push(connectRoom);
    this.setStatus("open", { url: redactToken(url) });
    const pending = this.expectations;
    const outbox = this.outbox.splice(0);
    // Replies to requests of the lost connection will never come; only chat/private are resent.
    this.expectations = [];
    const send = (frame: ClientFrame): void => {
      const encoded = encodeFrame(frame);
      if (!encoded.ok || !this.socket) return;
      this.expectations.push({ key: expectationKey(frame), requestType: frame.type, ...(frame.type === "chat" || frame.type === "private" ? { resend: frame } : {}) });
      this.socket.send(encoded.text);
    };
    for (const roomId of rooms) {
      if (!this.joining.has(roomId)) this.joining.set(roomId, roomId === connectRoom && !reconnected);
      send({ type: "join", roomId });
    }
    if (unwanted) send({ type: "leave", roomId: unwanted });
    let resent = 0;
    for (const e of pending) {
      if (e.resend) {
        send(e.resend);
        resent++;
      }
    }
    for (const frame of outbox) if (!(frame.type === "join" && rooms.includes(frame.roomId))) send(frame);
    if (reconnected) this.emit({ type: "rejoined", rooms, resent });
    this.notifyIfIdle();
    const interval = this.options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS;
    this.pingTimer = setInterval(() => this.ping(), interval);
  }

  private onMessage(text: string): void {
    this.attempt = 0;
    const frame = parseServerFrame(text);
    if (frame.type === "invalid") {
      this.emit({ type: "invalid", frame });
      return;
    }
    if (isUnregisteredConnectionError(frame)) {
      this.emit({ type: "frame", frame });
      this.forceReconnect();
      return;
    }
    if (frame.type !== "error" && frame.type !== "gateway") this.forcedStreak = 0;
    const redundant = this.isRedundantPresence(frame);
    this.apply(frame);
    this.emit(redundant ? { type: "frame", frame, redundant } : { type: "frame", frame });
  }

  /**
   * Replaces a connection the server has forgotten. The request that got the answer is not settled:
   * chat and private messages are resent on the new connection (same clientMessageId), joins too.
   */
  private forceReconnect(): void {
    if (this.forcing || !this.socket) return;
    this.forcing = true;
    this.forcedStreak += 1;
    this.socket.close(4000, "connection not registered");
  }

  private isRedundantPresence(frame: ServerFrame): boolean {
    if (frame.type !== "presence") return false;
    const members = this.joined.get(frame.roomId);
    // Without a member list (the joined reply is still on its way) nothing can be judged.
    if (!members) return false;
    return frame.event === "joined" ? members.has(frame.userId) : !members.has(frame.userId);
  }

  /** Updates the session state from one server frame and settles the request it answers. */
  private apply(frame: ServerFrame): void {
    switch (frame.type) {
      case "chat":
        if (frame.clientMessageId && this.settle(`chat:${frame.clientMessageId}`)) this.selfId ??= frame.userId;
        break;
      case "private":
        break;
      case "delivered":
        if (frame.clientMessageId) {
          this.settle(`private:${frame.clientMessageId}`);
          // Kept until displayed by the listener, which runs right after this.
          const id = frame.clientMessageId;
          setTimeout(() => this.privateTargets.delete(id), 0);
        }
        break;
      case "joined": {
        const members = new Map(frame.members.map((m) => [m.userId, m] as const));
        // Re-insert so that Map order stays "joined most recently last".
        this.joined.delete(frame.roomId);
        this.joined.set(frame.roomId, members);
        if (this.joining.get(frame.roomId)) this.current = frame.roomId;
        this.joining.delete(frame.roomId);
        this.settle(`join:${frame.roomId}`);
        break;
      }
      case "left":
        this.joined.delete(frame.roomId);
        this.joining.delete(frame.roomId);
        if (this.current === frame.roomId) this.current = [...this.joined.keys()].pop();
        this.settle(`leave:${frame.roomId}`);
        break;
      case "presence": {
        const members = this.joined.get(frame.roomId);
        if (!members) break;
        if (frame.event === "joined") members.set(frame.userId, { userId: frame.userId, username: frame.username });
        else members.delete(frame.userId);
        break;
      }
      case "rooms":
        this.settle("rooms");
        break;
      case "history":
        this.settle(frame.roomId !== undefined ? `history:#${frame.roomId}` : `history:@${frame.withUserId ?? ""}`, "history");
        break;
      case "pong":
        this.settle("ping");
        break;
      case "error":
        this.settleError(frame);
        break;
      case "gateway":
        // API Gateway's "Internal server error" names no request: the oldest awaited one failed.
        if (this.expectations.length > 0) this.settleAt(0);
        break;
    }
  }

  private settleError(frame: Extract<ServerFrame, { type: "error" }>): void {
    if (frame.clientMessageId) {
      const type = frame.requestType === "private" ? "private" : "chat";
      if (this.settle(`${type}:${frame.clientMessageId}`)) {
        this.privateTargets.delete(frame.clientMessageId);
        return;
      }
    }
    if (frame.requestType) {
      const i = this.expectations.findIndex((e) => e.requestType === frame.requestType);
      if (i >= 0) {
        const e = this.expectations[i];
        if (e.requestType === "join") this.joining.delete(e.key.slice("join:".length));
        this.settleAt(i);
        return;
      }
    }
    // BAD_JSON / UNKNOWN_TYPE name no request this client sent on purpose: nothing to settle.
  }

  /** Settles the oldest expectation with this key (or, failing that, of `fallbackType`). */
  private settle(key: string, fallbackType?: ClientFrame["type"]): boolean {
    let i = this.expectations.findIndex((e) => e.key === key);
    if (i < 0 && fallbackType) i = this.expectations.findIndex((e) => e.requestType === fallbackType);
    if (i < 0) return false;
    this.settleAt(i);
    return true;
  }

  private settleAt(index: number): void {
    this.expectations.splice(index, 1);
    this.notifyIfIdle();
  }

  private notifyIfIdle(): void {
    if (this.expectations.length > 0) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private onClose(info: CloseInfo): void {
    this.socket = undefined;
    this.clearTimers();
    if (this.userClosed) {
      this.setStatus("closed", { close: info });
      this.closeWaiter?.();
      this.closeWaiter = undefined;
      return;
    }
    if (!this.openedThisSocket && (info.handshakeStatus === 401 || info.handshakeStatus === 403)) {
      this.fail("rejected", `the server refused the connection (HTTP ${info.handshakeStatus}): the token is missing, invalid or expired`, info);
      return;
    }
    if (!this.everOpened) {
      const why = info.handshakeStatus
        ? `HTTP ${info.handshakeStatus}`
        : // Browsers report a refused handshake as a bare 1006, like an unreachable host.
          `${info.reason || `close code ${info.code}`}: the endpoint is unreachable or refused the token`;
      this.fail("unreachable", `could not connect to ${this.options.endpoint} (${why})`, info);
      return;
    }
    // Rooms stay in `joined`: they are joined again once the next connection opens.
    this.expectations = this.expectations.filter((e) => e.resend);
    this.notifyIfIdle();
    if (this.forcing) {
      // A forced replacement backs off by how many came in a row, so a server that keeps forgetting
      // connections is not hammered, and the session gives up like after any other drop.
      this.forcing = false;
      this.attempt = Math.max(this.attempt, this.forcedStreak - 1);
    }
    this.scheduleReconnect(info);
  }

  private scheduleReconnect(info: CloseInfo): void {
    this.attempt += 1;
    const maxAttempts = this.options.reconnect?.maxAttempts ?? 20;
    if (this.attempt > maxAttempts) {
      this.fail("gave-up", `connection lost; gave up after ${maxAttempts} reconnection attempts`, info);
      return;
    }
    const delayMs = backoffDelay(this.attempt, this.options.reconnect);
    this.setStatus("reconnecting", { attempt: this.attempt, delayMs, close: info });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.userClosed) void this.connect();
    }, delayMs);
  }

  private fail(reason: FatalReason, message: string, close?: CloseInfo): void {
    this.clearTimers();
    this.userClosed = true;
    const socket = this.socket;
    this.socket = undefined;
    socket?.close(1000, "client gave up");
    this.expectations = [];
    this.notifyIfIdle();
    this.setStatus("closed", close ? { close } : {});
    this.emit({ type: "fatal", reason, message });
  }

  private clearTimers(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.pingTimer = undefined;
    this.reconnectTimer = undefined;
  }
}

/** The connect URL without its token, for display and logs (tokens stay out of logs). */
export function redactToken(url: string): string {
  try {
    const u = new URL(url);
    if (u.searchParams.has("token")) u.searchParams.set("token", "…");
    return u.toString();
  } catch {
    return url;
  }
}
