/**
 * Issue 14 item 11: a connection whose token has expired can no longer chat (TOKEN_EXPIRED), and the
 * clients renew the token and reconnect without losing anything. The local runtime mints tokens that
 * live 2 s (localTokenTtlSeconds); the terminal client (--user: a token minted afresh for every
 * connection) keeps chatting across the expiry. Nothing here asserts a duration: the test waits for
 * the token to be past its expiry and leeway, then looks at what happened.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import type { LocalRuntime } from "../../local/runtime";
import { CLOCK_TOLERANCE_SECONDS } from "../../handlers/functions/authorizer";
import { TOKEN_EXPIRY_LEEWAY_SECONDS } from "../../handlers/lib/runtime";
import { connect, eventually, type TestClient } from "../local/wsClient";
import { TerminalClient, startTestRuntime } from "./support";

const TTL_SECONDS = 2;
const T = 30_000;

/** Resolves once a token minted now is refused by the message routes (exp + leeway passed). */
async function pastExpiry(mintedAtMs: number): Promise<void> {
  const refusedFrom = (Math.floor(mintedAtMs / 1000) + TTL_SECONDS + TOKEN_EXPIRY_LEEWAY_SECONDS) * 1000 + 1000;
  await eventually(
    () => (Date.now() > refusedFrom ? true : undefined),
    (TTL_SECONDS + TOKEN_EXPIRY_LEEWAY_SECONDS + 5) * 1000,
    "the token to expire",
  );
}

