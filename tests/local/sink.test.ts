/**
 * The counting sink (local/sink.ts): members without a socket, registered through the real
 * authorizer and `$connect`, whose deliveries are counted in the gateway. A sink member must be
 * indistinguishable from a socket for the handlers: it receives what the sockets in its room
 * receive, it is gone (410) once disconnected, and the gateway's fault injection applies to it.
 */
import * as assert from "node:assert/strict";
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import type { ManagementCall, ManagementError } from "../../local/gateway";
import { frameKey } from "../../local/sink";
import { startLocalRuntime, type LocalRuntime, type LocalRuntimeOptions } from "../../local/runtime";
import { sharedDynamo, uniquePrefix } from "../support/globalFixtures";
import { connect, eventually, handshakeStatus, type TestClient } from "./wsClient";

async function runtime(label: string, options: LocalRuntimeOptions = {}): Promise<LocalRuntime> {
  const dynamo = await sharedDynamo();
  return startLocalRuntime({
    dynamodbEndpoint: dynamo.endpoint,
    tablePrefix: uniquePrefix(label),
    quiet: true,
    sinkKeepsFrames: true,
    settings: { rateLimitPerMinute: 1000 },
    ...options,
  });
}

async function socketUser(rt: LocalRuntime, userId: string, roomId: string): Promise<{ client: TestClient; texts: string[] }> {
  const token = await rt.mintToken(userId, userId);
  const client = await connect(`${rt.endpoint}?${new URLSearchParams({ username: userId, roomId, token })}`);
  // Every frame, in order (TestClient.next takes matched frames out of its queue).
  const texts: string[] = [];
  client.ws.on("message", (data) => texts.push(data.toString()));
  return { client, texts };
}

async function sinkUser(rt: LocalRuntime, userId: string, roomId: string): Promise<string> {
  const token = await rt.mintToken(userId, userId);
  const reg = await rt.sink.register([{ token, roomId, username: userId }], 1);
  assert.deepEqual(reg.refused, []);
  const id = reg.connectionIds[0];
  assert.ok(id, "the sink member has a connection id");
  return id;
}

function management(rt: LocalRuntime): ApiGatewayManagementApiClient {
  return new ApiGatewayManagementApiClient({
    endpoint: rt.managementEndpoint,
    region: rt.region,
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    maxAttempts: 1,
  });
}

async function postStatus(client: ApiGatewayManagementApiClient, connectionId: string, data: string): Promise<number> {
  try {
    const out = await client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: Buffer.from(data) }));
    return out.$metadata.httpStatusCode ?? 0;
  } catch (err) {
    return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? -1;
  }
}

