/**
 * The local gateway's API Gateway behaviour, with fixture functions (tests/local/fixtures) in real
 * worker threads and real `ws` clients over loopback: handshake rules, event shapes, route selection,
 * error frames, limits, close codes and the `@connections` API through the unchanged AWS SDK v3 client.
 */
import * as assert from "node:assert/strict";
import * as net from "node:net";
import * as path from "node:path";
import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GetConnectionCommand,
  PostToConnectionCommand,
} from "@aws-sdk/client-apigatewaymanagementapi";
import type { AuthorizerResult, WebSocketEvent, WebSocketResult } from "../../handlers/events";
import type { FunctionName } from "../../handlers/routes";
import { FunctionHost, emptyFunctionStats, type FunctionStats } from "../../local/functions";
import { LocalGateway, emptyManagementStats, type Invoke, type ManagementError } from "../../local/gateway";
import type { LogEntry } from "../../local/logger";
import { connect, eventually, handshakeStatus, type TestClient } from "./wsClient";

const FIXTURES = path.join(__dirname, "fixtures");
const STAGE = "test";

interface Harness {
  readonly gateway: LocalGateway;
  readonly url: string;
  readonly management: ApiGatewayManagementApiClient;
  readonly managementEndpoint: string;
  readonly events: Array<{ kind: string; event: WebSocketEvent; extra: Record<string, unknown> }>;
  readonly stats: Record<string, FunctionStats>;
  readonly managementStats: ReturnType<typeof emptyManagementStats>;
  stop(): Promise<void>;
}

async function harness(opts: {
  withDefault?: boolean;
  idleTimeoutMs?: number;
  maxDurationMs?: number;
  timeoutMs?: number;
  fault?: (n: number) => ManagementError | undefined;
}): Promise<Harness> {
  const events: Harness["events"] = [];
  const stats: Record<string, FunctionStats> = {};
  const logger = (e: LogEntry) => {
    const d = e.data as Record<string, unknown> | undefined;
    if (e.source === "function" && d && typeof d.fixtureEvent === "string") {
      events.push({ kind: d.fixtureEvent, event: d.event as WebSocketEvent, extra: d });
    }
  };
  const managementStats = emptyManagementStats();
  const gateway = new LocalGateway({
    host: "127.0.0.1",
    port: 0,
    stage: STAGE,
    region: "us-east-1",
    accountId: "000000000000",
    routeSelectionExpression: "$request.body.type",
    idleTimeoutMs: opts.idleTimeoutMs ?? 60_000,
    maxDurationMs: opts.maxDurationMs ?? 120_000,
    managementLatencyMs: 0,
    managementFault: opts.fault ? (c) => opts.fault!(c.n) : undefined,
    clientBufferLimitBytes: 1024 * 1024,
    logger,
    managementStats,
  });
  const port = await gateway.listen();
  const managementEndpoint = `http://127.0.0.1:${port}/${STAGE}`;
  const hosts: FunctionHost[] = [];
  const host = (name: FunctionName, file: string, extraEnv: Record<string, string> = {}) => {
    stats[name] = emptyFunctionStats();
    const h = new FunctionHost({
      name,
      source: { kind: "module", modulePath: path.join(FIXTURES, file) },
      env: {
        STAGE,
        MANAGEMENT_ENDPOINT: managementEndpoint,
        AWS_REGION: "us-east-1",
        AWS_ACCESS_KEY_ID: "local",
        AWS_SECRET_ACCESS_KEY: "local",
        // The SDK warns on Node < 22 (Lambda runs nodejs22.x); this machine's Node is older.
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
        ...extraEnv,
      },
      timeoutMs: opts.timeoutMs ?? 5000,
      memoryMb: 256,
      region: "us-east-1",
      accountId: "000000000000",
      logger,
      stats: stats[name],
      onEmf: () => undefined,
    });
    hosts.push(h);
    return h;
  };
  const authorizer = host("authorizer", "authorizer.js");
  const connectFn = host("connect", "connect.js", { ONLY_CONNECT: "yes" });
  const scripted = host("chat", "scripted.js");
  const oneWay = host("ping", "scripted.js");
  const disconnect = host("disconnect", "scripted.js");
  const inv =
    (h: FunctionHost): Invoke<WebSocketResult> =>
    (e, id) =>
      h.invoke<WebSocketResult>(e, id);
  const routes = new Map<string, { twoWay: boolean; invoke: Invoke<WebSocketResult> }>([
    ["$connect", { twoWay: false, invoke: inv(connectFn) }],
    ["$disconnect", { twoWay: false, invoke: inv(disconnect) }],
    ["echo", { twoWay: true, invoke: inv(scripted) }],
    ["slow", { twoWay: true, invoke: inv(scripted) }],
    ["throw", { twoWay: true, invoke: inv(scripted) }],
    ["crash", { twoWay: true, invoke: inv(scripted) }],
    ["malformed", { twoWay: true, invoke: inv(scripted) }],
    ["big", { twoWay: true, invoke: inv(scripted) }],
    ["oneway", { twoWay: false, invoke: inv(oneWay) }],
  ]);
  if (opts.withDefault !== false) routes.set("$default", { twoWay: true, invoke: inv(scripted) });
  gateway.mount({
    apiId: "abcdef1234",
    routes,
    authorizer: { invoke: (e, id) => authorizer.invoke<AuthorizerResult>(e, id), identityQueryParam: "token" },
  });
  const management = new ApiGatewayManagementApiClient({
    endpoint: managementEndpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    // No SDK retries: each test observes the gateway's answer to exactly one call.
    maxAttempts: 1,
  });
  return {
    gateway,
    url: `ws://127.0.0.1:${port}/${STAGE}`,
    management,
    managementEndpoint,
    events,
    stats,
    managementStats,
    stop: async () => {
      management.destroy();
      await gateway.stop();
      await Promise.all(hosts.map((h) => h.stop()));
    },
  };
}

