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
 *   "Idempotent retries"), and so are unanswered edits, deletes and kicks, which it makes idempotent;
 * - the user's order for commands about one room: API Gateway hands each frame of a connection to
 *   its own Lambda invocation, so two frames sent back to back may be handled in either order (a
 *   chat could overtake the join it needs, a leave the chat before it, a history the message just
 *   sent). Frames about one room (join, chat, leave, room history, edit, delete, kick) are therefore sent one at a time:
 *   each is held until the previous one is answered (reply or error). Frames about no room (ping,
 *   rooms, private messages) are never held. A hold lasts at most `holdTimeoutMs`, then the held
 *   frames fail with a local error instead of waiting for ever.
 *
 * - edits, deletes and kicks resolve with their answer or a typed failure (RequestOutcome), and the
 *   messages seen, with their edits and tombstones, are kept in `messages` (messages.ts).
 *
 * It knows nothing of Node or the DOM: the socket is given as a factory (the `ws` package in the
 * terminal, the browser's WebSocket in the page) and the user interface listens to events.
 */
import { MessageLog, roomKey, userKey, type ConversationKey } from "./messages";
import {
  DEFAULT_ROOM,
  KICK_MAX_MINUTES,
  connectUrl,
  encodeFrame,
  newClientMessageId,
  parseServerFrame,
  type ClientFrame,
  type DeletedFrame,
  type EditedFrame,
  type InvalidFrame,
  type Member,
  type ReactionFrame,
  type ReadFrame,
  type RoomSummary,
  type ServerFrame,
  type UserKickedFrame,
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
  /** The handshake was refused with 401/403: the token is missing, invalid or expired, or (403) does not grant the room. */
  | "rejected"
  /** The very first connection could not be opened (endpoint unreachable, or refused by a browser). */
  | "unreachable"
  /** The connection dropped and every reconnection attempt failed. */
  | "gave-up"
  /** The token provider failed (e.g. the local token endpoint is down). */
  | "token";

export type SessionEvent =
  | {
      readonly type: "status";
      readonly status: SessionStatus;
      readonly url?: string;
      readonly attempt?: number;
      readonly delayMs?: number;
      readonly close?: CloseInfo;
    }
  | {
      readonly type: "frame";
      readonly frame: ServerFrame;
      /**
       * A frame that changes nothing: `joined` for a user already listed or `left` for one not
       * listed (two devices of one user can cause both; docs/protocol.md "Presence"), or a `chat`
       * whose messageId this session has already seen (a large room's retried delivery).
       */
      readonly redundant?: boolean;
      /** The frame answers a request of this device (its own `read`'s reply: the position in force). */
      readonly reply?: boolean;
    }
  | { readonly type: "invalid"; readonly frame: InvalidFrame }
  | { readonly type: "local-error"; readonly message: string; readonly clientMessageId?: string }
  | { readonly type: "queued"; readonly frame: ClientFrame }
  | { readonly type: "rejoined"; readonly rooms: readonly string[]; readonly resent: number }
  /**
   * Who is typing in a conversation changed (issue 18): `users` are typing now; `started` is the
   * user who just began (absent when someone stopped: a message of theirs arrived, or nothing came
   * from them for `typingShowMs`).
   */
  | { readonly type: "typing"; readonly conversation: ConversationKey; readonly users: readonly Member[]; readonly started?: Member }
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
  /**
   * How long frames about a room wait for the answer to the frame about that room sent before them
   * (e.g. a chat for its `join`, a `leave` for that chat) before they fail with a local error (default 10 s; API Gateway answers every routed frame within
   * its 29-second integration timeout, AWS-FACTS "Limits", so a longer wait means a lost answer).
   */
  readonly holdTimeoutMs?: number;
  /**
   * Least time between two `typing` frames about one conversation (default 3.5 s): the server
   * absorbs a frame within `typingIntervalSeconds` (default 3 s) of the last one it passed, so a
   * client sending every 3 s exactly would, with network jitter, see about half absorbed.
   */
  readonly typingIntervalMs?: number;
  /**
   * How long someone is shown typing after their last `typing` frame (default 7 s: at least twice
   * the sending interval, so one absorbed or late frame does not make the indicator blink).
   */
  readonly typingShowMs?: number;
  /**
   * Least time between two `read` frames of the session, whatever their rooms (default 5 s): one
   * budget for all rooms, taken in turn with each room's newest position, so reads cost at most 12
   * of the 60 frames a minute a connection may send, however many rooms are busy.
   */
  readonly readIntervalMs?: number;
  /**
   * After a RATE_LIMITED answer, how long the session sends nothing by itself (typing, read) so
   * that what the user sends gets the budget (default 60 s: the server counts in one-minute windows).
   */
  readonly rateLimitPauseMs?: number;
  /** Clock in milliseconds (replaceable in tests). */
  readonly now?: () => number;
}

export const DEFAULT_TYPING_INTERVAL_MS = 3500;
export const DEFAULT_TYPING_SHOW_MS = 7000;
export const DEFAULT_READ_INTERVAL_MS = 5000;
export const DEFAULT_RATE_LIMIT_PAUSE_MS = 60_000;

/** Refusals of `read` that sending it again cannot cure (others, e.g. RATE_LIMITED, INTERNAL, TIMEOUT, are retried). */
const READ_FINAL: ReadonlySet<string> = new Set(["NOT_A_MEMBER", "FORBIDDEN", "NOT_FOUND", "BAD_REQUEST", "NOT_SENT", "CLOSED"]);

/**
 * The user's unread messages in a room (issue 18): `unread` as the server counted it (at most 99,
 * `more` when there are more) in `rooms` or `joined`, then kept up to date by this session: plus
 * one per message from someone else that arrives after the read position, and recounted from the
 * messages this session has seen when the position moves (markRead, or a `read` frame from another
 * device of this user). `readMessageId`: the read position (absent: none yet).
 */
export interface UnreadState {
  readonly unread: number;
  readonly more: boolean;
  readonly readMessageId?: string;
}

/** Shows an unread count as the clients do: "99+" (or "N+") when the server said there are more. */
export function unreadLabel(state: Pick<UnreadState, "unread" | "more">): string {
  return `${state.unread}${state.more ? "+" : ""}`;
}

/**
 * Message ids the server issues are UUIDv7: their text sorts in the order the messages were stored,
 * which is the order of read positions (docs/protocol.md "read").
 */
const isAfter = (messageId: string, position: string | undefined): boolean => position === undefined || messageId > position;

export const DEFAULT_HOLD_TIMEOUT_MS = 10_000;

/**
 * How long a frame sent without awaiting its answer (typing) may still be answered by API Gateway's
 * "Internal server error": its 29-second integration timeout (AWS-FACTS "Limits"), and a margin.
 */
const UNTRACKED_ANSWER_MS = 30_000;

export const DEFAULT_PING_INTERVAL_MS = 5 * 60 * 1000;

/**
 * Why a request failed on the client's side, besides the server's codes (ERROR_CODES):
 * - `NOT_SENT`: refused before sending (empty text, a frame over 32 KB, an argument out of range);
 * - `TIMEOUT`: no answer within the bounded wait (`holdTimeoutMs` while held behind an earlier
 *   frame about the room, then `replyTimeoutMs` once on the wire);
 * - `CLOSED`: the session closed (the user quit, or it gave up) before the answer came;
 * - `GATEWAY`: API Gateway's own error answer (an integration failure; the request may be retried).
 */
export type LocalFailureCode = "NOT_SENT" | "TIMEOUT" | "CLOSED" | "GATEWAY";

/**
 * The answer to a request made with a session method that returns one (editMessage, deleteMessage,
 * kick): the server's reply frame, or a typed failure. `code` is one of the server's ERROR_CODES
 * (NOT_FOUND, FORBIDDEN, NOT_A_MEMBER, RATE_LIMITED, ...; a code added later on the server passes
 * as is) or a LocalFailureCode; `roomId` is the room a FORBIDDEN names. The same answer also reaches
 * the listener as a `frame` (or `local-error`) event, as for every other command.
 */
export type RequestOutcome<F> =
  | { readonly ok: true; readonly frame: F }
  | { readonly ok: false; readonly code: string; readonly message: string; readonly roomId?: string };

/** Where an edit or delete applies: a room, or the private conversation with a user. */
export type MessageTarget = { readonly roomId: string } | { readonly withUserId: string };

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
  /** The frame sent (the same object from the outbox or a hold to the wire, and again after a drop). */
  readonly frame: ClientFrame;
  readonly requestType: ClientFrame["type"];
  readonly resend?: ClientFrame;
  /** The room the frame is about. */
  readonly roomId?: string;
  /** What the frame is held by (holdKeyOf): its answer ends the hold. */
  readonly holdKey?: string;
  /**
   * True once the frame is on the wire. Frames waiting in the outbox or held behind an earlier frame
   * about their room cannot have been answered yet, so replies and errors are matched only against sent ones.
   */
  sent: boolean;
}

