/**
 * The whole chat API on the local runtime: the real handlers in their workers, DynamoDB Local,
 * real `ws` clients over loopback. One runtime per describe block; tables under a unique prefix
 * in the run's shared DynamoDB Local.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { ApiGatewayManagementApiClient, DeleteConnectionCommand, GetConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import { GetItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { SignJWT } from "jose";
import { functionEnvironment } from "../../handlers/env";
import { METRICS } from "../../handlers/metrics";
import { kickKey } from "../../handlers/lib/data";
import { functionSpec } from "../../handlers/routes";
import { CONFIG_SCHEMA, deliveryWorkerTimeoutSeconds } from "../../infra/config";
import { LOCAL_DEFAULTS, startLocalRuntime, type LocalRuntime, type LocalRuntimeOptions } from "../../local/runtime";
import { localSqsClient } from "../../local/sqs";
import { localDynamoClient } from "../../local/tables";
import { recordedDynamo, uniquePrefix } from "../support/globalFixtures";
import { connect, eventually, handshakeStatus, type TestClient } from "./wsClient";

async function runtime(label: string, options: LocalRuntimeOptions = {}): Promise<LocalRuntime> {
  const dynamo = await recordedDynamo(); // recorded: tests/infra/iamSimulation.ts
  return startLocalRuntime({
    dynamodbEndpoint: dynamo.endpoint,
    tablePrefix: uniquePrefix(label),
    quiet: true,
    settings: { rateLimitPerMinute: 1000 },
    ...options,
  });
}

async function user(rt: LocalRuntime, userId: string, username: string, roomId = "general"): Promise<TestClient> {
  const token = await rt.mintToken(userId, username);
  const q = new URLSearchParams({ userId, username, roomId, token });
  return connect(`${rt.endpoint}?${q}`);
}

function managementClient(rt: LocalRuntime): ApiGatewayManagementApiClient {
  return new ApiGatewayManagementApiClient({
    endpoint: rt.managementEndpoint,
    region: rt.region,
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
}

/** The connection id the runtime gave the newest connection. */
function newest(rt: LocalRuntime, before: readonly string[]): string {
  const fresh = rt.connectionIds().filter((id) => !before.includes(id));
  assert.equal(fresh.length, 1, "exactly one new connection");
  return fresh[0];
}

/** Connection ids whose $disconnect the e2e runtime drops (see the vanished-client test). */
const lost = new Set<string>();

