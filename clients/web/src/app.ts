/**
 * The web chat page (docs/clients.md). Plain TypeScript on the DOM, bundled by clients/web/build.ts.
 *
 * The protocol, the reconnection policy and room/presence state come from clients/shared (the same
 * code as the terminal client); this file only renders them and turns clicks and keys into calls.
 * Every piece of text from the network is inserted with `textContent`, never as HTML.
 */
import { parseCommand } from "../../shared/commands";
import { changeConversation, deletedByOther, targetOf, type LoggedMessage } from "../../shared/messages";
import {
  DEFAULT_ROOM,
  KICK_DEFAULT_MINUTES,
  roomMatches,
  unverifiedClaims,
  type ErrorFrame,
  type ServerFrame,
} from "../../shared/protocol";
import {
  ChatSession,
  isUnregisteredConnectionError,
  unreadLabel,
  type RequestOutcome,
  type SessionEvent,
  type SocketFactory,
} from "../../shared/session";
import { ConversationStore, roomKey, userIdFromName, userKey, type ConversationKey, type Entry, type MessageEntry } from "./conversations";

/** Set at build time (clients/web/build.ts); empty strings mean "not configured". */
declare const __CHAT_CONFIG__: { readonly endpoint: string; readonly tokenUrl: string };

const config = typeof __CHAT_CONFIG__ === "object" ? __CHAT_CONFIG__ : { endpoint: "", tokenUrl: "/_local/token" };

// ---------------------------------------------------------------------------------------------
// DOM helpers

function $<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page is missing #${id}`);
  return el as T;
}

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<Record<string, string>> = {},
  ...children: Array<Node | string>
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined) continue;
    if (k === "className") el.className = v;
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v);
  }
  for (const c of children) el.append(c);
  return el;
}

/** A text-style button (class "link") with its accessible name; `focus` names it for saveFocus(). */
function linkButton(text: string, label: string, onClick: () => void, extra: { focus?: string; danger?: boolean } = {}): HTMLButtonElement {
  const b = h("button", {
    type: "button",
    className: extra.danger ? "link danger" : "link",
    "aria-label": label,
    ...(extra.focus ? { "data-focus": extra.focus } : {}),
  });
  b.textContent = text;
  b.addEventListener("click", onClick);
  return b;
}

function showError(el: HTMLElement, message: string | undefined): void {
  el.textContent = message ?? "";
  el.hidden = !message;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
function shortTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : timeFormat.format(d);
}

const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
/** A time later today as a clock time, another day with its date (a kick's end). */
function shortDateTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toDateString() === new Date().toDateString() ? timeFormat.format(d) : dateTimeFormat.format(d);
}

/** An error frame in words. */
function errorText(f: ErrorFrame): string {
  // FORBIDDEN because the token does not grant the room (docs/protocol.md "Room access") is said
  // briefly; other FORBIDDENs (someone else's message, not a moderator, kicked until a time) keep
  // the server's explanation.
  if (f.code === "FORBIDDEN" && f.roomId !== undefined && f.message === `you do not have access to room ${f.roomId}`) {
    return `You do not have access to #${f.roomId}.`;
  }
  return `${f.message} (${f.code})`;
}

/** A failed request's outcome in words: the server's reason and code, or the client's own reason. */
function failureText(outcome: { readonly code: string; readonly message: string }): string {
  return ["NOT_SENT", "TIMEOUT", "CLOSED"].includes(outcome.code) ? outcome.message : `${outcome.message} (${outcome.code})`;
}

/** The emoji the page offers under "React" (any single emoji is accepted by /react). */
const QUICK_REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "😢"] as const;

/** "Alice is typing…", "Alice and Bob are typing…", "3 people are typing…". */
function typingText(names: readonly string[]): string {
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}

/** The first words of a message, to tell buttons apart for screen readers ("Edit your message: hello…"). */
function excerpt(text: string): string {
  const t = text.replace(/\s+/g, " ").trim();
  return t.length > 40 ? `${t.slice(0, 40)}…` : t;
}

// ---------------------------------------------------------------------------------------------
// The browser socket

/** The browser's WebSocket. Browsers hide the HTTP status of a refused handshake: it is a 1006 close. */
const browserSocketFactory: SocketFactory = (url, handlers) => {
  const ws = new WebSocket(url);
  let closed = false;
  ws.onopen = () => handlers.onOpen();
  ws.onmessage = (e: MessageEvent) => {
    if (typeof e.data === "string") handlers.onMessage(e.data);
  };
  ws.onclose = (e: CloseEvent) => {
    if (closed) return;
    closed = true;
    handlers.onClose({ code: e.code, reason: e.reason });
  };
  return {
    send: (text) => ws.send(text),
    close: (code, reason) => ws.close(code === 1000 || (code !== undefined && code >= 3000) ? code : 1000, reason),
  };
};

// ---------------------------------------------------------------------------------------------
// Sign-in

interface Identity {
  readonly endpoint: string;
  readonly userId: string;
  readonly username: string;
  readonly room: string;
  /** A pasted token; absent = mint one from the local runtime. */
  readonly token?: string;
}

async function mintLocalToken(userId: string, username: string): Promise<string> {
  if (!config.tokenUrl) throw new Error("this page was built for a deployed API: paste a token");
  const url = new URL(config.tokenUrl, location.href);
  url.searchParams.set("userId", userId);
  url.searchParams.set("name", username);
  let res: Response;
  try {
    res = await fetch(url.toString(), { cache: "no-store" });
  } catch {
    throw new Error("the local token service is unreachable: paste a token, or open this page from the local runtime");
  }
  const body = await res.text();
  if (!res.ok) {
    throw new Error(
      res.status === 404
        ? "no local token service here (a deployed API?): paste a token"
        : `the local token service answered ${res.status}: ${body.slice(0, 200)}`,
    );
  }
  try {
    const json = JSON.parse(body) as { token?: unknown };
    if (typeof json.token === "string") return json.token;
  } catch {
    // Not JSON: the body is the token itself.
  }
  const token = body.trim();
  if (!/^[\w-]+\.[\w-]+\.[\w-]*$/.test(token)) throw new Error("the local token service did not return a token");
  return token;
}

