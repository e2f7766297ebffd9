/**
 * Bans (issue 16, from a backend) through the real `$connect` on DynamoDB Local: a banned user's
 * handshake is refused with 403 and leaves nothing behind; and the race of a ban written while a
 * handshake runs (docs/architecture.md, "Races"), ordered with a DynamoGate: whichever side of
 * `$connect`'s ban check the ban lands on, no connection of the user stays open.
 */
import { strict as assert } from "node:assert";
import { ApiGatewayManagementApiClient } from "@aws-sdk/client-apigatewaymanagementapi";
import { GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { banKey, banUser, closeUserConnections, unbanUser } from "../../handlers/lib/bans";
import type { DataContext } from "../../handlers/lib/data";
import { createFanout, type Fanout } from "../../handlers/lib/fanout";
import { createLogger } from "../../handlers/lib/logger";
import { createUsageScope } from "../../handlers/lib/usage";
import type { HandlerConfig } from "../../handlers/lib/config";
import { createHarness, type Harness } from "../support/handlerHarness";
import type { GateRequest } from "../support/dynamoGate";
import { snapshot, violations } from "../support/invariants";

describe("handlers: bans refuse handshakes and close connections (handlers/lib/bans.ts)", function () {
  this.timeout(60_000);
  let h: Harness;
  let ctx: DataContext;
  let fanout: Fanout;
  let management: ApiGatewayManagementApiClient;
  const log = createLogger("error", { component: "test" });

  before(async () => {
    h = await createHarness({ label: "bans", gate: true });
    // What a backend holds (push/index.ts): the tables, straight to DynamoDB (not through the gate).
    ctx = { doc: h.doc, config: { tables: h.tables, functionName: "test" } as unknown as HandlerConfig };
    management = new ApiGatewayManagementApiClient({
      region: "us-east-1",
      endpoint: h.api.endpoint,
      maxAttempts: 1,
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
    });
    fanout = createFanout({ management, doc: h.doc, tables: h.tables, concurrency: 4, usage: createUsageScope() });
  });
  after(async () => {
    management?.destroy();
    await h?.stop();
  });

  const gate = () => {
    if (!h.gate) throw new Error("harness built without a gate");
    return h.gate;
  };
  const connectionItem = async (connectionId: string) =>
    (await h.doc.send(new GetCommand({ TableName: h.tables.connections, Key: { connectionId }, ConsistentRead: true }))).Item;
  const roomItems = async (roomId: string) =>
    (
      await h.doc.send(
        new QueryCommand({
          TableName: h.tables.rooms,
          KeyConditionExpression: "roomId = :r",
          ExpressionAttributeValues: { ":r": roomId },
          ConsistentRead: true,
        }),
      )
    ).Items ?? [];
  /** Resolves once the fake `@connections` API has answered a DELETE of `connectionId` with 410. */
  const deleteRefused = async (connectionId: string) => {
    for (let i = 0; i < 200; i++) {
      if (h.api.calls.some((c) => c.method === "DELETE" && c.connectionId === connectionId && c.status === 410)) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no DELETE of ${connectionId} answered 410`);
  };

  it("refuses a banned user's handshake with 403 after writing nothing that stays: no connection item, no membership, no joined", async () => {
    const watcher = await h.join("ban-watch", "ban-room");
    await banUser(ctx, "ban-mallory", Date.now() + 60_000);
    const reportsBefore = h.reports.length;

    const { result, conn } = await h.connect("ban-mallory", { roomId: "ban-room" });

    assert.equal(result.statusCode, 403);
    assert.equal(await connectionItem(conn.connectionId), undefined, "the connection item written before the check is deleted");
    assert.deepEqual(
      (await roomItems("ban-room")).filter((i) => i.userId === "ban-mallory"),
      [],
    );
    assert.deepEqual(
      (await roomItems("ban-room#users")).filter((i) => i.sk === "u#ban-mallory"),
      [],
    );
    assert.deepEqual(
      h.frames(watcher).filter((f) => f.type === "presence"),
      [],
      "nothing announced",
    );
    const report = h.reports.slice(reportsBefore).find((r) => r.function === "connect");
    assert.equal(report?.metrics.ClientErrors, 1, "counted as a client error");
    assert.ok(h.logs.some((l) => l.includes("handshake rejected: the user is banned") && l.includes("ban-mallory")));
    assert.deepEqual(violations(await snapshot(h.doc, h.tables), "ban-"), []);
  });

  it("lets the user in again once the ban has passed, or after unban", async () => {
    await banUser(ctx, "ban-past", Date.now() - 1_000); // an expired item TTL has not deleted yet
    assert.equal((await h.connect("ban-past", { roomId: "ban-again" })).result.statusCode, 200);

    await banUser(ctx, "ban-lifted", Date.now() + 60_000);
    assert.equal((await h.connect("ban-lifted", { roomId: "ban-again" })).result.statusCode, 403);
    assert.equal(await unbanUser(ctx, "ban-lifted"), true, "a ban in force was removed");
    assert.equal(await unbanUser(ctx, "ban-lifted"), false, "nothing left to remove");
    assert.equal((await connectionItem(banKey("ban-lifted"))) === undefined, true);
    assert.equal((await h.connect("ban-lifted", { roomId: "ban-again" })).result.statusCode, 200);
  });

  it("a ban written while a handshake runs, after its check, closes that connection once it has opened (a 410 mid-handshake is not 'gone')", async () => {
    const connectionId = "ban-race-after-check-1";
    // Park the handshake's membership transaction: its ban check has passed, it is not open yet.
    const held = gate().hold((r: GateRequest) => r.operation === "TransactWriteItems" && r.body.includes(`c#${connectionId}`));
    const handshake = h.connect("ban-race-a", { roomId: "ban-race", connectionId });
    await held.arrived;

    await banUser(ctx, "ban-race-a", Date.now() + 60_000);
    const closing = closeUserConnections(ctx, fanout, log, "ban-race-a");
    await deleteRefused(connectionId); // the DELETE came before the handshake completed
    held.release();

    assert.equal((await handshake).result.statusCode, 200, "its check came before the ban");
    const result = await closing;
    assert.deepEqual([result.targets, result.closed, result.gone, result.failed], [1, 1, 0, 0]);
    assert.equal(h.api.isOpen(connectionId), false, "closed once open: the banned user is not connected");
  });

  it("a ban written while a handshake runs, before its check, refuses it; the closer finds it gone", async () => {
    const connectionId = "ban-race-before-check-1";
    // Park the handshake's ban check: its connection item is written, the check not yet made.
    const held = gate().hold((r: GateRequest) => r.operation === "BatchGetItem" && r.body.includes(banKey("ban-race-b")));
    const handshake = h.connect("ban-race-b", { roomId: "ban-race", connectionId });
    await held.arrived;

    await banUser(ctx, "ban-race-b", Date.now() + 60_000);
    const closing = closeUserConnections(ctx, fanout, log, "ban-race-b");
    await deleteRefused(connectionId);
    held.release();

    assert.equal((await handshake).result.statusCode, 403);
    const result = await closing;
    assert.deepEqual([result.targets, result.closed, result.gone, result.failed], [1, 0, 1, 0]);
    assert.equal(await connectionItem(connectionId), undefined);
    assert.deepEqual(violations(await snapshot(h.doc, h.tables), "ban-race"), []);
  });
});
