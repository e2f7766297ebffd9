/**
 * Issue 8, bad input: hundreds of generated hostile frames (tests/reliability/cases.ts, seeded) against
 * ONE local runtime running the real handlers. Each case gets the documented error frame, the normal
 * reply (unknown fields ignored) or the close code API Gateway uses; after each case the same
 * connection still answers ping with pong unless API Gateway would have closed it; the runtime never
 * crashes; nothing a rejected frame carried is stored.
 *
 * Reproduce a run: BAD_INPUT_SEED=<seed> npx mocha tests/reliability/badInput.test.ts
 */
import * as assert from "node:assert/strict";
import { ScanCommand, type AttributeValue } from "@aws-sdk/client-dynamodb";
import { CLIENT_MESSAGE_ID_PATTERN, ROOM_ID_PATTERN } from "../../handlers/lib/frames";
import { startLocalRuntime, type LocalRuntime } from "../../local/runtime";
import { localDynamoClient } from "../../local/tables";
import { sharedDynamo, uniquePrefix } from "../support/globalFixtures";
import { HandshakeRejected, connect, eventually, type Frame, type TestClient } from "../local/wsClient";
import { DEFAULT_SEED, countByCategory, generateCases, type BadInputCase, type CaseContext } from "./cases";

const SEED = process.env.BAD_INPUT_SEED ? Number(process.env.BAD_INPUT_SEED) : DEFAULT_SEED;
const CTX: CaseContext = {
  self: "fuzzer",
  selfName: "Fuzzer",
  peer: "peer-offline",
  guardedRoom: "guarded",
  sandboxRoom: "sandbox",
  maxMessageBytes: 16_384,
  maxFrameBytes: 128 * 1024,
};
const CASES = generateCases(CTX, SEED);
const COUNTS = countByCategory(CASES);
/** Bound on every wait: a server that does not answer fails the case instead of hanging the run. */
const ANSWER_TIMEOUT_MS = 10_000;
const ERROR_FRAME_KEYS = new Set(["type", "code", "message", "requestType", "clientMessageId"]);
/** Codes whose error frame also names the room refused (docs/protocol.md "Errors": FORBIDDEN). */
const ROOM_NAMING_CODES = new Set(["FORBIDDEN"]);

/** What docs/protocol.md says an error frame echoes: the frame's string `type` and a valid clientMessageId. */
function expectedEcho(text: string): { requestType?: string; clientMessageId?: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return {};
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return {};
  const o = parsed as Record<string, unknown>;
  return {
    ...(typeof o.type === "string" && o.type.length <= 64 ? { requestType: o.type } : {}),
    ...(typeof o.clientMessageId === "string" && CLIENT_MESSAGE_ID_PATTERN.test(o.clientMessageId)
      ? { clientMessageId: o.clientMessageId }
      : {}),
  };
}

/** The problem with an answer, or undefined when it is what the case declares. */
function judge(c: BadInputCase, frame: Frame): string | undefined {
  const f = frame.json;
  if (!f) return `answer is not JSON: ${frame.text.slice(0, 200)}`;
  const e = c.expect;
  if (e.kind === "error") {
    if (f.type !== "error") return `expected error ${e.code}, got ${frame.text.slice(0, 200)}`;
    if (f.code !== e.code) return `expected error ${e.code}, got ${String(f.code)} (${String(f.message)})`;
    if (typeof f.message !== "string" || f.message.length === 0 || /\n\s+at |Error:/.test(f.message))
      return `bad error message ${JSON.stringify(f.message)}`;
    const extra = Object.keys(f).filter((k) => !ERROR_FRAME_KEYS.has(k) && !(k === "roomId" && ROOM_NAMING_CODES.has(e.code)));
    if (extra.length > 0) return `error frame has extra fields ${extra.join(", ")}`;
    if (ROOM_NAMING_CODES.has(e.code) && c.payload.kind === "text") {
      const sent = JSON.parse(c.payload.text) as { roomId?: unknown };
      if (f.roomId !== sent.roomId) return `roomId ${JSON.stringify(f.roomId)} instead of ${JSON.stringify(sent.roomId)}`;
    }
    const echo = expectedEcho(c.payload.kind === "text" ? c.payload.text : "");
    if (f.requestType !== echo.requestType)
      return `requestType ${JSON.stringify(f.requestType)} instead of ${JSON.stringify(echo.requestType)}`;
    if (f.clientMessageId !== echo.clientMessageId)
      return `clientMessageId ${JSON.stringify(f.clientMessageId)} instead of ${JSON.stringify(echo.clientMessageId)}`;
    return undefined;
  }
  if (e.kind === "reply") {
    if (f.type !== e.type) return `expected a ${e.type} reply, got ${frame.text.slice(0, 200)}`;
    return e.check?.(f);
  }
  return `a frame arrived where ${e.kind} was expected: ${frame.text.slice(0, 200)}`;
}

