/**
 * Unit tests of the clients' shared protocol code: command parsing, frame parsing, backoff, and the
 * session's connection policy (rejoin and resend after a drop, give-up, refusal) over an in-memory
 * socket that records what the session sends and lets the test play the server.
 */
import { strict as assert } from "node:assert";
import { HELP_TEXT, parseCommand } from "../../clients/shared/commands";
import { MessageLog, deletedByOther } from "../../clients/shared/messages";
import { MAX_FRAME_BYTES, connectUrl, encodeFrame, parseServerFrame, utf8Length } from "../../clients/shared/protocol";
import {
  ChatSession,
  DEFAULT_TYPING_INTERVAL_MS,
  DEFAULT_TYPING_SHOW_MS,
  backoffDelay,
  redactToken,
  unreadLabel,
  type SessionEvent,
  type SocketHandlers,
} from "../../clients/shared/session";
import { parseArgs, unverifiedClaims, EXIT } from "../../clients/terminal/args";
import { formatFrame, sanitize } from "../../clients/terminal/format";
import { CatchUp } from "../../clients/terminal/catchUp";

describe("clients: command parsing", () => {
  it("sends plain text to the current room and keeps its spacing", () => {
    assert.deepEqual(parseCommand("hello  there "), { kind: "chat", message: "hello  there " });
  });

  it("parses every command of the issue", () => {
    assert.deepEqual(parseCommand("/chat hi all"), { kind: "chat", message: "hi all" });
    assert.deepEqual(parseCommand("/join random"), { kind: "join", roomId: "random" });
    assert.deepEqual(parseCommand("/join #random"), { kind: "join", roomId: "random" });
    assert.deepEqual(parseCommand("/leave random"), { kind: "leave", roomId: "random" });
    assert.deepEqual(parseCommand("/private bob see you at 5"), { kind: "private", toUserId: "bob", message: "see you at 5" });
    assert.deepEqual(parseCommand("/rooms"), { kind: "rooms" });
    assert.deepEqual(parseCommand("/history"), { kind: "history" });
    assert.deepEqual(parseCommand("/history random"), { kind: "history", roomId: "random" });
    assert.deepEqual(parseCommand("/history @bob"), { kind: "history", withUserId: "bob" });
    assert.deepEqual(parseCommand("/history random 20"), { kind: "history", roomId: "random", limit: 20 });
    assert.deepEqual(parseCommand("/history 5"), { kind: "history", limit: 5 });
    assert.deepEqual(parseCommand("/history #42"), { kind: "history", roomId: "42" });
    assert.deepEqual(parseCommand("/history @bob 100"), { kind: "history", withUserId: "bob", limit: 100 });
    assert.deepEqual(parseCommand("/more"), { kind: "more" });
    assert.deepEqual(parseCommand("/who"), { kind: "who" });
    assert.deepEqual(parseCommand("/who #random"), { kind: "who", roomId: "random" });
    assert.deepEqual(parseCommand("/quit"), { kind: "quit" });
    assert.deepEqual(parseCommand("/help"), { kind: "help" });
  });

  it("answers a usage message for a command with missing or extra arguments", () => {
    for (const input of [
      "/join",
      "/join two words",
      "/leave",
      "/private bob",
      "/private",
      "/chat   ",
      "/rooms now",
      "/history @",
      "/history 0",
      "/history 101",
      "/history general x",
      "/history a b c",
      "/more please",
      "/who a b",
    ]) {
      const c = parseCommand(input);
      assert.equal(c.kind, "invalid", input);
    }
    const unknown = parseCommand("/dance");
    assert.equal(unknown.kind, "invalid");
    assert.match((unknown as { message: string }).message, /unknown command "\/dance"/);
  });

  it("ignores blank lines and lets // send a message that starts with a slash", () => {
    assert.deepEqual(parseCommand("   "), { kind: "none" });
    assert.deepEqual(parseCommand("//shrug"), { kind: "chat", message: "/shrug" });
  });
});

describe("clients: frame parsing", () => {
  it("parses each server frame of the protocol", () => {
    const chat = parseServerFrame(
      JSON.stringify({
        type: "chat",
        roomId: "general",
        messageId: "m1",
        userId: "alice",
        username: "Alice",
        message: "hi",
        sentAt: "2026-01-01T10:00:00.000Z",
        clientMessageId: "c1",
      }),
    );
    assert.deepEqual(chat, {
      type: "chat",
      roomId: "general",
      messageId: "m1",
      userId: "alice",
      username: "Alice",
      message: "hi",
      sentAt: "2026-01-01T10:00:00.000Z",
      clientMessageId: "c1",
    });
    assert.equal(parseServerFrame('{"type":"presence","event":"left","roomId":"r","userId":"u","username":"U"}').type, "presence");
    assert.deepEqual(parseServerFrame('{"type":"joined","roomId":"r","members":[{"userId":"u","username":"U"}]}'), {
      type: "joined",
      roomId: "r",
      members: [{ userId: "u", username: "U" }],
      memberCount: 1,
    });
    assert.deepEqual(parseServerFrame('{"type":"delivered","messageId":"m","deliveredTo":2}'), {
      type: "delivered",
      messageId: "m",
      deliveredTo: 2,
    });
    assert.deepEqual(parseServerFrame('{"type":"rooms","rooms":[{"roomId":"a","members":3}]}'), {
      type: "rooms",
      rooms: [{ roomId: "a", members: 3 }],
    });
    assert.deepEqual(parseServerFrame('{"type":"pong"}'), { type: "pong" });
    assert.deepEqual(parseServerFrame('{"type":"error","code":"RATE_LIMITED","message":"slow down","requestType":"chat"}'), {
      type: "error",
      code: "RATE_LIMITED",
      message: "slow down",
      requestType: "chat",
    });
  });

  it("reads private history messages and epoch-millisecond timestamps", () => {
    const h = parseServerFrame(
      JSON.stringify({
        type: "history",
        withUserId: "bob",
        messages: [{ messageId: "m", fromUserId: "alice", fromUsername: "Alice", toUserId: "bob", message: "psst", sentAt: 0 }],
        next: "cur",
      }),
    );
    assert.equal(h.type, "history");
    if (h.type !== "history") return;
    assert.equal(h.next, "cur");
    assert.deepEqual(h.messages[0], {
      messageId: "m",
      userId: "alice",
      username: "Alice",
      toUserId: "bob",
      message: "psst",
      sentAt: "1970-01-01T00:00:00.000Z",
    });
  });

  it("turns API Gateway's own answers into gateway frames", () => {
    assert.deepEqual(parseServerFrame('{"message":"Internal server error","connectionId":"c=","requestId":"r="}'), {
      type: "gateway",
      message: "Internal server error",
      connectionId: "c=",
      requestId: "r=",
    });
  });

  it("never throws on malformed input", () => {
    for (const raw of [
      "not json",
      "[1,2]",
      "null",
      '{"type":"chat"}',
      '{"type":"nope"}',
      '{"type":"presence","event":"x","roomId":"r","userId":"u"}',
      "{}",
    ]) {
      const f = parseServerFrame(raw);
      assert.equal(f.type, "invalid", raw);
    }
  });

  it("refuses to send a frame larger than API Gateway's 32 KB frame limit", () => {
    const ok = encodeFrame({ type: "chat", message: "x".repeat(MAX_FRAME_BYTES - 100) });
    assert.equal(ok.ok, true);
    const tooBig = encodeFrame({ type: "chat", message: "é".repeat(MAX_FRAME_BYTES / 2) });
    assert.equal(tooBig.ok, false);
  });

  it("counts UTF-8 bytes like Buffer.byteLength", () => {
    for (const s of ["", "abc", "é", "€", "😀", "a😀b", "\ud800"]) assert.equal(utf8Length(s), Buffer.byteLength(s, "utf8"), s);
  });

  it("builds the connect URL with token, room and display name and refuses non-WebSocket URLs", () => {
    const url = new URL(connectUrl("ws://127.0.0.1:3001/local", { token: "a.b.c", roomId: "lobby", username: "Ann Lee" }));
    assert.equal(url.searchParams.get("token"), "a.b.c");
    assert.equal(url.searchParams.get("roomId"), "lobby");
    assert.equal(url.searchParams.get("username"), "Ann Lee");
    assert.throws(() => connectUrl("http://x/", { token: "t" }), /ws:\/\/ or wss:\/\//);
    assert.equal(new URL(redactToken(url.toString())).searchParams.get("token"), "…");
  });
});

describe("clients: backoff", () => {
  it("grows exponentially, stays within [ceiling/2, ceiling] and is capped", () => {
    const policy = { baseDelayMs: 100, maxDelayMs: 1000 };
    assert.equal(backoffDelay(1, { ...policy, random: () => 0 }), 50);
    assert.equal(backoffDelay(1, { ...policy, random: () => 0.999999 }), 100);
    assert.equal(backoffDelay(3, { ...policy, random: () => 0 }), 200);
    assert.equal(backoffDelay(10, { ...policy, random: () => 0 }), 500);
    assert.equal(backoffDelay(10, { ...policy, random: () => 0.999999 }), 1000);
  });
});

/** An in-memory socket pair: the session holds one end, the test plays API Gateway on the other. */
class FakeServer {
  readonly sockets: Array<{ url: string; sent: unknown[]; handlers: SocketHandlers; open: boolean }> = [];
  refuseWith: number | undefined;
  failBeforeOpen = false;

  factory = (url: string, handlers: SocketHandlers) => {
    const entry = { url, sent: [] as unknown[], handlers, open: false };
    this.sockets.push(entry);
    setImmediate(() => {
      if (this.refuseWith !== undefined) return handlers.onClose({ code: 1006, reason: "", handshakeStatus: this.refuseWith });
      if (this.failBeforeOpen) return handlers.onClose({ code: 1006, reason: "" });
      entry.open = true;
      handlers.onOpen();
    });
    return {
      send: (text: string) => entry.sent.push(JSON.parse(text)),
      close: (code?: number) => {
        if (!entry.open) return;
        entry.open = false;
        setImmediate(() => handlers.onClose({ code: code ?? 1005, reason: "" }));
      },
    };
  };

  get last() {
    return this.sockets[this.sockets.length - 1];
  }
  reply(frame: object) {
    this.last.handlers.onMessage(JSON.stringify(frame));
  }
  drop(code = 1001) {
    const s = this.last;
    s.open = false;
    s.handlers.onClose({ code, reason: "Going away" });
  }
}

const tick = () => new Promise((r) => setImmediate(r));
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.fail(`timed out waiting for ${what}`);
}