/** The stage `npm run local` serves by default (local/runtime.ts). */
const LOCAL_STAGE = "local";

function defaultEndpoint(): string {
  const fromQuery = new URLSearchParams(location.search).get("endpoint");
  if (fromQuery) return fromQuery;
  if (config.endpoint) return config.endpoint;
  // Served by the local runtime, which puts the API on the page's own host and port.
  if (config.tokenUrl && (location.protocol === "http:" || location.protocol === "https:")) {
    return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/${LOCAL_STAGE}`;
  }
  return localStorage.getItem("chat.endpoint") ?? "";
}

function readSignIn(): Identity | string {
  const endpoint = $<HTMLInputElement>("signin-endpoint").value.trim();
  const token = $<HTMLTextAreaElement>("signin-token").value.trim();
  const name = $<HTMLInputElement>("signin-name").value.trim() || (token ? (unverifiedClaims(token).name ?? "") : "");
  const room = $<HTMLInputElement>("signin-room").value.trim().replace(/^#/, "") || DEFAULT_ROOM;
  if (!name) return "Enter a display name.";
  if (token && !/^[\w-]+\.[\w-]+\.[\w-]*$/.test(token)) return "The token is not a JWT (three base64url parts separated by dots).";
  if (!endpoint) return "Enter the WebSocket endpoint (under “Deployed API”).";
  if (!/^wss?:\/\//.test(endpoint)) return "The endpoint must start with ws:// or wss://.";
  // With a pasted token the server takes the user id from its `sub`: show the same one.
  const claimed = token ? unverifiedClaims(token).sub : undefined;
  const typed = $<HTMLInputElement>("signin-user").value.trim();
  if (claimed && typed && typed !== claimed)
    return `The token is for user "${claimed}", not "${typed}": clear the user id or paste another token.`;
  const userId = claimed ?? (typed || userIdFromName(name));
  return { endpoint, userId, username: name, room, ...(token ? { token } : {}) };
}

// ---------------------------------------------------------------------------------------------
// The chat view

class ChatPage {
  private readonly store = new ConversationStore();
  private readonly session: ChatSession;
  private selected: ConversationKey;
  private readonly me: Identity;
  private readonly onSignOut: (message?: string) => void;
  /** The last `rooms` answer, for the "Active rooms" list. */
  private activeRooms: ReadonlyArray<{ roomId: string; members: number }> = [];
  /** A room the user asked to join: it is shown once the server confirms. */
  private pendingSelect: string | undefined;
  /**
   * Room patterns the token's `moderates` claim names, read without verifying the token: only to
   * offer Delete on others' messages and Kick (docs/protocol.md "Room access"); the server decides.
   */
  private moderates: readonly string[] = [];
  /** The message being edited in place, with the text typed so far (kept across re-renders). */
  private editing: { id: string; draft: string } | undefined;
  /** A Delete (message id) or Kick (user id) awaiting its confirmation. */
  private confirming: { kind: "delete" | "kick"; id: string } | undefined;
  /** The message whose emoji choice ("React") is open. */
  private picking: string | undefined;
  /** Conversations whose history request reads forward (from the read position, or after a page). */
  private readonly forward = new Set<ConversationKey>();

  constructor(me: Identity, onSignOut: (message?: string) => void) {
    this.me = me;
    this.onSignOut = onSignOut;
    this.selected = roomKey(me.room);
    // The claims of the token of each connection (a minted one is minted afresh for each).
    const withClaims = (token: string): string => {
      this.moderates = unverifiedClaims(token).moderates ?? [];
      return token;
    };
    this.session = new ChatSession({
      endpoint: me.endpoint,
      token: me.token ? () => withClaims(me.token as string) : async () => withClaims(await mintLocalToken(me.userId, me.username)),
      username: me.username,
      userId: me.userId,
      room: me.room,
      socketFactory: browserSocketFactory,
      onEvent: (e) => this.onEvent(e),
    });
  }

  start(): void {
    $("whoami").textContent = `${this.me.username} (${this.me.userId})`;
    $("whoami").hidden = false;
    $("signout").hidden = false;
    this.render();
    this.session.start();
    $<HTMLInputElement>("composer-input").focus();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.session.close();
  }

  /** After sign-out, the closing session's last events must not touch the sign-in screen. */
  private stopped = false;

  // Events -----------------------------------------------------------------------------------

  private onEvent(e: SessionEvent): void {
    if (this.stopped) return;
    switch (e.type) {
      case "status":
        this.showStatus(e);
        break;
      case "frame":
        if (e.redundant) break;
        this.onFrame(e.frame);
        break;
      case "invalid":
        this.store.addNotice(this.selected, "error", `Unreadable frame from the server (${e.frame.reason}).`);
        this.renderMessages();
        break;
      case "local-error":
        if (e.clientMessageId) this.store.updatePending(e.clientMessageId, { state: "failed", note: e.message });
        showError($("composer-error"), e.message);
        this.renderMessages();
        break;
      case "queued":
        break;
      case "typing":
        if (e.conversation === this.selected) this.renderTyping();
        break;
      case "rejoined":
        this.store.addNotice(this.selected, "notice", `Reconnected; rejoining ${e.rooms.map((r) => `#${r}`).join(", ")}.`);
        // Catch up on what was said while disconnected: every stored message is in history
        // (the server writes before it delivers), and known messages are not shown twice.
        for (const key of this.store.keys("#")) this.store.get(key).historyRequested = false;
        for (const key of this.store.keys("@")) this.requestHistory(key);
        this.renderMessages();
        break;
      case "fatal":
        this.onSignOut(e.message);
        break;
    }
  }

  private showStatus(e: Extract<SessionEvent, { type: "status" }>): void {
    const status = $("status");
    status.classList.toggle("ok", e.status === "open");
    status.classList.toggle("bad", e.status === "reconnecting");
    switch (e.status) {
      case "connecting":
        status.textContent = "Connecting…";
        break;
      case "open":
        status.textContent = "Connected";
        // The room list is part of the page: fill it on every (re)connection.
        this.session.listRooms();
        break;
      case "reconnecting":
        status.textContent =
          e.delayMs !== undefined
            ? `Connection lost; reconnecting in ${(e.delayMs / 1000).toFixed(1)} s (attempt ${e.attempt ?? 1})`
            : `Reconnecting (attempt ${e.attempt ?? 1})…`;
        break;
      case "closed":
        status.textContent = "Disconnected";
        break;
      case "idle":
        break;
    }
  }

  private onFrame(f: ServerFrame): void {
    switch (f.type) {
      case "chat":
        this.store.addMessage(roomKey(f.roomId), f);
        this.sync(f.messageId);
        this.bump(roomKey(f.roomId));
        break;
      case "private": {
        const other = f.fromUserId === this.me.userId ? f.toUserId : f.fromUserId;
        const key = userKey(other);
        const isNew = !this.store.has(key);
        this.store.addMessage(key, {
          messageId: f.messageId,
          userId: f.fromUserId,
          username: f.fromUsername,
          message: f.message,
          sentAt: f.sentAt,
        });
        this.sync(f.messageId);
        if (isNew) this.requestHistory(key);
        this.bump(key);
        break;
      }
      case "delivered":
        if (f.clientMessageId) {
          this.store.updatePending(f.clientMessageId, {
            state: "sent",
            messageId: f.messageId,
            note:
              f.deliveredTo > 0
                ? `delivered to ${f.deliveredTo} connection${f.deliveredTo === 1 ? "" : "s"}`
                : "recipient offline: kept in the conversation history",
          });
          this.sync(f.messageId);
        }
        break;
      case "joined": {
        const key = roomKey(f.roomId);
        const c = this.store.get(key);
        // With unread messages after a read position, the room opens there (issue 18); else at the newest.
        if (!c.historyRequested) {
          if (f.unread && f.readMessageId !== undefined) {
            c.readMark = f.readMessageId;
            this.requestHistory(key, undefined, "fromRead");
          } else this.requestHistory(key);
        }
        if (this.pendingSelect === f.roomId) {
          this.pendingSelect = undefined;
          this.selected = key;
          c.unread = 0;
        }
        showError($("join-error"), undefined);
        break;
      }
      case "left": {
        const key = roomKey(f.roomId);
        this.store.remove(key);
        if (this.selected === key) {
          const next = this.session.currentRoom;
          this.selected = next ? roomKey(next) : (this.store.keys("@")[0] ?? roomKey(DEFAULT_ROOM));
        }
        break;
      }
      case "presence":
        this.store.addNotice(
          roomKey(f.roomId),
          "notice",
          `${f.username} (${f.userId}) ${f.event === "joined" ? "joined" : "left"} #${f.roomId}`,
        );
        break;
      case "rooms":
        this.activeRooms = f.rooms;
        break;
      case "history": {
        const key = f.roomId !== undefined ? roomKey(f.roomId) : userKey(f.withUserId ?? "");
        const forward = this.forward.delete(key);
        this.store.addHistory(key, f.messages, f.next, forward ? { newer: f.newer } : undefined);
        for (const m of f.messages) this.sync(m.messageId);
        break;
      }
      case "system": {
        // A room notice belongs to the room; a notice to this user is shown where they are looking.
        const key = f.roomId !== undefined ? roomKey(f.roomId) : this.selected;
        this.store.addMessage(key, {
          messageId: f.messageId,
          userId: "system",
          username: "System",
          message: f.message,
          sentAt: f.sentAt,
          kind: "system",
        });
        this.sync(f.messageId);
        this.bump(key);
        break;
      }
      case "reaction":
        this.sync(f.messageId);
        break;
      case "typing":
      case "read":
        // Shown from the session's state: `typing` events, unread counts.
        break;
      case "edited":
      case "deleted": {
        // The session applied the change first (latest edit wins; a tombstone is final).
        const entry = this.sync(f.messageId);
        if (f.type === "deleted" && this.editing?.id === f.messageId) this.editing = undefined;
        if (entry && f.type === "deleted" && f.by !== this.me.userId && entry.userId === this.me.userId) {
          const key = changeConversation(f, this.me.userId);
          if (key) this.store.addNotice(key, "notice", `Your message was deleted by ${f.by}.`);
        }
        break;
      }
      case "kicked": {
        // The session no longer counts the room as joined; the page says who removed the user and until when.
        const key = roomKey(f.roomId);
        this.store.remove(key);
        if (this.selected === key) {
          const next = this.session.currentRoom;
          this.selected = next ? roomKey(next) : (this.store.keys("@")[0] ?? roomKey(DEFAULT_ROOM));
        }
        this.store.addNotice(
          this.selected,
          "error",
          `You were removed from #${f.roomId} by ${f.by}; you can join it again at ${shortDateTime(f.until)}.`,
        );
        break;
      }
      case "userKicked":
        this.store.addNotice(
          roomKey(f.roomId),
          "notice",
          `${f.userId} is kept out of #${f.roomId} until ${shortDateTime(f.until)} (${f.connections} connection${f.connections === 1 ? "" : "s"} removed).`,
        );
        break;
      case "pong":
        return;
      case "error":
        this.onErrorFrame(f);
        break;
      case "gateway":
        this.store.addNotice(this.selected, "error", `The API failed: ${f.message}.`);
        break;
    }
    this.render();
  }

  /** Errors are shown where they happened: on the message, by the join box, or in the conversation. */
  private onErrorFrame(f: ErrorFrame): void {
    // The session replaces a connection the server forgot and resends the message: not a failure.
    if (isUnregisteredConnectionError(f)) return;
    // Shown by whoever asked (the message's own note, or the conversation): see change(), kick(), react().
    if (f.requestType === "edit" || f.requestType === "delete" || f.requestType === "kick" || f.requestType === "react") return;
    // A read position that could not be saved is retried with the next message shown; nothing to tell.
    if (f.requestType === "read") return;
    const text = errorText(f);
    if (f.clientMessageId && this.store.updatePending(f.clientMessageId, { state: "failed", note: `not sent: ${text}` })) {
      // Also announced (role="alert") by the message box, where the user will try again.
      showError($("composer-error"), `Your last message was not sent: ${text}`);
      return;
    }
    if (f.requestType === "join") {
      showError($("join-error"), text);
      return;
    }
    this.store.addNotice(this.selected, "error", f.requestType ? `${f.requestType}: ${text}` : text);
  }

  /** Copies the session's current state of a message (edited text, tombstone) onto its entry. */
  private sync(messageId: string): MessageEntry | undefined {
    const state = this.session.messages.get(messageId);
    return state ? this.store.applyState(state) : undefined;
  }

  /**
   * Sends an edit or delete of a shown message; its outcome is written under the message: nothing
   * once done (the server's `edited` or `deleted` frame redraws it), the reason when refused.
   */
  private change(entry: MessageEntry, request: (m: LoggedMessage) => Promise<RequestOutcome<unknown>>, verb: string): void {
    const state = this.session.messages.get(entry.id);
    if (!state) {
      entry.change = { pending: false, text: `not ${verb}: unknown message` };
      this.renderMessages();
      return;
    }
    entry.change = { pending: true, text: verb === "edited" ? "saving…" : "deleting…" };
    this.renderMessages();
    void request(state).then((outcome) => {
      if (this.stopped) return;
      entry.change = outcome.ok ? undefined : { pending: false, text: `not ${verb}: ${failureText(outcome)}` };
      this.renderMessages();
    });
  }

  /** A private conversation not shown gets one more unread (rooms show the session's counts: renderSidebar). */
  private bump(key: ConversationKey): void {
    if (key !== this.selected && key.startsWith("@")) this.store.get(key).unread += 1;
  }

  /** Asks for the newest page, an older one (`cursor`), a newer one (`cursor`, "after") or the one after the read position. */
  private requestHistory(key: ConversationKey, cursor?: string, direction: "before" | "after" | "fromRead" = "before"): void {
    this.store.get(key).historyRequested = true;
    const target = key.startsWith("#") ? { roomId: key.slice(1) } : { withUserId: key.slice(1) };
    if (direction === "before") this.forward.delete(key);
    else this.forward.add(key);
    this.session.history(
      target,
      direction === "fromRead" ? { fromRead: true } : cursor ? (direction === "after" ? { after: cursor } : { before: cursor }) : {},
    );
  }

  /**
   * The room shown is read up to its newest message (or, while a newer page is still to be loaded,
   * up to the end of the pages read forward): the session moves the position and sends it, throttled.
   */
  private markShownRead(): void {
    if (!this.selected.startsWith("#") || document.visibilityState === "hidden") return;
    const c = this.store.get(this.selected);
    let newest: string | undefined;
    if (c.newerCursor !== undefined) newest = c.forwardEnd;
    else {
      for (const e of c.entries) if (e.kind === "message" && e.state === "sent" && !e.id.startsWith("local:")) newest = e.id;
    }
    if (newest !== undefined) this.session.markRead(this.selected.slice(1), newest);
  }

  /** Adds or takes back this user's reaction; a refusal is written under the message. */
  react(entry: MessageEntry, emoji: string): void {
    const state = this.session.messages.get(entry.id);
    if (!state) return;
    this.picking = undefined;
    const mine = state.reactions.some((r) => r.emoji === emoji && r.me);
    void this.session.react(targetOf(state.conversation), state.messageId, emoji, mine).then((outcome) => {
      if (this.stopped) return;
      entry.change = outcome.ok
        ? undefined
        : { pending: false, text: `reaction not ${mine ? "removed" : "added"}: ${failureText(outcome)}` };
      this.renderMessages();
    });
    this.renderMessages();
    (document.querySelector(`[data-focus="react:${CSS.escape(entry.id)}"]`) as HTMLElement | null)?.focus();
  }

  /** The user is typing into the message box: the conversation is told (the session throttles). */
  typed(text: string): void {
    if (!text.trim() || text.startsWith("/")) return;
    const target = this.selected.startsWith("#") ? { roomId: this.selected.slice(1) } : { withUserId: this.selected.slice(1) };
    this.session.typing(target);
  }

  loadNewer(): void {
    const c = this.store.get(this.selected);
    if (c.newerCursor) this.requestHistory(this.selected, c.newerCursor, "after");
  }

  // Actions ----------------------------------------------------------------------------------

  select(key: ConversationKey): void {
    this.selected = key;
    this.editing = undefined;
    this.confirming = undefined;
    this.picking = undefined;
    this.store.get(key).unread = 0;
    if (key.startsWith("#")) this.session.selectRoom(key.slice(1));
    else if (!this.store.get(key).historyRequested) this.requestHistory(key);
    showError($("composer-error"), undefined);
    this.render();
  }

  submitComposer(text: string): boolean {
    const command = parseCommand(text);
    showError($("composer-error"), undefined);
    switch (command.kind) {
      case "none":
        return false;
      case "invalid":
        showError($("composer-error"), command.message);
        return false;
      case "help":
        this.store.addNotice(
          this.selected,
          "notice",
          "Commands: /join <room>, /leave <room>, /private <userId> <message>, /rooms, /history [room] [n], /more, /who [room], /edit <text>, /delete (your last message), /kick <userId> [minutes], /quit. Plain text sends to this conversation.",
        );
        this.renderMessages();
        return true;
      case "quit":
        this.onSignOut();
        return true;
      case "join":
        return this.join(command.roomId);
      case "leave":
        return this.session.leave(command.roomId);
      case "rooms":
        return this.session.listRooms();
      case "history": {
        const key = command.withUserId ? userKey(command.withUserId) : command.roomId ? roomKey(command.roomId) : this.selected;
        this.requestHistory(key);
        return true;
      }
      case "unread":
        this.requestHistory(command.roomId ? roomKey(command.roomId) : this.selected, undefined, "fromRead");
        return true;
      case "newer":
        if (!this.store.get(this.selected).newerCursor) {
          showError($("composer-error"), "No newer messages to load here.");
          return false;
        }
        this.loadNewer();
        return true;
      case "react": {
        const m = command.ref !== undefined ? this.session.messages.ref(command.ref) : this.session.messages.newest(this.selected);
        const entry = m ? this.store.findMessage(m.messageId) : undefined;
        if (!m || !entry) {
          showError($("composer-error"), "No message to react to here: use the React button of a message.");
          return false;
        }
        void this.session.react(targetOf(m.conversation), m.messageId, command.emoji, command.remove).then((outcome) => {
          if (this.stopped || outcome.ok) return;
          showError($("composer-error"), `Reaction not ${command.remove ? "removed" : "added"}: ${failureText(outcome)}`);
        });
        return true;
      }
      case "more":
        if (!this.store.get(this.selected).olderCursor) {
          showError($("composer-error"), "No older messages to load here.");
          return false;
        }
        this.loadOlder();
        return true;
      case "who": {
        const roomId = command.roomId ?? (this.selected.startsWith("#") ? this.selected.slice(1) : this.session.currentRoom);
        if (!roomId || (!this.session.rooms.includes(roomId) && !this.session.pendingJoins.includes(roomId))) {
          showError($("composer-error"), roomId ? `You are not in #${roomId}.` : "You are in no room.");
          return false;
        }
        // Right after `/join <room>` the member list is not known yet: answer once the join is.
        this.session.afterRoomSettles(roomId, () => {
          if (this.stopped) return;
          if (!this.session.rooms.includes(roomId)) {
            showError($("composer-error"), `You are not in #${roomId}.`);
            return;
          }
          const names = this.session.members(roomId).map((m) => (m.username === m.userId ? m.userId : `${m.username} (${m.userId})`));
          this.store.addNotice(this.selected, "notice", `In #${roomId}: ${names.join(", ") || "nobody"}.`);
          this.renderMessages();
        });
        return true;
      }
      case "edit":
      case "delete": {
        // The page shows no references: `/edit <text>` and `/delete` act on your last message here.
        const m =
          command.ref !== undefined ? this.session.messages.ref(command.ref) : this.session.messages.lastOf(this.me.userId, this.selected);
        const entry = m ? this.store.findMessage(m.messageId) : undefined;
        if (!entry) {
          showError(
            $("composer-error"),
            `No message of yours to ${command.kind} here: use the ${command.kind === "edit" ? "Edit" : "Delete"} button of a message.`,
          );
          return false;
        }
        if (command.kind === "delete") this.deleteMessage(entry);
        else this.change(entry, (s) => this.session.editMessage(targetOf(s.conversation), s.messageId, command.message), "edited");
        return true;
      }
      case "kick": {
        const roomId = command.roomId ?? (this.selected.startsWith("#") ? this.selected.slice(1) : undefined);
        if (!roomId) {
          showError($("composer-error"), "Name the room: /kick #room <userId> [minutes].");
          return false;
        }
        return this.kick(roomId, command.userId, command.minutes);
      }
      case "private":
        return this.sendPrivate(command.toUserId, command.message);
      case "chat":
        if (this.selected.startsWith("@")) return this.sendPrivate(this.selected.slice(1), command.message);
        return this.sendChat(this.selected.slice(1), command.message);
    }
  }

  /** Edit, in place: the message's text becomes a field (Enter saves, Escape cancels). */
  startEdit(entry: MessageEntry): void {
    this.editing = { id: entry.id, draft: entry.text };
    this.confirming = undefined;
    this.renderMessages();
    const input = document.getElementById("edit-input") as HTMLInputElement | null;
    input?.focus();
    input?.select();
  }

  saveEdit(entry: MessageEntry): void {
    const draft = this.editing?.draft ?? entry.text;
    this.editing = undefined;
    if (draft === entry.text || !draft.trim()) {
      this.renderMessages();
      this.focusMessage(entry.id, "edit");
      return;
    }
    this.change(entry, (m) => this.session.editMessage(targetOf(m.conversation), m.messageId, draft), "edited");
    this.focusMessage(entry.id, "edit");
  }

  cancelEdit(id: string): void {
    this.editing = undefined;
    this.renderMessages();
    this.focusMessage(id, "edit");
  }

  deleteMessage(entry: MessageEntry): void {
    this.confirming = undefined;
    this.change(entry, (m) => this.session.deleteMessage(targetOf(m.conversation), m.messageId), "deleted");
  }

  /** Asks for a confirmation in place (a Delete or a Kick cannot be undone), focused on its button. */
  confirm(kind: "delete" | "kick", id: string): void {
    this.confirming = { kind, id };
    this.editing = undefined;
    this.render();
    (document.querySelector(`[data-focus="confirm-${kind}:${CSS.escape(id)}"]`) as HTMLElement | null)?.focus();
  }

  cancelConfirm(kind: "delete" | "kick", id: string): void {
    this.confirming = undefined;
    this.render();
    (document.querySelector(`[data-focus="${kind}:${CSS.escape(id)}"]`) as HTMLElement | null)?.focus();
  }

  kick(roomId: string, userId: string, minutes?: number): boolean {
    this.confirming = undefined;
    void this.session.kick(roomId, userId, minutes).then((outcome) => {
      if (this.stopped || outcome.ok) return;
      this.store.addNotice(roomKey(roomId), "error", `${userId} was not kicked from #${roomId}: ${failureText(outcome)}`);
      this.render();
    });
    this.render();
    return true;
  }

  private focusMessage(id: string, action: "edit" | "delete"): void {
    (document.querySelector(`[data-focus="${action}:${CSS.escape(id)}"]`) as HTMLElement | null)?.focus();
  }

  /** Does the token moderate this room? For the buttons only: the server decides. */
  private moderating(roomId: string): boolean {
    return roomMatches(this.moderates, roomId);
  }

  join(roomId: string): boolean {
    const room = roomId.trim().replace(/^#/, "");
    if (!room) {
      showError($("join-error"), "Enter a room name.");
      return false;
    }
    if (this.session.rooms.includes(room)) {
      this.select(roomKey(room));
      return true;
    }
    showError($("join-error"), undefined);
    this.pendingSelect = room;
    return this.session.join(room);
  }

  private sendChat(roomId: string, text: string): boolean {
    if (!this.session.rooms.includes(roomId)) {
      showError($("composer-error"), `You are not in #${roomId}: join it first.`);
      return false;
    }
    const id = this.session.chat(text, roomId);
    if (!id) return false;
    this.store.addPending(roomKey(roomId), id, this.me, text);
    this.renderMessages();
    return true;
  }

  private sendPrivate(toUserId: string, text: string): boolean {
    if (toUserId === this.me.userId) {
      showError($("composer-error"), "That is you: pick someone else.");
      return false;
    }
    const key = userKey(toUserId);
    const isNew = !this.store.has(key);
    const id = this.session.private(toUserId, text);
    if (!id) return false;
    this.store.addPending(key, id, this.me, text);
    if (isNew) this.requestHistory(key);
    if (this.selected !== key) this.select(key);
    else this.renderMessages();
    return true;
  }

  openPrivate(userId: string): void {
    const id = userId.trim().replace(/^@/, "");
    if (!id || id === this.me.userId) return;
    this.select(userKey(id));
    $<HTMLInputElement>("composer-input").focus();
  }

  loadOlder(): void {
    const c = this.store.get(this.selected);
    if (c.olderCursor) this.requestHistory(this.selected, c.olderCursor);
  }

  leave(roomId: string): void {
    this.session.leave(roomId);
  }

  refreshRooms(): void {
    this.session.listRooms();
  }

  // Rendering --------------------------------------------------------------------------------

  private render(): void {
    this.renderHeader();
    this.renderMessages();
    this.renderSidebar();
  }

  private renderHeader(): void {
    const title = this.selected.startsWith("#") ? this.selected : `Private: ${this.selected.slice(1)}`;
    $("conv-title").textContent = title;
    $("composer-label").textContent = this.selected.startsWith("#")
      ? `Message ${this.selected}`
      : `Private message to ${this.selected.slice(1)}`;
    $("load-older").hidden = !this.store.get(this.selected).olderCursor;
    this.renderTyping();
  }

  private renderTyping(): void {
    $("typing").textContent = typingText(this.session.typingIn(this.selected).map((m) => m.username));
  }

  /**
   * Under a message: a button per emoji with its count (pressed when the user reacted: pressing
   * takes it back), and "React", which offers a few emoji to add.
   */
  private renderReactions(e: MessageEntry): HTMLElement[] {
    if (e.deletedBy !== undefined || e.state !== "sent" || e.id.startsWith("local:")) return [];
    const state = this.session.messages.get(e.id);
    if (!state) return [];
    const buttons: HTMLElement[] = state.reactions.map((r) => {
      const b = h("button", {
        type: "button",
        "aria-pressed": String(r.me === true),
        "aria-label": `${r.emoji} ${r.count}${r.me ? ", yours: press to take it back" : ": press to add yours"}`,
        "data-emoji": r.emoji,
        "data-focus": `reaction:${e.id}:${r.emoji}`,
      });
      b.textContent = `${r.emoji} ${r.count}`;
      b.addEventListener("click", () => this.react(e, r.emoji));
      return b;
    });
    if (this.picking === e.id) {
      for (const emoji of QUICK_REACTIONS) {
        if (state.reactions.some((r) => r.emoji === emoji)) continue;
        const b = h("button", {
          type: "button",
          "aria-label": `React with ${emoji}`,
          "data-emoji": emoji,
          "data-focus": `pick:${e.id}:${emoji}`,
        });
        b.textContent = emoji;
        b.addEventListener("click", () => this.react(e, emoji));
        buttons.push(b);
      }
    }
    buttons.push(
      linkButton(
        this.picking === e.id ? "Close" : "React",
        this.picking === e.id ? "Close the emoji choice" : `React to the message of ${e.username}: ${excerpt(e.text)}`,
        () => {
          this.picking = this.picking === e.id ? undefined : e.id;
          this.renderMessages();
          const first = this.picking === e.id ? QUICK_REACTIONS.find((x) => !state.reactions.some((r) => r.emoji === x)) : undefined;
          const focus = first !== undefined ? `pick:${e.id}:${first}` : `react:${e.id}`;
          (document.querySelector(`[data-focus="${CSS.escape(focus)}"]`) as HTMLElement | null)?.focus();
        },
        { focus: `react:${e.id}` },
      ),
    );
    return [h("div", { className: "reactions", role: "group", "aria-label": "Reactions" }, ...buttons)];
  }

  private renderEntry(e: Entry): HTMLLIElement {
    if (e.kind !== "message") return h("li", { className: e.kind, text: e.text });
    const own = !e.system && e.userId === this.me.userId;
    const deleted = e.deletedBy !== undefined;
    const classes = [own ? "own" : "", e.system ? "system" : "", e.state === "failed" ? "failed" : "", deleted ? "deleted" : ""]
      .filter(Boolean)
      .join(" ");
    const state = e.state === "sending" ? "sending…" : (e.note ?? "");
    const author = e.system
      ? "System notice"
      : own
        ? `${e.username} (you)`
        : e.username === e.userId
          ? e.userId
          : `${e.username} (${e.userId})`;
    const by = deleted ? deletedByOther({ userId: e.userId, deletedBy: e.deletedBy, ...(e.system ? { system: true } : {}) }) : undefined;
    const editing = this.editing?.id === e.id && !deleted;
    return h(
      "li",
      { className: classes, "data-message-id": e.id, "data-state": e.state },
      h(
        "div",
        { className: "msg-meta" },
        h("span", { className: "msg-author", text: author }),
        h("time", { className: "msg-time", datetime: e.sentAt, text: shortTime(e.sentAt) }),
        // The edit's time is in the tooltip; the word is what is announced.
        ...(e.editedAt !== undefined && !deleted
          ? [h("span", { className: "msg-edited", title: `edited ${shortDateTime(e.editedAt)}`, text: "(edited)" })]
          : []),
      ),
      editing
        ? this.renderEditForm(e)
        : deleted
          ? h("div", { className: "msg-text tombstone", text: by === undefined ? "Message deleted" : `Message deleted by ${by}` })
          : h("div", { className: "msg-text", text: e.text }),
      // Below the text, so the outcome of a long message stays next to the box it was typed in.
      ...(state ? [h("div", { className: `msg-note${e.state === "failed" ? " bad" : ""}`, text: state })] : []),
      ...(e.change ? [h("div", { className: `msg-note${e.change.pending ? "" : " bad"}`, text: e.change.text })] : []),
      ...(editing ? [] : this.renderReactions(e)),
      ...(editing ? [] : this.renderActions(e, own, deleted, author)),
    );
  }

  /**
   * Edit and Delete on the user's own messages (rooms and private), Delete on any message of a room
   * the token moderates. Delete asks for a confirmation in place.
   */
  private renderActions(e: MessageEntry, own: boolean, deleted: boolean, author: string): HTMLElement[] {
    const room = this.selected.startsWith("#") ? this.selected.slice(1) : undefined;
    const canDelete = own || (room !== undefined && this.moderating(room));
    if (deleted || e.state !== "sent" || e.id.startsWith("local:") || !canDelete || e.change?.pending) return [];
    const what = own ? `your message: ${excerpt(e.text)}` : `the message of ${author}: ${excerpt(e.text)}`;
    if (this.confirming?.kind === "delete" && this.confirming.id === e.id) {
      return [
        h(
          "div",
          { className: "msg-actions", role: "group", "aria-label": "Delete this message?" },
          h("span", { className: "hint", text: "Delete this message?" }),
          linkButton("Delete for everyone", `Delete ${what} for everyone`, () => this.deleteMessage(e), {
            focus: `confirm-delete:${e.id}`,
            danger: true,
          }),
          linkButton("Cancel", "Keep the message", () => this.cancelConfirm("delete", e.id)),
        ),
      ];
    }
    const buttons: HTMLElement[] = [];
    if (own) buttons.push(linkButton("Edit", `Edit ${what}`, () => this.startEdit(e), { focus: `edit:${e.id}` }));
    buttons.push(linkButton("Delete", `Delete ${what}`, () => this.confirm("delete", e.id), { focus: `delete:${e.id}` }));
    return [h("div", { className: "msg-actions" }, ...buttons)];
  }

  /** Kick, for moderators of the room: keeps the user out for the default time, after a confirmation. */
  private renderKick(roomId: string, m: { userId: string; username: string }): HTMLElement[] {
    if (this.confirming?.kind === "kick" && this.confirming.id === m.userId) {
      return [
        linkButton(
          `Kick for ${KICK_DEFAULT_MINUTES} min`,
          `Kick ${m.username} out of #${roomId} for ${KICK_DEFAULT_MINUTES} minutes`,
          () => this.kick(roomId, m.userId),
          { focus: `confirm-kick:${m.userId}`, danger: true },
        ),
        linkButton("Cancel", `Do not kick ${m.username}`, () => this.cancelConfirm("kick", m.userId)),
      ];
    }
    return [
      linkButton("Kick", `Kick ${m.username} out of #${roomId}`, () => this.confirm("kick", m.userId), { focus: `kick:${m.userId}` }),
    ];
  }

  /** The text of a message being edited, as a labelled field: Enter (or Save) saves, Escape cancels. */
  private renderEditForm(e: MessageEntry): HTMLFormElement {
    const input = h("input", { id: "edit-input", name: "message", maxlength: "16000", autocomplete: "off" });
    input.value = this.editing?.draft ?? e.text;
    input.addEventListener("input", () => {
      if (this.editing) this.editing.draft = input.value;
    });
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") {
        ev.preventDefault();
        this.cancelEdit(e.id);
      }
    });
    const cancel = h("button", { type: "button", className: "secondary" }, "Cancel");
    cancel.addEventListener("click", () => this.cancelEdit(e.id));
    const form = h(
      "form",
      { className: "msg-edit", "aria-label": "Edit message" },
      h("label", { for: "edit-input", className: "visually-hidden", text: "Edit your message" }),
      h("div", { className: "row" }, input, h("button", { type: "submit" }, "Save"), cancel),
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.saveEdit(e);
    });
    return form;
  }

  private renderMessages(): void {
    const list = $<HTMLOListElement>("messages");
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    const c = this.store.get(this.selected);
    const entries = c.entries;
    const restore = this.saveFocus(list);
    const items = entries.map((e) => this.renderEntry(e));
    // "New messages" before the first message after the read position the room was opened at.
    const mark = c.readMark;
    const first = mark === undefined ? -1 : entries.findIndex((e) => e.kind === "message" && !e.id.startsWith("local:") && e.id > mark);
    if (first >= 0) items.splice(first, 0, h("li", { className: "unread-divider", role: "separator", text: "New messages" }));
    list.replaceChildren(...(items.length ? items : [h("li", { className: "notice", text: "No messages yet." })]));
    restore();
    if (atBottom) list.scrollTop = list.scrollHeight;
    $("load-older").hidden = !c.olderCursor;
    $("load-newer").hidden = !c.newerCursor;
    this.markShownRead();
  }

  /**
   * The list is redrawn when anything arrives: keyboard focus (a message's button, the edit field
   * and its caret, a member's Kick) must stay where it was. Returns what puts it back.
   */
  private saveFocus(container: HTMLElement): () => void {
    const active = document.activeElement;
    if (!(active instanceof HTMLElement) || !container.contains(active)) return () => undefined;
    const key =
      active.id === "edit-input" ? "#edit-input" : active.dataset.focus ? `[data-focus="${CSS.escape(active.dataset.focus)}"]` : undefined;
    if (!key) return () => undefined;
    const caret = active instanceof HTMLInputElement ? [active.selectionStart, active.selectionEnd] : undefined;
    return () => {
      const again = container.querySelector(key);
      if (!(again instanceof HTMLElement)) return;
      again.focus();
      if (caret && again instanceof HTMLInputElement) again.setSelectionRange(caret[0], caret[1]);
    };
  }

  private renderSidebar(): void {
    // Alphabetical, so the list does not reorder itself when rooms are joined again after a reconnection.
    const rooms = [...this.session.rooms].sort();
    const roomItems = rooms.map((roomId) => {
      const key = roomKey(roomId);
      // The session's count (the server's, kept current); the room shown is being read.
      const unread = key === this.selected ? undefined : this.session.unread(roomId);
      const select = h(
        "button",
        { type: "button", className: "select", "aria-current": String(key === this.selected), "data-room": roomId },
        `#${roomId}`,
      );
      if (unread?.unread) {
        const label = unreadLabel(unread);
        select.append(h("span", { className: "badge", text: label, "aria-label": `${label} unread` }));
      }
      select.addEventListener("click", () => this.select(key));
      return h(
        "li",
        {},
        select,
        linkButton("Leave", `Leave #${roomId}`, () => this.leave(roomId)),
      );
    });
    $("my-rooms").replaceChildren(...(roomItems.length ? roomItems : [h("li", { className: "empty", text: "No rooms joined." })]));

    const currentRoom = this.selected.startsWith("#") ? this.selected.slice(1) : this.session.currentRoom;
    $("people-title").textContent = currentRoom ? `People in #${currentRoom}` : "People";
    const members = currentRoom ? this.session.members(currentRoom) : [];
    const people = members.map((m) => {
      const isMe = m.userId === this.me.userId;
      const label = h("span", {
        className: "name",
        text: `${m.username}${m.username !== m.userId ? ` (${m.userId})` : ""}${isMe ? " — you" : ""}`,
      });
      const li = h("li", { "data-user": m.userId }, label);
      if (!isMe) {
        li.append(linkButton("Message", `Private message to ${m.username}`, () => this.openPrivate(m.userId)));
      }
      if (!isMe && currentRoom && this.moderating(currentRoom)) li.append(...this.renderKick(currentRoom, m));
      return li;
    });
    const restore = this.saveFocus($("people"));
    $("people").replaceChildren(...(people.length ? people : [h("li", { className: "empty", text: "Nobody here yet." })]));
    restore();

    const dms = this.store.keys("@").map((key) => {
      const unread = this.store.get(key).unread;
      const select = h(
        "button",
        { type: "button", className: "select", "aria-current": String(key === this.selected), "data-user": key.slice(1) },
        key.slice(1),
      );
      if (unread) select.append(h("span", { className: "badge", text: String(unread), "aria-label": `${unread} unread` }));
      select.addEventListener("click", () => this.select(key));
      return h("li", {}, select);
    });
    $("dms").replaceChildren(...(dms.length ? dms : [h("li", { className: "empty", text: "No private conversations." })]));

    // For rooms this user is in, the live member list (kept current by presence events) gives the
    // exact count without asking the server again; other rooms show the last `rooms` answer.
    const counts = new Map(this.activeRooms.map((r) => [r.roomId, r.members] as const));
    const unreadIn = (roomId: string): string => {
      const u = rooms.includes(roomId) ? undefined : this.session.unread(roomId);
      return u?.unread ? ` · ${unreadLabel(u)} unread` : "";
    };
    for (const roomId of rooms) counts.set(roomId, this.session.members(roomId).length || (counts.get(roomId) ?? 0));
    const listed = [...counts.entries()]
      .filter(([, n]) => n > 0)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([roomId, members]) => ({ roomId, members }));
    const active = listed.map((r) => {
      const joined = rooms.includes(r.roomId);
      const li = h(
        "li",
        {},
        h("span", { className: "name", text: `#${r.roomId} · ${r.members} user${r.members === 1 ? "" : "s"}${unreadIn(r.roomId)}` }),
      );
      if (!joined) {
        li.append(linkButton("Join", `Join #${r.roomId}`, () => this.join(r.roomId)));
      }
      return li;
    });
    $("active-rooms").replaceChildren(
      ...(active.length ? active : [h("li", { className: "empty", text: "Press Refresh to list rooms." })]),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Wiring

let page: ChatPage | undefined;

function showSignIn(message?: string): void {
  const current = page;
  page = undefined;
  void current?.stop();
  $("chat-view").hidden = true;
  $("signin-view").hidden = false;
  $("whoami").hidden = true;
  $("signout").hidden = true;
  $("status").textContent = "Signed out";
  $("status").className = "status";
  showError($("signin-error"), message);
  $<HTMLButtonElement>("signin-submit").disabled = false;
  $<HTMLInputElement>("signin-name").focus();
}

function init(): void {
  const endpoint = defaultEndpoint();
  $<HTMLInputElement>("signin-endpoint").value = endpoint;
  $<HTMLInputElement>("signin-name").value = localStorage.getItem("chat.name") ?? "";
  // Without a build-time endpoint or a local token service, the deployed-API fields are needed.
  if (!endpoint || !config.tokenUrl) $<HTMLDetailsElement>("signin-advanced").open = true;

  $<HTMLFormElement>("signin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const identity = readSignIn();
    if (typeof identity === "string") {
      showError($("signin-error"), identity);
      return;
    }
    showError($("signin-error"), undefined);
    localStorage.setItem("chat.name", identity.username);
    localStorage.setItem("chat.endpoint", identity.endpoint);
    $("signin-view").hidden = true;
    $("chat-view").hidden = false;
    page = new ChatPage(identity, (message) => showSignIn(message));
    page.start();
  });

  $("signout").addEventListener("click", () => showSignIn());

  $<HTMLFormElement>("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $<HTMLInputElement>("composer-input");
    if (page?.submitComposer(input.value)) input.value = "";
  });
  $<HTMLFormElement>("join-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $<HTMLInputElement>("join-input");
    if (page?.join(input.value)) input.value = "";
  });
  $<HTMLFormElement>("dm-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $<HTMLInputElement>("dm-input");
    page?.openPrivate(input.value);
    input.value = "";
  });
  $("refresh-rooms").addEventListener("click", () => page?.refreshRooms());
  $("load-older").addEventListener("click", () => page?.loadOlder());
  $("load-newer").addEventListener("click", () => page?.loadNewer());
  $<HTMLInputElement>("composer-input").addEventListener("input", (ev) => page?.typed((ev.target as HTMLInputElement).value));
  $<HTMLInputElement>("signin-name").focus();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
else init();
