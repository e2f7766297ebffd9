/**
 * Every factory survives Pulumi's closure serialization (what aws.lambda.CallbackFunction does with
 * `callbackFactory`), and the serialized handler works: each one is written to a file inside the
 * project (so node_modules resolve), loaded with its function's environment and invoked once
 * against DynamoDB Local and the fake `@connections` server.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { SignJWT } from "jose";
import { FACTORIES } from "../../handlers";
import type { AuthorizerHandler, WebSocketHandler } from "../../handlers/events";
import { ENV, functionEnvironment } from "../../handlers/env";
import { FUNCTIONS, type FunctionName } from "../../handlers/routes";
import { TABLES, TABLE_NAMES } from "../../handlers/tables";
import {
  authorizerEvent,
  createHarness,
  messageEvent,
  TEST_AUDIENCE,
  TEST_ISSUER,
  TEST_SECRET,
  withEnv,
  type Harness,
} from "../support/handlerHarness";

describe("handlers: serialization by CallbackFunction", function () {
  this.timeout(120_000);
  let h: Harness;
  let dir: string;
  const loaded = new Map<FunctionName, WebSocketHandler | AuthorizerHandler>();

  before(async () => {
    h = await createHarness({ label: "serialize" });
    // Inside the project (so require() resolves node_modules), in the git-ignored test-artifacts/.
    fs.mkdirSync(path.join(process.cwd(), "test-artifacts"), { recursive: true });
    dir = fs.mkdtempSync(path.join(process.cwd(), "test-artifacts", "serialize-"));
  });
  after(async () => {
    await h?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const spec of FUNCTIONS) {
    it(`serializes the ${spec.name} factory and loads it with its function's environment`, async () => {
      const s = await pulumi.runtime.serializeFunction(FACTORIES[spec.name] as () => unknown, { isFactoryFunction: true });
      assert.ok(!/@pulumi\//.test(s.text), "the serialized code must not load @pulumi packages");
      const file = path.join(dir, `${spec.name}.js`);
      fs.writeFileSync(file, s.text);
      // The serialized module runs the factory when loaded: that is the cold start.
      const mod = withEnv({ ...h.envFor(spec.name), AWS_REGION: "us-east-1" }, () => require(file) as Record<string, unknown>);
      const handler = mod[s.exportName];
      assert.equal(typeof handler, "function");
      loaded.set(spec.name, handler as WebSocketHandler);
    });
  }

  it("the serialized handlers answer real requests", async () => {
    const ws = (name: FunctionName) => loaded.get(name) as WebSocketHandler;
    assert.equal(loaded.size, FUNCTIONS.length, "every factory serialized");
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("ser-user")
      .setIssuer(TEST_ISSUER)
      .setAudience(TEST_AUDIENCE)
      .setExpirationTime(now + 60)
      .sign(new TextEncoder().encode(TEST_SECRET));
    const allowed = await (loaded.get("authorizer") as AuthorizerHandler)(authorizerEvent({ token }));
    assert.equal(allowed.policyDocument.Statement[0].Effect, "Allow");

    const a = { connectionId: "serAAAAAAAAAAAAA", userId: "ser-user", username: "ser-user" };
    const b = { connectionId: "serBBBBBBBBBBBBB", userId: "ser-other", username: "ser-other" };
    for (const c of [a, b]) {
      const e = messageEvent(c, "$connect", "");
      const r = await ws("connect")({
        ...e,
        body: undefined,
        requestContext: { ...e.requestContext, eventType: "CONNECT" },
        queryStringParameters: { roomId: "ser-room" },
      });
      assert.equal(r.statusCode, 200);
      h.api.open(c.connectionId);
    }
    const send = async (name: FunctionName, frame: unknown) => {
      const r = await ws(name)(messageEvent(a, name, typeof frame === "string" ? frame : JSON.stringify(frame)));
      return r.body === undefined ? undefined : (JSON.parse(r.body) as Record<string, unknown>);
    };
    assert.deepEqual(await send("ping", { type: "ping" }), { type: "pong" });
    assert.equal((await send("default", "{oops"))?.code, "BAD_JSON");
    assert.equal(await send("chat", { type: "chat", message: "serialized" }), undefined);
    assert.equal(h.frames(b).filter((f) => f.type === "chat").length, 1);
    const messageId = h.frames(b).find((f) => f.type === "chat")?.messageId;
    assert.equal(await send("edit", { type: "edit", roomId: "ser-room", messageId, message: "edited" }), undefined);
    assert.equal(h.frames(b).find((f) => f.type === "edited")?.message, "edited");
    // react (issue 18): the serialized transaction, count read and fan-out, and a NOT_FOUND made by
    // the error factory arriving intact.
    assert.equal(await send("react", { type: "react", roomId: "ser-room", messageId, emoji: "👍" }), undefined);
    assert.deepEqual(
      h.frames(b).find((f) => f.type === "reaction"),
      { type: "reaction", messageId, emoji: "👍", userId: "ser-user", count: 1, version: 1, roomId: "ser-room" },
    );
    const unknown = await send("react", { type: "react", roomId: "ser-room", messageId: "not-a-uuid", emoji: "👍" });
    assert.equal(unknown?.code, "NOT_FOUND");
    assert.match(String(unknown?.message), /^no message not-a-uuid in this conversation/);
    assert.equal(await send("delete", { type: "delete", roomId: "ser-room", messageId }), undefined);
    assert.equal(h.frames(b).find((f) => f.type === "deleted")?.by, "ser-user");
    // typing (issue 18): no reply; the other member is told, the typer is not.
    assert.equal(await send("typing", { type: "typing", roomId: "ser-room" }), undefined);
    assert.deepEqual(
      h.frames(b).filter((f) => f.type === "typing"),
      [{ type: "typing", roomId: "ser-room", userId: "ser-user", username: "ser-user" }],
    );
    assert.equal(h.frames(a).filter((f) => f.type === "typing").length, 0);
    assert.equal((await send("read", { type: "read", roomId: "ser-room", messageId }))?.messageId, messageId);
    assert.equal((await send("join", { type: "join", roomId: "ser-room-2" }))?.type, "joined");
    assert.deepEqual(await send("leave", { type: "leave", roomId: "ser-room-2" }), { type: "left", roomId: "ser-room-2" });
    assert.equal((await send("private", { type: "private", toUserId: "ser-other", message: "hi" }))?.deliveredTo, 1);
    assert.ok(((await send("rooms", { type: "rooms" }))?.rooms as unknown[]).length >= 1);
    assert.equal(((await send("history", { type: "history", roomId: "ser-room" }))?.messages as unknown[]).length, 1);
    // kick (issue 16): the moderator's reply, the kicked connection's frame, and the kicked user's
    // join refused by the serialized join with the error its factory made (message and roomId intact).
    const moderator = { ...a, access: { moderates: "ser-*" } };
    const kicked = await ws("kick")(
      messageEvent(moderator, "kick", JSON.stringify({ type: "kick", roomId: "ser-room", userId: "ser-other" })),
    );
    assert.equal(JSON.parse(kicked.body ?? "{}").connections, 1);
    assert.equal(h.frames(b).filter((f) => f.type === "kicked").length, 1);
    const refused = JSON.parse(
      (await ws("join")(messageEvent(b, "join", JSON.stringify({ type: "join", roomId: "ser-room" })))).body ?? "{}",
    );
    assert.equal(refused.code, "FORBIDDEN");
    assert.equal(refused.roomId, "ser-room");
    assert.match(refused.message, /^you were removed from room ser-room by a moderator; you can join it again from \d{4}-/);
    const d = messageEvent(b, "$disconnect", "");
    assert.equal(
      (
        await ws("disconnect")({
          ...d,
          body: undefined,
          requestContext: { ...d.requestContext, eventType: "DISCONNECT", disconnectStatusCode: 1000 },
        })
      ).statusCode,
      200,
    );
  });
});

/**
 * What the Lambda Node.js runtime logs when a function's initialisation throws (the
 * Runtime.UserCodeSyntaxError / init error report of aws-lambda-nodejs-runtime-interface-client,
 * Errors.toFormatted): `errorType` from the error's name, `errorMessage` and the stack's lines.
 */
