/**
 * Faults (issue 8): what users observe when DynamoDB goes away and comes back, when half a room
 * vanishes without `$disconnect`, when `@connections` throttles, and when a function runs past its
 * timeout. The real handlers in their workers, real `ws` clients connecting concurrently, and for
 * the first three a DynamoDB Local of this file's own (on disk, so that it can be stopped and
 * restarted on the same port with its tables and items), never the suite's shared one; the
 * timeout case reaches the shared one through a relay that can stall.
 *
 * Every wait is bounded: SDK timeouts (handlers/lib/clients.ts: 1 s connect, 5 s request, 3
 * attempts) decide how long a frame waits while DynamoDB is down; the function timeout decides how
 * long one waits on a stalled DynamoDB.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { GetItemCommand, QueryCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { OPEN_SETTLE_MS } from "../../handlers/lib/data";
import { METRICS } from "../../handlers/metrics";
import { CONNECTIONS_BY_USER_INDEX } from "../../handlers/tables";
import { freePort, startDynamoLocal, type DynamoLocal } from "../../local/dynamoLocal";
import type { ManagementCall, ManagementError } from "../../local/gateway";
import { startLocalRuntime, type LocalRuntime } from "../../local/runtime";
import { localDynamoClient } from "../../local/tables";
import { sharedDynamo, uniquePrefix } from "../support/globalFixtures";
import { connect, eventually, handshakeStatus, withTimeout, type TestClient } from "../local/wsClient";

/** Longest a frame may wait for its answer here: above the SDK's worst case with DynamoDB refusing connections. */
const ANSWER_MS = 15_000;

interface Member {
  readonly userId: string;
  readonly client: TestClient;
}

function connectUrl(rt: LocalRuntime, token: string, userId: string, roomId: string): string {
  return `${rt.endpoint}?${new URLSearchParams({ userId, username: `User ${userId}`, roomId, token })}`;
}

/** Connects `n` users to `roomId` all at once, as real users do (no handshake waits for another). */
async function crowd(rt: LocalRuntime, roomId: string, n: number): Promise<Member[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const userId = `${roomId}-u${i}`;
      const token = await rt.mintToken(userId, `User ${userId}`);
      return { userId, client: await connect(connectUrl(rt, token, userId, roomId)) };
    }),
  );
}

/** The connection id of a user's only connection, read from the connections table's byUser index. */
async function connectionIdOf(ddb: DynamoDBClient, rt: LocalRuntime, userId: string): Promise<string> {
  const out = await ddb.send(
    new QueryCommand({
      TableName: rt.tableNames.connections,
      IndexName: CONNECTIONS_BY_USER_INDEX,
      KeyConditionExpression: "userId = :u",
      ExpressionAttributeValues: { ":u": { S: userId } },
    }),
  );
  assert.equal(out.Items?.length, 1, `${userId} has exactly one connection item`);
  return out.Items![0].connectionId.S!;
}

async function hasItem(ddb: DynamoDBClient, table: string, key: Record<string, string>): Promise<boolean> {
  const Key = Object.fromEntries(Object.entries(key).map(([k, v]) => [k, { S: v }]));
  return (await ddb.send(new GetItemCommand({ TableName: table, Key, ConsistentRead: true }))).Item !== undefined;
}

/** Waits until the EMF lines of finished invocations add `delta` to a metric (they are written when an invocation ends). */
function metricReaches(
  rt: LocalRuntime,
  metric: string,
  from: number,
  delta: number,
  fn?: Parameters<LocalRuntime["metricTotal"]>[1],
): Promise<true> {
  return eventually(() => (rt.metricTotal(metric, fn) - from >= delta ? true : undefined), ANSWER_MS, `${metric} to grow by ${delta}`);
}

/**
 * A frame sent after the server has finished posting arrives after everything posted before it
 * (one TCP stream per connection): a pong proves no earlier frame is still on its way.
 */
async function drained(members: readonly Member[]): Promise<void> {
  await Promise.all(members.map((m) => m.client.request({ type: "ping" }, "pong", ANSWER_MS)));
}

function closeAll(members: readonly Member[]): Promise<unknown> {
  return Promise.all(members.map((m) => m.client.close().catch(() => undefined)));
}

/**
 * A TCP relay in front of DynamoDB Local that can stall: while stalled it accepts connections and
 * never answers (as a DynamoDB endpoint that hangs), and drops the relayed ones so that kept-alive
 * sockets stall too on their next request.
 */
class StallingRelay {
  private readonly server: net.Server;
  private readonly open = new Set<net.Socket>();
  private stalled = false;
  port = 0;