describe("local sink: socketless members counted in the gateway", function () {
  this.timeout(60_000);

  describe("in a room with socket members", () => {
    let rt: LocalRuntime;
    let alice: Awaited<ReturnType<typeof socketUser>>;
    let bob: Awaited<ReturnType<typeof socketUser>>;
    let carol: string;
    let mgmt: ApiGatewayManagementApiClient;

    before(async () => {
      rt = await runtime("sink-room");
      mgmt = management(rt);
      alice = await socketUser(rt, "alice", "hall");
      const carolJoined = alice.client.next((f) => f.json?.type === "presence" && f.json.event === "joined" && f.json.userId === "carol");
      carol = await sinkUser(rt, "carol", "hall");
      // Its $connect ran and joined the room: the socket member is told, as for any connection.
      await carolJoined;
      bob = await socketUser(rt, "bob", "hall");
      await eventually(() => rt.sink.stats(carol).bodies!.some((t) => t.includes('"joined"') && t.includes('"bob"')));
    });
    after(async () => {
      mgmt?.destroy();
      await Promise.all([alice?.client.close(), bob?.client.close()].map((p) => p?.catch(() => undefined)));
      await rt?.stop();
    });

    it("receives exactly the frames the room's sockets receive", async () => {
      alice.texts.length = 0;
      bob.texts.length = 0;
      rt.sink.reset();
      const sent: string[] = [];
      for (const [who, message] of [
        [alice, "one"],
        [bob, "two"],
        [alice, "three"],
      ] as const) {
        who.client.send({ type: "chat", roomId: "hall", message });
        const frame = await alice.client.next((f) => f.json?.type === "chat" && f.json.message === message);
        await bob.client.next((f) => f.json?.type === "chat" && f.json.message === message);
        sent.push(frame.text);
        await eventually(() => rt.sink.receivedCount(frameKey(frame.text)!) === 1);
      }
      const received = rt.sink.stats(carol).bodies;
      assert.deepEqual(received, alice.texts);
      assert.deepEqual(received, bob.texts);
      assert.deepEqual(received, sent);
    });

    it("counts frames and bytes per connection, and receipts per frame key", async () => {
      rt.sink.reset();
      const chat = JSON.stringify({ type: "chat", roomId: "hall", messageId: "m-1", message: "x" });
      const other = JSON.stringify({ type: "notice", text: "no key" });
      const before = Date.now();
      assert.equal(await postStatus(mgmt, carol, chat), 200);
      assert.equal(await postStatus(mgmt, carol, other), 200);
      assert.equal(await postStatus(mgmt, carol, chat), 200);
      const stats = rt.sink.stats(carol);
      assert.equal(stats.frames, 3);
      assert.equal(stats.bytes, 2 * Buffer.byteLength(chat) + Buffer.byteLength(other));
      const receipts = rt.sink.receipts("chat:m-1");
      assert.deepEqual([...receipts.first.keys()], [carol]);
      assert.equal(receipts.duplicates, 1);
      assert.ok(receipts.first.get(carol)! >= before - 1, "the receipt time is on the wall clock");
      assert.deepEqual(rt.sink.totals(), { connections: 1, open: 1, frames: 3, bytes: stats.bytes });
    });

    it("refuses a member whose token the authorizer rejects, as a socket's handshake", async () => {
      const query = { token: "not-a-token", roomId: "hall", username: "mallory" };
      const socketStatus = await handshakeStatus(`${rt.endpoint}?${new URLSearchParams(query)}`);
      assert.equal(socketStatus, 403);
      const reg = await rt.sink.register([query], 1);
      assert.deepEqual(reg.connectionIds, [undefined]);
      assert.deepEqual(reg.refused, [{ index: 0, status: socketStatus }]);
    });

    it("is gone (410) once disconnected, after its $disconnect told the room", async () => {
      const left = alice.client.next((f) => f.json?.type === "presence" && f.json.event === "left" && f.json.userId === "carol");
      assert.equal(await rt.sink.disconnect(carol), true);
      await left;
      assert.equal(await postStatus(mgmt, carol, "{}"), 410);
      assert.equal(rt.sink.stats(carol).open, false);
      assert.equal(await rt.sink.disconnect(carol), false, "a second disconnect finds nothing");
    });
  });

  describe("with the gateway's latency and faults", () => {
    let rt: LocalRuntime;
    let mgmt: ApiGatewayManagementApiClient;
    let faultFor: { id: string; error: ManagementError } | undefined;
    const latencyMs = 150;

    before(async () => {
      rt = await runtime("sink-faults", {
        managementLatencyMs: latencyMs,
        managementFault: (call: ManagementCall) => (faultFor && call.connectionId === faultFor.id ? faultFor.error : undefined),
      });
      mgmt = management(rt);
    });
    after(async () => {
      mgmt?.destroy();
      await rt?.stop();
    });

    it("answers an injected fault instead of counting the frame", async () => {
      const dave = await sinkUser(rt, "dave", "lobby");
      rt.sink.reset();
      faultFor = { id: dave, error: "LimitExceededException" };
      assert.equal(await postStatus(mgmt, dave, '{"type":"chat","messageId":"f-1"}'), 429);
      faultFor = { id: dave, error: "GoneException" };
      assert.equal(await postStatus(mgmt, dave, '{"type":"chat","messageId":"f-1"}'), 410);
      assert.equal(rt.sink.stats(dave).frames, 0);
      assert.equal(rt.sink.receivedCount("chat:f-1"), 0);
      faultFor = undefined;
      assert.equal(await postStatus(mgmt, dave, '{"type":"chat","messageId":"f-1"}'), 200);
      assert.equal(rt.sink.stats(dave).frames, 1);
    });

    it("receives a frame only after the gateway's management latency", async () => {
      const erin = await sinkUser(rt, "erin", "lobby");
      rt.sink.reset();
      // A lower bound set by a timer (never an upper bound): the POST waits managementLatencyMs first.
      const started = performance.timeOrigin + performance.now();
      assert.equal(await postStatus(mgmt, erin, '{"type":"chat","messageId":"l-1"}'), 200);
      assert.ok(rt.sink.receipts("chat:l-1").first.get(erin)! - started >= latencyMs - 1);
    });
  });
});