function eventOf(h: Harness, kind: string, connectionId?: string): Promise<Harness["events"][number]> {
  return eventually(
    () => h.events.find((e) => e.kind === kind && (!connectionId || e.event.requestContext.connectionId === connectionId)),
    10_000,
    `a ${kind} event`,
  );
}

let probes = 0;
/** Opens a connection and finds its $connect event by a unique `probe` query parameter (log lines arrive asynchronously). */
async function open(h: Harness, query = "token=good"): Promise<{ client: TestClient; connectionId: string }> {
  const probe = `p${++probes}`;
  const client = await connect(`${h.url}?${query}&probe=${probe}`, { headers: { "User-Agent": "gateway-test/1" } });
  const ev = await eventually(
    () => h.events.find((e) => e.kind === "connect" && e.event.queryStringParameters?.probe === probe),
    10_000,
    "the $connect event",
  );
  return { client, connectionId: ev.event.requestContext.connectionId };
}

describe("local gateway (API Gateway WebSocket behaviour)", function () {
  this.timeout(60_000);
  let h: Harness;
  before(async () => {
    h = await harness({ timeoutMs: 1500 });
  });
  after(async () => {
    await h?.stop();
  });

  describe("handshake", () => {
    it("answers 401 without invoking the authorizer when the token is missing", async () => {
      const invocations = h.stats.authorizer.invocations;
      assert.equal(await handshakeStatus(h.url), 401);
      assert.equal(await handshakeStatus(`${h.url}?token=`), 401);
      assert.equal(h.stats.authorizer.invocations, invocations);
    });

    it("answers 403 when the authorizer denies, 401 on Unauthorized, 500 when it fails", async () => {
      assert.equal(await handshakeStatus(`${h.url}?token=deny`), 403);
      assert.equal(await handshakeStatus(`${h.url}?token=unauthorized`), 401);
      assert.equal(await handshakeStatus(`${h.url}?token=boom`), 500);
    });

    it("rejects the handshake with $connect's non-2xx status", async () => {
      assert.equal(await handshakeStatus(`${h.url}?token=good&status=429`), 429);
      assert.equal(await handshakeStatus(`${h.url}?token=good&status=400`), 400);
    });

    it("answers 403 on a path that is not the stage", async () => {
      assert.equal(await handshakeStatus(`${h.url.replace(`/${STAGE}`, "/prod")}?token=good`), 403);
    });

    it("gives $connect the whole CONNECT event with the authorizer's context, headers and query", async () => {
      const { client, connectionId } = await open(h, "token=good&roomId=general&userId=user-1");
      const { event } = await eventOf(h, "connect", connectionId);
      const rc = event.requestContext;
      assert.match(connectionId, /^[A-Za-z0-9_-]{15}=$/);
      assert.equal(rc.routeKey, "$connect");
      assert.equal(rc.eventType, "CONNECT");
      assert.equal(rc.stage, STAGE);
      assert.equal(rc.apiId, "abcdef1234");
      assert.equal(rc.messageDirection, "IN");
      assert.equal(rc.domainName, h.url.replace("ws://", "").replace(`/${STAGE}`, ""));
      assert.equal(rc.identity.sourceIp, "127.0.0.1");
      assert.equal(rc.identity.userAgent, "gateway-test/1");
      assert.match(rc.requestTime, /^\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000$/);
      assert.ok(Math.abs(rc.requestTimeEpoch - Date.now()) < 10_000);
      assert.ok(rc.connectedAt <= rc.requestTimeEpoch);
      assert.equal(rc.requestId, rc.extendedRequestId);
      assert.equal(rc.messageId, undefined);
      assert.equal(rc.authorizer?.principalId, "user-1");
      assert.equal(rc.authorizer?.username, "Ann");
      assert.equal(typeof rc.authorizer?.integrationLatency, "number");
      const { probe: _probe, ...query } = event.queryStringParameters ?? {};
      assert.deepEqual(query, { token: "good", roomId: "general", userId: "user-1" });
      assert.deepEqual(event.multiValueQueryStringParameters?.roomId, ["general"]);
      assert.equal(event.headers?.["Sec-WebSocket-Version"], "13");
      assert.equal(event.headers?.["X-Forwarded-For"], "127.0.0.1");
      assert.equal(event.isBase64Encoded, false);
      await client.close();
    });

    it("gives the authorizer a REQUEST event with the $connect method ARN", async () => {
      const { client, connectionId } = await open(h);
      const auth = await eventually(() =>
        h.events.find((e) => e.kind === "authorizer" && e.event.requestContext.connectionId === connectionId),
      );
      const ev = auth.event as unknown as { type: string; methodArn: string; queryStringParameters: Record<string, string> };
      assert.equal(ev.type, "REQUEST");
      assert.equal(ev.methodArn, `arn:aws:execute-api:us-east-1:000000000000:abcdef1234/${STAGE}/$connect`);
      assert.equal(ev.queryStringParameters.token, "good");
      await client.close();
    });

    it("refuses a POST to the connection while $connect runs (410 GoneException)", async () => {
      const { client, connectionId } = await open(h, "token=good&post=1");
      const { extra } = await eventOf(h, "connect", connectionId);
      assert.equal(extra.postDuringConnect, "GoneException");
      await client.close();
    });

    it("runs neither the authorizer nor $connect for a request that is not a valid WebSocket upgrade", async () => {
      const port = new URL(h.url).port;
      const request = (method: string, headers: Record<string, string>): Promise<number> =>
        new Promise((resolve, reject) => {
          const socket = net.connect(Number(port), "127.0.0.1", () => {
            const lines = [
              `${method} /${STAGE}?token=good HTTP/1.1`,
              `Host: 127.0.0.1:${port}`,
              "Connection: Upgrade",
              "Upgrade: websocket",
            ];
            for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
            socket.write(`${lines.join("\r\n")}\r\n\r\n`);
          });
          let text = "";
          socket.on("data", (d: Buffer) => {
            text += d.toString("latin1");
            const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
            if (m) {
              resolve(Number(m[1]));
              socket.destroy();
            }
          });
          socket.on("error", reject);
        });
      const authorizer = h.stats.authorizer.invocations;
      const connects = h.stats.connect.invocations;
      const valid = { "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13" };
      assert.equal(await request("POST", valid), 405);
      assert.equal(await request("GET", { ...valid, "Sec-WebSocket-Key": "not-a-key" }), 400);
      assert.equal(await request("GET", { ...valid, "Sec-WebSocket-Version": "12" }), 400);
      assert.equal(await request("GET", { "Sec-WebSocket-Version": "13" }), 400);
      assert.equal(h.stats.authorizer.invocations, authorizer, "the authorizer ran for an invalid upgrade");
      assert.equal(h.stats.connect.invocations, connects, "$connect ran for an invalid upgrade");
    });

    for (const how of ["half-closes (FIN)", "resets the socket"] as const) {
      it(`invokes $disconnect for a client that ${how} while $connect runs`, async () => {
        const port = Number(new URL(h.url).port);
        const probe = `gone-${how.length}-${Date.now()}`;
        const socket = net.connect(port, "127.0.0.1", () => {
          socket.write(
            `${[
              `GET /${STAGE}?token=good&sleep=400&probe=${probe} HTTP/1.1`,
              `Host: 127.0.0.1:${port}`,
              "Connection: Upgrade",
              "Upgrade: websocket",
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
              "Sec-WebSocket-Version: 13",
            ].join("\r\n")}\r\n\r\n`,
          );
        });
        socket.on("error", () => undefined);
        // Leave once the authorizer has let the handshake through ($connect is sleeping).
        await eventually(
          () => h.events.find((e) => e.kind === "authorizer" && e.event.queryStringParameters?.probe === probe),
          10_000,
          "the authorizer",
        );
        if (how === "half-closes (FIN)") socket.end();
        else socket.destroy();
        const { event } = await eventually(
          () => h.events.find((e) => e.kind === "connect" && e.event.queryStringParameters?.probe === probe),
          10_000,
          "$connect",
        );
        const gone = await eventOf(h, "$disconnect", event.requestContext.connectionId);
        assert.equal(gone.event.requestContext.disconnectStatusCode, 1006);
        assert.ok(!h.gateway.connectionIds().includes(event.requestContext.connectionId));
      });
    }

    it("gives each function only its own environment", async () => {
      const { client, connectionId } = await open(h);
      const { extra } = await eventOf(h, "connect", connectionId);
      assert.deepEqual(extra.env, { STAGE, ONLY: "yes" });
      client.send({ type: "echo" });
      const frame = await client.next((f) => Boolean(f.json?.echo));
      assert.deepEqual(frame.json!.env, { STAGE, ONLY: null });
      await client.close();
    });
  });

  describe("messages", () => {
    let client: TestClient;
    let connectionId: string;
    before(async () => {
      ({ client, connectionId } = await open(h));
    });
    after(async () => {
      await client.close();
    });

    it("routes on $request.body.type and gives a MESSAGE event without headers or query", async () => {
      client.send({ type: "echo", n: 1 });
      const frame = await client.next((f) => Boolean(f.json?.echo));
      const event = frame.json!.echo as WebSocketEvent;
      const rc = event.requestContext;
      assert.equal(rc.routeKey, "echo");
      assert.equal(rc.eventType, "MESSAGE");
      assert.equal(rc.connectionId, connectionId);
      assert.match(rc.messageId!, /^[A-Za-z0-9_-]{15}=$/);
      assert.equal(rc.authorizer?.principalId, "user-1");
      assert.equal(event.body, '{"type":"echo","n":1}');
      assert.equal(event.isBase64Encoded, false);
      assert.equal(event.headers, undefined);
      assert.equal(event.queryStringParameters, undefined);
    });

    it("sends unknown types and non-JSON text to $default", async () => {
      client.send("not json");
      const a = await client.next((f) => (f.json?.echo as WebSocketEvent | undefined)?.body === "not json");
      assert.equal((a.json!.echo as WebSocketEvent).requestContext.routeKey, "$default");
      client.send({ type: "dance" });
      const b = await client.next((f) => (f.json?.echo as WebSocketEvent | undefined)?.body === '{"type":"dance"}');
      assert.equal((b.json!.echo as WebSocketEvent).requestContext.routeKey, "$default");
    });

    it("sends nothing back from a one-way route", async () => {
      client.send({ type: "oneway" });
      await client.expectNone(() => true, 500);
    });

    it("answers Internal server error when the function throws", async () => {
      const frame = await client.request({ type: "throw" }, "Internal server error");
      assert.equal(frame.connectionId, connectionId);
      assert.match(String(frame.requestId), /^[A-Za-z0-9_-]{15}=$/);
      assert.deepEqual(Object.keys(frame).sort(), ["connectionId", "message", "requestId"]);
    });

    it("sends a route response of exactly 128 KB, and answers Internal server error for a larger one (API Gateway cannot send it)", async () => {
      client.send({ type: "big", bytes: 128 * 1024 });
      assert.equal((await client.next((f) => f.text.startsWith('"x'))).text.length, 128 * 1024);
      client.send({ type: "big", bytes: 128 * 1024 + 1 });
      const frame = await client.next((f) => f.json?.message === "Internal server error" || f.text.startsWith('"x'));
      assert.equal(frame.json?.message, "Internal server error");
      assert.equal(frame.json?.connectionId, connectionId);
    });

    it("answers Internal server error when the result is malformed", async () => {
      await client.request({ type: "malformed" }, "Internal server error");
    });

    it("answers Internal server error on timeout, then replaces the instance (a new cold start)", async () => {
      const coldStarts = h.stats.chat.coldStarts;
      await client.request({ type: "slow", ms: 4000 }, "Internal server error");
      assert.equal(h.stats.chat.timeouts, 1);
      client.send({ type: "slow", ms: 1 });
      await client.next((f) => f.json?.slowDone === true);
      assert.equal(h.stats.chat.coldStarts, coldStarts + 1);
    });

    it("answers Internal server error when the instance dies, and keeps serving", async () => {
      await client.request({ type: "crash" }, "Internal server error");
      assert.ok(h.stats.chat.crashes >= 1);
      client.send({ type: "echo", after: "crash" });
      await client.next((f) => (f.json?.echo as WebSocketEvent | undefined)?.body?.includes("crash") === true);
    });
  });

  describe("limits and closes", () => {
    it("closes with 1009 on a message over 128 KB and invokes $disconnect with 1009", async () => {
      const { client, connectionId } = await open(h);
      client.send("x".repeat(128 * 1024 + 1));
      const closed = await client.waitClosed();
      assert.equal(closed.code, 1009);
      const { event } = await eventOf(h, "$disconnect", connectionId);
      assert.equal(event.requestContext.disconnectStatusCode, 1009);
      assert.equal(event.requestContext.eventType, "DISCONNECT");
    });

    it("accepts a message of exactly 128 KB", async () => {
      const { client } = await open(h);
      const body = JSON.stringify({ type: "oneway", pad: "" });
      client.send(body.replace('""', `"${"x".repeat(128 * 1024 - body.length)}"`));
      await client.expectNone(() => true, 300);
      assert.equal(client.ws.readyState, client.ws.OPEN);
      await client.close();
    });

    it("closes with 1003 on a binary frame", async () => {
      const { client, connectionId } = await open(h);
      client.ws.send(Buffer.from([1, 2, 3]), { binary: true });
      assert.equal((await client.waitClosed()).code, 1003);
      const { event } = await eventOf(h, "$disconnect", connectionId);
      assert.equal(event.requestContext.disconnectStatusCode, 1003);
    });

    it("passes the client's close code and reason to $disconnect, and 1006 for a dropped socket", async () => {
      const a = await open(h);
      await a.client.close(4000, "bye");
      const ea = await eventOf(h, "$disconnect", a.connectionId);
      assert.equal(ea.event.requestContext.disconnectStatusCode, 4000);
      assert.equal(ea.event.requestContext.disconnectReason, "bye");
      assert.equal(ea.event.requestContext.authorizer?.principalId, "user-1");
      const b = await open(h);
      b.client.ws.terminate();
      const eb = await eventOf(h, "$disconnect", b.connectionId);
      assert.equal(eb.event.requestContext.disconnectStatusCode, 1006);
    });
  });

  describe("@connections with the AWS SDK v3 client", () => {
    it("POSTs to a connection, GETs its details and DELETEs it (then 410 GoneException)", async () => {
      const { client, connectionId } = await open(h);
      await h.management.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: Buffer.from('{"hello":1}') }));
      assert.equal((await client.next((f) => f.json?.hello === 1)).text, '{"hello":1}');

      const info = await h.management.send(new GetConnectionCommand({ ConnectionId: connectionId }));
      assert.ok(info.ConnectedAt instanceof Date);
      assert.ok(info.LastActiveAt instanceof Date);
      assert.equal(info.Identity?.SourceIp, "127.0.0.1");
      assert.equal(info.Identity?.UserAgent, "gateway-test/1");

      const res = await h.management.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
      assert.equal(res.$metadata.httpStatusCode, 204);
      await client.waitClosed();
      const { event } = await eventOf(h, "$disconnect", connectionId);
      assert.equal(event.requestContext.disconnectStatusCode, 1000);

      await assert.rejects(
        h.management.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: "x" })),
        (err: Error & { $metadata?: { httpStatusCode?: number } }) => {
          assert.equal(err.name, "GoneException");
          assert.equal(err.$metadata?.httpStatusCode, 410);
          return true;
        },
      );
      await assert.rejects(h.management.send(new GetConnectionCommand({ ConnectionId: connectionId })), { name: "GoneException" });
    });

    it("answers 413 PayloadTooLargeException past 128 KB", async () => {
      const { client, connectionId } = await open(h);
      await assert.rejects(
        h.management.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: Buffer.alloc(128 * 1024 + 1, 97) })),
        { name: "PayloadTooLargeException" },
      );
      await client.close();
    });

    it("answers 403 ForbiddenException on another stage and on an unsigned request", async () => {
      const { client, connectionId } = await open(h);
      const other = new ApiGatewayManagementApiClient({
        endpoint: h.managementEndpoint.replace(`/${STAGE}`, "/prod"),
        region: "us-east-1",
        credentials: { accessKeyId: "local", secretAccessKey: "local" },
      });
      await assert.rejects(other.send(new GetConnectionCommand({ ConnectionId: connectionId })), { name: "ForbiddenException" });
      other.destroy();
      const unsigned = await fetch(`${h.managementEndpoint}/@connections/${encodeURIComponent(connectionId)}`, {
        method: "POST",
        body: "x",
      });
      assert.equal(unsigned.status, 403);
      assert.equal(unsigned.headers.get("x-amzn-errortype"), "ForbiddenException");
      assert.deepEqual(await unsigned.json(), { message: "Missing Authentication Token" });
      await client.close();
    });

    it("answers 429 LimitExceededException while a client does not read what is sent to it", async () => {
      const { client, connectionId } = await open(h);
      client.ws.pause(); // stop reading: the kernel buffers fill, then the gateway's queue grows
      const chunk = Buffer.alloc(100 * 1024, 97);
      let refused: Error | undefined;
      for (let i = 0; i < 400 && !refused; i++) {
        await h.management.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: chunk })).catch((err: Error) => {
          refused = err;
        });
      }
      assert.equal(refused?.name, "LimitExceededException");
      client.ws.terminate();
    });

    it("answers 410 with the service's error shape for an unknown id", async () => {
      const res = await fetch(`${h.managementEndpoint}/@connections/${encodeURIComponent("AAAAAAAAAAAAAAA=")}`, {
        method: "POST",
        headers: { authorization: "AWS4-HMAC-SHA256 Credential=local" },
        body: "x",
      });
      assert.equal(res.status, 410);
      assert.equal(res.headers.get("x-amzn-errortype"), "GoneException");
      assert.equal(typeof ((await res.json()) as { message: unknown }).message, "string");
    });
  });
});