describe("local runtime: the chat API end to end", function () {
  this.timeout(60_000);
  let rt: LocalRuntime;
  let alice: TestClient;
  let bob: TestClient;
  const opened: TestClient[] = [];
  const track = (c: TestClient) => {
    opened.push(c);
    return c;
  };

  before(async () => {
    rt = await runtime("e2e", { loseDisconnect: (id) => lost.has(id) });
    alice = track(await user(rt, "alice", "Alice"));
    bob = track(await user(rt, "bob", "Bob"));
  });
  after(async () => {
    await Promise.all(opened.map((c) => c.close().catch(() => undefined)));
    await rt?.stop();
  });

  it("connects with a token and shows the connection on @connections", async () => {
    const mgmt = managementClient(rt);
    const ids = rt.connectionIds();
    assert.equal(ids.length, 2);
    const info = await mgmt.send(new GetConnectionCommand({ ConnectionId: ids[0] }));
    assert.equal(info.Identity?.SourceIp, "127.0.0.1");
    mgmt.destroy();
  });

  it("delivers a chat message to everyone in the room, the sender included", async () => {
    const seenByBob = bob.next((f) => f.json?.type === "chat" && f.json.message === "hello room");
    alice.send({ type: "chat", message: "hello room" });
    const own = await alice.next((f) => f.json?.type === "chat" && f.json.message === "hello room");
    const other = await seenByBob;
    assert.equal(own.json!.userId, "alice");
    assert.equal(other.json!.username, "Alice");
    assert.equal(other.json!.roomId, "general");
    assert.equal(own.json!.messageId, other.json!.messageId);
  });

  it("announces joins and leaves to the room's members", async () => {
    const carol = track(await user(rt, "carol", "Carol", "lobby"));
    const presence = alice.next((f) => f.json?.type === "presence" && f.json.userId === "carol" && f.json.event === "joined");
    const joined = await carol.request({ type: "join", roomId: "general" }, "joined");
    assert.equal(joined.roomId, "general");
    const members = (joined.members as Array<{ userId: string }>).map((m) => m.userId).sort();
    assert.deepEqual(members, ["alice", "bob", "carol"]);
    await presence;

    const left = alice.next((f) => f.json?.type === "presence" && f.json.userId === "carol" && f.json.event === "left");
    assert.deepEqual(await carol.request({ type: "leave", roomId: "general" }, "left"), { type: "left", roomId: "general" });
    assert.equal((await left).json!.roomId, "general");
    await carol.close();
  });

  it("delivers a private message to every connection of the recipient", async () => {
    const bobPhone = track(await user(rt, "bob", "Bob", "general"));
    const onLaptop = bob.next((f) => f.json?.type === "private" && f.json.message === "psst");
    const onPhone = bobPhone.next((f) => f.json?.type === "private" && f.json.message === "psst");
    const delivered = await alice.request({ type: "private", toUserId: "bob", message: "psst" }, "delivered");
    const [a, b] = await Promise.all([onLaptop, onPhone]);
    assert.equal(a.json!.fromUserId, "alice");
    assert.equal(b.json!.messageId, a.json!.messageId);
    assert.ok(Number(delivered.deliveredTo) >= 2);
    await bobPhone.close();
  });

  it("lists rooms with their number of users", async () => {
    const frame = await alice.request({ type: "rooms" }, "rooms");
    const general = (frame.rooms as Array<{ roomId: string; members: number }>).find((r) => r.roomId === "general");
    assert.ok(general, "general is listed");
    assert.ok(general.members >= 2);
  });

  it("pages through a room's history", async () => {
    for (const n of [1, 2, 3]) {
      alice.send({ type: "chat", message: `history ${n}` });
      await alice.next((f) => f.json?.type === "chat" && f.json.message === `history ${n}`);
    }
    const page = await bob.request({ type: "history", roomId: "general", limit: 2 }, "history");
    const messages = page.messages as Array<{ message: string }>;
    assert.equal(messages.length, 2);
    assert.ok(typeof page.next === "string", "a cursor to the next page");
    const texts = messages.map((m) => m.message);
    assert.ok(texts.includes("history 3"), `newest messages first page: ${texts.join(", ")}`);
  });

  it("answers ping with pong", async () => {
    assert.deepEqual(await alice.request({ type: "ping" }, "pong"), { type: "pong" });
  });

  it("answers bad frames with typed error frames", async () => {
    const badJson = alice.nextOf("error");
    alice.send("{not json");
    assert.equal((await badJson).code, "BAD_JSON");
    assert.equal((await alice.request({ type: "dance" }, "error")).code, "UNKNOWN_TYPE");
    assert.equal((await alice.request({ type: "chat" }, "error")).code, "BAD_REQUEST");
    assert.equal((await alice.request({ type: "chat", roomId: "elsewhere", message: "x" }, "error")).code, "NOT_A_MEMBER");
  });

  it("edits and deletes messages with real clients: the author, a moderator of the room; anyone else FORBIDDEN", async () => {
    const withClaims = async (userId: string, roomId: string, access: { rooms?: string[]; moderates?: string[] }) => {
      const token = await rt.mintToken(userId, userId, undefined, access);
      return track(await connect(`${rt.endpoint}?${new URLSearchParams({ roomId, token })}`));
    };
    alice.send({ type: "chat", message: "tpyo" });
    const messageId = (await alice.next((f) => f.json?.type === "chat" && f.json.message === "tpyo")).json!.messageId;
    const notYours = await bob.request({ type: "edit", roomId: "general", messageId, message: "mine" }, "error");
    assert.deepEqual([notYours.code, notYours.roomId], ["FORBIDDEN", "general"]);

    const bobSees = bob.next((f) => f.json?.type === "edited");
    alice.send({ type: "edit", roomId: "general", messageId, message: "typo" });
    const [own, other] = await Promise.all([alice.next((f) => f.json?.type === "edited"), bobSees]);
    assert.deepEqual(own.json, other.json);
    assert.equal(other.json!.message, "typo");

    assert.equal((await bob.request({ type: "delete", roomId: "general", messageId }, "error")).code, "FORBIDDEN");
    const outsider = await withClaims("olga", "lobby", { rooms: ["lobby"] });
    const refused = await outsider.request({ type: "delete", roomId: "general", messageId }, "error");
    assert.deepEqual([refused.code, refused.roomId], ["FORBIDDEN", "general"]);

    const mia = await withClaims("mia", "general", { moderates: ["gen*"] });
    const aliceSees = alice.next((f) => f.json?.type === "deleted");
    mia.send({ type: "delete", roomId: "general", messageId });
    const [deleted] = await Promise.all([aliceSees, mia.next((f) => f.json?.type === "deleted")]);
    assert.deepEqual([deleted.json!.messageId, deleted.json!.by], [messageId, "mia"]);
    assert.deepEqual(
      await mia.request({ type: "delete", roomId: "general", messageId }, "deleted"),
      deleted.json,
      "a retry is answered, not refused",
    );
    const page = await bob.request({ type: "history", roomId: "general" }, "history");
    const tombstone = (page.messages as Array<Record<string, unknown>>).find((m) => m.messageId === messageId);
    assert.deepEqual([tombstone?.message, tombstone?.deleted, tombstone?.deletedBy], ["", true, "mia"]);
    await Promise.all([mia.close(), outsider.close()]);
  });

  it("rejects handshakes: 401 without a token, 403 with a bad token or a mismatching userId", async () => {
    assert.equal(await handshakeStatus(`${rt.endpoint}?userId=alice&roomId=general`), 401);
    const forged = await new SignJWT({ name: "Mallory" })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("alice")
      .setIssuer("chat-local")
      .setAudience("chat-api")
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode("not-the-local-secret-not-the-local-secret"));
    assert.equal(await handshakeStatus(`${rt.endpoint}?token=${forged}`), 403);
    const token = await rt.mintToken("alice", "Alice");
    assert.equal(await handshakeStatus(`${rt.endpoint}?userId=bob&token=${token}`), 403);
    assert.equal(await handshakeStatus(`${rt.endpoint}?roomId=${encodeURIComponent("no spaces")}&token=${token}`), 400);
  });

  it("closes the connection with 1009 on a message over 128 KB", async () => {
    const big = track(await user(rt, "dave", "Dave"));
    const finished = rt.stats.functions.disconnect.durationsMs.length;
    big.send(JSON.stringify({ type: "chat", message: "x".repeat(128 * 1024) }));
    assert.equal((await big.waitClosed()).code, 1009);
    // Its $disconnect broadcasts "left" to the room: let it finish before the next test counts deliveries.
    await eventually(
      () => (rt.stats.functions.disconnect.durationsMs.length > finished ? true : undefined),
      10_000,
      "$disconnect to finish",
    );
  });

  it("cleans up a connection that vanished without a close when a broadcast finds it gone", async () => {
    // $disconnect is best effort (AWS-FACTS): this connection's never arrives.
    const before = rt.connectionIds();
    const ghost = await user(rt, "ghost", "Ghost");
    const ghostId = newest(rt, before);
    lost.add(ghostId);
    ghost.ws.terminate();
    await eventually(() => (rt.connectionIds().includes(ghostId) ? undefined : true), 5000, "the socket to drop");
    const ddb = localDynamoClient(rt.dynamodbEndpoint);
    const item = () => ddb.send(new GetItemCommand({ TableName: rt.tableNames.connections, Key: { connectionId: { S: ghostId } } }));
    assert.ok((await item()).Item, "the record is still there: no $disconnect ran");

    const cleanedBefore = rt.metricTotal(METRICS.staleConnectionsCleaned);
    alice.send({ type: "chat", message: "anyone there?" });
    await alice.next((f) => f.json?.type === "chat" && f.json.message === "anyone there?");
    await eventually(async () => ((await item()).Item ? undefined : true), 10_000, "the stale record to be deleted");
    // The EMF line is written when the invocation ends, after the delete.
    await eventually(
      () => (rt.metricTotal(METRICS.staleConnectionsCleaned) > cleanedBefore ? true : undefined),
      10_000,
      "StaleConnectionsCleaned",
    );
    assert.ok(rt.stats.management.gone >= 1);
    ddb.destroy();
  });

  it("DELETE on @connections closes the connection and runs $disconnect", async () => {
    const before = rt.connectionIds();
    const erin = await user(rt, "erin", "Erin");
    const id = newest(rt, before);
    const disconnects = rt.stats.functions.disconnect.invocations;
    const mgmt = managementClient(rt);
    await mgmt.send(new DeleteConnectionCommand({ ConnectionId: id }));
    await erin.waitClosed();
    await eventually(() => (rt.stats.functions.disconnect.invocations > disconnects ? true : undefined), 10_000, "$disconnect");
    await assert.rejects(mgmt.send(new GetConnectionCommand({ ConnectionId: id })), { name: "GoneException" });
    mgmt.destroy();
  });

  it("a moderator kicks a user: told `kicked`, the room sees `left`, rejoining refused until the restriction ends, accepted after", async () => {
    const moderatorToken = await rt.mintToken("mona", "Mona", undefined, { moderates: ["kick-*"] });
    const mona = track(await connect(`${rt.endpoint}?${new URLSearchParams({ roomId: "kick-e2e", token: moderatorToken })}`));
    const arrived = mona.next((f) => f.json?.type === "presence" && f.json.event === "joined" && f.json.userId === "kim");
    const kim = track(await user(rt, "kim", "Kim", "kick-e2e"));
    await arrived;
    const left = mona.next((f) => f.json?.type === "presence" && f.json.event === "left" && f.json.userId === "kim");
    const kicked = kim.nextOf("kicked");
    const reply = await mona.request({ type: "kick", roomId: "kick-e2e", userId: "kim", minutes: 1 }, "userKicked");
    assert.deepEqual(reply, { type: "userKicked", roomId: "kick-e2e", userId: "kim", until: reply.until, connections: 1 });
    assert.deepEqual(await kicked, { type: "kicked", roomId: "kick-e2e", by: "mona", until: reply.until });
    await left;
    const refused = await kim.request({ type: "join", roomId: "kick-e2e" }, "error");
    assert.equal(refused.code, "FORBIDDEN");
    assert.equal(refused.roomId, "kick-e2e");
    assert.match(String(refused.message), new RegExp(`join it again from ${String(reply.until).replace(/\./g, "\\.")}$`));
    const kimToken = await rt.mintToken("kim", "Kim");
    assert.equal(await handshakeStatus(`${rt.endpoint}?${new URLSearchParams({ roomId: "kick-e2e", token: kimToken })}`), 403);
    // The minute passes: the restriction's end is moved into the past rather than waited for.
    const ddb = localDynamoClient(rt.dynamodbEndpoint);
    await ddb.send(
      new UpdateItemCommand({
        TableName: rt.tableNames.connections,
        Key: { connectionId: { S: kickKey("kick-e2e", "kim") } },
        UpdateExpression: "SET #until = :past",
        ExpressionAttributeNames: { "#until": "until" },
        ExpressionAttributeValues: { ":past": { N: String(Date.now() - 1) } },
      }),
    );
    ddb.destroy();
    const back = mona.next((f) => f.json?.type === "presence" && f.json.event === "joined" && f.json.userId === "kim");
    assert.equal((await kim.request({ type: "join", roomId: "kick-e2e" }, "joined")).roomId, "kick-e2e");
    await back;
    const again = track(await connect(`${rt.endpoint}?${new URLSearchParams({ roomId: "kick-e2e", token: kimToken })}`));
    await again.close();
  });

  it("records each invocation's EMF metrics", async () => {
    // One EMF document per invocation, tagged with its request id.
    await eventually(
      () => (rt.stats.emf.filter((r) => r.function === "chat").length === rt.stats.functions.chat.invocations ? true : undefined),
      10_000,
      "one EMF document per chat invocation",
    );
    assert.ok(rt.stats.emf.every((r) => typeof r.requestId === "string"));
    assert.ok(rt.metricTotal(METRICS.messagesSent, "chat") >= 4);
    assert.ok(rt.metricTotal(METRICS.deliveries, "chat") >= 4);
    assert.ok(rt.stats.emf.every((r) => r.namespace === "ChatApi" && r.dimensions.Stage === rt.stage));
    assert.ok(rt.stats.functions.authorizer.coldStarts >= 1);
  });
});