function newSession(server: FakeServer, events: SessionEvent[], extra: Partial<ConstructorParameters<typeof ChatSession>[0]> = {}) {
  return new ChatSession({
    endpoint: "ws://127.0.0.1:1/local",
    token: () => "tok",
    username: "Alice",
    userId: "alice",
    socketFactory: server.factory,
    onEvent: (e) => events.push(e),
    reconnect: { baseDelayMs: 5, maxDelayMs: 20, maxAttempts: 3 },
    ...extra,
  });
}

describe("clients: session policy", () => {
  it("connects to the chosen room and asks for its member list", async () => {
    const server = new FakeServer();
    const events: SessionEvent[] = [];
    const s = newSession(server, events, { room: "lobby" });
    s.start();
    await until(() => server.last?.open === true, "open");
    assert.equal(new URL(server.last.url).searchParams.get("roomId"), "lobby");
    assert.deepEqual(server.last.sent, [{ type: "join", roomId: "lobby" }]);
    server.reply({
      type: "joined",
      roomId: "lobby",
      members: [
        { userId: "alice", username: "Alice" },
        { userId: "bob", username: "Bob" },
      ],
    });
    assert.deepEqual(s.rooms, ["lobby"]);
    assert.deepEqual(
      s.members("lobby").map((m) => m.userId),
      ["alice", "bob"],
    );
    server.reply({ type: "presence", event: "left", roomId: "lobby", userId: "bob", username: "Bob" });
    assert.deepEqual(
      s.members("lobby").map((m) => m.userId),
      ["alice"],
    );
    // A second `left` for the same user (two devices leaving at once) is flagged as redundant.
    server.reply({ type: "presence", event: "left", roomId: "lobby", userId: "bob", username: "Bob" });
    server.reply({ type: "presence", event: "joined", roomId: "lobby", userId: "alice", username: "Alice" });
    const presence = events.filter((e) => e.type === "frame" && e.frame.type === "presence");
    assert.deepEqual(
      presence.map((e) => e.type === "frame" && e.redundant === true),
      [false, true, true],
    );
    await s.close();
    assert.equal(s.status, "closed");
  });

  it("flags a chat message received again (a large room's delivery retried) as redundant, and counts it unread once", async () => {
    const server = new FakeServer();
    const events: SessionEvent[] = [];
    const s = newSession(server, events, { room: "lobby" });
    s.start();
    await until(() => server.last?.open === true, "open");
    server.reply({ type: "joined", roomId: "lobby", members: [{ userId: "alice", username: "Alice" }], unread: 0 });
    const chat = {
      type: "chat",
      roomId: "lobby",
      messageId: "0190f3a0-0000-7000-8000-000000000001",
      userId: "bob",
      username: "Bob",
      message: "hello",
      sentAt: "2026-12-05T10:00:00.000Z",
    } as const;
    server.reply(chat);
    server.reply(chat);
    const chats = events.filter((e) => e.type === "frame" && e.frame.type === "chat");
    assert.deepEqual(
      chats.map((e) => e.type === "frame" && e.redundant === true),
      [false, true],
    );
    assert.equal(s.unread("lobby")?.unread, 1);
    await s.close();
  });

  it("after a drop, reconnects into the current room, rejoins the others and resends unacknowledged messages", async () => {
    const server = new FakeServer();
    const events: SessionEvent[] = [];
    const s = newSession(server, events);
    s.start();
    await until(() => server.last?.open === true, "open");
    server.reply({ type: "joined", roomId: "general", members: [] });
    s.join("random");
    server.reply({ type: "joined", roomId: "random", members: [] });
    assert.equal(s.currentRoom, "random");
    const acked = s.chat("first");
    server.reply({
      type: "chat",
      roomId: "random",
      messageId: "m1",
      userId: "alice",
      username: "Alice",
      message: "first",
      sentAt: "2026-01-01T00:00:00Z",
      clientMessageId: acked,
    });
    const lost = s.chat("second");
    assert.ok(lost);
    server.drop();
    const second = () => server.sockets.length === 2 && server.sockets[1].open;
    await until(second, "reconnection");
    const url = new URL(server.last.url);
    assert.equal(url.searchParams.get("roomId"), "random");
    const sent = server.last.sent as Array<Record<string, unknown>>;
    assert.deepEqual(
      sent
        .filter((f) => f.type === "join")
        .map((f) => f.roomId)
        .sort(),
      ["general", "random"],
    );
    // The message to #random waits for the rejoin of #random (frames of one connection may run in any order).
    assert.equal(sent.filter((f) => f.type === "chat").length, 0, "not before #random is joined again");
    server.reply({ type: "joined", roomId: "random", members: [] });
    const resent = sent.filter((f) => f.type === "chat");
    assert.equal(resent.length, 1, "only the unacknowledged message is sent again");
    assert.equal(resent[0].clientMessageId, lost, "with the same clientMessageId, so the server stores it once");
    assert.ok(events.some((e) => e.type === "rejoined"));
    await s.close();
  });

  it("replaces a connection the server no longer knows and resends the message it refused", async () => {
    const server = new FakeServer();
    const events: SessionEvent[] = [];
    const s = newSession(server, events);
    s.start();
    await until(() => server.last?.open === true, "open");
    server.reply({ type: "joined", roomId: "general", members: [] });
    const id = s.chat("are you there?");
    server.reply({
      type: "error",
      code: "NOT_CONNECTED",
      message: "this connection is not registered (expired or cleaned up); reconnect",
      requestType: "chat",
      clientMessageId: id,
    });
    await until(() => server.sockets.length === 2 && server.sockets[1].open, "a new connection");
    server.reply({ type: "joined", roomId: "general", members: [] });
    const resent = (server.last.sent as Array<{ type: string; clientMessageId?: string }>).filter((f) => f.type === "chat");
    assert.deepEqual(
      resent.map((f) => f.clientMessageId),
      [id],
    );
    // An ordinary BAD_REQUEST does not reconnect, even one whose text mentions reconnecting.
    server.reply({ type: "error", code: "BAD_REQUEST", message: "roomId: must match; not registered, reconnect", requestType: "join" });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(server.sockets.length, 2);
    await s.close();
  });

  it("after a drop, does not put back in a room a user who had left every room", async () => {
    const server = new FakeServer();
    const s = newSession(server, []);
    s.start();
    await until(() => server.last?.open === true, "open");
    server.reply({ type: "joined", roomId: "general", members: [] });
    s.leave("general");
    server.reply({ type: "left", roomId: "general" });
    assert.equal(s.currentRoom, undefined);
    server.drop();
    await until(() => server.sockets.length === 2 && server.sockets[1].open, "reconnection");
    assert.equal(new URL(server.last.url).searchParams.get("roomId"), "general", "the protocol's default room on connect");
    assert.deepEqual(server.last.sent, [{ type: "leave", roomId: "general" }]);
    await s.close();
  });

  it("follows a rooms listing page by page and shows every room once, as one listing", async () => {
    const server = new FakeServer();
    const events: SessionEvent[] = [];
    const s = newSession(server, events);
    s.start();
    await until(() => server.last?.open === true, "open");
    s.listRooms();
    assert.deepEqual(server.last.sent.at(-1), { type: "rooms" });
    server.reply({ type: "rooms", rooms: [{ roomId: "a", members: 1 }], next: "cursor-1" });
    assert.deepEqual(server.last.sent.at(-1), { type: "rooms", after: "cursor-1" });
    server.reply({ type: "rooms", rooms: [{ roomId: "b", members: 2 }] });
    const listings = events.flatMap((e) => (e.type === "frame" && e.frame.type === "rooms" ? [e.frame] : []));
    assert.deepEqual(listings, [
      {
        type: "rooms",
        rooms: [
          { roomId: "a", members: 1 },
          { roomId: "b", members: 2 },
        ],
      },
    ]);
    await s.close();
  });

  it("queues commands typed while reconnecting and sends them once connected", async () => {
    const server = new FakeServer();
    const events: SessionEvent[] = [];
    const s = newSession(server, events, { reconnect: { baseDelayMs: 30, maxDelayMs: 30, maxAttempts: 3 } });
    s.start();
    await until(() => server.last?.open === true, "open");
    server.drop();
    s.listRooms();
    assert.ok(events.some((e) => e.type === "queued"));
    await until(() => server.sockets.length === 2 && server.sockets[1].open, "reconnection");
    assert.ok((server.last.sent as Array<{ type: string }>).some((f) => f.type === "rooms"));
    await s.close();
  });

  it("gives up after maxAttempts failed reconnections", async () => {
    const server = new FakeServer();
    const events: SessionEvent[] = [];
    const s = newSession(server, events);
    s.start();
    await until(() => server.last?.open === true, "open");
    server.failBeforeOpen = true;
    server.drop();
    await until(() => events.some((e) => e.type === "fatal"), "fatal");
    const fatal = events.find((e) => e.type === "fatal");
    assert.deepEqual(fatal && fatal.type === "fatal" ? fatal.reason : undefined, "gave-up");
    assert.equal(server.sockets.length, 4, "one connection and three attempts");
    assert.equal(s.status, "closed");
  });

  it("backs off and gives up when connections open but the server never answers before dropping them", async () => {
    const server = new FakeServer();
    const events: SessionEvent[] = [];
    const s = newSession(server, events);
    s.start();
    await until(() => server.last?.open === true, "open");
    server.reply({ type: "joined", roomId: "general", members: [] });
    // From now on every connection opens, says nothing, and is dropped.
    for (let i = 0; i < 4; i++) {
      const n = server.sockets.length;
      server.drop();
      if (i === 3) break;
      await until(() => server.sockets.length === n + 1 && server.last.open, "next attempt");
    }
    await until(() => events.some((e) => e.type === "fatal"), "fatal");
    const attempts = events
      .filter(
        (e): e is Extract<SessionEvent, { type: "status" }> =>
          e.type === "status" && e.status === "reconnecting" && e.delayMs !== undefined,
      )
      .map((e) => e.attempt);
    assert.deepEqual(attempts, [1, 2, 3]);
  });

  it("stops at once when the handshake is refused with 403", async () => {
    const server = new FakeServer();
    server.refuseWith = 403;
    const events: SessionEvent[] = [];
    const s = newSession(server, events);
    s.start();
    await until(() => events.some((e) => e.type === "fatal"), "fatal");
    const fatal = events.find((e) => e.type === "fatal");
    assert.equal(fatal && fatal.type === "fatal" ? fatal.reason : undefined, "rejected");
    // A 403 may be the room the token does not grant (issue 16): the message names that too.
    assert.equal(
      fatal && fatal.type === "fatal" ? fatal.message : undefined,
      "the server refused the connection (HTTP 403): the token is invalid, expired, or does not grant room #general",
    );
    await tick();
    assert.equal(server.sockets.length, 1, "no retry with a refused token");
  });

  it("sends a ping at the configured interval", async () => {
    const server = new FakeServer();
    const s = newSession(server, [], { pingIntervalMs: 20 });
    s.start();
    await until(() => (server.last?.sent as Array<{ type: string }> | undefined)?.some((f) => f.type === "ping") === true, "ping");
    await s.close();
  });

  it("settles once every awaited reply or its error has arrived", async () => {
    const server = new FakeServer();
    const s = newSession(server, []);
    s.start();
    await until(() => server.last?.open === true, "open");
    s.history({ roomId: "general" });
    s.private("bob", "hi");
    assert.equal(s.pendingReplies, 3);
    const settled = s.settled(2000);
    server.reply({ type: "joined", roomId: "general", members: [] });
    server.reply({ type: "history", roomId: "general", messages: [] });
    const cmid = (server.last.sent as Array<{ type: string; clientMessageId?: string }>).find((f) => f.type === "private")?.clientMessageId;
    server.reply({ type: "error", code: "BAD_REQUEST", message: "no such user", requestType: "private", clientMessageId: cmid });
    assert.equal(await settled, true);
    await s.close();
  });
});