describe("local gateway: routes, faults and timeouts", function () {
  this.timeout(60_000);

  it("sends the Forbidden frame when nothing matches and there is no $default", async () => {
    const h = await harness({ withDefault: false });
    try {
      const { client, connectionId } = await open(h);
      const frame = await client.request({ type: "dance" }, "Forbidden");
      assert.equal(frame.connectionId, connectionId);
      assert.equal(typeof frame.requestId, "string");
      await client.request("not json" as unknown as Record<string, unknown>, "Forbidden");
      await client.close();
    } finally {
      await h.stop();
    }
  });

  it("closes an idle connection with 1001 Going away and invokes $disconnect", async () => {
    const h = await harness({ idleTimeoutMs: 400 });
    try {
      const { client, connectionId } = await open(h);
      const closed = await client.waitClosed(5000);
      assert.deepEqual(closed, { code: 1001, reason: "Going away" });
      const { event } = await eventOf(h, "$disconnect", connectionId);
      assert.equal(event.requestContext.disconnectStatusCode, 1001);
      assert.equal(event.requestContext.disconnectReason, "Going away");
    } finally {
      await h.stop();
    }
  });

  it("counts @connections posts as activity (idle timer and lastActiveAt)", async () => {
    const h = await harness({ idleTimeoutMs: 600 });
    try {
      const { client, connectionId } = await open(h);
      const first = await h.management.send(new GetConnectionCommand({ ConnectionId: connectionId }));
      for (let i = 0; i < 6; i++) {
        await new Promise((r) => setTimeout(r, 200));
        await h.management.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: `{"n":${i}}` }));
      }
      assert.equal(client.ws.readyState, client.ws.OPEN, "still open after 1.2 s of posts with a 0.6 s idle timeout");
      const later = await h.management.send(new GetConnectionCommand({ ConnectionId: connectionId }));
      assert.ok(later.LastActiveAt!.getTime() > first.LastActiveAt!.getTime());
      assert.equal(later.ConnectedAt!.getTime(), first.ConnectedAt!.getTime());
      assert.equal((await client.waitClosed(5000)).code, 1001);
    } finally {
      await h.stop();
    }
  });

  it("keeps an active connection past the idle timeout, and ends it at the maximum duration", async () => {
    const h = await harness({ idleTimeoutMs: 600, maxDurationMs: 1500 });
    try {
      const { client } = await open(h);
      const started = Date.now();
      const ticker = setInterval(() => client.ws.readyState === client.ws.OPEN && client.send({ type: "oneway" }), 150);
      const closed = await client.waitClosed(5000);
      clearInterval(ticker);
      assert.equal(closed.code, 1001);
      assert.ok(Date.now() - started >= 1200, "closed by the maximum duration, not the idle timeout");
    } finally {
      await h.stop();
    }
  });

  it("closes open connections with 1001 on stop and still runs their $disconnect", async () => {
    const h = await harness({});
    const { client, connectionId } = await open(h);
    await h.stop();
    assert.equal((await client.waitClosed(5000)).code, 1001);
    const { event } = await eventOf(h, "$disconnect", connectionId);
    assert.equal(event.requestContext.disconnectStatusCode, 1001);
  });

  it("injects LimitExceededException (429) on the chosen @connections calls", async () => {
    const h = await harness({ fault: (n) => (n % 2 === 0 ? "LimitExceededException" : undefined) });
    try {
      const { client, connectionId } = await open(h);
      const post = () => h.management.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: "x" }));
      await post();
      await assert.rejects(post(), (err: Error & { $metadata?: { httpStatusCode?: number } }) => {
        assert.equal(err.name, "LimitExceededException");
        assert.equal(err.$metadata?.httpStatusCode, 429);
        return true;
      });
      assert.equal(h.managementStats.limitExceeded, 1);
      await client.close();
    } finally {
      await h.stop();
    }
  });
});
