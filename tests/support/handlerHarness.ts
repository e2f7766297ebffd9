/**
 * Runs the real handler factories (handlers/index.ts FACTORIES) in-process against DynamoDB Local
 * (tables under a unique prefix) and the fake `@connections` server, with each function's
 * environment exactly as functionEnvironment() defines it. Events are shaped like API Gateway's
 * (handlers/events.ts); route selection follows `$request.body.type` like the service does.
 */
import { createWorker, type WorkerHooks } from "../../handlers/functions/deliver";
import { randomBytes } from "node:crypto";
import { DynamoDBDocumentClient, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { OPEN_SETTLE_MS } from "../../handlers/lib/data";
import { ensureTables, localDynamoClient, localTableNames } from "../../local/tables";
import { functionEnvironment, type DeploymentSettings } from "../../handlers/env";
import { FACTORIES, onInvocationUsage, type InvocationReport } from "../../handlers";
import type {
  AuthorizerEvent,
  AuthorizerHandler,
  SqsEvent,
  SqsHandler,
  WebSocketEvent,
  WebSocketHandler,
  WebSocketResult,
} from "../../handlers/events";
import { functionSpec, ROUTE_FUNCTIONS, type FunctionName } from "../../handlers/routes";
import type { TableName } from "../../handlers/tables";
import { recordedDynamo, uniquePrefix } from "./globalFixtures";
import { startFakeManagementApi, type FakeManagementApi } from "./fakeManagementApi";
import { startDynamoGate, type DynamoGate } from "./dynamoGate";

export const TEST_SECRET = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
export const TEST_ISSUER = "chat-local";
export const TEST_AUDIENCE = "chat-api";

/**
 * The authorizer's environment (functionEnvironment) on a stack whose HS256 secret lives in Secrets
 * Manager at `secretArn`; every other setting is a placeholder the authorizer does not read.
 */
export function authorizerSecretsManagerEnvironment(secretArn: string): Record<string, string> {
  return functionEnvironment(functionSpec("authorizer"), {
    tableNames: { connections: "c", rooms: "r", messages: "m" },
    managementEndpoint: "http://127.0.0.1:1/test",
    stage: "test",
    environment: "test",
    messageRetentionHours: 1,
    maxMessageBytes: 10,
    rateLimitPerMinute: 1,
    fanoutConcurrency: 1,
    logLevel: "error",
    metricsNamespace: "T",
    tracing: false,
    auth: { mode: "shared-secret", issuer: TEST_ISSUER, audience: TEST_AUDIENCE, secretArn },
    allowedOrigins: [],
  });
}

/** Runs fn with process.env extended by `vars` (keys set to undefined are removed), then restores it. */
export function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(vars)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** Captures the JSON lines the handlers write to stdout (logs, EMF) instead of printing them. */
export function captureStdout(): { lines: string[]; restore(): void } {
  const lines: string[] = [];
  const original = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    if (text.startsWith('{"timestamp"') || text.startsWith('{"_aws"')) {
      lines.push(...text.split("\n").filter((l) => l !== ""));
      return true;
    }
    return (original as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stdout.write;
  return {
    lines,
    restore: () => {
      process.stdout.write = original;
    },
  };
}

export interface HarnessOptions {
  readonly label: string;
  readonly rateLimitPerMinute?: number;
  readonly userRateLimitPerMinute?: number;
  readonly userConnectsPerMinute?: number;
  readonly maxMessageBytes?: number;
  readonly messageRetentionHours?: number;
  readonly fanoutConcurrency?: number;
  /** Extra variables for every function (e.g. ROOM_QUERY_PAGE_SIZE). */
  readonly extraEnv?: Record<string, string>;
  readonly auth?: Partial<DeploymentSettings["auth"]>;
  readonly allowedOrigins?: readonly string[];
  /** Route the functions' DynamoDB calls through a DynamoGate (h.gate) so a test can order them. */
  readonly gate?: boolean;
  /** The stack's roomAccess (handlers/settings.ts); default its declared default. */
  readonly roomAccess?: "open" | "token";
}

export interface TestConnection {
  readonly connectionId: string;
  readonly userId: string;
  readonly username: string;
  /** The token's `exp` the authorizer passed in its context (epoch seconds); absent: no `exp`. */
  readonly exp?: number;
  /** The access entries the authorizer passed in its context (access.ts accessContext: rooms, moderates). */
  readonly access?: Readonly<Record<string, string>>;
}

export interface Harness {
  readonly api: FakeManagementApi;
  readonly doc: DynamoDBDocumentClient;
  readonly tables: Record<TableName, string>;
  readonly settings: DeploymentSettings;
  readonly reports: InvocationReport[];
  readonly logs: string[];
  /** Present when created with `gate: true`: holds chosen DynamoDB requests of the functions. */
  readonly gate?: DynamoGate;
  envFor(name: FunctionName): Record<string, string>;
  handler(name: Exclude<FunctionName, "authorizer" | "deliver">): WebSocketHandler;
  authorizer(): AuthorizerHandler;
  /** The delivery worker (issue 17), invoked with SQS events as its event source mapping would. */
  deliver(): SqsHandler;
  /** A fresh `deliver` instance built with test hooks (handlers/functions/deliver.ts createWorker). */
  deliverWith(hooks: WorkerHooks): SqsHandler;
  /** Runs $connect as API Gateway would after an Allow; opens the connection on the fake API when it succeeds. */
  connect(
    userId: string,
    o?: { username?: string; roomId?: string; connectionId?: string; exp?: number; access?: Readonly<Record<string, string>> },
  ): Promise<{ result: WebSocketResult; conn: TestConnection }>;
  /** connect() that must succeed. */
  join(userId: string, roomId?: string, username?: string): Promise<TestConnection>;
  /** Sends a frame (object or raw text) through route selection; returns the reply body parsed (undefined if none). */
  send(conn: TestConnection, frame: unknown): Promise<Record<string, unknown> | undefined>;
  sendRaw(conn: TestConnection, body: string, routeKey?: string): Promise<WebSocketResult>;
  /**
   * The client vanished without $disconnect, some time after connecting: closed on the fake API, and
   * its item aged past OPEN_SETTLE_MS (a 410 right after the handshake is not final: fanout.ts).
   */
  vanish(conn: TestConnection): Promise<void>;
  /** $disconnect; closes the connection on the fake API first, as the service does. */
  disconnect(conn: TestConnection, statusCode?: number): Promise<WebSocketResult>;
  /** Frames the fake API received for a connection (posts), JSON-parsed. */
  frames(conn: TestConnection | string): Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

function newConnectionId(): string {
  // API Gateway connection ids look like "L0SM9cOFvHcCIhw=": 12 random bytes, base64.
  return randomBytes(12).toString("base64");
}

export function messageEvent(conn: TestConnection, routeKey: string, body: string, username?: string): WebSocketEvent {
  const now = Date.now();
  return {
    requestContext: {
      routeKey,
      eventType: "MESSAGE",
      messageId: randomBytes(6).toString("base64"),
      extendedRequestId: randomBytes(6).toString("hex"),
      requestTime: new Date(now).toUTCString(),
      messageDirection: "IN",
      stage: "test",
      connectedAt: now,
      requestTimeEpoch: now,
      identity: { sourceIp: "127.0.0.1" },
      requestId: randomBytes(6).toString("hex"),
      domainName: "127.0.0.1",
      connectionId: conn.connectionId,
      apiId: "local",
      authorizer: {
        principalId: conn.userId,
        userId: conn.userId,
        username: username ?? conn.username,
        ...(conn.exp !== undefined ? { exp: String(conn.exp) } : {}),
        ...conn.access,
      },
    },
    body,
    isBase64Encoded: false,
  };
}

/** An SQS event of one record, as the delivery queue's event source mapping sends it (handlers/events.ts). */
export function sqsEvent(body: string, receiveCount = 1, messageId = randomBytes(8).toString("hex")): SqsEvent {
  return {
    Records: [
      {
        messageId,
        receiptHandle: `rh-${messageId}`,
        body,
        attributes: {
          ApproximateReceiveCount: String(receiveCount),
          SentTimestamp: String(Date.now()),
          SenderId: "AIDATEST",
          ApproximateFirstReceiveTimestamp: String(Date.now()),
        },
        messageAttributes: {},
        md5OfBody: "",
        eventSource: "aws:sqs",
        eventSourceARN: "arn:aws:sqs:us-east-1:000000000000:test-deliveries.fifo",
        awsRegion: "us-east-1",
      },
    ],
  };
}

export function authorizerEvent(query: Record<string, string>, headers: Record<string, string> = {}): AuthorizerEvent {
  const now = Date.now();
  return {
    type: "REQUEST",
    methodArn: "arn:aws:execute-api:us-east-1:123456789012:local/test/$connect",
    headers,
    queryStringParameters: query,
    requestContext: {
      routeKey: "$connect",
      eventType: "CONNECT",
      extendedRequestId: "x",
      requestTime: new Date(now).toUTCString(),
      messageDirection: "IN",
      stage: "test",
      connectedAt: now,
      requestTimeEpoch: now,
      identity: { sourceIp: "127.0.0.1" },
      requestId: randomBytes(6).toString("hex"),
      domainName: "127.0.0.1",
      connectionId: newConnectionId(),
      apiId: "local",
    },
  };
}

export async function createHarness(o: HarnessOptions): Promise<Harness> {
  // Through the recording relay: tests/infra/iamSimulation.ts evaluates the functions' calls.
  const dynamo = await recordedDynamo();
  const tables = localTableNames(uniquePrefix(o.label));
  const raw = localDynamoClient(dynamo.endpoint);
  await ensureTables(raw, tables);
  const doc = DynamoDBDocumentClient.from(raw, { marshallOptions: { removeUndefinedValues: true } });
  const api = await startFakeManagementApi("test");
  const gate = o.gate ? await startDynamoGate(dynamo.endpoint) : undefined;
  const settings: DeploymentSettings = {
    tableNames: tables,
    managementEndpoint: api.endpoint,
    stage: "test",
    environment: "test",
    messageRetentionHours: o.messageRetentionHours ?? 168,
    maxMessageBytes: o.maxMessageBytes ?? 4096,
    rateLimitPerMinute: o.rateLimitPerMinute ?? 1000,
    ...(o.userRateLimitPerMinute !== undefined ? { userRateLimitPerMinute: o.userRateLimitPerMinute } : {}),
    // Tests connect one user many times a minute: a large handshake budget unless a test sets one.
    userConnectsPerMinute: o.userConnectsPerMinute ?? 100_000,
    fanoutConcurrency: o.fanoutConcurrency ?? 8,
    ...(o.roomAccess !== undefined ? { roomAccess: o.roomAccess } : {}),
    logLevel: "info",
    metricsNamespace: "ChatApiTest",
    tracing: false,
    auth: { mode: "shared-secret", issuer: TEST_ISSUER, audience: TEST_AUDIENCE, sharedSecret: TEST_SECRET, ...o.auth },
    allowedOrigins: o.allowedOrigins ?? [],
    dynamodbEndpoint: gate?.endpoint ?? dynamo.endpoint,
  };
  const envFor = (name: FunctionName) => ({ ...functionEnvironment(functionSpec(name), settings), ...o.extraEnv });
  const cache = new Map<FunctionName, WebSocketHandler | AuthorizerHandler | SqsHandler>();
  const envOf = (name: FunctionName) => {
    // Only the function's own variables, as in its Lambda: nothing leaks from other functions.
    const all = [
      ...new Set(ROUTE_FUNCTIONS.concat([functionSpec("authorizer")]).flatMap((f) => Object.keys(functionEnvironment(f, settings)))),
    ];
    const cleared = Object.fromEntries(all.map((k) => [k, undefined]));
    return { ...cleared, ...envFor(name), AWS_ACCESS_KEY_ID: undefined, AWS_REGION: "us-east-1" };
  };
  const build = <T>(name: FunctionName): T => {
    let h = cache.get(name);
    if (!h) {
      h = withEnv(envOf(name), () => FACTORIES[name]());
      cache.set(name, h);
    }
    return h as T;
  };
  const reports: InvocationReport[] = [];
  const unsubscribe = onInvocationUsage((r) => reports.push(r));
  const stdout = captureStdout();

  const handler = (name: Exclude<FunctionName, "authorizer" | "deliver">) => build<WebSocketHandler>(name);
  const routeOf = (body: string): FunctionName => {
    try {
      const v = JSON.parse(body) as { type?: unknown };
      const route = ROUTE_FUNCTIONS.find((f) => typeof v?.type === "string" && f.routeKey === v.type && !f.routeKey.startsWith("$"));
      if (route) return route.name;
    } catch {
      // not JSON: $default (AWS-FACTS: Routing)
    }
    return "default";
  };

  const harness: Harness = {
    api,
    doc,
    tables,
    settings,
    reports,
    logs: stdout.lines,
    ...(gate ? { gate } : {}),
    envFor,
    handler,
    authorizer: () => build<AuthorizerHandler>("authorizer"),
    deliver: () => build<SqsHandler>("deliver"),
    deliverWith: (hooks: WorkerHooks) => withEnv(envOf("deliver"), () => createWorker(hooks)),
    async connect(userId, c = {}) {
      const connectionId = c.connectionId ?? newConnectionId();
      const username = c.username ?? userId;
      const conn: TestConnection = {
        connectionId,
        userId,
        username,
        ...(c.exp !== undefined ? { exp: c.exp } : {}),
        ...(c.access !== undefined ? { access: c.access } : {}),
      };
      const event = messageEvent(conn, "$connect", "", username);
      const connectEvent: WebSocketEvent = {
        ...event,
        body: undefined,
        requestContext: { ...event.requestContext, eventType: "CONNECT", messageId: undefined },
        queryStringParameters: c.roomId !== undefined ? { roomId: c.roomId } : {},
        headers: { Host: "127.0.0.1" },
      };
      const result = await handler("connect")(connectEvent);
      if (result.statusCode === 200) api.open(connectionId);
      return { result, conn };
    },
    async join(userId, roomId, username) {
      const { result, conn } = await harness.connect(userId, { roomId, username });
      if (result.statusCode !== 200) throw new Error(`connect failed with ${result.statusCode}`);
      return conn;
    },
    async sendRaw(conn, body, routeKey) {
      const route = routeKey ? (ROUTE_FUNCTIONS.find((f) => f.routeKey === routeKey)?.name ?? "default") : routeOf(body);
      const key = functionSpec(route).routeKey ?? "$default";
      return handler(route as Exclude<FunctionName, "authorizer" | "deliver">)(messageEvent(conn, key, body));
    },
    async send(conn, frame) {
      const result = await harness.sendRaw(conn, typeof frame === "string" ? frame : JSON.stringify(frame));
      if (result.statusCode !== 200) throw new Error(`route answered ${result.statusCode}`);
      return result.body === undefined ? undefined : (JSON.parse(result.body) as Record<string, unknown>);
    },
    async vanish(conn) {
      api.close(conn.connectionId);
      const openedAt = Date.now() - OPEN_SETTLE_MS - 1_000;
      await doc.send(
        new UpdateCommand({
          TableName: tables.connections,
          Key: { connectionId: conn.connectionId },
          UpdateExpression: "SET openedAt = :at, connectedAt = :at",
          ConditionExpression: "attribute_exists(connectionId)",
          ExpressionAttributeValues: { ":at": openedAt },
        }),
      );
    },
    async disconnect(conn, statusCode = 1000) {
      api.close(conn.connectionId);
      const event = messageEvent(conn, "$disconnect", "");
      return handler("disconnect")({
        ...event,
        body: undefined,
        requestContext: {
          ...event.requestContext,
          eventType: "DISCONNECT",
          messageId: undefined,
          disconnectStatusCode: statusCode,
          disconnectReason: "",
        },
      });
    },
    frames: (conn) => api.frames(typeof conn === "string" ? conn : conn.connectionId) as Array<Record<string, unknown>>,
    async stop() {
      unsubscribe();
      stdout.restore();
      await api.stop();
      await gate?.stop();
      raw.destroy();
    },
  };
  return harness;
}