describe("local runtime: API Gateway's own answers", function () {
  this.timeout(60_000);

  it("sends the Forbidden frame when no route matches and $default is not deployed", async () => {
    const rt = await runtime("nodefault", { disabledFunctions: ["default"] });
    try {
      const c = await user(rt, "frank", "Frank");
      const frame = await c.request({ type: "dance" }, "Forbidden");
      assert.deepEqual(Object.keys(frame).sort(), ["connectionId", "message", "requestId"]);
      assert.equal(frame.connectionId, rt.connectionIds()[0]);
      await c.close();
    } finally {
      await rt.stop();
    }
  });

  it("sends Internal server error when a function exceeds its timeout", async () => {
    const rt = await runtime("timeout", {
      functionOverrides: { ping: path.join(__dirname, "fixtures", "slow.js") },
      functionTimeoutMs: { ping: 200 },
    });
    try {
      const c = await user(rt, "gina", "Gina");
      const frame = await c.request({ type: "ping" }, "Internal server error");
      assert.equal(frame.connectionId, rt.connectionIds()[0]);
      assert.equal(rt.stats.functions.ping.timeouts, 1);
      await c.expectNone((f) => f.json?.type === "too-late", 300);
      await c.close();
    } finally {
      await rt.stop();
    }
  });
});