  constructor(private readonly upstreamPort: number) {
    this.server = net.createServer((client) => {
      this.open.add(client);
      client.on("close", () => this.open.delete(client));
      client.on("error", () => client.destroy());
      if (this.stalled) return; // accepted, never answered
      const upstream = net.connect({ port: this.upstreamPort, host: "127.0.0.1" });
      this.open.add(upstream);
      upstream.on("close", () => {
        this.open.delete(upstream);
        client.destroy();
      });
      upstream.on("error", () => upstream.destroy());
      client.on("close", () => upstream.destroy());
      client.pipe(upstream).pipe(client);
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return `http://127.0.0.1:${this.port}`;
  }

  stall(): void {
    this.stalled = true;
    for (const s of this.open) s.destroy();
  }

  resume(): void {
    this.stalled = false;
    for (const s of this.open) s.destroy();
  }

  close(): Promise<void> {
    for (const s of this.open) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe("faults: the service survives its worst day", function () {
  this.timeout(90_000);
  let dataDir: string;
  let dynamoPort: number;
  let dynamo: DynamoLocal;
  let rt: LocalRuntime;
  let ddb: DynamoDBClient;
  /** Connections whose `$disconnect` never arrives (best effort on AWS: AWS-FACTS Routing). */
  const vanished = new Set<string>();
  /** The `@connections` fault of the current test, if any. */
  let fault: ((call: ManagementCall) => ManagementError | undefined) | undefined;
  const everyone: Member[] = [];

  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "chat-faults-"));
    dynamoPort = await freePort();
    dynamo = await startDynamoLocal({ port: dynamoPort, dataDir });
    rt = await startLocalRuntime({
      dynamodbEndpoint: dynamo.endpoint,
      tablePrefix: uniquePrefix("faults"),
      quiet: true,
      settings: { rateLimitPerMinute: 1000 },
      loseDisconnect: (id) => vanished.has(id),
      managementFault: (call) => fault?.(call),
    });
    ddb = localDynamoClient(dynamo.endpoint);
  });

  after(async () => {
    fault = undefined;
    await closeAll(everyone);
    await rt?.stop();
    ddb?.destroy();
    await dynamo?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it("answers INTERNAL while DynamoDB is down, keeps every connection, and resumes when it is back", async () => {
    const room = await crowd(rt, "outage", 3);
    everyone.push(...room);
    const [alice, bob, carol] = room;
    const before = bob.client.next((f) => f.json?.type === "chat" && f.json.message === "before the outage", ANSWER_MS);
    alice.client.send({ type: "chat", message: "before the outage" });
    await before;

    await dynamo.stop();
    assert.notEqual(dynamo.process.exitCode ?? dynamo.process.signalCode, null, "DynamoDB Local has exited");

    // Every route that needs DynamoDB answers the documented INTERNAL frame (docs/protocol.md), with
    // the request's type and clientMessageId, so a client knows what to retry.
    const asked = performance.now();
    const failed = await Promise.all(
      room.map((m) =>
        m.client.request(
          { type: "chat", message: `from ${m.userId} during the outage`, clientMessageId: `${m.userId}-1` },
          "error",
          ANSWER_MS,
        ),
      ),
    );
    // A figure, not an assertion: how long a frame waits while DynamoDB refuses connections (SDK retries, handlers/lib/clients.ts).
    console.log(`      INTERNAL answered ${Math.round(performance.now() - asked)} ms after the frames were sent, DynamoDB down`);
    for (const [i, frame] of failed.entries()) {
      assert.deepEqual(
        { code: frame.code, requestType: frame.requestType, clientMessageId: frame.clientMessageId },
        { code: "INTERNAL", requestType: "chat", clientMessageId: `${room[i].userId}-1` },
      );
    }
    const history = await carol.client.request({ type: "history", roomId: "outage" }, "error", ANSWER_MS);
    assert.equal(history.code, "INTERNAL");
    // A new handshake cannot register its connection: refused with 500 (docs/protocol.md), not left hanging.
    const token = await rt.mintToken("latecomer", "Latecomer");
    assert.equal(await withTimeout(handshakeStatus(connectUrl(rt, token, "latecomer", "outage")), ANSWER_MS, "the refused handshake"), 500);

    // The runtime is still up: every connection open, no function instance crashed.
    for (const m of room) assert.equal(m.client.ws.readyState, m.client.ws.OPEN, `${m.userId} is still connected`);
    assert.equal(rt.connectionIds().length, 3);
    assert.equal(
      Object.values(rt.stats.functions).reduce((n, f) => n + f.crashes, 0),
      0,
    );

    // Same port, same data folder: the tables and items are back, and the runtime was never restarted.
    dynamo = await startDynamoLocal({ port: dynamoPort, dataDir });
    const retried = room.map((m) =>
      m.client.next((f) => f.json?.type === "chat" && f.json.clientMessageId === `${alice.userId}-1`, ANSWER_MS, "the retried chat"),
    );
    alice.client.send({ type: "chat", message: `from ${alice.userId} during the outage`, clientMessageId: `${alice.userId}-1` });
    const delivered = await Promise.all(retried);
    assert.equal(new Set(delivered.map((f) => f.json!.messageId)).size, 1, "one message, one id");

    const page = await carol.client.request({ type: "history", roomId: "outage" }, "history", ANSWER_MS);
    const texts = (page.messages as Array<{ message: string }>).map((m) => m.message);
    assert.deepEqual(texts, ["before the outage", `from ${alice.userId} during the outage`]);
  });

  it("cleans exactly the half of a room that vanished without $disconnect, and reaches the other half", async () => {
    const room = await crowd(rt, "vanish", 8);
    everyone.push(...room);
    const ids = new Map<string, string>();
    for (const m of room) ids.set(m.userId, await connectionIdOf(ddb, rt, m.userId));
    for (const id of ids.values())
      assert.ok(await hasItem(ddb, rt.tableNames.rooms, { roomId: "vanish", sk: `c#${id}` }), "every member is in the room");
    const gone = room.filter((_, i) => i % 2 === 1);
    const stay = room.filter((_, i) => i % 2 === 0);
    const connectedAt = Date.now();

    // The TCP connection is cut without a close frame and the gateway loses their $disconnect, as
    // API Gateway may: afterwards a POST to them answers 410 GoneException.
    for (const m of gone) vanished.add(ids.get(m.userId)!);
    for (const m of gone) m.client.ws.terminate();
    await eventually(
      () => (gone.some((m) => rt.connectionIds().includes(ids.get(m.userId)!)) ? undefined : true),
      ANSWER_MS,
      "the sockets to drop",
    );
    for (const m of gone)
      assert.ok(
        await hasItem(ddb, rt.tableNames.connections, { connectionId: ids.get(m.userId)! }),
        "no $disconnect ran: the item is still there",
      );

    // A 410 within OPEN_SETTLE_MS of the handshake may be the handshake itself (API Gateway
    // completes it only after $connect returns), so the handlers keep such a connection; the
    // broadcast that cleans it comes after that.
    await new Promise((r) => setTimeout(r, Math.max(0, connectedAt + OPEN_SETTLE_MS + 100 - Date.now())));
    const cleaned = rt.metricTotal(METRICS.staleConnectionsCleaned);
    const deliveries = rt.metricTotal(METRICS.deliveries, "chat");
    const received = stay.map((m) =>
      m.client.next((f) => f.json?.type === "chat" && f.json.message === "who is still here?", ANSWER_MS, "the broadcast"),
    );
    // Each vanished user's last connection in the room is gone: the others are told they left, as
    // their $disconnect would have done.
    const leftSeen = stay.flatMap((m) =>
      gone.map((g) =>
        m.client.next(
          (f) => f.json?.type === "presence" && f.json.event === "left" && f.json.userId === g.userId,
          ANSWER_MS,
          `left for ${g.userId}`,
        ),
      ),
    );
    stay[0].client.send({ type: "chat", message: "who is still here?" });
    await Promise.all(received);
    await Promise.all(leftSeen);
    // The message to the 4 who stayed, then one `left` per vanished user to each of them.
    const expectedDeliveries = stay.length * (1 + gone.length);
    await metricReaches(rt, METRICS.deliveries, deliveries, expectedDeliveries, "chat");
    await metricReaches(rt, METRICS.staleConnectionsCleaned, cleaned, gone.length);

    await drained(stay);
    assert.equal(
      rt.metricTotal(METRICS.staleConnectionsCleaned) - cleaned,
      gone.length,
      "StaleConnectionsCleaned counts exactly the vanished",
    );
    assert.equal(rt.metricTotal(METRICS.deliveries, "chat") - deliveries, expectedDeliveries);
    for (const m of stay) {
      await m.client.expectNone((f) => f.json?.type === "presence" && f.json.event === "left", 200);
    }
    for (const m of gone) {
      const id = ids.get(m.userId)!;
      assert.equal(await hasItem(ddb, rt.tableNames.connections, { connectionId: id }), false, `${m.userId}'s connection item is deleted`);
      assert.equal(
        await hasItem(ddb, rt.tableNames.rooms, { roomId: "vanish", sk: `c#${id}` }),
        false,
        `${m.userId}'s membership is deleted`,
      );
    }
    for (const m of stay) {
      const id = ids.get(m.userId)!;
      assert.ok(await hasItem(ddb, rt.tableNames.connections, { connectionId: id }), `${m.userId} is kept`);
      assert.ok(await hasItem(ddb, rt.tableNames.rooms, { roomId: "vanish", sk: `c#${id}` }), `${m.userId} is still a member`);
    }
  });

  it("retries posts answered LimitExceededException and delivers to every member exactly once", async () => {
    const room = await crowd(rt, "throttle", 9);
    everyone.push(...room);
    const ids = new Set<string>();
    for (const m of room) ids.add(await connectionIdOf(ddb, rt, m.userId));
    // Deterministic throttling: the k-th member first seen gets (k mod 3) 429s before a post goes
    // through, so some posts succeed at once, others on the first or second retry.
    const need = new Map<string, number>();
    const attempts = new Map<string, number>();
    let expected429 = 0;
    fault = (call) => {
      if (call.method !== "POST" || !ids.has(call.connectionId)) return undefined;
      if (!need.has(call.connectionId)) {
        const k = need.size % 3;
        need.set(call.connectionId, k);
        expected429 += k;
      }
      const n = (attempts.get(call.connectionId) ?? 0) + 1;
      attempts.set(call.connectionId, n);
      return n <= need.get(call.connectionId)! ? "LimitExceededException" : undefined;
    };
    const throttled = rt.stats.management.limitExceeded;
    const deliveries = rt.metricTotal(METRICS.deliveries, "chat");
    const failures = rt.metricTotal(METRICS.failedDeliveries, "chat");
    try {
      const received = room.map((m) =>
        m.client.next((f) => f.json?.type === "chat" && f.json.message === "through the throttle", ANSWER_MS, "the broadcast"),
      );
      room[4].client.send({ type: "chat", message: "through the throttle" });
      const frames = await Promise.all(received);
      await metricReaches(rt, METRICS.deliveries, deliveries, room.length, "chat");
      const messageId = frames[0].json!.messageId;
      assert.ok(frames.every((f) => f.json!.messageId === messageId));

      await drained(room);
      for (const m of room) {
        assert.equal(m.client.frames.filter((f) => f.json?.messageId === messageId).length, 0, `${m.userId} received it exactly once`);
      }
      assert.equal(need.size, room.length);
      assert.equal(expected429, 9, "0 + 1 + 2 throttled attempts for each third of the room");
      assert.equal(rt.stats.management.limitExceeded - throttled, expected429, "every injected 429 was answered");
      assert.equal(rt.metricTotal(METRICS.deliveries, "chat") - deliveries, room.length);
      assert.equal(rt.metricTotal(METRICS.failedDeliveries, "chat") - failures, 0, "no post given up");
    } finally {
      fault = undefined;
    }
  });
});

describe("faults: a function that runs past its timeout", function () {
  this.timeout(90_000);
  let relay: StallingRelay;
  let rt: LocalRuntime;
  let members: Member[] = [];
  /** Shorter than the SDK's 5 s request timeout, so a stalled DynamoDB call outlives the function (as a Lambda timeout below the SDK's would). */
  const HISTORY_TIMEOUT_MS = 3000;

  before(async () => {
    // The suite's shared DynamoDB Local is never stopped here: the relay in front of it stalls.
    relay = new StallingRelay((await sharedDynamo()).port);
    rt = await startLocalRuntime({
      dynamodbEndpoint: await relay.listen(),
      tablePrefix: uniquePrefix("timeout"),
      quiet: true,
      settings: { rateLimitPerMinute: 1000 },
      functionTimeoutMs: { history: HISTORY_TIMEOUT_MS },
    });
  });

  after(async () => {
    await closeAll(members);
    await relay?.close();
    await rt?.stop();
  });

  it("answers API Gateway's Internal server error frame, and the next message on the connection works", async () => {
    members = await crowd(rt, "slow", 2);
    const [alice, bob] = members;
    const seen = bob.client.next((f) => f.json?.type === "chat" && f.json.message === "kept", ANSWER_MS);
    alice.client.send({ type: "chat", message: "kept" });
    await seen;
    const timeouts = rt.stats.functions.history.timeouts;

    relay.stall();
    const frame = await alice.client.request({ type: "history", roomId: "slow" }, "Internal server error", ANSWER_MS);
    const aliceId = rt.connectionIds().find((id) => id === frame.connectionId);
    assert.ok(aliceId, "the frame names the connection, as API Gateway's does");
    assert.equal(typeof frame.requestId, "string");
    assert.equal(rt.stats.functions.history.timeouts - timeouts, 1);

    relay.resume();
    const page = await alice.client.request({ type: "history", roomId: "slow" }, "history", ANSWER_MS);
    assert.deepEqual(
      (page.messages as Array<{ message: string }>).map((m) => m.message),
      ["kept"],
    );
    assert.equal(alice.client.ws.readyState, alice.client.ws.OPEN);
  });
});