function lambdaInitErrorLog(err: unknown): { errorType: string; errorMessage: unknown; stack: string[] } {
  const e = err as { name?: unknown; message?: unknown; stack?: unknown; constructor?: { name?: string } };
  return {
    errorType: typeof e.name === "string" ? e.name : (e.constructor?.name ?? "Error"),
    errorMessage: e.message,
    stack: typeof e.stack === "string" ? e.stack.split("\n") : [],
  };
}

describe("handlers: a serialized function started without its environment", function () {
  this.timeout(120_000);
  let dir: string;
  // Every variable a function could be given, cleared: the archive runs as if the stack forgot them all.
  const empty = Object.fromEntries(
    [...Object.values(ENV), ...TABLE_NAMES.map((t) => TABLES[t].envVar), "AWS_REGION", "AWS_DEFAULT_REGION"].map((k) => [k, undefined]),
  );
  // What the stack would set for the function (table names etc. are placeholders): the variable
  // the log names must be one of these, so the operator knows which setting is missing.
  const deployed = (name: FunctionName) =>
    functionEnvironment(FUNCTIONS.find((f) => f.name === name)!, {
      tableNames: { connections: "c", rooms: "r", messages: "m" },
      managementEndpoint: "https://a1b2c3.execute-api.eu-west-1.amazonaws.com/dev",
      stage: "dev",
      environment: "dev",
      messageRetentionHours: 168,
      maxMessageBytes: 16384,
      rateLimitPerMinute: 60,
      fanoutConcurrency: 50,
      logLevel: "info",
      metricsNamespace: "Chat",
      tracing: false,
      auth: { mode: "shared-secret", secretArn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:s" },
      allowedOrigins: [],
    });

  before(() => {
    fs.mkdirSync(path.join(process.cwd(), "test-artifacts"), { recursive: true });
    dir = fs.mkdtempSync(path.join(process.cwd(), "test-artifacts", "serialize-empty-"));
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const spec of FUNCTIONS) {
    it(`${spec.name}: the init error in the log names the missing variable`, async () => {
      const s = await pulumi.runtime.serializeFunction(FACTORIES[spec.name] as () => unknown, { isFactoryFunction: true });
      const file = path.join(dir, `${spec.name}.js`);
      fs.writeFileSync(file, s.text);
      let thrown: unknown;
      try {
        withEnv(empty, () => require(file));
      } catch (err) {
        thrown = err;
      }
      assert.ok(thrown !== undefined, `${spec.name} started without its environment`);
      const log = lambdaInitErrorLog(thrown);
      assert.equal(log.errorType, "ConfigurationError");
      assert.equal(typeof log.errorMessage, "string", `errorMessage is ${String(log.errorMessage)}`);
      const named = [...String(log.errorMessage).matchAll(/\b[A-Z][A-Z0-9_]{2,}\b/g)].map((m) => m[0]);
      const expected = Object.keys(deployed(spec.name));
      assert.ok(
        named.some((v) => expected.includes(v)),
        `"${String(log.errorMessage)}" names none of the variables ${spec.name} is deployed with (${expected.join(", ")})`,
      );
      assert.ok(log.stack.length > 1 && log.stack[0].includes(String(log.errorMessage)), "the stack survives too");
    });
  }
});