describe(`reliability: ${CASES.length} generated bad-input cases (seed ${SEED}) against one local runtime`, function () {
  this.timeout(120_000);
  let rt: LocalRuntime;
  let main: TestClient;
  const opened: TestClient[] = [];
  /** Accepted chat messages by messageId: history must return exactly these texts. */
  const acceptedChats = new Map<string, string>();
  const failures: string[] = [];

  const userUrl = async (userId: string, username: string, query: Record<string, string>): Promise<string> => {
    const token = await rt.mintToken(userId, username);
    return `${rt.endpoint}?${new URLSearchParams({ ...query, token })}`;
  };

  before(async () => {
    const dynamo = await sharedDynamo();
    rt = await startLocalRuntime({
      dynamodbEndpoint: dynamo.endpoint,
      tablePrefix: uniquePrefix("badinput"),
      quiet: true,
      // Every frame counts towards the rate limit (docs/protocol.md); this suite is not about rate limiting.
      settings: { rateLimitPerMinute: 100_000, maxMessageBytes: CTX.maxMessageBytes },
    });
    main = await connect(await userUrl(CTX.self, CTX.selfName, { roomId: CTX.guardedRoom }));
    opened.push(main);
    assert.equal((await main.request({ type: "join", roomId: CTX.sandboxRoom }, "joined")).roomId, CTX.sandboxRoom);
    assert.equal((await main.request({ type: "join", roomId: CTX.guardedRoom }, "joined")).roomId, CTX.guardedRoom);
  });

  after(async () => {
    await Promise.all(opened.map((c) => c.close().catch(() => undefined)));
    await rt?.stop();
    const summary = [...COUNTS].map(([k, n]) => `${k} ${n}`).join(", ");
    console.log(`      bad input: ${CASES.length} cases (seed ${SEED}): ${summary}; failures ${failures.length}`);
  });

  /** The next frame on the main connection; fails at once if the connection closes instead. */
  function nextOnMain(what: string): Promise<Frame> {
    if (main.ws.readyState !== main.ws.OPEN) return Promise.reject(new Error("the main connection is closed"));
    return Promise.race([
      main.next(() => true, ANSWER_TIMEOUT_MS, what),
      main.closed.then((c) => Promise.reject(new Error(`the main connection closed with ${c.code} while waiting for ${what}`))),
    ]);
  }

  /** One case on the main connection: exactly one answer, then ping answers pong. */
  async function onMain(c: BadInputCase): Promise<string | undefined> {
    if (c.payload.kind !== "text") throw new Error("not a main-connection case");
    const answer = nextOnMain(`the answer to ${c.id}`);
    main.send(c.payload.text);
    let frame: Frame;
    try {
      frame = await answer;
    } catch (err) {
      return (err as Error).message;
    }
    const problem = judge(c, frame);
    if (!problem && c.expect.kind === "reply" && c.expect.type === "chat")
      acceptedChats.set(String(frame.json!.messageId), String(frame.json!.message));
    const pong = nextOnMain(`pong after ${c.id}`);
    main.send({ type: "ping" });
    try {
      const p = await pong;
      if (p.json?.type !== "pong") return `${problem ? `${problem}; ` : ""}after the case, ping got ${p.text.slice(0, 200)}`;
    } catch (err) {
      return `${problem ? `${problem}; ` : ""}${(err as Error).message}`;
    }
    return problem;
  }

  /** A case API Gateway answers by closing the connection: run on a connection of its own. */
  async function onOwnConnection(c: BadInputCase, n: number): Promise<string | undefined> {
    if (c.expect.kind !== "close") throw new Error("not a close case");
    const client = await connect(await userUrl(`closer-${n}`, "Closer", { roomId: "closers" }));
    opened.push(client);
    const before = rt.connectionIds().length;
    if (c.payload.kind === "binary") client.ws.send(c.payload.bytes, { binary: true });
    else if (c.payload.kind === "rawText") client.ws.send(c.payload.bytes, { binary: false });
    else if (c.payload.kind === "text") client.ws.send(c.payload.text);
    let closed: { code: number };
    try {
      closed = await client.waitClosed(ANSWER_TIMEOUT_MS);
    } catch (err) {
      return (err as Error).message;
    }
    if (closed.code !== c.expect.code) return `closed with ${closed.code} instead of ${c.expect.code}`;
    const stray = client.frames.filter((f) => f.json?.type !== "presence");
    if (stray.length > 0) return `frames before the close: ${stray.map((f) => f.text.slice(0, 100)).join(" | ")}`;
    // The gateway forgets the connection (and runs $disconnect), as API Gateway does.
    await eventually(() => (rt.connectionIds().length < before ? true : undefined), 5000, "the closed connection to be forgotten");
    return undefined;
  }

  /** A handshake with odd query parameters (fresh user per case). */
  async function handshake(c: BadInputCase, n: number): Promise<string | undefined> {
    if (c.payload.kind !== "handshake") throw new Error("not a handshake case");
    const userId = `hs-${n}`;
    const url = await userUrl(userId, CTX.selfName, c.payload.query);
    const e = c.expect;
    if (e.kind === "refused") {
      try {
        const client = await connect(url);
        opened.push(client);
        await client.close();
        return `handshake accepted, expected HTTP ${e.status}`;
      } catch (err) {
        if (err instanceof HandshakeRejected)
          return err.status === e.status ? undefined : `handshake refused with ${err.status}, expected ${e.status}`;
        return (err as Error).message;
      }
    }
    if (e.kind !== "accepted") throw new Error("handshake cases are refused or accepted");
    const client = await connect(url);
    opened.push(client);
    try {
      const joined = await client.request({ type: "join", roomId: c.payload.query.roomId }, "joined", ANSWER_TIMEOUT_MS);
      const me = (joined.members as Array<{ userId: string; username: string }>).find((m) => m.userId === userId);
      if (me?.username !== e.username) return `shown as ${JSON.stringify(me?.username)}, expected ${JSON.stringify(e.username)}`;
      return undefined;
    } finally {
      await client.close();
    }
  }

  const categories = [...COUNTS.keys()];
  for (const category of categories) {
    const inCategory = CASES.filter((c) => c.category === category);
    it(`${category}: ${inCategory.length} cases answered as documented${category === "binary frames" || category === "invalid UTF-8" ? " (connection closed)" : ""}`, async () => {
      const problems: string[] = [];
      for (const c of inCategory) {
        const n = CASES.indexOf(c);
        const problem =
          c.payload.kind === "handshake"
            ? await handshake(c, n)
            : c.expect.kind === "close"
              ? await onOwnConnection(c, n)
              : await onMain(c);
        if (problem) problems.push(`${c.id}: ${problem}`);
      }
      failures.push(...problems);
      assert.deepEqual(problems, [], `${problems.length} of ${inCategory.length} ${category} cases failed`);
    });
  }

  it("never crashed: no function crashed, timed out or failed, and a new connection is accepted and answers ping", async () => {
    // Nothing left over on the main connection: every case had exactly one answer.
    await main.expectNone(() => true, 300);
    const stats = Object.entries(rt.stats.functions).map(([name, s]) => ({
      name,
      crashes: s.crashes,
      timeouts: s.timeouts,
      errors: s.errors,
    }));
    assert.deepEqual(
      stats.filter((s) => s.crashes + s.timeouts + s.errors > 0),
      [],
    );
    const fresh = await connect(await userUrl("after-fuzz", "After", { roomId: "after" }));
    opened.push(fresh);
    assert.deepEqual(await fresh.request({ type: "ping" }, "pong"), { type: "pong" });
  });

  it("stored nothing a rejected frame carried: the guarded room is empty and the table holds exactly the accepted messages", async () => {
    const guarded = await main.request({ type: "history", roomId: CTX.guardedRoom, limit: 100 }, "history");
    assert.deepEqual(guarded.messages, []);

    // Accepted chats come back from history byte for byte (emoji, RTL, NUL, zero-width...).
    const sandbox = await main.request({ type: "history", roomId: CTX.sandboxRoom, limit: 100 }, "history");
    const returned = new Map((sandbox.messages as Array<{ messageId: string; message: string }>).map((m) => [m.messageId, m.message]));
    const differing = [...new Set([...returned.keys(), ...acceptedChats.keys()])].filter(
      (id) => returned.get(id) !== acceptedChats.get(id),
    );
    assert.deepEqual(
      differing.map(
        (id) =>
          `${id}: sent ${JSON.stringify(acceptedChats.get(id)?.slice(0, 40))}, history ${JSON.stringify(returned.get(id)?.slice(0, 40))}`,
      ),
      [],
    );

    // No rejected join created a room: every listed room id is a valid one.
    const rooms = (await main.request({ type: "rooms" }, "rooms")).rooms as Array<{ roomId: string }>;
    assert.deepEqual(
      rooms.map((r) => r.roomId).filter((id) => !ROOM_ID_PATTERN.test(id)),
      [],
    );
    assert.ok(rooms.some((r) => r.roomId === CTX.guardedRoom) && rooms.some((r) => r.roomId === CTX.sandboxRoom));

    const ddb = localDynamoClient(rt.dynamodbEndpoint);
    try {
      const items: Array<Record<string, AttributeValue>> = [];
      let start: Record<string, AttributeValue> | undefined;
      do {
        const page = await ddb.send(new ScanCommand({ TableName: rt.tableNames.messages, ExclusiveStartKey: start, ConsistentRead: true }));
        items.push(...(page.Items ?? []));
        start = page.LastEvaluatedKey;
      } while (start);
      const messages = items.filter((i) => !i.conversationId?.S?.startsWith("idem#"));
      const expected = CASES.reduce((sum, c) => sum + c.stores, 0);
      assert.equal(messages.length, expected, "messages stored = messages of the accepted cases");
      for (const m of messages) {
        const text = m.message?.S ?? "";
        assert.ok(Buffer.byteLength(text, "utf8") <= CTX.maxMessageBytes, "no stored message is over maxMessageBytes");
        assert.ok(!/\p{Cs}/u.test(text), "no stored message holds an unpaired surrogate");
        assert.equal(m.userId?.S, CTX.self, "every stored message has the real sender");
      }
    } finally {
      ddb.destroy();
    }
  });
});
