/**
 * Fan-out and resilience: stale TARGET clean-up after GoneException, LimitExceeded retried,
 * other failures counted without stopping delivery, membership pagination, rate limiting,
 * and a DynamoDB outage answered with INTERNAL.
 */
import { strict as assert } from "node:assert";
import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { ApiGatewayManagementApiClient } from "@aws-sdk/client-apigatewaymanagementapi";
import { CONNECT_GRACE_MS } from "../../handlers/lib/data";
import { createFanout, mapPool } from "../../handlers/lib/fanout";
import { createLogger } from "../../handlers/lib/logger";
import { createUsageScope, emptyUsage } from "../../handlers/lib/usage";
import { FACTORIES } from "../../handlers";
import { createHarness, messageEvent, withEnv, type Harness } from "../support/handlerHarness";

async function awayFromMinuteBoundary(): Promise<void> {
  // The rate limit uses fixed one-minute windows: keep a burst inside one window.
  const left = 60_000 - (Date.now() % 60_000);
  if (left < 5_000) await new Promise((r) => setTimeout(r, left + 50));
}

describe("handlers: fan-out, clean-up, pagination, rate limiting, outages", () => {
  let h: Harness;
  before(async () => {
    h = await createHarness({ label: "delivery", extraEnv: { ROOM_QUERY_PAGE_SIZE: "3" }, fanoutConcurrency: 3 });
  });
  after(async () => {
    await h?.stop();
  });
  beforeEach(() => h.api.clearFrames());

  const getConnection = async (id: string) =>
    (await h.doc.send(new GetCommand({ TableName: h.tables.connections, Key: { connectionId: id } }))).Item;
  const getMember = async (roomId: string, id: string) =>
    (await h.doc.send(new GetCommand({ TableName: h.tables.rooms, Key: { roomId, sk: `c#${id}` } }))).Item;

  it("a GoneException removes exactly the stale target's connection and all its memberships, not the sender's", async () => {
    const sender = await h.join("ga", "gone-1");
    const stale = await h.join("gb", "gone-1");
    const other = await h.join("gc", "gone-1");
    assert.ok((await h.send(stale, { type: "join", roomId: "gone-2" }))?.type === "joined");
    await h.vanish(stale); // the client vanished without a $disconnect
    h.api.clearFrames();
    assert.equal(await h.send(sender, { type: "chat", message: "still there?" }), undefined);
    assert.equal(h.frames(other).filter((f) => f.type === "chat").length, 1);
    assert.equal(h.frames(sender).filter((f) => f.type === "chat").length, 1);
    assert.equal(await getConnection(stale.connectionId), undefined);
    assert.equal(await getMember("gone-1", stale.connectionId), undefined);
    assert.equal(await getMember("gone-2", stale.connectionId), undefined);
    assert.ok(await getConnection(sender.connectionId));
    assert.ok(await getMember("gone-1", sender.connectionId));
    assert.ok(await getConnection(other.connectionId));
    const report = h.reports.filter((r) => r.function === "chat").pop();
    assert.equal(report?.metrics.StaleConnectionsCleaned, 1);
    // The message to the two others, then `left` for gb (its only connection in the room) to both.
    assert.equal(report?.metrics.Deliveries, 4);
    for (const c of [sender, other]) {
      assert.deepEqual(
        h
          .frames(c)
          .filter((f) => f.type === "presence")
          .map((f) => [f.event, f.userId, f.roomId]),
        [["left", "gb", "gone-1"]],
      );
    }
    assert.ok(report?.dynamoCalls.some((c) => c.table === "connections" && c.action === "dynamodb:BatchGetItem"));
    // The connection item is deleted (DeleteItem), each membership in a transaction (its Delete part).
    assert.ok(report?.dynamoCalls.some((c) => c.table === "connections" && c.action === "dynamodb:DeleteItem"));
    assert.ok(report?.dynamoCalls.some((c) => c.table === "rooms" && c.action === "dynamodb:DeleteItem"));
  });

  it("concurrent $connects into one room do not delete each other: a 410 for a connection still in $connect is not stale", async () => {
    // Every $connect announces `joined` to the members it reads; API Gateway answers 410 for those
    // whose own $connect has not finished (the fake API opens a connection only after it returns 200).
    const users = Array.from({ length: 12 }, (_, i) => `race-${i}`);
    const conns = await Promise.all(users.map((u) => h.join(u, "race-1")));
    const connectReports = h.reports.filter((r) => r.function === "connect");
    assert.ok(
      h.api.calls.some((c) => c.status === 410 && conns.some((k) => k.connectionId === c.connectionId)),
      "the race happened: some joined announcement reached a connection still in $connect",
    );
    for (const c of conns) {
      const item = await getConnection(c.connectionId);
      assert.ok(item, `${c.userId}'s connection item survived the others' announcements`);
      assert.equal(item.connecting, undefined, "the connecting flag is cleared by $connect's last step");
      assert.ok(await getMember("race-1", c.connectionId), `${c.userId}'s membership survived`);
    }
    assert.equal(
      connectReports.reduce((n, r) => n + (r.metrics.StaleConnectionsCleaned ?? 0), 0),
      0,
    );
    h.api.clearFrames();
    assert.equal(await h.send(conns[0], { type: "chat", message: "all here?" }), undefined);
    for (const c of conns) assert.equal(h.frames(c).filter((f) => f.type === "chat").length, 1, `${c.userId} got the message`);
  });

  it("a 410 just after $connect returned is posted again once the handshake has settled: delivered if open, removed if not", async () => {
    const sender = await h.join("os-a", "settle-1");
    h.api.clearFrames();
    // Both $connects have just returned; API Gateway completes a handshake only afterwards.
    const late = await h.join("os-b", "settle-1");
    const vanished = await h.join("os-c", "settle-1");
    h.api.close(late.connectionId);
    h.api.close(vanished.connectionId);
    setTimeout(() => h.api.open(late.connectionId), 200); // the handshake completes
    assert.equal(await h.send(sender, { type: "chat", message: "settled?" }), undefined);
    assert.equal(h.frames(late).filter((f) => f.type === "chat").length, 1, "delivered on the second post");
    assert.ok(await getConnection(late.connectionId));
    assert.equal(await getConnection(vanished.connectionId), undefined, "a second 410: stale");
    assert.equal(await getMember("settle-1", vanished.connectionId), undefined);
    const report = h.reports.filter((r) => r.function === "chat").pop();
    assert.equal(report?.metrics.StaleConnectionsCleaned, 1);
    // The message to the sender and the late one, then `left` for os-c to both.
    assert.equal(report?.metrics.Deliveries, 4);
    assert.equal(report?.metrics.FailedDeliveries, 0);
    assert.deepEqual(
      h
        .frames(late)
        .filter((f) => f.type === "presence")
        .map((f) => [f.event, f.userId]),
      [["left", "os-c"]],
    );
  });

  it("a vanished user with another live connection in the room is not announced as left", async () => {
    const sender = await h.join("va-a", "vanish-2");
    const phone = await h.join("va-b", "vanish-2");
    await h.join("va-b", "vanish-2"); // the same user's laptop stays
    await h.vanish(phone);
    h.api.clearFrames();
    assert.equal(await h.send(sender, { type: "chat", message: "still one device" }), undefined);
    assert.deepEqual(
      h.frames(sender).filter((f) => f.type === "presence"),
      [],
    );
    const report = h.reports.filter((r) => r.function === "chat").pop();
    assert.equal(report?.metrics.StaleConnectionsCleaned, 1);
  });

  it("a connection item left `connecting` by a failed handshake is cleaned once the grace period is over", async () => {
    const sender = await h.join("cg-a", "grace-1");
    const young = await h.join("cg-b", "grace-1");
    const old = await h.join("cg-c", "grace-1");
    // As if their $connect had failed after writing: flag still set, the socket never opened.
    const now = Date.now();
    for (const [c, connectedAt] of [
      [young, now - 1_000],
      [old, now - CONNECT_GRACE_MS - 1_000],
    ] as const) {
      await h.doc.send(
        new UpdateCommand({
          TableName: h.tables.connections,
          Key: { connectionId: c.connectionId },
          UpdateExpression: "SET connecting = :t, connectedAt = :at",
          ExpressionAttributeValues: { ":t": true, ":at": connectedAt },
        }),
      );
      h.api.close(c.connectionId);
    }
    assert.equal(await h.send(sender, { type: "chat", message: "who is there?" }), undefined);
    assert.ok(await getConnection(young.connectionId), "inside the grace period: kept");
    assert.ok(await getMember("grace-1", young.connectionId));
    assert.equal(await getConnection(old.connectionId), undefined, "past the grace period: removed");
    assert.equal(await getMember("grace-1", old.connectionId), undefined);
    const report = h.reports.filter((r) => r.function === "chat").pop();
    assert.equal(report?.metrics.StaleConnectionsCleaned, 1);
  });

  it("LimitExceededException (429) is retried with backoff and the frame is delivered", async () => {
    const a = await h.join("la", "limit-1");
    const b = await h.join("lb", "limit-1");
    h.api.clearFrames();
    h.api.throttle(b.connectionId, 3);
    assert.equal(await h.send(a, { type: "chat", message: "eventually" }), undefined);
    assert.equal(h.frames(b).filter((f) => f.type === "chat").length, 1);
    assert.deepEqual(
      h.api.calls.filter((c) => c.connectionId === b.connectionId).map((c) => c.status),
      [429, 429, 429, 200],
    );
    assert.ok(await getConnection(b.connectionId), "a throttled connection is not treated as gone");
    const report = h.reports.filter((r) => r.function === "chat").pop();
    assert.equal(report?.metrics.ManagementCalls, 5);
    assert.equal(report?.metrics.FailedDeliveries, 0);
  });

  it("a post that could not be sent (no connection within the timeout) is retried and delivered", async () => {
    const a = await h.join("ns-a", "notsent-1");
    const b = await h.join("ns-b", "notsent-1");
    // What the SDK throws when no socket connects within connectionTimeout (e.g. the pool is busy).
    const notSent = () =>
      Object.assign(
        new Error(
          "@smithy/node-http-handler - the request socket did not establish a connection with the server within the configured timeout of 1000 ms.",
        ),
        { name: "TimeoutError" },
      );
    let failures = 2;
    const posted: string[] = [];
    const management = {
      send: async (command: { input: { ConnectionId?: string } }) => {
        if (command.input.ConnectionId === b.connectionId && failures-- > 0) throw notSent();
        posted.push(String(command.input.ConnectionId));
        return {};
      },
    } as unknown as ApiGatewayManagementApiClient;
    const usage = createUsageScope();
    const fanout = createFanout({ management, doc: h.doc, tables: h.tables, concurrency: 2, usage, sleep: async () => {} });
    const result = await usage.run(emptyUsage(), () => fanout.deliver([a.connectionId, b.connectionId], "{}", createLogger("error", {})));
    assert.deepEqual([...result.delivered].sort(), [a.connectionId, b.connectionId].sort());
    assert.deepEqual(result.failed, []);
    assert.equal(posted.filter((id) => id === b.connectionId).length, 1, "delivered once");
  });

  it("a pool whose work failed takes no more items (a delivery worker's fault stops its posts)", async () => {
    const started: number[] = [];
    await assert.rejects(
      mapPool([0, 1, 2, 3, 4, 5, 6, 7], 2, async (i) => {
        started.push(i);
        await new Promise((r) => setImmediate(r));
        if (i === 0) throw new Error("fault");
      }),
      /fault/,
    );
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(started, [0, 1], "the other lane finished the item it held and took no more");
  });

  it("a paced fan-out checks stop again after waiting for its token: nothing is posted once it says stop", async () => {
    const posted: string[] = [];
    const management = {
      send: async (command: { input: { ConnectionId?: string } }) => {
        posted.push(String(command.input.ConnectionId));
        return {};
      },
    } as unknown as ApiGatewayManagementApiClient;
    const usage = createUsageScope();
    const fanout = createFanout({ management, doc: h.doc, tables: h.tables, concurrency: 4, usage, sleep: async () => {} });
    // Time runs out while the first four posts wait for their tokens.
    let outOfTime = false;
    const pace = async () => {
      await new Promise((r) => setImmediate(r));
      outOfTime = true;
    };
    const targets = ["p1", "p2", "p3", "p4", "p5", "p6"];
    const result = await usage.run(emptyUsage(), () =>
      fanout.deliver(targets, "{}", createLogger("error", {}), { pace, stop: () => outOfTime }),
    );
    assert.deepEqual(posted, []);
    assert.deepEqual([...(result.unattempted ?? [])].sort(), targets);
  });

  it("a chat sender whose own copy could not be posted gets the frame as the reply (every frame is answered)", async () => {
    const a = await h.join("sr-a", "selfreply-1");
    const b = await h.join("sr-b", "selfreply-1");
    h.api.fail(a.connectionId, 1, 500);
    const reply = await h.send(a, { type: "chat", message: "did it go?", clientMessageId: "sr-1" });
    assert.equal(reply?.type, "chat");
    assert.equal(reply?.message, "did it go?");
    assert.equal(reply?.clientMessageId, "sr-1");
    assert.equal(h.frames(b).filter((f) => f.type === "chat" && f.message === "did it go?").length, 1);
    h.api.clearFrames();
    assert.equal(await h.send(a, { type: "chat", message: "and this one?" }), undefined, "no reply when the broadcast reached the sender");
  });

  it("two frames opening a new rate-limit minute at once are both counted, not refused", async () => {
    const a = await h.join("rw-a", "ratewin-1");
    for (let round = 0; round < 4; round++) {
      await h.doc.send(
        new UpdateCommand({
          TableName: h.tables.connections,
          Key: { connectionId: a.connectionId },
          UpdateExpression: "SET rateWindow = :old, rateCount = :n",
          ExpressionAttributeValues: { ":old": 1, ":n": 5 },
        }),
      );
      const replies = await Promise.all([1, 2, 3].map(() => h.send(a, { type: "ping" })));
      assert.deepEqual(
        replies.map((r) => r?.type),
        ["pong", "pong", "pong"],
        `round ${round}`,
      );
      const item = await getConnection(a.connectionId);
      assert.equal(item?.rateCount, 3, "each frame counted once in the new window");
    }
  });

  it("any other failure is logged and counted, delivery to the others continues, nothing is deleted", async () => {
    const a = await h.join("fa", "fail-1");
    const b = await h.join("fb", "fail-1");
    const c = await h.join("fc", "fail-1");
    h.api.clearFrames();
    h.api.fail(b.connectionId, 5, 500);
    assert.equal(await h.send(a, { type: "chat", message: "partial" }), undefined);
    assert.equal(h.frames(c).filter((f) => f.type === "chat").length, 1);
    assert.equal(h.frames(b).filter((f) => f.type === "chat").length, 0);
    const report = h.reports.filter((r) => r.function === "chat").pop();
    assert.equal(report?.metrics.FailedDeliveries, 1);
    assert.equal(report?.metrics.Deliveries, 2);
    assert.ok(await getConnection(b.connectionId));
    assert.ok(h.logs.some((l) => l.includes('"msg":"delivery failed"') && l.includes(b.connectionId)));
    h.api.fail(b.connectionId, 0);
  });

  it("a broadcast reads a room partition over several Query pages (members + summary items)", async () => {
    const conns = [];
    for (let i = 0; i < 8; i++) conns.push(await h.join(`pg${i}`, "paged-1"));
    h.api.clearFrames();
    assert.equal(await h.send(conns[0], { type: "chat", message: "to all eight" }), undefined);
    for (const c of conns) assert.equal(h.frames(c).filter((f) => f.type === "chat").length, 1, c.userId);
    const report = h.reports.filter((r) => r.function === "chat").pop();
    const roomQueries = report?.dynamoCalls.filter((c) => c.table === "rooms" && c.action === "dynamodb:Query") ?? [];
    // 9 items at 3 per page; a full last page still carries LastEvaluatedKey, so a 4th, empty page ends it.
    assert.equal(roomQueries.length, 4);
    assert.equal(report?.metrics.DynamoItemsRead, 9, "8 members + the summary, nothing else read");
    assert.ok((report?.metrics.DynamoReadUnits ?? 0) > 0, "consumed capacity is reported");
    assert.ok((report?.metrics.DynamoWriteUnits ?? 0) > 0);
    const joined = await h.send(conns[0], { type: "join", roomId: "paged-1" });
    assert.equal((joined?.members as unknown[]).length, 8);
  });

  it("the rate limit answers RATE_LIMITED once rateLimitPerMinute frames were sent, and never drops silently", async () => {
    const r = await createHarness({ label: "ratelimit", rateLimitPerMinute: 5 });
    try {
      await awayFromMinuteBoundary();
      const a = await r.join("rl", "rl-1");
      for (let i = 0; i < 5; i++) assert.deepEqual(await r.send(a, { type: "ping" }), { type: "pong" });
      const limited = await r.send(a, { type: "chat", message: "too many", clientMessageId: "x1" });
      assert.deepEqual(
        { ...limited, message: undefined },
        { type: "error", code: "RATE_LIMITED", requestType: "chat", clientMessageId: "x1", message: undefined },
      );
      assert.equal((await r.send(a, "garbage"))?.code, "RATE_LIMITED");
      assert.equal(r.reports.filter((x) => x.metrics.RateLimited === 1).length, 2);
    } finally {
      await r.stop();
    }
  });

  it("a DynamoDB outage answers INTERNAL error frames instead of hanging or crashing", async () => {
    const env = { ...h.envFor("chat"), DYNAMODB_ENDPOINT: "http://127.0.0.1:9", AWS_ACCESS_KEY_ID: undefined, AWS_REGION: "us-east-1" };
    const chat = withEnv(env, () => FACTORIES.chat());
    const result = await chat(
      messageEvent(
        { connectionId: "c-outage", userId: "o", username: "o" },
        "chat",
        JSON.stringify({ type: "chat", message: "x", clientMessageId: "k" }),
      ),
    );
    assert.equal(result.statusCode, 200);
    assert.deepEqual(JSON.parse(String(result.body)), {
      type: "error",
      code: "INTERNAL",
      message: "internal error; the request may be retried",
      requestType: "chat",
      clientMessageId: "k",
    });
  });

  it("a DynamoDB outage during $connect rejects the handshake with 500", async () => {
    const env = { ...h.envFor("connect"), DYNAMODB_ENDPOINT: "http://127.0.0.1:9", AWS_ACCESS_KEY_ID: undefined, AWS_REGION: "us-east-1" };
    const connect = withEnv(env, () => FACTORIES.connect());
    const event = messageEvent({ connectionId: "c-outage-2", userId: "o", username: "o" }, "$connect", "");
    const result = await connect({
      ...event,
      body: undefined,
      requestContext: { ...event.requestContext, eventType: "CONNECT" },
      queryStringParameters: {},
    });
    assert.equal(result.statusCode, 500);
  });

  it("a DynamoDB outage during $disconnect is logged and answered 500 (API Gateway ignores it; TTL cleans up)", async () => {
    const env = {
      ...h.envFor("disconnect"),
      DYNAMODB_ENDPOINT: "http://127.0.0.1:9",
      AWS_ACCESS_KEY_ID: undefined,
      AWS_REGION: "us-east-1",
    };
    const disconnect = withEnv(env, () => FACTORIES.disconnect());
    const event = messageEvent({ connectionId: "c-outage-3", userId: "o", username: "o" }, "$disconnect", "");
    const before = h.logs.length;
    const result = await disconnect({
      ...event,
      body: undefined,
      requestContext: { ...event.requestContext, eventType: "DISCONNECT", disconnectStatusCode: 1006 },
    });
    assert.equal(result.statusCode, 500);
    assert.ok(h.logs.slice(before).some((l) => l.includes('"msg":"disconnect clean-up failed"')));
    assert.ok(h.logs.slice(before).some((l) => l.includes('"disconnectStatusCode":1006')));
  });

  it("logs are structured JSON with request context and never contain message bodies or tokens", async () => {
    const a = await h.join("log-a", "logs-1");
    await h.send(a, { type: "chat", message: "SECRET-BODY-1234" });
    await h.send(a, { type: "private", toUserId: "log-b", message: "SECRET-BODY-5678" });
    const lines = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(lines.length > 0);
    assert.ok(!h.logs.some((l) => l.includes("SECRET-BODY")));
    const routeLog = lines.find((l) => l.msg === "message delivered");
    assert.ok(routeLog);
    for (const k of ["timestamp", "level", "function", "requestId", "connectionId", "routeKey"]) assert.ok(k in routeLog, k);
    const emf = lines.filter((l) => "_aws" in l && l.Function === "chat").pop() as Record<string, unknown>;
    assert.equal((emf._aws as { CloudWatchMetrics: Array<{ Namespace: string }> }).CloudWatchMetrics[0].Namespace, "ChatApiTest");
    assert.equal(emf.MessagesSent, 1);
    assert.equal(emf.Stage, "test");
  });
});