/**
 * Frames sent again, with the same content, when the connection dropped before their answer: chat
 * and private messages (same clientMessageId, stored once), and edits, deletes and kicks, which the
 * server makes idempotent (docs/protocol.md "Idempotency": a repeat changes nothing and is answered
 * with the same frame).
 */
const RESENT: ReadonlySet<ClientFrame["type"]> = new Set(["chat", "private", "edit", "delete", "kick", "react", "read"]);

function expectationFor(frame: ClientFrame): Expectation {
  return {
    key: expectationKey(frame),
    frame,
    requestType: frame.type,
    sent: false,
    ...(RESENT.has(frame.type) ? { resend: frame } : {}),
    ...(frameRoom(frame) !== undefined ? { roomId: frameRoom(frame) } : {}),
    ...(holdKeyOf(frame) !== undefined ? { holdKey: holdKeyOf(frame) } : {}),
  };
}

/**
 * What a frame is sent in order with: its room (`frameRoom`), or, for a reaction in a private
 * conversation, `@<user>` (room ids never contain `@`), so that adding then taking back a reaction
 * there cannot run in the reverse order on the server.
 */
export function holdKeyOf(frame: ClientFrame): string | undefined {
  const roomId = frameRoom(frame);
  if (roomId !== undefined) return roomId;
  return frame.type === "react" && "withUserId" in frame ? `@${frame.withUserId}` : undefined;
}

/** The room a frame is about: frames about one room are sent one at a time, in order. */
export function frameRoom(frame: ClientFrame): string | undefined {
  switch (frame.type) {
    case "chat":
    case "join":
    case "leave":
    case "kick":
    case "read":
      return frame.roomId;
    case "history":
    case "edit":
    case "delete":
    case "typing":
    case "react":
      return "roomId" in frame ? frame.roomId : undefined;
    case "private":
    case "rooms":
    case "ping":
      return undefined;
  }
}

/** A frame (or a local action such as /who) waiting for the answer to an earlier frame about its room. */
type Held =
  // `roomId`: the hold key (holdKeyOf), a room's id or `@<user>`.
  | { readonly kind: "frame"; readonly roomId: string; readonly frame: ClientFrame; readonly expectation: Expectation }
  | { readonly kind: "action"; readonly roomId: string; readonly run: () => void };

/** A join the user asked for: the room is current from then on, and `previous` again if it fails. */
interface Joining {
  readonly userAsked: boolean;
  readonly previous: string | undefined;
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
    case "kick":
      return `kick:${frame.roomId}:${frame.userId}`;
    case "edit":
    case "delete":
      return `${frame.type}:${frame.messageId}`;
    // The reply names the position in force, which is not the one sent when it was further already.
    case "read":
      return `read:${frame.roomId}`;
    case "react":
      return `react:${frame.messageId}:${frame.emoji}`;
    case "typing":
      return "roomId" in frame ? `typing:#${frame.roomId}` : `typing:@${frame.withUserId}`;
    case "rooms":
    case "ping":
      return frame.type;
  }
}

/**
 * The server's answer when it no longer knows this connection (`NOT_CONNECTED`: its item expired or
 * was cleaned up after a failed delivery) or when the connection's token has expired
 * (`TOKEN_EXPIRED`): every later frame on it would fail the same way, so the only cure is a new
 * connection, with a token asked afresh from the token provider.
 */