describe("token expiry: refused frames, clients renew and reconnect", function () {
  this.timeout(120_000);
  let rt: LocalRuntime;
  let dir: string;
  const closers: Array<() => unknown> = [];

  // The two raw connections of the first tests are opened together, so one wait covers both expiries.
  let shortMintedAt = 0;
  let raw: TestClient;
  let listener: TestClient;
  let speaker: TestClient;

  before(async () => {
    ({ rt, dir } = await startTestRuntime("expiry", { localTokenTtlSeconds: TTL_SECONDS, warm: true }));
    const open = async (userId: string, name: string, roomId: string, ttl: number) => {
      const c = await connect(`${rt.endpoint}?${new URLSearchParams({ roomId, token: await rt.mintToken(userId, name, ttl) })}`);
      closers.push(() => c.close().catch(() => undefined));
      return c;
    };
    shortMintedAt = Date.now();
    [raw, listener] = await Promise.all([
      open("exp-raw", "Raw", "exp-raw-room", TTL_SECONDS),
      open("exp-listener", "Listener", "exp-listen", TTL_SECONDS),
    ]);
    speaker = await open("exp-speaker", "Speaker", "exp-listen", 3600);
    // Before the expiry the listener hears the room (what the second test shows it stops hearing).
    await speaker.request({ type: "chat", roomId: "exp-listen", message: "before", clientMessageId: "b-1" }, "chat");
    await listener.next((f) => f.json?.type === "chat" && f.json.message === "before", T, "the message sent before the expiry");
  });

  after(async () => {
    for (const c of closers) await c();
    await rt?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("refuses frames with the authorizer's own clock leeway (a token it accepts is never refused, so no reconnection loop)", () => {
    assert.equal(TOKEN_EXPIRY_LEEWAY_SECONDS, CLOCK_TOLERANCE_SECONDS);
  });

  it("answers the first frame after the token's expiry with TOKEN_EXPIRED, closes the connection (1000) and stores nothing", async () => {
    const ws = raw;
    assert.equal((await ws.request({ type: "ping" }, "pong")).type, "pong");
    await pastExpiry(shortMintedAt);
    // Pipelined, as a client that has not noticed would send them: each is refused before anything
    // is stored; the first refusal closes the connection, so later ones may find it closed.
    const refused = ws.nextOf("error");
    for (const frame of [{ type: "chat", message: "too late", clientMessageId: "late-1" }, { type: "ping" }, { type: "rooms" }])
      ws.send(frame);
    const reply = await refused;
    assert.equal(reply.code, "TOKEN_EXPIRED", JSON.stringify(reply));
    assert.ok(["chat", "ping", "rooms"].includes(String(reply.requestType)));
    assert.equal((await ws.waitClosed(T)).code, 1000, "closed by the server (@connections DELETE)");
    assert.equal(ws.frames.filter((f) => f.json?.type !== "error").length, 0, "nothing but TOKEN_EXPIRED answers after the expiry");
    const reader = await connect(
      `${rt.endpoint}?${new URLSearchParams({ roomId: "exp-raw-room", token: await rt.mintToken("exp-reader", "Reader", 3600) })}`,
    );
    closers.push(() => reader.close().catch(() => undefined));
    const history = await reader.request({ type: "history", roomId: "exp-raw-room" }, "history");
    assert.deepEqual(history.messages, [], "nothing sent after the expiry was stored");
  });

  it("a connection that only listens hears nothing of its room after its token's expiry and is closed by the next fan-out; `left` is announced once", async () => {
    await listener.next((f) => f.json?.type === "presence" && f.json.userId === "exp-speaker", T, "the speaker's arrival");
    await pastExpiry(shortMintedAt);
    await speaker.request({ type: "chat", roomId: "exp-listen", message: "after", clientMessageId: "a-1" }, "chat");
    assert.equal((await listener.waitClosed(T)).code, 1000, "closed by the fan-out that met it past its expiry");
    assert.equal(
      listener.frames.filter((f) => f.json?.type === "chat" && f.json.message === "after").length,
      0,
      "the message after the expiry did not reach it",
    );
    await speaker.next(
      (f) => f.json?.type === "presence" && f.json.event === "left" && f.json.userId === "exp-listener",
      T,
      "the listener's `left`",
    );
    await speaker.request({ type: "chat", roomId: "exp-listen", message: "again", clientMessageId: "a-2" }, "chat");
    await speaker.expectNone((f) => f.json?.type === "presence" && f.json.event === "left", 500);
    const who = await speaker.request({ type: "join", roomId: "exp-listen" }, "joined");
    assert.deepEqual(
      (who.members as Array<{ userId: string }>).map((m) => m.userId),
      ["exp-speaker"],
    );
  });

  it("the terminal client renews its token, reconnects, rejoins its rooms and resends the message the expired connection refused", async () => {
    const watcher = await connect(
      `${rt.endpoint}?${new URLSearchParams({ roomId: "exp-room", token: await rt.mintToken("exp-watcher", "Watcher", 3600) })}`,
    );
    closers.push(() => watcher.close().catch(() => undefined));
    // No pings (a ping after the expiry would renew the connection before the message is typed).
    const alice = new TerminalClient([
      rt.endpoint,
      "--user",
      "exp-alice",
      "--name",
      "Alice",
      "--room",
      "exp-first",
      "--no-color",
      "--ping-interval",
      "500",
    ]);
    closers.push(() => alice.kill());
    await alice.expect(/\[joined #exp-first/, 0, T);
    alice.send("/join exp-room");
    await alice.expect(/\[joined #exp-room/, 0, T);
    // The token was minted before the connection opened, hence before now.
    await pastExpiry(Date.now());
    const from = alice.mark();
    alice.send("written after the token expired");
    await alice.expect(/the token has expired; reconnecting with a new token/, from, T);
    await alice.expect(/reconnected; rejoining .*#exp-first.*#exp-room|reconnected; rejoining .*#exp-room.*#exp-first/, from, T);
    const got = await watcher.next((f) => f.json?.type === "chat", T, "the resent chat");
    assert.equal(got.json?.message, "written after the token expired");
    assert.equal(got.json?.userId, "exp-alice");
    await alice.expect(/written after the token expired/, from, T);
    // Exactly once: the refused frame stored nothing, the resent one is the only copy.
    await watcher.expectNone((f) => f.json?.type === "chat", 500);
    const history = await watcher.request({ type: "history", roomId: "exp-room" }, "history");
    assert.deepEqual(
      (history.messages as Array<{ message: string }>).map((m) => m.message),
      ["written after the token expired"],
    );
    // Still in both rooms on the new connection: the client's own member lists, from the joined replies.
    for (const room of ["exp-first", "exp-room"]) {
      const at = alice.mark();
      alice.send(`/who ${room}`);
      await alice.expect(new RegExp(`\\[who #${room}\\] \\d+ members?: .*Alice \\(exp-alice\\)`), at, T);
    }
  });
});