describe("local runtime: serialized callback modules", function () {
  this.timeout(120_000);

  it("runs the modules pulumi up would upload: connect and chat", async () => {
    const buildDir = path.join(".local", "build", uniquePrefix("ser"));
    const rt = await runtime("serialized", { serialized: true, buildDir });
    try {
      assert.ok(fs.existsSync(path.join(buildDir, "chat", "index.js")), "the serialized module is on disk");
      const c = await user(rt, "hana", "Hana");
      c.send({ type: "chat", message: "from serialized code" });
      const frame = await c.next((f) => f.json?.type === "chat" && f.json.message === "from serialized code");
      assert.equal(frame.json!.userId, "hana");
      await c.close();
    } finally {
      await rt.stop();
      fs.rmSync(buildDir, { recursive: true, force: true });
    }
  });
});

describe("local runtime: isolation, defaults and local HTTP endpoints", function () {
  this.timeout(60_000);
  let rt: LocalRuntime;
  let webDir: string;

  before(async () => {
    webDir = fs.mkdtempSync(path.join(os.tmpdir(), "chat-web-"));
    fs.writeFileSync(path.join(webDir, "index.html"), "<!doctype html><title>chat</title>");
    fs.writeFileSync(path.join(webDir, "app.js"), "console.log(1);");
    rt = await runtime("http", { webDir, functionOverrides: { ping: path.join(__dirname, "fixtures", "env.js") } });
  });
  after(async () => {
    await rt?.stop();
  });

  it("gives a function exactly functionEnvironment() plus what Lambda sets, nothing of the host's", async () => {
    const c = await user(rt, "ivy", "Ivy");
    const { env } = (await c.request({ type: "ping" }, "env")) as { env: Record<string, string> };
    await c.close();
    const expected = functionEnvironment(functionSpec("ping"), rt.settings);
    for (const [k, v] of Object.entries(expected)) assert.equal(env[k], v, k);
    const lambdaSet = Object.keys(env).filter((k) => !(k in expected));
    for (const k of lambdaSet) {
      assert.match(k, /^(AWS_|LAMBDA_TASK_ROOT$|TZ$|HOME$)/, `unexpected variable ${k}`);
    }
    assert.equal(env.AWS_LAMBDA_FUNCTION_NAME, `chat-${rt.stage}-ping`);
    assert.equal(env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE, "256");
    assert.equal(env.AWS_REGION, "us-east-1");
    // ping's route declares only the connections table, no secret, and `@connections` (to close a
    // connection past its token's expiry): it sees nothing else.
    assert.equal(env.ROOMS_TABLE, undefined);
    assert.equal(env.MESSAGES_TABLE, undefined);
    assert.equal(env.AUTH_SHARED_SECRET, undefined);
    assert.match(env.MANAGEMENT_ENDPOINT ?? "", /^http:\/\/127\.0\.0\.1:\d+\//);
    assert.equal(env.PATH, undefined);
  });

  it("uses the stack's dev defaults (infra/config.ts) for what the stack configures", () => {
    const d = CONFIG_SCHEMA;
    assert.equal(LOCAL_DEFAULTS.functionTimeoutMs, d.lambdaTimeoutSeconds.default * 1000);
    assert.equal(LOCAL_DEFAULTS.memoryMb, d.lambdaMemoryMb.default);
    assert.equal(LOCAL_DEFAULTS.messageRetentionHours, d.messageRetentionHours.default);
    assert.equal(LOCAL_DEFAULTS.maxMessageBytes, d.maxMessageBytes.default);
    assert.equal(LOCAL_DEFAULTS.rateLimitPerMinute, d.rateLimitPerMinute.default);
    assert.equal(LOCAL_DEFAULTS.fanoutConcurrency, d.fanoutConcurrency.default);
  });

  it("mints local tokens the authorizer accepts on GET /_local/token, and refuses bad user ids", async () => {
    const res = await fetch(`${rt.webUrl}_local/token?userId=jack&name=Jack`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { token: string; userId: string; username: string };
    assert.equal(body.userId, "jack");
    assert.equal(body.username, "Jack");
    const c = await connect(`${rt.endpoint}?token=${body.token}`);
    await c.close();
    assert.equal((await fetch(`${rt.webUrl}_local/token?userId=${encodeURIComponent("a#b")}`)).status, 400);
    assert.equal((await fetch(`${rt.webUrl}_local/token`)).status, 400);
  });

  it("mints tokens with the access claims on GET /_local/token?rooms=&moderates=, and refuses an invalid pattern", async () => {
    const res = await fetch(`${rt.webUrl}_local/token?userId=kim&rooms=${encodeURIComponent("kim-*,lobby")}&moderates=ops`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { token: string; rooms: string[]; moderates: string[] };
    const claims = JSON.parse(Buffer.from(body.token.split(".")[1], "base64url").toString()) as Record<string, unknown>;
    assert.deepEqual(
      [claims.rooms, claims.moderates, body.rooms, body.moderates],
      [["kim-*", "lobby"], ["ops"], ["kim-*", "lobby"], ["ops"]],
    );
    // Its first room must be granted (issue 16): general is not, kim-a and ops are.
    assert.equal(await handshakeStatus(`${rt.endpoint}?token=${body.token}`), 403);
    const c = await connect(`${rt.endpoint}?token=${body.token}&roomId=kim-a`);
    await c.close();
    for (const bad of ["rooms=a*b", "rooms=..", "moderates=*x"]) {
      const r = await fetch(`${rt.webUrl}_local/token?userId=kim&${bad}`);
      assert.equal(r.status, 400, bad);
      assert.match(((await r.json()) as { message: string }).message, /invalid pattern/);
    }
  });

  it("serves the web client's files at / and nothing outside its folder", async () => {
    const index = await fetch(rt.webUrl);
    assert.equal(index.status, 200);
    assert.match(index.headers.get("content-type") ?? "", /text\/html/);
    assert.match(await index.text(), /<title>chat<\/title>/);
    const js = await fetch(`${rt.webUrl}app.js`);
    assert.match(js.headers.get("content-type") ?? "", /javascript/);
    assert.equal((await fetch(`${rt.webUrl}missing.js`)).status, 404);
    // A raw request line (fetch would normalise the dots away).
    const status = await new Promise<number>((resolve, reject) => {
      http
        .get({ host: "127.0.0.1", port: rt.port, path: "/../package.json" }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
        .on("error", reject);
    });
    assert.ok(status === 403 || status === 404, `status ${status}`);
  });

  it("writes the stack's output names", () => {
    const out = rt.outputs();
    assert.deepEqual(Object.keys(out).sort(), [
      "apiId",
      "connectionsTable",
      "deliveryDlqUrl",
      "deliveryQueueUrl",
      "dynamodbEndpoint",
      "endpoint",
      "managementEndpoint",
      "maxMessageBytes",
      "messageRetentionHours",
      "messagesTable",
      "roomsTable",
      "sqsEndpoint",
      "stage",
      "webUrl",
    ]);
    assert.equal(out.connectionsTable, rt.tableNames.connections);
    assert.equal(out.managementEndpoint, rt.managementEndpoint);
    assert.equal(out.maxMessageBytes, LOCAL_DEFAULTS.maxMessageBytes, "a number, as pulumi stack output --json prints it");
  });
});

describe("local runtime: the delivery worker's timeout (issue 17)", function () {
  this.timeout(120_000);

  it("is the stack's (three times a shard at the worker's share of the budget), not the routes' 10 s or API Gateway's 29 s", async () => {
    // 8 workers sharing 100 posts a second take 160 s over a shard of 1,000 users' 2,000 connections: the
    // stack gives the worker 480 s and the queue 6 x that. Capped at 10 s, a worker on a slow machine
    // ran out of time on every attempt and its shard was never delivered (npm run bench, large-room).
    const settings = { rateLimitPerMinute: 1000, roomShardSize: 1000, deliveryWorkerConcurrency: 8, deliveryPostsPerSecond: 100 };
    const expected = deliveryWorkerTimeoutSeconds({ ...settings, lambdaTimeoutSeconds: LOCAL_DEFAULTS.functionTimeoutMs / 1000 });
    assert.equal(expected, 480);
    const rt = await runtime("worker-timeout", { settings });
    const out = rt.outputs() as unknown as Record<string, string>;
    const sqs = localSqsClient(out.sqsEndpoint, "us-east-1");
    try {
      const attrs = await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: out.deliveryQueueUrl, AttributeNames: ["VisibilityTimeout"] }),
      );
      assert.equal(Number(attrs.Attributes?.VisibilityTimeout), 6 * 480);
    } finally {
      sqs.destroy();
      await rt.stop();
    }
  });
});

describe("local runtime: its own DynamoDB Local", function () {
  this.timeout(120_000);

  it("keeps the data in its data folder across a restart, and stops its DynamoDB Local", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "chat-data-"));
    const start = () => startLocalRuntime({ dataDir, quiet: true, settings: { rateLimitPerMinute: 1000 } });
    let rt = await start();
    try {
      const c = await user(rt, "kim", "Kim");
      c.send({ type: "chat", message: "still here after a restart" });
      await c.next((f) => f.json?.type === "chat");
      await c.close();
      const firstDynamo = rt.dynamodbEndpoint;
      await rt.stop();
      assert.equal(
        await fetch(firstDynamo).then(
          () => "up",
          () => "down",
        ),
        "down",
        "DynamoDB Local stopped with the runtime",
      );

      rt = await start();
      const again = await user(rt, "kim", "Kim");
      const page = await again.request({ type: "history", roomId: "general" }, "history");
      assert.ok((page.messages as Array<{ message: string }>).some((m) => m.message === "still here after a restart"));
      await again.close();
    } finally {
      await rt.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