export function isUnregisteredConnectionError(frame: ServerFrame): boolean {
  return frame.type === "error" && (frame.code === "NOT_CONNECTED" || frame.code === "TOKEN_EXPIRED");
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
  /** The room plain text goes to: set when the user joins a room, not when the server answers. */
  private current: string | undefined;
  /** Rooms being joined (joined again after a drop if still unanswered). */
  private readonly joining = new Map<string, Joining>();
  /** Per room, the frame about it on the wire and not answered yet, with the hold's timeout. */
  private readonly inFlight = new Map<
    string,
    { readonly frame: ClientFrame; readonly expectation: Expectation; readonly timer: ReturnType<typeof setTimeout> }
  >();
  /** Frames and actions held behind an unanswered frame about their room, in the user's order. */
  private held: Held[] = [];
  /** The room named in the connect URL of the current socket (joined by $connect). */
  private socketRoom: string = DEFAULT_ROOM;
  /** Frames written (and local actions asked for) while not connected, in order, sent on open. */
  private readonly outbox: Array<ClientFrame | Extract<Held, { kind: "action" }>> = [];
  /** Replies awaited, oldest first. */
  private expectations: Expectation[] = [];
  private readonly idleWaiters: Array<() => void> = [];
  /** Recipient of each private message awaiting its `delivered`, for display. */
  private readonly privateTargets = new Map<string, string>();
  /** Who awaits the answer to a request made with a method that returns one, by the frame sent. */
  private readonly waiters = new Map<
    ClientFrame,
    { readonly resolve: (outcome: RequestOutcome<ServerFrame>) => void; timer?: ReturnType<typeof setTimeout> }
  >();
  /**
   * The messages seen on this session (live, in history, or sent by this user) with their edits
   * and tombstones applied (messages.ts). Updated before each frame reaches the listener.
   */
  readonly messages = new MessageLog();
  private selfId: string | undefined;
  /** Reconnections forced by "not registered" answers since the last good reply (for backoff and give-up). */
  private forcedStreak = 0;
  private forcing = false;
  /** Rooms of the pages received so far while a `rooms` listing is followed page by page. */
  private roomsPages: RoomSummary[] = [];
  /** When a `typing` frame was last sent, by conversation. */
  private readonly typingSent = new Map<ConversationKey, number>();
  /** Who is typing, by conversation and user, with the timer that stops showing it. */
  private readonly typingNow = new Map<ConversationKey, Map<string, { member: Member; timer: ReturnType<typeof setTimeout> }>>();
  /** Unread counts and read positions by room (UnreadState). */
  private readonly unreadState = new Map<string, UnreadState>();
  /** Read positions to send: the newest per room, rooms in the order they started waiting. */
  private readonly readWanted = new Map<string, string>();
  /** The read positions the server confirmed (joined, history, read frames about this user), by room. */
  private readonly readConfirmed = new Map<string, string>();
  /** One read budget for the session: a read on the wire, when the last went, the wait for the next. */
  private readBusy = false;
  private readLast = -Infinity;
  private readTimer: ReturnType<typeof setTimeout> | undefined;
  /** Until when the session sends no frame by itself (typing, read) after a RATE_LIMITED answer. */
  private rateLimitedUntil = -Infinity;
  /** When each frame sent without an expectation (typing, reads on close) went, oldest first (sendUntracked). */
  private untrackedSent: number[] = [];
  /** Other members' read positions, in rooms whose read receipts are shared (readReceiptRooms). */
  private readonly readers = new Map<string, Map<string, { username: string; messageId: string }>>();

  constructor(options: SessionOptions) {
    this.options = options;
    this.selfId = options.userId;
    this.current = options.room ?? DEFAULT_ROOM;
    // Joined by $connect once the first connection opens (then answered by an explicit join).
    this.joining.set(this.current, { userAsked: false, previous: undefined });
  }

  get status(): SessionStatus {
    return this.statusValue;
  }

  /**
   * The room plain text goes to. `/join <room>` makes the room current at once (frames to it are held
   * until the server confirms the join); it falls back to the previous room if the join fails.
   */
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

  /** Rooms whose join was sent (or queued) and not answered yet. */
  get pendingJoins(): readonly string[] {
    return [...this.joining.keys()].filter((r) => !this.joined.has(r));
  }

  /** Number of frames and actions held behind an unanswered frame about their room. */
  get heldCount(): number {
    return this.held.length;
  }

  members(roomId: string): readonly Member[] {
    const m = this.joined.get(roomId);
    return m ? [...m.values()].sort((a, b) => a.username.localeCompare(b.username) || a.userId.localeCompare(b.userId)) : [];
  }

  /** The user's unread messages in a room, when the server counted them (UnreadState). */
  unread(roomId: string): UnreadState | undefined {
    return this.unreadState.get(roomId);
  }

  /** Who is typing in a conversation now (`#room` or `@user`), by name. */
  typingIn(conversation: ConversationKey): readonly Member[] {
    return [...(this.typingNow.get(conversation)?.values() ?? [])]
      .map((t) => t.member)
      .sort((a, b) => a.username.localeCompare(b.username));
  }

  /** Other members' read positions in a room that shares them: messageId by user. */
  readersOf(roomId: string): ReadonlyArray<{ userId: string; username: string; messageId: string }> {
    return [...(this.readers.get(roomId)?.entries() ?? [])].map(([userId, r]) => ({ userId, ...r }));
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

  /**
   * Changes the text of one of this user's messages. Resolves with the `edited` frame that confirms
   * it, or a typed failure: NOT_FOUND (no such message there, or deleted), FORBIDDEN (someone
   * else's), NOT_A_MEMBER, TOO_LARGE, RATE_LIMITED..., or a LocalFailureCode. Room edits keep their
   * place among the frames about the room; after a drop the edit is sent again (idempotent).
   */
  editMessage(target: MessageTarget, messageId: string, message: string): Promise<RequestOutcome<EditedFrame>> {
    if (!message.trim()) return this.refuse("empty message not sent");
    return this.request<EditedFrame>(
      "roomId" in target
        ? { type: "edit", roomId: target.roomId, messageId, message }
        : { type: "edit", withUserId: target.withUserId, messageId, message },
    );
  }

  /**
   * Deletes a message for everyone: this user's own, or (in a room the token moderates) anyone's.
   * Resolves with the `deleted` frame (also when it was deleted already: a repeat is not an error),
   * or a typed failure: NOT_FOUND, FORBIDDEN, NOT_A_MEMBER, RATE_LIMITED..., or a LocalFailureCode.
   */
  deleteMessage(target: MessageTarget, messageId: string): Promise<RequestOutcome<DeletedFrame>> {
    return this.request<DeletedFrame>(
      "roomId" in target
        ? { type: "delete", roomId: target.roomId, messageId }
        : { type: "delete", withUserId: target.withUserId, messageId },
    );
  }

  /**
   * Keeps `userId` out of a room this user moderates for `minutes` (1 to 10080; the server's default,
   * 10, when absent). Resolves with the `userKicked` reply (its `until` is the restriction in force)
   * or a typed failure: FORBIDDEN (not a moderator of the room), BAD_REQUEST, RATE_LIMITED..., or a
   * LocalFailureCode.
   */
  kick(roomId: string, userId: string, minutes?: number): Promise<RequestOutcome<UserKickedFrame>> {
    if (minutes !== undefined && !(Number.isInteger(minutes) && minutes >= 1 && minutes <= KICK_MAX_MINUTES)) {
      return this.refuse(`minutes must be a whole number from 1 to ${KICK_MAX_MINUTES}`);
    }
    if (userId === this.selfId) return this.refuse("you cannot kick yourself");
    return this.request<UserKickedFrame>({ type: "kick", roomId, userId, ...(minutes !== undefined ? { minutes } : {}) });
  }

  /**
   * Tells the others that this user is typing in a room or to a user (issue 18). Fire-and-forget:
   * no answer is awaited, nothing waits for it and it waits for nothing (not held behind frames
   * about the room), it is not queued while disconnected nor sent again, and it goes at most once
   * per `typingIntervalMs` per conversation (the server absorbs more anyway). Returns whether sent.
   */
  typing(target: MessageTarget): boolean {
    const key = "roomId" in target ? roomKey(target.roomId) : userKey(target.withUserId);
    if (this.statusValue !== "open" || !this.socket) return false;
    if ("roomId" in target && !this.joined.has(target.roomId)) return false;
    if ("withUserId" in target && target.withUserId === this.selfId) return false;
    if (this.rateLimited) return false;
    const now = this.now();
    const last = this.typingSent.get(key);
    if (last !== undefined && now - last < (this.options.typingIntervalMs ?? DEFAULT_TYPING_INTERVAL_MS)) return false;
    const frame: ClientFrame =
      "roomId" in target ? { type: "typing", roomId: target.roomId } : { type: "typing", withUserId: target.withUserId };
    const encoded = encodeFrame(frame);
    if (!encoded.ok) return false;
    this.typingSent.set(key, now);
    this.sendUntracked(encoded.text);
    return true;
  }

  /**
   * Adds (or with `remove`, takes back) this user's reaction `emoji` to a message. Resolves with
   * this user's own copy of the `reaction` frame (its `count` is the emoji's count after it; a
   * repeat is answered the same way), or a typed failure: NOT_FOUND (no such message, or deleted),
   * BAD_REQUEST (not one emoji; a 21st different emoji), NOT_A_MEMBER, FORBIDDEN, RATE_LIMITED...,
   * or a LocalFailureCode. Kept in order with the frames about the room, and sent again after a drop.
   */
  react(target: MessageTarget, messageId: string, emoji: string, remove = false): Promise<RequestOutcome<ReactionFrame>> {
    const fields = { messageId, emoji, ...(remove ? { remove: true } : {}) };
    return this.request<ReactionFrame>(
      "roomId" in target
        ? { type: "react", roomId: target.roomId, ...fields }
        : { type: "react", withUserId: target.withUserId, ...fields },
    );
  }

  /**
   * This user has seen the room up to `messageId` (the newest message shown): the read position
   * moves forward (never back) at once in `unread()`, and a `read` frame goes to the server. Reads
   * share one budget for the session: at most one per `readIntervalMs`, one at a time, the waiting
   * rooms in turn, each with the newest position asked for meanwhile; none for `rateLimitPauseMs`
   * after a RATE_LIMITED answer. A read refused for a reason that may pass (RATE_LIMITED, INTERNAL,
   * no answer) is sent again later while the server's confirmed position is behind; the waiting
   * ones are sent when the session closes. Only for joined rooms (the server answers NOT_A_MEMBER
   * otherwise). Returns whether the position moved.
   */
  markRead(roomId: string, messageId: string): boolean {
    const state = this.unreadState.get(roomId);
    if (!isAfter(messageId, state?.readMessageId)) return false;
    this.moveReadPosition(roomId, messageId);
    if (!this.joined.has(roomId)) return true;
    this.readWanted.set(roomId, messageId);
    this.flushReads();
    return true;
  }

  /** Rooms whose read positions may be sent: joined, and not being left (the answer would be NOT_A_MEMBER). */
  private readable(roomId: string): boolean {
    return this.joined.has(roomId) && !this.expectations.some((e) => e.requestType === "leave" && e.roomId === roomId);
  }

  /** Sends the next waiting room's position, once the previous `read` is answered and the budget allows. */
  private flushReads(): void {
    if (this.readBusy || this.readTimer || this.userClosed || this.statusValue !== "open" || !this.socket) return;
    for (const roomId of [...this.readWanted.keys()]) if (!this.readable(roomId)) this.readWanted.delete(roomId);
    const next = this.readWanted.entries().next();
    if (next.done) return;
    const wait = Math.max(this.readLast + (this.options.readIntervalMs ?? DEFAULT_READ_INTERVAL_MS), this.rateLimitedUntil) - this.now();
    if (wait > 0) {
      this.readTimer = setTimeout(() => {
        this.readTimer = undefined;
        this.flushReads();
      }, wait);
      return;
    }
    const [roomId, messageId] = next.value;
    this.readWanted.delete(roomId);
    this.readBusy = true;
    this.readLast = this.now();
    void this.request<ReadFrame>({ type: "read", roomId, messageId }).then((outcome) => {
      this.readBusy = false;
      if (!outcome.ok && !READ_FINAL.has(outcome.code)) this.retryRead(roomId);
      if (!this.userClosed) this.flushReads();
    });
  }

  /** A read failed for a reason that may pass: the local position waits again while the server's is behind it. */
  private retryRead(roomId: string): void {
    const local = this.unreadState.get(roomId)?.readMessageId;
    if (local === undefined || this.readWanted.has(roomId) || !isAfter(local, this.readConfirmed.get(roomId))) return;
    this.readWanted.set(roomId, local);
  }

  /** The server confirmed a read position (never moves back). */
  private confirmRead(roomId: string, messageId: string | undefined): void {
    if (messageId !== undefined && isAfter(messageId, this.readConfirmed.get(roomId))) this.readConfirmed.set(roomId, messageId);
  }

  /** True after a RATE_LIMITED answer, for `rateLimitPauseMs`: the session sends nothing by itself. */
  private get rateLimited(): boolean {
    return this.now() < this.rateLimitedUntil;
  }

  /** The read position moved forward: unread becomes what this session has seen after it. */
  private moveReadPosition(roomId: string, messageId: string): void {
    const unread = this.messages.countAfter(roomKey(roomId), messageId, this.selfId);
    this.unreadState.set(roomId, { unread, more: false, readMessageId: messageId });
  }

  /**
   * Sends a frame whose answer nobody awaits (typing; the reads sent on close). Its failure can
   * still come back as API Gateway's `{"message":"Internal server error"}`, which names no request:
   * the frame is remembered for the integration timeout so that such an answer is put down to it,
   * silently, rather than pinned on a request that may well have succeeded.
   */
  private sendUntracked(text: string): void {
    this.socket?.send(text);
    this.untrackedSent.push(this.now());
  }

  /** An untracked frame may still be answered by a gateway error: takes the oldest such one. */
  private takeUntracked(): boolean {
    const since = this.now() - UNTRACKED_ANSWER_MS;
    while (this.untrackedSent.length > 0 && this.untrackedSent[0] < since) this.untrackedSent.shift();
    return this.untrackedSent.shift() !== undefined;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  join(roomId: string): boolean {
    const previous = this.current;
    const existing = this.joining.get(roomId);
    if (!this.send({ type: "join", roomId })) return false;
    // The room is current from now on, so plain text typed next goes to it (held until joined);
    // docs/clients.md: "/join <room> ... it becomes the current room".
    this.joining.set(roomId, { userAsked: true, previous: existing?.userAsked ? existing.previous : previous });
    this.current = roomId;
    return true;
  }

  leave(roomId: string): boolean {
    if (!this.joined.has(roomId) && !this.joining.has(roomId)) {
      this.emit({ type: "local-error", message: `you are not in #${roomId}` });
      return false;
    }
    if (!this.send({ type: "leave", roomId })) return false;
    // Plain text typed next must not go to the room being left.
    if (this.current === roomId)
      this.current = this.knownRooms()
        .filter((r) => r !== roomId)
        .pop();
    return true;
  }

  /**
   * Runs `action` once no frame about `roomId` is unanswered or waiting, in order with the frames
   * about that room sent before it (at once if there are none). For commands answered
   * locally, such as `/who <room>` right after `/join <room>`. After a hold timeout, a drop or a
   * fatal error the action runs anyway, with whatever the session knows then.
   */
  afterRoomSettles(roomId: string, action: () => void): void {
    const item = { kind: "action", roomId, run: action } as const;
    if (this.statusValue === "closed" || this.userClosed) action();
    else if (this.statusValue !== "open" || !this.socket) this.outbox.push(item);
    else if (this.isBusy(roomId)) this.held.push(item);
    else action();
  }

  listRooms(): boolean {
    return this.send({ type: "rooms" });
  }

  /**
   * Asks for a page of a conversation's history: the newest (no option), older than a page
   * (`before`: its `next`), newer than a page (`after`: its `newer`, oldest first), or (rooms) the
   * messages after the user's read position (`fromRead`, oldest first; from the oldest when none).
   * At most one of before, after and fromRead.
   */
  history(
    target: { roomId: string } | { withUserId: string },
    options: { limit?: number; before?: string; after?: string; fromRead?: boolean } = {},
  ): boolean {
    const extra = {
      ...(options.limit !== undefined ? { limit: options.limit } : {}),
      ...(options.before ? { before: options.before } : options.after ? { after: options.after } : {}),
      ...(options.fromRead && "roomId" in target && !options.before && !options.after ? { fromRead: true } : {}),
    };
    return this.send(
      "roomId" in target
        ? { type: "history", roomId: target.roomId, ...extra }
        : { type: "history", withUserId: target.withUserId, ...extra },
    );
  }

  ping(): boolean {
    return this.send({ type: "ping" });
  }

  /** Sends a frame whose answer the caller awaits (see RequestOutcome). */
  private request<F extends ServerFrame>(frame: ClientFrame): Promise<RequestOutcome<F>> {
    const encoded = encodeFrame(frame);
    if (!encoded.ok) return this.refuse(`not sent: ${encoded.reason}`);
    if (this.statusValue === "closed" || this.userClosed) return this.refuse("not sent: the session is closed", "CLOSED");
    return new Promise((resolve) => {
      this.waiters.set(frame, { resolve: resolve as (outcome: RequestOutcome<ServerFrame>) => void });
      this.send(frame);
    });
  }

  /** A request refused before sending: shown like the other commands' local errors, and answered. */
  private refuse<F>(message: string, code: LocalFailureCode = "NOT_SENT"): Promise<RequestOutcome<F>> {
    this.emit({ type: "local-error", message });
    return Promise.resolve({ ok: false, code, message });
  }

  /** Answers whoever awaits the answer to `frame` (at most once). */
  private answer(frame: ClientFrame, outcome: RequestOutcome<ServerFrame>): void {
    const waiter = this.waiters.get(frame);
    if (!waiter) return;
    this.waiters.delete(frame);
    if (waiter.timer) clearTimeout(waiter.timer);
    waiter.resolve(outcome);
  }

  /** Every request still awaited fails (the session closed or gave up). */
  private answerAll(code: LocalFailureCode, message: string): void {
    for (const frame of [...this.waiters.keys()]) this.answer(frame, { ok: false, code, message });
  }

  /** A request on the wire got no answer within `replyTimeoutMs`: it fails, and its room is free again. */
  private replyTimedOut(frame: ClientFrame, timeoutMs: number): void {
    const i = this.expectations.findIndex((e) => e.frame === frame);
    const message = `no answer to the ${frame.type} within ${timeoutMs / 1000} s`;
    if (i >= 0) {
      const [e] = this.expectations.splice(i, 1);
      if (e.sent) this.endHold(e);
    }
    this.emit({ type: "local-error", message });
    this.answer(frame, { ok: false, code: "TIMEOUT", message });
    this.release();
    this.notifyIfIdle();
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
    // Read positions still waiting for their interval go now (nobody awaits their answer).
    for (const [roomId, messageId] of this.readWanted) {
      if (this.statusValue !== "open" || !this.socket || this.rateLimited || !this.readable(roomId)) break;
      const encoded = encodeFrame({ type: "read", roomId, messageId });
      if (encoded.ok) this.sendUntracked(encoded.text);
    }
    this.readWanted.clear();
    this.userClosed = true;
    this.clearTimers();
    this.answerAll("CLOSED", "the session closed before the answer came");
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
    const expectation = expectationFor(frame);
    this.expectations.push(expectation);
    if (this.statusValue !== "open" || !this.socket) {
      // Everything waits in the outbox, in the user's order (its expectation is made again on open).
      this.outbox.push(frame);
      this.emit({ type: "queued", frame });
      return true;
    }
    this.dispatch(frame, expectation);
    return true;
  }

  /** Joined rooms and rooms being joined, most recent last. */
  private knownRooms(): string[] {
    return [...new Set([...this.joined.keys(), ...this.joining.keys()])];
  }

  /** True while a frame about the room is unanswered, or something about it is already held. */
  private isBusy(roomId: string): boolean {
    return this.inFlight.has(roomId) || this.held.some((h) => h.roomId === roomId);
  }

  /** Sends a frame on the open socket now, or holds it behind an unanswered frame about its room. */
  private dispatch(frame: ClientFrame, expectation: Expectation): void {
    const roomId = holdKeyOf(frame);
    if (roomId !== undefined && this.isBusy(roomId)) {
      this.held.push({ kind: "frame", roomId, frame, expectation });
      return;
    }
    this.transmit(frame, expectation);
  }

  private transmit(frame: ClientFrame, expectation: Expectation): void {
    const encoded = encodeFrame(frame);
    if (!encoded.ok || !this.socket) return;
    expectation.sent = true;
    this.socket.send(encoded.text);
    const waiter = this.waiters.get(frame);
    if (waiter) {
      // Bounded: counted from each time the frame goes on the wire (again after a drop).
      const replyMs = this.options.replyTimeoutMs ?? 10_000;
      if (waiter.timer) clearTimeout(waiter.timer);
      waiter.timer = setTimeout(() => this.replyTimedOut(frame, replyMs), replyMs);
    }
    const roomId = expectation.holdKey;
    if (roomId !== undefined) {
      const timeoutMs = this.options.holdTimeoutMs ?? DEFAULT_HOLD_TIMEOUT_MS;
      const previous = this.inFlight.get(roomId);
      if (previous) clearTimeout(previous.timer);
      this.inFlight.set(roomId, {
        frame,
        expectation,
        timer: setTimeout(() => this.holdTimedOut(roomId, frame.type, timeoutMs), timeoutMs),
      });
    }
  }

  /** A frame about a room was answered: what was held behind it may go (release(), in order). */
  private endHold(expectation: Expectation): void {
    if (expectation.holdKey === undefined) return;
    const entry = this.inFlight.get(expectation.holdKey);
    // A late answer to a frame whose hold already timed out must not end the hold of a later one.
    if (!entry || entry.expectation !== expectation) return;
    clearTimeout(entry.timer);
    this.inFlight.delete(expectation.holdKey);
  }

  /** Sends (or runs) every held item whose room is free, keeping the order of each room's items. */
  private release(): void {
    if (this.held.length === 0 || this.statusValue !== "open" || !this.socket) return;
    const blocked = new Set<string>();
    // In place: an action may call back into the session, and what it sends must queue behind
    // items not yet examined.
    for (let i = 0; i < this.held.length; ) {
      const item = this.held[i];
      if (blocked.has(item.roomId) || this.inFlight.has(item.roomId)) {
        blocked.add(item.roomId);
        i++;
        continue;
      }
      this.held.splice(i, 1);
      if (item.kind === "action") item.run();
      else this.transmit(item.frame, item.expectation);
    }
  }

  /** No answer about a room within the hold timeout: what waited for it fails, visibly. */
  private holdTimedOut(roomId: string, kind: ClientFrame["type"], timeoutMs: number): void {
    this.inFlight.delete(roomId);
    const failed = this.held.filter((h) => h.roomId === roomId);
    this.held = this.held.filter((h) => h.roomId !== roomId);
    const where = roomId.startsWith("@") ? roomId : `#${roomId}`;
    const why = `no answer to the ${kind} ${kind === "join" || kind === "leave" ? "of" : "to"} ${where} within ${timeoutMs / 1000} s`;
    for (const item of failed) {
      if (item.kind === "action") {
        item.run();
        continue;
      }
      const i = this.expectations.indexOf(item.expectation);
      if (i >= 0) this.expectations.splice(i, 1);
      const frame = item.frame;
      const clientMessageId = frame.type === "chat" ? frame.clientMessageId : undefined;
      const message = `not sent (${frame.type} ${where}): ${why}`;
      this.emit({ type: "local-error", message, ...(clientMessageId ? { clientMessageId } : {}) });
      this.answer(frame, { ok: false, code: "TIMEOUT", message });
    }
    this.notifyIfIdle();
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
      // First the room asked for at start (a /join typed meanwhile is sent once open); after a drop
      // the current room, or failing that (the user was leaving their last room) one to rejoin.
      this.socketRoom = !this.everOpened ? (this.options.room ?? DEFAULT_ROOM) : (this.current ?? this.knownRooms().pop() ?? DEFAULT_ROOM);
      url = connectUrl(this.options.endpoint, { token, roomId: this.socketRoom, username: this.options.username });
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
    // The connection joined `socketRoom` on $connect, but nothing can be sent from inside $connect
    // (AWS-FACTS "Routing"), so the member list of that room comes from an explicit, idempotent join.
    const connectRoom = this.socketRoom;
    // Rooms joined before the drop, and rooms whose join was not answered yet.
    const rooms = reconnected ? this.knownRooms() : [];
    // A user who had left every room still joins one on $connect (the protocol's default room):
    // leave it again at once rather than put them back in a room they left.
    const unwanted = reconnected && rooms.length === 0 && this.current === undefined ? connectRoom : undefined;
    if (!unwanted && !rooms.includes(connectRoom)) rooms.push(connectRoom);
    this.setStatus("open", { url: redactToken(url) });
    // Chat and private messages sent on the lost connection and not acknowledged are sent again
    // first (they came before anything queued); replies to its other requests will never come.
    const pending = this.expectations.filter((e) => e.sent && e.resend);
    const outbox = this.outbox.splice(0);
    this.expectations = [];
    // Everything goes through dispatch: a resent chat or a queued /history about a room waits for
    // that room's join, as API Gateway may run frames of one connection in any order.
    const send = (frame: ClientFrame): void => {
      const expectation = expectationFor(frame);
      this.expectations.push(expectation);
      this.dispatch(frame, expectation);
    };
    for (const roomId of rooms) {
      if (!this.joining.has(roomId)) this.joining.set(roomId, { userAsked: false, previous: undefined });
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
    const leaving = new Set<string>();
    for (const item of outbox) {
      if ("kind" in item) {
        if (this.isBusy(item.roomId)) this.held.push(item);
        else item.run();
        continue;
      }
      if (item.type === "leave") leaving.add(item.roomId);
      // A queued join of a room rejoined above is already sent, unless the user left it in between.
      if (item.type === "join" && rooms.includes(item.roomId) && !leaving.has(item.roomId)) continue;
      send(item);
    }
    if (reconnected) this.emit({ type: "rejoined", rooms, resent });
    // Read positions that waited for an interval when the connection dropped.
    this.flushReads();
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
      this.forceReconnect(frame.type === "error" && frame.code === "TOKEN_EXPIRED" ? "token expired" : "connection not registered");
      return;
    }
    if (frame.type !== "error" && frame.type !== "gateway") this.forcedStreak = 0;
    // The connection's (or user's) budget is spent: what the session sends by itself waits.
    if (frame.type === "error" && frame.code === "RATE_LIMITED")
      this.rateLimitedUntil = this.now() + (this.options.rateLimitPauseMs ?? DEFAULT_RATE_LIMIT_PAUSE_MS);
    // API Gateway's "Internal server error" names no request: while a frame whose answer nobody
    // awaits (typing, a read sent on close) may be the one that failed, it is put down to that
    // frame and not shown, like typing's own refusals; a request it was really about then ends
    // with its reply timeout or is sent again after a drop, instead of failing when it succeeded.
    if (frame.type === "gateway" && this.takeUntracked()) return;
    // `typing` is fire-and-forget: its refusals (RATE_LIMITED once the user's budget is spent,
    // NOT_A_MEMBER while a room is being left) answer nothing the user asked for, so they are not shown.
    if (frame.type === "error" && frame.requestType === "typing") return;
    // Nor are those of `read`, which the clients send by themselves (markRead): the request is
    // settled, and the next message shown sends the position again.
    if (frame.type === "error" && frame.requestType === "read") {
      this.apply(frame);
      this.release();
      return;
    }
    if (frame.type === "rooms") {
      // The listing comes in pages of at most 128 KB: the next one is asked for at once, and the
      // listener sees one frame with every room once the last page has arrived.
      this.roomsPages.push(...frame.rooms);
      this.apply(frame);
      if (frame.next !== undefined) {
        this.send({ type: "rooms", after: frame.next });
        return;
      }
      const all: ServerFrame = { type: "rooms", rooms: this.roomsPages };
      this.roomsPages = [];
      this.emit({ type: "frame", frame: all });
      this.release();
      return;
    }
    if (frame.type === "error" && frame.requestType === "rooms") this.roomsPages = [];
    // A chat message already seen (a large room's delivery job retried after a worker died part-way:
    // docs/protocol.md "Delivery in large rooms") changes nothing and is flagged like presence.
    const redundant = this.isRedundantPresence(frame) || (frame.type === "chat" && this.messages.get(frame.messageId) !== undefined);
    const reply =
      frame.type === "read" && this.isOwnRead(frame) && this.expectations.some((e) => e.sent && e.key === `read:${frame.roomId}`);
    this.apply(frame);
    this.emit(redundant ? { type: "frame", frame, redundant } : reply ? { type: "frame", frame, reply } : { type: "frame", frame });
    // After the event, so that `[joined #x]` is shown before what was waiting for it (e.g. /who x).
    this.release();
  }

  /**
   * Replaces a connection the server has forgotten. The request that got the answer is not settled:
   * chat and private messages are resent on the new connection (same clientMessageId), joins too.
   */
  private forceReconnect(reason: string): void {
    if (this.forcing || !this.socket) return;
    this.forcing = true;
    this.forcedStreak += 1;
    this.socket.close(4000, reason);
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
        this.stopTyping(roomKey(frame.roomId), frame.userId);
        if (frame.userId !== this.selfId && !this.messages.get(frame.messageId)) this.countUnread(frame.roomId, frame.messageId);
        this.messages.chat(frame);
        if (frame.clientMessageId && this.settle(`chat:${frame.clientMessageId}`, frame)) this.selfId ??= frame.userId;
        break;
      case "private":
        this.stopTyping(userKey(frame.fromUserId), frame.fromUserId);
        this.messages.private(frame, this.selfId);
        break;
      case "typing":
        this.startTyping(frame.roomId !== undefined ? roomKey(frame.roomId) : userKey(frame.userId), {
          userId: frame.userId,
          username: frame.username,
        });
        break;
      case "reaction": {
        this.messages.reaction(frame, this.selfId);
        // This user's own copy answers its react (another device's reaction may settle it first: same outcome).
        // Without the user's id (no `userId` option, no chat echoed yet) the copy is the one about the
        // same message, emoji and change (added or taken back) as the react awaited.
        const key = `react:${frame.messageId}:${frame.emoji}`;
        const own =
          this.selfId !== undefined
            ? frame.userId === this.selfId
            : this.expectations.some(
                (e) => e.sent && e.key === key && e.frame.type === "react" && (e.frame.remove === true) === (frame.removed === true),
              );
        if (own) this.settle(key, frame);
        break;
      }
      case "read":
        if (this.isOwnRead(frame)) {
          // The reply to this device's read (the position in force), or another device's.
          this.confirmRead(frame.roomId, frame.messageId);
          if (isAfter(frame.messageId, this.unreadState.get(frame.roomId)?.readMessageId))
            this.moveReadPosition(frame.roomId, frame.messageId);
          this.settle(`read:${frame.roomId}`, frame);
        } else {
          const readers = this.readers.get(frame.roomId) ?? new Map<string, { username: string; messageId: string }>();
          const known = readers.get(frame.userId);
          if (!known || isAfter(frame.messageId, known.messageId))
            readers.set(frame.userId, { username: frame.username, messageId: frame.messageId });
          this.readers.set(frame.roomId, readers);
        }
        break;
      case "delivered":
        if (frame.clientMessageId) {
          // The sender gets no copy of its own private message: what it sent is what was stored.
          const sent = this.expectations.find((e) => e.sent && e.key === `private:${frame.clientMessageId}`)?.frame;
          if (sent?.type === "private") {
            this.messages.record(userKey(sent.toUserId), {
              messageId: frame.messageId,
              userId: this.selfId ?? "",
              username: this.options.username ?? this.selfId ?? "",
              message: sent.message,
              sentAt: new Date().toISOString(),
            });
          }
          this.settle(`private:${frame.clientMessageId}`, frame);
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
        this.confirmRead(frame.roomId, frame.readMessageId);
        if (frame.unread !== undefined) {
          this.unreadState.set(frame.roomId, {
            unread: frame.unread,
            more: frame.unreadMore === true,
            ...(frame.readMessageId !== undefined ? { readMessageId: frame.readMessageId } : {}),
          });
        }
        // The room became current when the user asked to join it (join()), not now: a `joined`
        // answering an earlier /join must not take over from a room chosen since.
        this.joining.delete(frame.roomId);
        this.settle(`join:${frame.roomId}`, frame);
        break;
      }
      case "left":
        this.removeRoom(frame.roomId);
        this.settle(`leave:${frame.roomId}`, frame);
        break;
      case "kicked":
        // A moderator took every connection of this user out of the room (docs/protocol.md "kicked"):
        // it is no longer joined, nor joined again after a drop; no `left` follows.
        this.removeRoom(frame.roomId);
        break;
      case "presence": {
        const members = this.joined.get(frame.roomId);
        if (!members) break;
        if (frame.event === "joined") members.set(frame.userId, { userId: frame.userId, username: frame.username });
        else members.delete(frame.userId);
        break;
      }
      case "rooms":
        for (const r of frame.rooms) {
          if (r.unread === undefined) continue;
          const known = this.unreadState.get(r.roomId);
          // This session read further than the server has confirmed (a read waiting for the budget, or
          // on its way): the server counted messages shown here already, and the local count is right.
          if (known?.readMessageId !== undefined && isAfter(known.readMessageId, this.readConfirmed.get(r.roomId))) continue;
          this.unreadState.set(r.roomId, {
            unread: r.unread,
            more: r.unreadMore === true,
            ...(known?.readMessageId !== undefined ? { readMessageId: known.readMessageId } : {}),
          });
        }
        this.settle("rooms", frame);
        break;
      case "history": {
        const conversation = frame.roomId !== undefined ? roomKey(frame.roomId) : userKey(frame.withUserId ?? "");
        for (const m of frame.messages) this.messages.record(conversation, m, true);
        if (frame.roomId !== undefined) this.confirmRead(frame.roomId, frame.readMessageId);
        if (frame.roomId !== undefined && frame.readMessageId !== undefined) {
          const known = this.unreadState.get(frame.roomId);
          if (isAfter(frame.readMessageId, known?.readMessageId)) {
            this.unreadState.set(frame.roomId, {
              unread: known?.unread ?? 0,
              more: known?.more ?? false,
              readMessageId: frame.readMessageId,
            });
          }
        }
        this.settle(frame.roomId !== undefined ? `history:#${frame.roomId}` : `history:@${frame.withUserId ?? ""}`, frame, "history");
        break;
      }
      case "system":
        // A room notice is stored in the room's history, and a moderator may delete it.
        if (frame.roomId !== undefined) {
          this.messages.record(roomKey(frame.roomId), {
            messageId: frame.messageId,
            userId: "system",
            username: "System",
            message: frame.message,
            sentAt: frame.sentAt,
            kind: "system",
          });
        }
        break;
      case "pong":
        this.settle("ping", frame);
        break;
      // The sender's own copy of the fan-out (or the reply to a repeat) answers its edit or delete.
      case "edited":
        this.messages.edited(frame);
        this.settle(`edit:${frame.messageId}`, frame);
        break;
      case "deleted": {
        const before = this.messages.get(frame.messageId);
        const roomId = frame.roomId;
        // A deleted message is no longer unread (the server counts no tombstones).
        if (roomId !== undefined && before && before.deletedBy === undefined && before.userId !== this.selfId) {
          const state = this.unreadState.get(roomId);
          if (state && state.unread > 0 && isAfter(frame.messageId, state.readMessageId)) {
            this.unreadState.set(roomId, { ...state, unread: state.unread - 1 });
          }
        }
        this.messages.deleted(frame);
        this.settle(`delete:${frame.messageId}`, frame);
        break;
      }
      case "userKicked":
        this.settle(`kick:${frame.roomId}:${frame.userId}`, frame);
        break;
      case "error":
        this.settleError(frame);
        break;
      case "gateway": {
        // API Gateway's "Internal server error" names no request: the oldest awaited one failed.
        const i = this.expectations.findIndex((e) => e.sent);
        if (i >= 0) {
          const e = this.expectations[i];
          if (e.requestType === "join" && e.roomId !== undefined) this.joinFailed(e.roomId);
          this.settleAt(i, frame);
        }
        break;
      }
    }
  }

  /**
   * A `read` frame about this user's own position: by its user id, or, while that is unknown (no
   * `userId` option, no chat echoed yet), the reply to a read awaited in that room (the position in
   * force is never older than the one sent).
   */
  private isOwnRead(frame: ReadFrame): boolean {
    if (this.selfId !== undefined) return frame.userId === this.selfId;
    return this.expectations.some(
      (e) => e.sent && e.key === `read:${frame.roomId}` && e.frame.type === "read" && !isAfter(e.frame.messageId, frame.messageId),
    );
  }

  /** A message from someone else arrived in a room: one more unread if after the read position. */
  private countUnread(roomId: string, messageId: string): void {
    const state = this.unreadState.get(roomId) ?? { unread: 0, more: false };
    if (!isAfter(messageId, state.readMessageId)) return;
    this.unreadState.set(roomId, { ...state, unread: state.unread + 1 });
  }

  private startTyping(conversation: ConversationKey, member: Member): void {
    if (member.userId === this.selfId) return;
    const users = this.typingNow.get(conversation) ?? new Map();
    this.typingNow.set(conversation, users);
    const known = users.get(member.userId);
    if (known) clearTimeout(known.timer);
    const timer = setTimeout(() => this.stopTyping(conversation, member.userId), this.options.typingShowMs ?? DEFAULT_TYPING_SHOW_MS);
    users.set(member.userId, { member, timer });
    if (!known) this.emit({ type: "typing", conversation, users: this.typingIn(conversation), started: member });
  }

  /** `userId` no longer shows as typing (their message arrived, or they went quiet). */
  private stopTyping(conversation: ConversationKey, userId: string): void {
    const users = this.typingNow.get(conversation);
    const known = users?.get(userId);
    if (!users || !known) return;
    clearTimeout(known.timer);
    users.delete(userId);
    if (users.size === 0) this.typingNow.delete(conversation);
    this.emit({ type: "typing", conversation, users: this.typingIn(conversation) });
  }

  /** The room was left (or the user kicked from it): not joined any more, and not current. */
  private removeRoom(roomId: string): void {
    this.joined.delete(roomId);
    this.joining.delete(roomId);
    if (this.current === roomId) this.current = [...this.joined.keys()].pop();
  }

  private settleError(frame: Extract<ServerFrame, { type: "error" }>): void {
    // FORBIDDEN names its room: settle exactly the join or history of that room.
    if (frame.roomId !== undefined && (frame.requestType === "join" || frame.requestType === "history")) {
      const key = frame.requestType === "join" ? `join:${frame.roomId}` : `history:#${frame.roomId}`;
      if (frame.requestType === "join" && this.expectations.some((e) => e.sent && e.key === key)) this.joinFailed(frame.roomId);
      if (this.settle(key, frame)) return;
    }
    // ...and the edit, delete or kick about that room (several rooms may each have one on the wire).
    if (
      frame.roomId !== undefined &&
      (frame.requestType === "edit" ||
        frame.requestType === "delete" ||
        frame.requestType === "kick" ||
        frame.requestType === "react" ||
        frame.requestType === "read")
    ) {
      const i = this.expectations.findIndex((e) => e.sent && e.requestType === frame.requestType && e.roomId === frame.roomId);
      if (i >= 0) {
        this.settleAt(i, frame);
        return;
      }
    }
    if (frame.clientMessageId) {
      const type = frame.requestType === "private" ? "private" : "chat";
      if (this.settle(`${type}:${frame.clientMessageId}`, frame)) {
        this.privateTargets.delete(frame.clientMessageId);
        return;
      }
    }
    if (frame.requestType) {
      const i = this.expectations.findIndex((e) => e.sent && e.requestType === frame.requestType);
      if (i >= 0) {
        const e = this.expectations[i];
        if (e.requestType === "join" && e.roomId !== undefined) this.joinFailed(e.roomId);
        this.settleAt(i, frame);
        return;
      }
    }
    // BAD_JSON / UNKNOWN_TYPE name no request this client sent on purpose: nothing to settle.
  }

  /** A join was refused: the room is no longer being joined, and is no longer current unless joined. */
  private joinFailed(roomId: string): void {
    const joining = this.joining.get(roomId);
    this.joining.delete(roomId);
    if (this.current !== roomId || this.joined.has(roomId)) return;
    const previous = joining?.userAsked ? joining.previous : undefined;
    this.current = previous !== undefined && this.knownRooms().includes(previous) ? previous : this.knownRooms().pop();
  }

  /** Settles the oldest sent expectation with this key (or, failing that, of `fallbackType`) with its answer. */
  private settle(key: string, answer: ServerFrame, fallbackType?: ClientFrame["type"]): boolean {
    let i = this.expectations.findIndex((e) => e.sent && e.key === key);
    if (i < 0 && fallbackType) i = this.expectations.findIndex((e) => e.sent && e.requestType === fallbackType);
    if (i < 0) return false;
    this.settleAt(i, answer);
    return true;
  }

  private settleAt(index: number, answer: ServerFrame): void {
    const [e] = this.expectations.splice(index, 1);
    if (!e) return;
    if (e.sent) this.endHold(e);
    this.answer(e.frame, outcomeOf(answer));
    this.notifyIfIdle();
  }

  private notifyIfIdle(): void {
    if (this.expectations.length > 0) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private onClose(info: CloseInfo): void {
    this.socket = undefined;
    // Before clearTimers, which forgets the joins/leaves still unanswered.
    if (!this.userClosed) this.requeueAfterDrop();
    this.clearTimers();
    if (this.userClosed) {
      this.setStatus("closed", { close: info });
      this.closeWaiter?.();
      this.closeWaiter = undefined;
      return;
    }
    if (!this.openedThisSocket && (info.handshakeStatus === 401 || info.handshakeStatus === 403)) {
      // A 403 may also mean the token does not grant the room the connection asked for (issue 16,
      // docs/protocol.md "Room access"): the status alone cannot tell which, so both are named.
      this.fail(
        "rejected",
        info.handshakeStatus === 401
          ? "the server refused the connection (HTTP 401): the token is missing, invalid or expired"
          : `the server refused the connection (HTTP 403): the token is invalid, expired, or does not grant room #${this.socketRoom}`,
        info,
      );
      return;
    }
    if (!this.everOpened) {
      const why = info.handshakeStatus
        ? `HTTP ${info.handshakeStatus}`
        : // Browsers report a refused handshake as a bare 1006, like an unreachable host.
          `${info.reason || `close code ${info.code}`}: the endpoint is unreachable or refused the token (invalid, expired, or not granting room #${this.socketRoom})`;
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

  /**
   * The connection dropped with frames held or join/leave answers outstanding. A leave that was not
   * answered and everything held go, in order, ahead of the outbox, to be sent (and held again as
   * needed) on the next connection.
   */
  private requeueAfterDrop(): void {
    const requeue: Array<ClientFrame | Extract<Held, { kind: "action" }>> = [];
    for (const entry of this.inFlight.values()) {
      clearTimeout(entry.timer);
      if (entry.frame.type === "leave") requeue.push(entry.frame);
    }
    this.inFlight.clear();
    const held = this.held;
    this.held = [];
    // Held chat and private messages too: they were never sent, so they keep their place in the
    // user's order (only messages sent and unacknowledged are resent first, on open).
    for (const item of held) requeue.push(item.kind === "action" ? item : item.frame);
    this.outbox.unshift(...requeue);
  }

  private fail(reason: FatalReason, message: string, close?: CloseInfo): void {
    this.clearTimers();
    this.held = [];
    this.userClosed = true;
    const socket = this.socket;
    this.socket = undefined;
    socket?.close(1000, "client gave up");
    this.expectations = [];
    this.notifyIfIdle();
    this.answerAll("CLOSED", message);
    this.setStatus("closed", close ? { close } : {});
    this.emit({ type: "fatal", reason, message });
  }

  private clearTimers(): void {
    // A closed session sends nothing more: the holds end with it.
    for (const entry of this.inFlight.values()) clearTimeout(entry.timer);
    this.inFlight.clear();
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    // Waiting reads go with the next connection (markRead again); typing shown stops with this one.
    if (this.readTimer) clearTimeout(this.readTimer);
    this.readTimer = undefined;
    for (const [conversation, users] of this.typingNow) for (const userId of [...users.keys()]) this.stopTyping(conversation, userId);
    this.pingTimer = undefined;
    this.reconnectTimer = undefined;
  }
}

/** A request's answer as its caller sees it: the reply, or the error as a typed failure. */
function outcomeOf(answer: ServerFrame): RequestOutcome<ServerFrame> {
  if (answer.type === "error") {
    return { ok: false, code: answer.code, message: answer.message, ...(answer.roomId !== undefined ? { roomId: answer.roomId } : {}) };
  }
  if (answer.type === "gateway") return { ok: false, code: "GATEWAY", message: `API Gateway answered: ${answer.message}` };
  return { ok: true, frame: answer };
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