describe("clients: session keeps the user's order (frames of one connection may run concurrently)", () => {
  type Sent = { type: string; roomId?: string; message?: string; clientMessageId?: string; toUserId?: string };
  const sentOf = (server: FakeServer, socket = server.last): Sent[] => socket.sent as Sent[];
  const brief = (frames: Sent[]) =>
    frames.map((f) => `${f.type}${f.roomId !== undefined ? ` #${f.roomId}` : ""}${f.message !== undefined ? ` ${f.message}` : ""}`);
  /** The server's broadcast of a chat frame the session sent: its answer. */
  const echo = (server: FakeServer, f: Sent) =>
    server.reply({
      type: "chat",
      roomId: f.roomId,
      messageId: `m-${f.clientMessageId}`,
      userId: "alice",
      username: "Alice",
      message: f.message,
      sentAt: "2026-01-01T00:00:00Z",
      clientMessageId: f.clientMessageId,
    });

  async function openSession(extra: Partial<ConstructorParameters<typeof ChatSession>[0]> = {}) {
    const server = new FakeServer();
    const events: SessionEvent[] = [];
    const s = newSession(server, events, extra);
    s.start();
    await until(() => server.last?.open === true, "open");
    server.reply({ type: "joined", roomId: "general", members: [] });
    return { server, events, s };
  }

  it("sends frames about one room one at a time: chat after the join's answer, leave after the chat's, history after the leave's", async () => {
    const { server, s } = await openSession();
    s.join("lobby");
    assert.equal(s.currentRoom, "lobby", "/join makes the room current at once");
    s.chat("in lobby");
    s.leave("lobby");
    s.history({ roomId: "lobby" });
    // Frames about no room are not held.
    s.ping();
    s.listRooms();
    s.private("bob", "psst");
    assert.deepEqual(brief(sentOf(server)), ["join #general", "join #lobby", "ping", "rooms", "private psst"]);
    assert.equal(s.heldCount, 3);
    assert.equal(s.pendingReplies, 7, "held frames count as awaited replies, so settled() waits for them");
    server.reply({ type: "joined", roomId: "lobby", members: [] });
    assert.deepEqual(brief(sentOf(server)).slice(5), ["chat #lobby in lobby"]);
    // A leave handled before the chat would make it fail with NOT_A_MEMBER: it waits for the echo.
    echo(server, sentOf(server)[5]);
    assert.deepEqual(brief(sentOf(server)).slice(6), ["leave #lobby"]);
    server.reply({ type: "left", roomId: "lobby" });
    assert.deepEqual(brief(sentOf(server)).slice(7), ["history #lobby"]);
    assert.equal(s.heldCount, 0);
    assert.equal(s.currentRoom, "general");
    await s.close();
  });

  it("sends plain text typed after /leave of the current room to the previous room, without waiting", async () => {
    const { server, s } = await openSession();
    s.join("lobby");
    server.reply({ type: "joined", roomId: "lobby", members: [] });
    s.leave("lobby");
    assert.equal(s.currentRoom, "general");
    s.chat("back in general");
    assert.deepEqual(brief(sentOf(server)).slice(-2), ["leave #lobby", "chat #general back in general"]);
    await s.close();
  });

  it("releases the held frames in order when the join is refused, and the previous room is current again", async () => {
    const { server, events, s } = await openSession();
    s.join("secret");
    const id = s.chat("for secret only");
    s.leave("secret");
    server.reply({ type: "error", code: "BAD_REQUEST", message: "no", requestType: "join" });
    // Sent to the room the user named (the server answers NOT_A_MEMBER), never to another room.
    assert.deepEqual(brief(sentOf(server)).slice(2), ["chat #secret for secret only"]);
    server.reply({ type: "error", code: "NOT_A_MEMBER", message: "not joined", requestType: "chat", clientMessageId: id });
    assert.deepEqual(brief(sentOf(server)).slice(3), ["leave #secret"]);
    assert.equal(s.currentRoom, "general");
    assert.deepEqual(s.pendingJoins, []);
    assert.equal(events.filter((e) => e.type === "local-error").length, 0);
    await s.close();
  });

  it("a FORBIDDEN join settles that room's join (not an older one), the previous room is current again, and the terminal says why", async () => {
    const { server, events, s } = await openSession();
    s.join("open-room");
    s.join("secret");
    const forbidden = {
      type: "error",
      code: "FORBIDDEN",
      message: "you do not have access to room secret",
      requestType: "join",
      roomId: "secret",
    };
    server.reply(forbidden);
    assert.deepEqual(s.pendingJoins, ["open-room"]);
    assert.equal(s.currentRoom, "open-room");
    const shown = events.filter((e) => e.type === "frame" && e.frame.type === "error");
    assert.equal(shown.length, 1);
    assert.deepEqual(
      formatFrame(shown[0].type === "frame" ? shown[0].frame : (forbidden as never), { now: () => new Date(0) }).map((l) => l.slice(9)),
      ["[error FORBIDDEN] you do not have access to #secret (request join)"],
    );
    await s.close();
  });

  it("lets a message typed in another room, a ping or a private message pass a room that is waiting", async () => {
    const { server, s } = await openSession();
    s.join("lobby");
    s.chat("one");
    s.chat("two");
    s.chat("in general", "general");
    s.private("bob", "psst");
    assert.deepEqual(brief(sentOf(server)).slice(1), ["join #lobby", "chat #general in general", "private psst"]);
    server.reply({ type: "joined", roomId: "lobby", members: [] });
    assert.deepEqual(brief(sentOf(server)).slice(4), ["chat #lobby one"]);
    echo(server, sentOf(server)[4]);
    assert.deepEqual(brief(sentOf(server)).slice(5), ["chat #lobby two"], "messages to one room are stored in the order typed");
    await s.close();
  });

  it("fails the held frames with a local error when the join gets no answer within the hold timeout", async () => {
    const { server, events, s } = await openSession({ holdTimeoutMs: 40 });
    s.join("slow");
    const id = s.chat("waiting");
    s.leave("slow");
    const who: string[] = [];
    s.afterRoomSettles("slow", () => who.push(s.rooms.includes("slow") ? "member" : "not a member"));
    await until(() => events.filter((e) => e.type === "local-error").length === 2, "two local errors");
    const errors = events.filter((e): e is Extract<SessionEvent, { type: "local-error" }> => e.type === "local-error");
    assert.match(errors[0].message, /^not sent \(chat #slow\): no answer to the join of #slow within 0\.04 s$/);
    assert.equal(errors[0].clientMessageId, id, "the web page marks that message as failed");
    assert.match(errors[1].message, /^not sent \(leave #slow\)/);
    assert.deepEqual(who, ["not a member"], "a local action runs anyway");
    assert.deepEqual(brief(sentOf(server)), ["join #general", "join #slow"]);
    assert.equal(s.heldCount, 0);
    assert.equal(s.pendingReplies, 1, "only the join itself is still awaited");
    // Later frames to the room are no longer held.
    s.chat("now", "slow");
    assert.deepEqual(brief(sentOf(server)).slice(2), ["chat #slow now"]);
    await s.close();
  });

  it("runs a local action (/who) after the join's answer has been shown", async () => {
    const { server, events, s } = await openSession();
    s.join("lobby");
    const order: string[] = [];
    s.afterRoomSettles("lobby", () =>
      order.push(
        `who: ${s
          .members("lobby")
          .map((m) => m.userId)
          .join(",")}`,
      ),
    );
    const before = events.length;
    server.reply({
      type: "joined",
      roomId: "lobby",
      members: [
        { userId: "alice", username: "Alice" },
        { userId: "bob", username: "Bob" },
      ],
    });
    assert.deepEqual(order, ["who: alice,bob"]);
    assert.equal(events.length, before + 1, "the joined event was emitted before the action ran");
    // With nothing in flight for the room, the action runs at once.
    s.afterRoomSettles("lobby", () => order.push("again"));
    assert.deepEqual(order, ["who: alice,bob", "again"]);
    await s.close();
  });

  it("sends commands typed before the connection opened in order: the connect room's join first", async () => {
    const server = new FakeServer();
    const s = newSession(server, []);
    s.start();
    s.history({ roomId: "general" });
    s.join("lobby");
    s.chat("hi lobby");
    s.listRooms();
    await until(() => server.last?.open === true, "open");
    assert.equal(
      new URL(server.last.url).searchParams.get("roomId"),
      "general",
      "the first connection goes to the room asked for at start",
    );
    assert.deepEqual(brief(sentOf(server)), ["join #general", "join #lobby", "rooms"]);
    server.reply({ type: "joined", roomId: "lobby", members: [] });
    assert.deepEqual(brief(sentOf(server)).slice(3), ["chat #lobby hi lobby"]);
    server.reply({ type: "joined", roomId: "general", members: [] });
    assert.deepEqual(brief(sentOf(server)).slice(4), ["history #general"]);
    assert.equal(s.currentRoom, "lobby");
    await s.close();
  });

  it("matches an error to a frame that was sent, not to one still held", async () => {
    const { server, s } = await openSession();
    s.join("a");
    server.reply({ type: "joined", roomId: "a", members: [] });
    s.leave("a");
    s.join("a"); // held behind the leave
    s.join("b"); // sent
    assert.deepEqual(brief(sentOf(server)).slice(2), ["leave #a", "join #b"]);
    server.reply({ type: "error", code: "RATE_LIMITED", message: "slow down", requestType: "join" });
    // The refused join is b's: the held join of #a is still waiting for the leave's answer.
    assert.equal(s.heldCount, 1);
    assert.equal(s.currentRoom, "a", "back to the room chosen before /join b");
    server.reply({ type: "left", roomId: "a" });
    assert.deepEqual(brief(sentOf(server)).slice(4), ["join #a"]);
    await s.close();
  });

  it("keeps the order across a drop: rejoins, then the held chat (same clientMessageId), then the leave", async () => {
    const { server, s } = await openSession();
    s.join("x");
    const id = s.chat("hi x");
    s.leave("x");
    assert.deepEqual(brief(sentOf(server)), ["join #general", "join #x"]);
    server.drop();
    await until(() => server.sockets.length === 2 && server.sockets[1].open, "reconnection");
    // /leave x moved the current room back to #general at once.
    assert.equal(new URL(server.last.url).searchParams.get("roomId"), "general", "the current room");
    assert.deepEqual(brief(sentOf(server)), ["join #general", "join #x"]);
    server.reply({ type: "joined", roomId: "general", members: [] });
    server.reply({ type: "joined", roomId: "x", members: [] });
    assert.deepEqual(brief(sentOf(server)), ["join #general", "join #x", "chat #x hi x"]);
    assert.equal(sentOf(server)[2].clientMessageId, id);
    echo(server, sentOf(server)[2]);
    assert.deepEqual(brief(sentOf(server)).slice(3), ["leave #x"]);
    server.reply({ type: "left", roomId: "x" });
    assert.deepEqual(s.rooms, ["general"]);
    await s.close();
  });

  it("sends again, after reconnecting, a leave whose answer was lost with the connection", async () => {
    const { server, s } = await openSession();
    s.join("x");
    server.reply({ type: "joined", roomId: "x", members: [] });
    s.leave("x");
    server.drop();
    await until(() => server.sockets.length === 2 && server.sockets[1].open, "reconnection");
    server.reply({ type: "joined", roomId: "general", members: [] });
    server.reply({ type: "joined", roomId: "x", members: [] });
    assert.deepEqual(
      brief(sentOf(server)).filter((f) => f.startsWith("leave")),
      ["leave #x"],
    );
    server.reply({ type: "left", roomId: "x" });
    assert.deepEqual(s.rooms, ["general"]);
    await s.close();
  });
});

describe("clients: terminal arguments and output", () => {
  it("accepts the documented arguments", () => {
    const r = parseArgs(["ws://127.0.0.1:3001/local", "--user", "alice", "--name=Alice A", "--room", "#lobby"]);
    assert.deepEqual(r, {
      ok: true,
      args: { endpoint: "ws://127.0.0.1:3001/local", user: "alice", name: "Alice A", room: "lobby", color: true },
    });
    const p = parseArgs(["ws://127.0.0.1:3001/local", "--user", "u", "--ping-interval", "1.5"]);
    assert.equal(p.ok && p.args.pingIntervalMs, 1500);
    const t = parseArgs(["wss://x.example/dev"], { CHAT_TOKEN: "a.b.c" });
    assert.equal(t.ok && t.args.token, "a.b.c");
  });

  it("rejects bad arguments with a message", () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /endpoint is missing/],
      [["http://x/", "--user", "a"], /ws:\/\/ or wss:\/\//],
      [["ws://x/"], /--token <jwt> or --user/],
      [["ws://x/", "--token", "t", "--user", "u"], /either --token or --user/],
      [["ws://x/", "--user"], /--user needs a value/],
      [["ws://x/", "--bogus"], /unknown option/],
      [["ws://x/", "extra", "--user", "u"], /unexpected argument/],
      [["ws://x/", "--user", "u", "--ping-interval", "600"], /--ping-interval must be/],
    ];
    for (const [argv, message] of cases) {
      const r = parseArgs(argv);
      assert.equal(r.ok, false, argv.join(" "));
      if (!r.ok) assert.match(r.message, message);
    }
    assert.equal(EXIT.usage, 2);
  });

  it("reads sub and name from a token without trusting it", () => {
    const payload = Buffer.from(JSON.stringify({ sub: "carol", name: "Carol" })).toString("base64url");
    assert.deepEqual(unverifiedClaims(`h.${payload}.s`), { sub: "carol", name: "Carol" });
    assert.deepEqual(unverifiedClaims("garbage"), {});
    assert.deepEqual(unverifiedClaims("a.!!!.c"), {});
    const utf8 = Buffer.from(JSON.stringify({ sub: "zoé", username: "Zoé 😀" })).toString("base64url");
    assert.deepEqual(unverifiedClaims(`h.${utf8}.s`), { sub: "zoé", name: "Zoé 😀" });
  });

  it("prints tagged, timestamped lines and neutralises control characters", () => {
    const [l] = formatFrame(
      {
        type: "chat",
        roomId: "general",
        messageId: "m",
        userId: "bob",
        username: "Bob",
        message: "hi\x1b[2J",
        sentAt: "2026-01-01T10:11:12Z",
      },
      { now: () => new Date(0) },
    );
    assert.match(l, /^\d\d:\d\d:\d\d \[chat #general\] Bob \(bob\): hi�\[2J$/);
    assert.equal(sanitize("a\x07b"), "a�b");
    const priv = formatFrame(
      {
        type: "private",
        messageId: "m",
        fromUserId: "alice",
        fromUsername: "Alice",
        toUserId: "bob",
        message: "yo",
        sentAt: "2026-01-01T10:11:12Z",
      },
      { selfId: "alice" },
    );
    assert.match(priv[0], /\[private to bob\] yo$/);
    const rooms = formatFrame(
      {
        type: "rooms",
        rooms: [
          { roomId: "a", members: 1 },
          { roomId: "b", members: 2 },
        ],
      },
      {},
    );
    assert.equal(rooms.length, 3);
    assert.match(rooms[2], /\[rooms\] {3}#b {2}2 users$/);
  });
});

describe("clients: terminal catch-up after a reconnection", () => {
  const msg = (id: string, sentAt: string) => ({ messageId: id, userId: "bob", username: "Bob", message: id, sentAt });
  const chat = (id: string, sentAt: string) => ({ type: "chat" as const, roomId: "r", ...msg(id, sentAt) });

  it("prints, once, only the messages missed while disconnected", () => {
    const c = new CatchUp(() => new Date("2026-01-01T10:00:00.000Z"));
    assert.equal(c.onJoined("r"), false, "a first join needs no catch-up");
    assert.equal(c.onChat(chat("m1", "2026-01-01T10:00:01.000Z")), true);
    assert.equal(c.onChat(chat("m1", "2026-01-01T10:00:01.000Z")), false, "never twice");
    c.expect(["r", "never-joined"]);
    assert.equal(c.onJoined("r"), true, "the rejoin asks for history");
    assert.equal(c.onJoined("never-joined"), false);
    // A live message arrives before the history reply: it must not hide the missed one before it.
    assert.equal(c.onChat(chat("m3", "2026-01-01T10:00:03.000Z")), true);
    const history = {
      type: "history" as const,
      roomId: "r",
      messages: [
        msg("m0", "2026-01-01T09:00:00.000Z"),
        msg("m1", "2026-01-01T10:00:01.000Z"),
        msg("m2", "2026-01-01T10:00:02.000Z"),
        msg("m3", "2026-01-01T10:00:03.000Z"),
      ],
    };
    assert.equal(c.isCatchUpReply(history), true);
    assert.deepEqual(
      c.missed(history).map((m) => m.messageId),
      ["m2"],
    );
    assert.equal(c.isCatchUpReply(history), false, "a later /history is printed as a listing");
  });
});

describe("clients: edit, delete and kick (issue 16)", () => {
  type Sent = { type: string; roomId?: string; withUserId?: string; messageId?: string; message?: string; clientMessageId?: string };
  const at = (s: number) => `2026-01-01T10:00:${String(s).padStart(2, "0")}.000Z`;
  const chatFrame = (messageId: string, userId: string, message: string, roomId = "general") => ({
    type: "chat",
    roomId,
    messageId,
    userId,
    username: userId === "alice" ? "Alice" : "Bob",
    message,
    sentAt: at(1),
  });

  async function openSession(extra: Partial<ConstructorParameters<typeof ChatSession>[0]> = {}) {
    const server = new FakeServer();
    const events: SessionEvent[] = [];
    const s = newSession(server, events, extra);
    s.start();
    await until(() => server.last?.open === true, "open");
    server.reply({ type: "joined", roomId: "general", members: [{ userId: "alice", username: "Alice" }] });
    return { server, events, s, sent: () => server.last.sent as Sent[] };
  }

  it("parses /edit, /delete and /kick, with and without a message reference", () => {
    assert.deepEqual(parseCommand("/edit ^3 hello  there"), { kind: "edit", ref: 3, message: "hello  there" });
    assert.deepEqual(parseCommand("/edit 3 hello"), { kind: "edit", ref: 3, message: "hello" });
    assert.deepEqual(parseCommand("/edit hello there"), { kind: "edit", message: "hello there" });
    assert.deepEqual(parseCommand("/edit ^7 3 apples"), { kind: "edit", ref: 7, message: "3 apples" });
    assert.deepEqual(parseCommand("/delete ^12"), { kind: "delete", ref: 12 });
    assert.deepEqual(parseCommand("/delete"), { kind: "delete" });
    assert.deepEqual(parseCommand("/kick bob"), { kind: "kick", userId: "bob" });
    assert.deepEqual(parseCommand("/kick bob 30"), { kind: "kick", userId: "bob", minutes: 30 });
    assert.deepEqual(parseCommand("/kick #ops bob"), { kind: "kick", userId: "bob", roomId: "ops" });
    for (const bad of [
      "/edit",
      "/edit ^3",
      "/edit 3",
      "/delete x",
      "/delete ^3 x",
      "/kick",
      "/kick #ops",
      "/kick bob 0",
      "/kick bob 10081",
      "/kick bob 5 x",
    ]) {
      assert.equal(parseCommand(bad).kind, "invalid", bad);
    }
    assert.match(HELP_TEXT, /\/edit \[\^n\] <text>/);
    assert.match(HELP_TEXT, /\/delete \[\^n\]/);
    assert.match(HELP_TEXT, /\/kick \[#room\] <userId> \[m\]/);
  });

  it("edits a room message: sends the edit, resolves with the edited frame, and the message log holds the new text", async () => {
    const { server, s, sent } = await openSession();
    server.reply(chatFrame("m1", "alice", "helo"));
    assert.equal(s.messages.get("m1")?.ref, 1);
    const outcome = s.editMessage({ roomId: "general" }, "m1", "hello");
    assert.deepEqual(sent().at(-1), { type: "edit", roomId: "general", messageId: "m1", message: "hello" });
    server.reply({ type: "edited", roomId: "general", messageId: "m1", userId: "alice", message: "hello", editedAt: at(5) });
    const result = await outcome;
    assert.equal(result.ok, true);
    assert.equal(result.ok && result.frame.editedAt, at(5));
    assert.equal(s.messages.get("m1")?.text, "hello");
    assert.equal(s.messages.get("m1")?.editedAt, at(5));
    // Two edits may arrive out of order: the latest editedAt wins.
    server.reply({ type: "edited", roomId: "general", messageId: "m1", userId: "alice", message: "hullo", editedAt: at(3) });
    assert.equal(s.messages.get("m1")?.text, "hello");
    assert.equal(s.pendingReplies, 0);
    await s.close();
  });

  it("answers a refused edit, delete or kick with the server's typed error, matched to its room", async () => {
    const { server, s, sent } = await openSession();
    s.join("ops");
    server.reply({ type: "joined", roomId: "ops", members: [] });
    const inGeneral = s.editMessage({ roomId: "general" }, "m1", "x");
    const inOps = s.editMessage({ roomId: "ops" }, "m2", "y");
    assert.deepEqual(
      sent()
        .filter((f) => f.type === "edit")
        .map((f) => f.roomId),
      ["general", "ops"],
    );
    // The answer about #ops comes first: it settles the edit in #ops, not the older one in #general.
    server.reply({
      type: "error",
      code: "FORBIDDEN",
      message: "only the author may edit this message",
      requestType: "edit",
      roomId: "ops",
    });
    assert.deepEqual(await inOps, { ok: false, code: "FORBIDDEN", message: "only the author may edit this message", roomId: "ops" });
    server.reply({ type: "error", code: "NOT_FOUND", message: "no message m1 in this conversation", requestType: "edit" });
    assert.deepEqual(await inGeneral, { ok: false, code: "NOT_FOUND", message: "no message m1 in this conversation" });
    const del = s.deleteMessage({ withUserId: "bob" }, "m3");
    assert.deepEqual(sent().at(-1), { type: "delete", withUserId: "bob", messageId: "m3" });
    server.reply({ type: "error", code: "RATE_LIMITED", message: "slow down", requestType: "delete" });
    assert.equal((await del).ok === false && ((await del) as { code: string }).code, "RATE_LIMITED");
    const kick = s.kick("ops", "bob", 30);
    assert.deepEqual(sent().at(-1), { type: "kick", roomId: "ops", userId: "bob", minutes: 30 });
    server.reply({ type: "error", code: "FORBIDDEN", message: "you do not moderate room ops", requestType: "kick", roomId: "ops" });
    assert.deepEqual(await kick, { ok: false, code: "FORBIDDEN", message: "you do not moderate room ops", roomId: "ops" });
    // Refused before sending, and said like the other commands' local errors.
    assert.deepEqual(await s.kick("ops", "bob", 0), {
      ok: false,
      code: "NOT_SENT",
      message: "minutes must be a whole number from 1 to 10080",
    });
    assert.equal((await s.kick("ops", "alice")).ok, false, "kicking oneself");
    assert.equal((await s.editMessage({ roomId: "general" }, "m1", "  ")).ok, false);
    assert.equal(s.pendingReplies, 0);
    await s.close();
  });

  it("deletes: a moderator's delete leaves a tombstone naming them, a repeat is answered the same, and the author's own names nobody", async () => {
    const { server, s } = await openSession();
    server.reply(chatFrame("m1", "bob", "spam"));
    server.reply(chatFrame("m2", "alice", "oops"));
    const byModerator = s.deleteMessage({ roomId: "general" }, "m1");
    const deleted = { type: "deleted", roomId: "general", messageId: "m1", by: "alice", deletedAt: at(9) };
    server.reply(deleted);
    assert.equal((await byModerator).ok, true);
    const m1 = s.messages.get("m1");
    assert.deepEqual([m1?.text, m1?.deletedBy, deletedByOther(m1 ?? { userId: "" })], ["", "alice", "alice"]);
    // Deleting again is not an error: the reply is the same deleted frame.
    const again = s.deleteMessage({ roomId: "general" }, "m1");
    server.reply(deleted);
    assert.deepEqual(await again, { ok: true, frame: deleted });
    // An edit that arrives after the delete cannot bring the text back.
    server.reply({ type: "edited", roomId: "general", messageId: "m1", userId: "bob", message: "spam again", editedAt: at(10) });
    assert.equal(s.messages.get("m1")?.text, "");
    server.reply({ type: "deleted", roomId: "general", messageId: "m2", by: "alice", deletedAt: at(9) });
    assert.equal(deletedByOther(s.messages.get("m2") ?? { userId: "" }), undefined, "the author deleted their own");
    // `/delete` with no reference means the last message of one's own that is not deleted.
    server.reply(chatFrame("m3", "alice", "third"));
    assert.equal(s.messages.lastOf("alice")?.messageId, "m3");
    await s.close();
  });

  it("keeps a change that arrives before its message, and takes history as the current state", async () => {
    const { server, s } = await openSession();
    server.reply({ type: "edited", roomId: "general", messageId: "m1", userId: "bob", message: "fixed", editedAt: at(4) });
    assert.equal(s.messages.get("m1"), undefined);
    server.reply(chatFrame("m1", "bob", "fixd"));
    assert.deepEqual([s.messages.get("m1")?.text, s.messages.get("m1")?.editedAt], ["fixed", at(4)]);
    s.history({ roomId: "general" });
    server.reply({
      type: "history",
      roomId: "general",
      messages: [
        { messageId: "m1", userId: "bob", username: "Bob", message: "", sentAt: at(1), deleted: true, deletedAt: at(6), deletedBy: "mod" },
        { messageId: "m0", userId: "bob", username: "Bob", message: "older, edited", sentAt: at(0), editedAt: at(2) },
      ],
    });
    assert.equal(s.messages.get("m1")?.deletedBy, "mod");
    assert.deepEqual([s.messages.get("m0")?.text, s.messages.get("m0")?.editedAt], ["older, edited", at(2)]);
    await s.close();
  });

  it("edits and deletes private messages: its own (known from `delivered`) and the other user's, in the conversation with that user", async () => {
    const { server, s, sent } = await openSession();
    const cmid = s.private("bob", "psst");
    server.reply({ type: "delivered", messageId: "p1", clientMessageId: cmid, deliveredTo: 1 });
    assert.deepEqual(
      [s.messages.get("p1")?.conversation, s.messages.get("p1")?.userId, s.messages.get("p1")?.text],
      ["@bob", "alice", "psst"],
    );
    assert.equal(s.messages.lastOf("alice", "@bob")?.messageId, "p1");
    const edit = s.editMessage({ withUserId: "bob" }, "p1", "psst!");
    assert.deepEqual(sent().at(-1), { type: "edit", withUserId: "bob", messageId: "p1", message: "psst!" });
    server.reply({
      type: "edited",
      fromUserId: "alice",
      toUserId: "bob",
      messageId: "p1",
      userId: "alice",
      message: "psst!",
      editedAt: at(3),
    });
    assert.equal((await edit).ok, true);
    server.reply({
      type: "private",
      messageId: "p2",
      fromUserId: "bob",
      fromUsername: "Bob",
      toUserId: "alice",
      message: "yes?",
      sentAt: at(4),
    });
    server.reply({ type: "deleted", fromUserId: "bob", toUserId: "alice", messageId: "p2", by: "bob", deletedAt: at(5) });
    assert.deepEqual([s.messages.get("p2")?.conversation, s.messages.get("p2")?.deletedBy], ["@bob", "bob"]);
    await s.close();
  });

  it("kick: resolves with the moderator's userKicked; a kicked user's room leaves the joined set and is not rejoined after a drop", async () => {
    const { server, s, sent } = await openSession();
    s.join("ops");
    server.reply({ type: "joined", roomId: "ops", members: [] });
    const kick = s.kick("ops", "bob");
    assert.deepEqual(sent().at(-1), { type: "kick", roomId: "ops", userId: "bob" });
    const reply = { type: "userKicked", roomId: "ops", userId: "bob", until: at(30), connections: 2 };
    server.reply(reply);
    assert.deepEqual(await kick, { ok: true, frame: reply });
    // Now this user is kicked out of #ops (the current room) by another moderator.
    server.reply({ type: "kicked", roomId: "ops", by: "mona", until: at(40) });
    assert.deepEqual(s.rooms, ["general"]);
    assert.equal(s.currentRoom, "general");
    server.drop();
    await until(() => server.sockets.length === 2 && server.last.open, "reconnected");
    assert.equal(new URL(server.last.url).searchParams.get("roomId"), "general");
    assert.deepEqual(
      (server.last.sent as Sent[]).map((f) => `${f.type} ${f.roomId}`),
      ["join general"],
    );
    await s.close();
  });

  it("sends an unanswered edit again after a drop, and answers TIMEOUT when no answer comes within the reply timeout", async () => {
    const { server, s } = await openSession({ replyTimeoutMs: 150 });
    const edit = s.editMessage({ withUserId: "bob" }, "p1", "again");
    server.drop();
    await until(() => server.sockets.length === 2 && server.last.open, "reconnected");
    assert.deepEqual(
      (server.last.sent as Sent[]).filter((f) => f.type === "edit"),
      [{ type: "edit", withUserId: "bob", messageId: "p1", message: "again" }],
    );
    const result = await edit;
    assert.deepEqual(result, { ok: false, code: "TIMEOUT", message: "no answer to the edit within 0.15 s" });
    assert.equal(s.pendingReplies, 1, "only the rejoin of #general is still awaited");
    // A session that closes answers what is still awaited.
    const late = s.deleteMessage({ withUserId: "bob" }, "p1");
    await s.close();
    assert.equal((await late).ok === false && ((await late) as { code: string }).code, "CLOSED");
  });

  it("prints references, edits, tombstones and kicks in the terminal", () => {
    const log = new MessageLog();
    const chat = {
      type: "chat" as const,
      roomId: "general",
      messageId: "m1",
      userId: "bob",
      username: "Bob",
      message: "helo",
      sentAt: at(1),
    };
    log.chat(chat);
    const ctx = { selfId: "alice", message: (id: string) => log.get(id), now: () => new Date(at(0)) };
    assert.match(formatFrame(chat, ctx)[0], /\[chat #general\] \^1 Bob \(bob\): helo$/);
    const edited = { type: "edited" as const, roomId: "general", messageId: "m1", userId: "bob", message: "hello", editedAt: at(2) };
    log.edited(edited);
    assert.match(formatFrame(edited, ctx)[0], /\[edited #general\] \^1 Bob \(bob\): hello \(edited\)$/);
    const deleted = { type: "deleted" as const, roomId: "general", messageId: "m1", by: "mona", deletedAt: at(3) };
    log.deleted(deleted);
    assert.match(formatFrame(deleted, ctx)[0], /\[deleted #general\] \^1 Bob \(bob\): \[deleted by mona\]$/);
    const history = formatFrame(
      {
        type: "history",
        roomId: "general",
        messages: [
          {
            messageId: "m1",
            userId: "bob",
            username: "Bob",
            message: "",
            sentAt: at(1),
            deleted: true,
            deletedBy: "bob",
            deletedAt: at(3),
          },
          { messageId: "m9", userId: "bob", username: "Bob", message: "new text", sentAt: at(1), editedAt: at(4) },
        ],
      },
      ctx,
    );
    assert.match(history[1], /\[history #general\] \d\d:\d\d:\d\d \^1 Bob \(bob\): \[deleted\]$/);
    assert.match(history[2], /\[history #general\] \d\d:\d\d:\d\d Bob \(bob\): new text \(edited\)$/);
    const privateEdit = {
      type: "edited" as const,
      fromUserId: "bob",
      toUserId: "alice",
      messageId: "p9",
      userId: "bob",
      message: "fixed",
      editedAt: at(2),
    };
    assert.match(formatFrame(privateEdit, ctx)[0], /\[edited @bob\] bob: fixed \(edited; message p9\)$/);
    assert.match(
      formatFrame({ type: "kicked", roomId: "ops", by: "mona", until: at(40) }, ctx)[0],
      /\[kicked #ops\] you were removed from the room by mona; you can join it again at \d\d:\d\d:\d\d$/,
    );
    // A FORBIDDEN that is not about access keeps the server's reason.
    assert.match(
      formatFrame(
        { type: "error", code: "FORBIDDEN", message: "only the author may edit this message", requestType: "edit", roomId: "general" },
        ctx,
      )[0],
      /\[error FORBIDDEN\] only the author may edit this message \(request edit\)$/,
    );
  });
});

describe("clients: typing, reactions, read positions and unread counts (issue 18)", () => {
  type Sent = { type: string; roomId?: string; withUserId?: string; messageId?: string; emoji?: string; remove?: boolean };
  const chatFrame = (messageId: string, userId: string, roomId = "general") => ({
    type: "chat",
    roomId,
    messageId,
    userId,
    username: userId === "alice" ? "Alice" : "Bob",
    message: `text of ${messageId}`,
    sentAt: "2026-01-01T10:00:01.000Z",
  });

  async function openSession(extra: Partial<ConstructorParameters<typeof ChatSession>[0]> = {}) {
    const server = new FakeServer();
    const events: SessionEvent[] = [];
    const s = newSession(server, events, extra);
    s.start();
    await until(() => server.last?.open === true, "open");
    server.reply({ type: "joined", roomId: "general", members: [{ userId: "alice", username: "Alice" }], unread: 2, readMessageId: "m0" });
    return { server, events, s, sent: () => server.last.sent as Sent[] };
  }

  it("parses /react, /unreact, /unread and /newer", () => {
    assert.deepEqual(parseCommand("/react ^3 👍"), { kind: "react", ref: 3, emoji: "👍", remove: false });
    assert.deepEqual(parseCommand("/react 🎉"), { kind: "react", emoji: "🎉", remove: false });
    assert.deepEqual(parseCommand("/unreact 3 👍"), { kind: "react", ref: 3, emoji: "👍", remove: true });
    assert.deepEqual(parseCommand("/unread"), { kind: "unread" });
    assert.deepEqual(parseCommand("/unread #ops"), { kind: "unread", roomId: "ops" });
    assert.deepEqual(parseCommand("/newer"), { kind: "newer" });
    for (const bad of ["/react", "/react ^3", "/react x y z", "/react hello 👍", "/unread a b", "/newer x"]) {
      assert.equal(parseCommand(bad).kind, "invalid", bad);
    }
    assert.match(HELP_TEXT, /\/react \[\^n\] <emoji>/);
    assert.match(HELP_TEXT, /\/unread \[room\]/);
  });

  it("sends typing fire-and-forget: not held behind the room's frames, nothing awaited, at most once per interval per conversation", async () => {
    let now = 1_000_000;
    const { server, events, s, sent } = await openSession({ now: () => now });
    s.chat("first");
    // The chat is unanswered: a join, chat or edit about the room would wait; typing goes at once.
    assert.equal(s.typing({ roomId: "general" }), true);
    assert.deepEqual(sent().at(-1), { type: "typing", roomId: "general" });
    assert.equal(s.pendingReplies, 1, "only the chat awaits an answer");
    // 3.5 s, not the server's 3 s: sent every 3 s, jitter would make about half of them absorbed.
    now += 3499;
    assert.equal(s.typing({ roomId: "general" }), false, "within 3.5 s: not sent");
    assert.equal(s.typing({ withUserId: "bob" }), true, "another conversation has its own interval");
    assert.deepEqual(sent().at(-1), { type: "typing", withUserId: "bob" });
    now += 1;
    assert.equal(s.typing({ roomId: "general" }), true);
    assert.equal(sent().filter((f) => f.type === "typing").length, 3);
    assert.equal(s.typing({ roomId: "ops" }), false, "a room not joined: the server would refuse it");
    assert.equal(s.typing({ withUserId: "alice" }), false, "not to oneself");
    // A refusal of a typing frame answers nothing the user asked for: not shown.
    const before = events.length;
    server.reply({ type: "error", code: "RATE_LIMITED", message: "slow down", requestType: "typing" });
    assert.equal(events.length, before);
    await s.close();
    assert.equal(s.typing({ roomId: "general" }), false, "not queued while closed");
  });

  it("puts API Gateway's error down to a typing frame sent after a request, not to the request (which may have succeeded)", async () => {
    const { server, events, s } = await openSession();
    const id = s.chat("first");
    assert.equal(s.typing({ roomId: "general" }), true);
    const shown = events.length;
    // The typing's integration was throttled: the answer names no request.
    server.reply({ message: "Internal server error", connectionId: "c=", requestId: "r=" });
    assert.equal(s.pendingReplies, 1, "the chat still awaits its answer");
    assert.equal(events.length, shown, "not shown, as typing's refusals are not");
    server.reply({ ...chatFrame("m1", "alice"), clientMessageId: id });
    assert.equal(s.pendingReplies, 0);
    // With no typing outstanding, the error is the oldest request's.
    const refused = s.react({ roomId: "general" }, "m1", "👍");
    server.reply({ message: "Internal server error", connectionId: "c=", requestId: "r=" });
    assert.equal((await refused).ok, false);
    await s.close();
  });

  it("shows someone typing for at least twice the interval at which typing is sent, so one absorbed frame does not blink", () => {
    assert.equal(DEFAULT_TYPING_INTERVAL_MS, 3500);
    assert.ok(DEFAULT_TYPING_SHOW_MS >= 2 * DEFAULT_TYPING_INTERVAL_MS, `${DEFAULT_TYPING_SHOW_MS} ms shown`);
  });

  it("shows who is typing until their message arrives or nothing came from them for typingShowMs", async () => {
    const { server, events, s } = await openSession({ typingShowMs: 40 });
    const typingEvents = () => events.filter((e) => e.type === "typing");
    server.reply({ type: "typing", roomId: "general", userId: "bob", username: "Bob" });
    assert.deepEqual(s.typingIn("#general"), [{ userId: "bob", username: "Bob" }]);
    assert.deepEqual(typingEvents().at(-1), {
      type: "typing",
      conversation: "#general",
      users: [{ userId: "bob", username: "Bob" }],
      started: { userId: "bob", username: "Bob" },
    });
    server.reply({ type: "typing", roomId: "general", userId: "bob", username: "Bob" });
    assert.equal(typingEvents().length, 1, "still typing: no new start");
    server.reply(chatFrame("m5", "bob"));
    assert.deepEqual(s.typingIn("#general"), []);
    assert.deepEqual(typingEvents().at(-1), { type: "typing", conversation: "#general", users: [] });
    // Private: `toUserId` is this user, the conversation is the typist's.
    server.reply({ type: "typing", toUserId: "alice", userId: "bob", username: "Bob" });
    assert.deepEqual(
      s.typingIn("@bob").map((m) => m.userId),
      ["bob"],
    );
    await until(() => s.typingIn("@bob").length === 0, "typing to expire");
    assert.deepEqual(typingEvents().at(-1), { type: "typing", conversation: "@bob", users: [] });
    await s.close();
  });

  it("reacts: resolves with this user's own reaction frame, and the message log keeps counts, `me`, and the server's order", async () => {
    const { server, s, sent } = await openSession();
    server.reply(chatFrame("m1", "bob"));
    const outcome = s.react({ roomId: "general" }, "m1", "👍");
    assert.deepEqual(sent().at(-1), { type: "react", roomId: "general", messageId: "m1", emoji: "👍" });
    // Another user's reaction does not answer it.
    server.reply({ type: "reaction", roomId: "general", messageId: "m1", emoji: "🎉", userId: "bob", count: 1 });
    server.reply({ type: "reaction", roomId: "general", messageId: "m1", emoji: "👍", userId: "alice", count: 2 });
    const result = await outcome;
    assert.ok(result.ok && result.frame.count === 2);
    assert.deepEqual(s.messages.get("m1")?.reactions, [
      { emoji: "👍", count: 2, me: true },
      { emoji: "🎉", count: 1 },
    ]);
    const removal = s.react({ roomId: "general" }, "m1", "👍", true);
    assert.deepEqual(sent().at(-1), { type: "react", roomId: "general", messageId: "m1", emoji: "👍", remove: true });
    server.reply({ type: "reaction", roomId: "general", messageId: "m1", emoji: "👍", userId: "alice", count: 1, removed: true });
    assert.ok((await removal).ok);
    // Equal counts: by emoji (code units, as the server sorts).
    assert.deepEqual(s.messages.get("m1")?.reactions, [
      { emoji: "🎉", count: 1 },
      { emoji: "👍", count: 1 },
    ]);
    server.reply({ type: "reaction", roomId: "general", messageId: "m1", emoji: "🎉", userId: "bob", count: 0, removed: true });
    assert.deepEqual(
      s.messages.get("m1")?.reactions.map((r) => r.emoji),
      ["👍"],
    );
    // A history page is the server's state, and wins (an entry without reactions has none).
    server.reply({
      type: "history",
      roomId: "general",
      messages: [{ messageId: "m1", userId: "bob", username: "Bob", message: "text of m1", sentAt: "2026-01-01T10:00:01.000Z" }],
    });
    assert.deepEqual(s.messages.get("m1")?.reactions, []);
    // A refusal is a typed failure.
    const refused = s.react({ roomId: "general" }, "m9", "👍");
    server.reply({ type: "error", code: "NOT_FOUND", message: "no such message", requestType: "react", roomId: "general" });
    assert.deepEqual(await refused, { ok: false, code: "NOT_FOUND", message: "no such message", roomId: "general" });
    // A reaction to a message not seen yet is kept for it; a tombstone has none.
    server.reply({ type: "reaction", roomId: "general", messageId: "m2", emoji: "😮", userId: "bob", count: 1 });
    server.reply(chatFrame("m2", "bob"));
    assert.deepEqual(s.messages.get("m2")?.reactions, [{ emoji: "😮", count: 1 }]);
    server.reply({ type: "deleted", roomId: "general", messageId: "m2", by: "bob", deletedAt: "2026-01-01T10:01:00.000Z" });
    assert.deepEqual(s.messages.get("m2")?.reactions, []);
    await s.close();
  });

  it("settles react and read by their answers when the user's id is not known (no userId option, nothing echoed yet)", async () => {
    const { server, events, s, sent } = await openSession({ userId: undefined, replyTimeoutMs: 60_000 });
    server.reply(chatFrame("m1", "bob"));
    const outcome = s.react({ roomId: "general" }, "m1", "👍");
    // Someone else taking back the same emoji is not the answer; the added one is.
    server.reply({ type: "reaction", roomId: "general", messageId: "m1", emoji: "👍", userId: "bob", count: 0, removed: true });
    assert.equal(s.pendingReplies, 1);
    server.reply({ type: "reaction", roomId: "general", messageId: "m1", emoji: "👍", userId: "u-7", count: 1 });
    const result = await outcome;
    assert.ok(result.ok && result.frame.userId === "u-7");
    assert.equal(s.pendingReplies, 0, "the room is free again");
    assert.equal(s.markRead("general", "m1"), true);
    assert.deepEqual(sent().at(-1), { type: "read", roomId: "general", messageId: "m1" });
    server.reply({ type: "read", roomId: "general", userId: "u-7", username: "Alice", messageId: "m1" });
    assert.equal(s.pendingReplies, 0, "the read's reply settles it");
    const last = events.at(-1);
    assert.ok(last?.type === "frame" && last.reply === true, "shown as this device's reply");
    await s.close();
  });

  it("sends reactions in a private conversation one at a time, so that adding then taking one back cannot run reversed", async () => {
    const { server, s, sent } = await openSession();
    const reacts = () => sent().filter((f) => f.type === "react");
    const added = s.react({ withUserId: "bob" }, "p1", "👍");
    const removed = s.react({ withUserId: "bob" }, "p1", "👍", true);
    assert.equal(reacts().length, 1, "the removal waits for the addition's answer");
    assert.equal(s.heldCount, 1);
    // Another conversation is not held by it.
    void s.react({ withUserId: "carol" }, "p2", "🎉");
    assert.equal(reacts().length, 2);
    server.reply({ type: "reaction", fromUserId: "alice", toUserId: "bob", messageId: "p1", emoji: "👍", userId: "alice", count: 1 });
    assert.ok((await added).ok);
    assert.deepEqual(reacts().at(-1), { type: "react", withUserId: "bob", messageId: "p1", emoji: "👍", remove: true });
    server.reply({
      type: "reaction",
      fromUserId: "alice",
      toUserId: "bob",
      messageId: "p1",
      emoji: "👍",
      userId: "alice",
      count: 0,
      removed: true,
    });
    assert.ok((await removed).ok);
    await s.close();
  });

  it("counts unread messages from rooms and joined, plus messages from others, and moves the read position forward only", async () => {
    const { server, events, s, sent } = await openSession({ readIntervalMs: 30 });
    assert.deepEqual(s.unread("general"), { unread: 2, more: false, readMessageId: "m0" });
    server.reply(chatFrame("m1", "bob"));
    server.reply(chatFrame("m2", "alice"));
    server.reply(chatFrame("m3", "bob"));
    assert.equal(s.unread("general")?.unread, 4, "others' messages count, own ones do not");
    // Shown up to m1: the position moves at once and one read goes out; what this session has seen after it is unread.
    assert.equal(s.markRead("general", "m1"), true);
    assert.deepEqual(s.unread("general"), { unread: 1, more: false, readMessageId: "m1" });
    assert.deepEqual(sent().at(-1), { type: "read", roomId: "general", messageId: "m1" });
    assert.equal(s.markRead("general", "m0"), false, "never back");
    // More shown while that read is unanswered and within the interval: only the newest goes, later.
    s.markRead("general", "m2");
    s.markRead("general", "m3");
    assert.equal(sent().filter((f) => f.type === "read").length, 1);
    assert.deepEqual(s.unread("general"), { unread: 0, more: false, readMessageId: "m3" });
    server.reply({ type: "read", roomId: "general", userId: "alice", username: "Alice", messageId: "m1" });
    await until(() => sent().filter((f) => f.type === "read").length === 2, "the coalesced read");
    assert.deepEqual(sent().at(-1), { type: "read", roomId: "general", messageId: "m3" });
    // The reply with an older position in force does not move this device's position back.
    server.reply({ type: "read", roomId: "general", userId: "alice", username: "Alice", messageId: "m3" });
    assert.equal(s.unread("general")?.readMessageId, "m3");
    // Another device read further: the counters agree.
    server.reply(chatFrame("m4", "bob"));
    server.reply(chatFrame("m5", "bob"));
    assert.equal(s.unread("general")?.unread, 2);
    server.reply({ type: "read", roomId: "general", userId: "alice", username: "Alice", messageId: "m4" });
    assert.deepEqual(s.unread("general"), { unread: 1, more: false, readMessageId: "m4" });
    // A deleted unread message is no longer unread.
    server.reply({ type: "deleted", roomId: "general", messageId: "m5", by: "bob", deletedAt: "2026-01-01T10:01:00.000Z" });
    assert.equal(s.unread("general")?.unread, 0);
    // Another member's read position (rooms sharing read receipts) is kept apart.
    server.reply({ type: "read", roomId: "general", userId: "bob", username: "Bob", messageId: "m4" });
    assert.deepEqual(s.readersOf("general"), [{ userId: "bob", username: "Bob", messageId: "m4" }]);
    assert.equal(s.unread("general")?.readMessageId, "m4");
    // A `rooms` listing brings the server's counts ("99+").
    s.listRooms();
    server.reply({
      type: "rooms",
      rooms: [
        { roomId: "general", members: 2, unread: 0 },
        { roomId: "busy", members: 9, unread: 99, unreadMore: true },
        { roomId: "quiet", members: 1 },
      ],
    });
    assert.equal(unreadLabel(s.unread("busy") ?? { unread: 0, more: false }), "99+");
    assert.equal(s.unread("quiet"), undefined);
    assert.equal(s.unread("general")?.readMessageId, "m4", "a listing keeps the position");
    // A refused read (sent by the client itself) is settled and not shown.
    await new Promise((r) => setTimeout(r, 40));
    s.markRead("general", "m6");
    assert.deepEqual(sent().at(-1), { type: "read", roomId: "general", messageId: "m6" });
    const shown = events.length;
    server.reply({ type: "error", code: "RATE_LIMITED", message: "slow down", requestType: "read", roomId: "general" });
    assert.equal(events.length, shown);
    assert.equal(s.pendingReplies, 0);
    // Not for a room being left: a message shown after /leave is typed sends nothing.
    await new Promise((r) => setTimeout(r, 40));
    s.leave("general");
    s.markRead("general", "m7");
    await new Promise((r) => setTimeout(r, 40));
    assert.deepEqual(
      sent()
        .filter((f) => f.type === "read")
        .map((f) => f.messageId),
      ["m1", "m3", "m6"],
    );
    server.reply({ type: "left", roomId: "general" });
    // Not joined: the position moves here, no frame is sent (the server would answer NOT_A_MEMBER).
    const reads = sent().filter((f) => f.type === "read").length;
    assert.equal(s.markRead("busy", "m9"), true);
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(sent().filter((f) => f.type === "read").length, reads);
    await s.close();
  });

  it("sends a refused read again later (not when the room refuses it), until the server confirms the position", async () => {
    const { server, s, sent } = await openSession({ readIntervalMs: 20 });
    const reads = () => sent().filter((f) => f.type === "read");
    server.reply(chatFrame("m1", "bob"));
    s.markRead("general", "m1");
    assert.equal(reads().length, 1);
    server.reply({ type: "error", code: "INTERNAL", message: "try again", requestType: "read", roomId: "general" });
    await until(() => reads().length === 2, "the read sent again");
    assert.deepEqual(reads().at(-1), { type: "read", roomId: "general", messageId: "m1" });
    server.reply({ type: "read", roomId: "general", userId: "alice", username: "Alice", messageId: "m1" });
    server.reply(chatFrame("m2", "bob"));
    s.markRead("general", "m2");
    assert.equal(reads().length, 2, "within the interval");
    await until(() => reads().length === 3, "the next read");
    server.reply({ type: "error", code: "FORBIDDEN", message: "no access", requestType: "read", roomId: "general" });
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(reads().length, 3, "a FORBIDDEN read is not sent again");
    await s.close();
  });

  it("gives reads one budget for the session, rooms in turn, and sends nothing by itself after RATE_LIMITED", async () => {
    const { server, s, sent } = await openSession({ readIntervalMs: 40, rateLimitPauseMs: 150 });
    const reads = () => sent().filter((f) => f.type === "read");
    s.join("ops");
    server.reply({ type: "joined", roomId: "ops", members: [] });
    server.reply(chatFrame("m1", "bob"));
    server.reply(chatFrame("o1", "bob", "ops"));
    s.markRead("general", "m1");
    server.reply({ type: "read", roomId: "general", userId: "alice", username: "Alice", messageId: "m1" });
    s.markRead("ops", "o1");
    assert.equal(reads().length, 1, "the other room's read waits for the session's interval");
    await until(() => reads().length === 2, "the other room's read");
    assert.deepEqual(reads().at(-1), { type: "read", roomId: "ops", messageId: "o1" });
    server.reply({ type: "read", roomId: "ops", userId: "alice", username: "Alice", messageId: "o1" });
    // The user's own chat was refused: typing and reads make way for what the user sends.
    const id = s.chat("hello");
    server.reply({ type: "error", code: "RATE_LIMITED", message: "slow down", requestType: "chat", clientMessageId: id });
    assert.equal(s.typing({ roomId: "general" }), false, "no typing while rate limited");
    server.reply(chatFrame("m2", "bob"));
    s.markRead("general", "m2");
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(reads().length, 2, "no read while rate limited");
    await until(() => reads().length === 3, "the read after the pause");
    assert.deepEqual(reads().at(-1), { type: "read", roomId: "general", messageId: "m2" });
    assert.equal(s.typing({ roomId: "general" }), true);
    await s.close();
  });

  it("keeps its own unread count in a rooms listing while the server has not confirmed the position read here", async () => {
    const { server, s } = await openSession({ readIntervalMs: 1000 });
    server.reply(chatFrame("m1", "bob"));
    s.markRead("general", "m1");
    server.reply(chatFrame("m2", "bob"));
    s.markRead("general", "m2");
    // m2's read waits for the budget: the server still counts m2.
    s.listRooms();
    server.reply({ type: "rooms", rooms: [{ roomId: "general", members: 2, unread: 1 }] });
    assert.equal(s.unread("general")?.unread, 0);
    const ctx = { unread: (roomId: string) => s.unread(roomId) };
    assert.equal(
      formatFrame({ type: "rooms", rooms: [{ roomId: "general", members: 2, unread: 1 }] }, ctx)[1].slice(9),
      "[rooms]   #general  2 users",
    );
    // Once confirmed, the server's count is taken (e.g. messages read on another device).
    server.reply({ type: "read", roomId: "general", userId: "alice", username: "Alice", messageId: "m2" });
    s.listRooms();
    server.reply({ type: "rooms", rooms: [{ roomId: "general", members: 2, unread: 3 }] });
    assert.equal(s.unread("general")?.unread, 3);
    await s.close();
  });

  it("asks for history from the read position or after a page, never with two starts", async () => {
    const { server, s, sent } = await openSession();
    s.history({ roomId: "general" }, { fromRead: true, before: "x" });
    assert.deepEqual(sent().at(-1), { type: "history", roomId: "general", before: "x" });
    server.reply({ type: "history", roomId: "general", messages: [] });
    s.history({ roomId: "general" }, { fromRead: true });
    assert.deepEqual(sent().at(-1), { type: "history", roomId: "general", fromRead: true });
    server.reply({ type: "history", roomId: "general", messages: [], readMessageId: "m0", newer: "cur" });
    assert.equal(s.unread("general")?.readMessageId, "m0");
    s.history({ roomId: "general" }, { after: "cur" });
    assert.deepEqual(sent().at(-1), { type: "history", roomId: "general", after: "cur" });
    await s.close();
    assert.equal(s.history({ withUserId: "bob" }, { fromRead: true }), false, "closed");
  });

  it("prints typing, reactions, reads and unread counts in the terminal", () => {
    const ctx = {
      selfId: "alice",
      now: () => new Date("2026-01-01T10:00:00Z"),
      message: (id: string) =>
        id === "m1"
          ? {
              ref: 3,
              messageId: "m1",
              conversation: "#general" as const,
              userId: "bob",
              username: "Bob",
              text: "hi",
              sentAt: "2026-01-01T10:00:00.000Z",
              reactions: [{ emoji: "👍", count: 2, me: true as const }],
            }
          : undefined,
      unread: () => ({ unread: 99, more: true }),
    };
    const text = (lines: string[]) => lines.map((l) => l.slice(9)).join("\n");
    assert.equal(
      text(formatFrame({ type: "reaction", roomId: "general", messageId: "m1", emoji: "👍", userId: "alice", count: 2 }, ctx)),
      "[reaction #general] ^3 you reacted 👍  [👍 2*]",
    );
    assert.equal(
      text(formatFrame({ type: "read", roomId: "general", userId: "bob", username: "Bob", messageId: "m1" }, ctx)),
      "[read #general] Bob (bob) read up to ^3",
    );
    assert.equal(
      text(formatFrame({ type: "read", roomId: "general", userId: "alice", username: "Alice", messageId: "m1" }, ctx)),
      "[read #general] you read up to ^3 on another device; 99+ unread",
    );
    assert.match(
      text(formatFrame({ type: "joined", roomId: "general", members: [], memberCount: 0, unread: 99, unreadMore: true }, ctx)),
      /; 99\+ unread \(\/unread shows them\)$/,
    );
    assert.equal(
      text(
        formatFrame({ type: "rooms", rooms: [{ roomId: "general", members: 2, unread: 5 }] }, { ...ctx, unread: () => undefined }),
      ).split("\n")[1],
      "[rooms]   #general  2 users  5 unread",
    );
    assert.match(
      text(
        formatFrame(
          {
            type: "history",
            roomId: "general",
            newer: "c",
            messages: [
              {
                messageId: "m1",
                userId: "bob",
                username: "Bob",
                message: "hi",
                sentAt: "2026-01-01T10:00:00.000Z",
                reactions: [{ emoji: "👍", count: 2, me: true }],
              },
            ],
          },
          ctx,
        ),
      ),
      /newer messages exist: \/newer[\s\S]*\^3 Bob \(bob\): hi {2}\[👍 2\*\]$/,
    );
    assert.deepEqual(formatFrame({ type: "typing", roomId: "general", userId: "bob", username: "Bob" }, ctx), []);
  });
});

describe("clients: reaction frames out of order (issue 18 review: per-message reaction version)", () => {
  const frame = (emoji: string, count: number, version: number, userId = "bob") =>
    ({ type: "reaction", roomId: "general", messageId: "m1", emoji, userId, count, version }) as const;
  const entry = (reactions: Array<{ emoji: string; count: number }>, reactionsVersion?: number) => ({
    messageId: "m1",
    userId: "alice",
    username: "Alice",
    message: "hi",
    sentAt: "2026-01-01T10:00:00.000Z",
    reactions,
    ...(reactionsVersion !== undefined ? { reactionsVersion } : {}),
  });

  it("a reaction frame whose version is not above the last applied for that message and emoji is ignored", () => {
    const log = new MessageLog();
    log.record("#general", entry([]));
    // Two concurrent reactions: the count 2 (version 2) arrives before the count 1 (version 1).
    assert.equal(log.reaction(frame("👍", 2, 2), "alice").changed, true);
    // Before: the later-arriving count 1 replaced the 2.
    assert.equal(log.reaction(frame("👍", 1, 1, "carol"), "alice").changed, false);
    assert.equal(log.reaction(frame("👍", 2, 2, "carol"), "alice").changed, false, "the same version again");
    assert.deepEqual(log.get("m1")?.reactions, [{ emoji: "👍", count: 2 }]);
    // Another emoji's frame read at the same or a lower version still counts (its count is its own).
    assert.equal(log.reaction(frame("❤️", 1, 1), "alice").changed, true);
    assert.deepEqual(
      log.get("m1")?.reactions.map((r) => [r.emoji, r.count]),
      [
        ["👍", 2],
        ["❤️", 1],
      ],
    );
    // A frame without a version (a server before versions) is applied as it comes.
    assert.equal(
      log.reaction({ type: "reaction", roomId: "general", messageId: "m1", emoji: "👍", userId: "bob", count: 3 }, "alice").changed,
      true,
    );
  });

  it("a history entry's reactionsVersion counts as applied for all its emoji; a newer frame's emoji survives an older entry", () => {
    const log = new MessageLog();
    log.record("#general", entry([{ emoji: "👍", count: 3 }], 5), true);
    assert.equal(log.reaction(frame("👍", 1, 4), "alice").changed, false, "older than the history entry");
    assert.equal(log.reaction(frame("🎉", 1, 3), "alice").changed, false, "any emoji");
    assert.equal(log.reaction(frame("🎉", 1, 6), "alice").changed, true);
    // A history entry at version 5 (read before the 🎉 at 6): 🎉 keeps the frame's state.
    log.record("#general", entry([{ emoji: "👍", count: 2 }], 5), true);
    assert.deepEqual(
      log.get("m1")?.reactions.map((r) => [r.emoji, r.count]),
      [
        ["👍", 2],
        ["🎉", 1],
      ],
    );
    // An entry older than one applied already changes nothing; a newer one is the server's state.
    log.record("#general", entry([], 4), true);
    assert.equal(log.get("m1")?.reactions.length, 2);
    log.record("#general", entry([{ emoji: "👀", count: 1 }], 9), true);
    assert.deepEqual(log.get("m1")?.reactions, [{ emoji: "👀", count: 1 }]);
    // Early frames (before the message is known) are compared with its entry's version too.
    const early = new MessageLog();
    early.reaction({ ...frame("👍", 1, 2), messageId: "m1" }, "alice");
    early.record("#general", entry([{ emoji: "👍", count: 4 }], 7), true);
    assert.deepEqual(early.get("m1")?.reactions, [{ emoji: "👍", count: 4 }]);
  });

  it("parses `version` on reaction frames and `reactionsVersion` on history entries", () => {
    const parsed = parseServerFrame(JSON.stringify(frame("👍", 2, 2)));
    assert.equal(parsed.type === "reaction" ? parsed.version : undefined, 2);
    const page = parseServerFrame(
      JSON.stringify({ type: "history", roomId: "general", messages: [entry([{ emoji: "👍", count: 1 }], 3)] }),
    );
    assert.equal(page.type === "history" ? page.messages[0].reactionsVersion : undefined, 3);
  });
});
