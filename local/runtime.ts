/**
 * `startLocalRuntime()`: the whole chat API on one machine. DynamoDB Local with the stack's tables,
 * every function in its own worker with the environment the stack gives it, and the local API
 * Gateway in front. Used by `npm run local`, the end-to-end tests, the benchmarks and the clients' tests.
 */
import {
  DELIVERY_MAX_RECEIVE_COUNT,
  deliveryVisibilityTimeoutSeconds,
  deliveryWorkerTimeoutSeconds,
  MAX_LAMBDA_TIMEOUT_SECONDS,
} from "../handlers/lib/deliveries";
import * as fs from "node:fs";
import * as path from "node:path";
import { functionEnvironment, type AuthMode, type DeploymentSettings, type LogLevel } from "../handlers/env";
import type { RoomAccessMode } from "../handlers/lib/access";
import { localAccessKeyId } from "../handlers/lib/clients";
import { DEFAULT_METRICS_NAMESPACE } from "../handlers/metrics";
import { FUNCTIONS, ROUTE_SELECTION_EXPRESSION, functionSpec, type FunctionName } from "../handlers/routes";
import { settingDefaults, type SettingValues } from "../handlers/settings";
import type { TableName } from "../handlers/tables";
import { IDLE_TIMEOUT_MS, INTEGRATION_TIMEOUT_MS, MAX_DURATION_MS, apiIdFrom } from "./apiGateway";
import { startDynamoLocal, type DynamoLocal } from "./dynamoLocal";
import { FunctionHost, emptyFunctionStats, type EmfRecord, type FunctionSource, type FunctionStats } from "./functions";
import type { AuthorizerResult, WebSocketResult } from "../handlers/events";
import {
  LocalGateway,
  emptyManagementStats,
  type Invoke,
  type ManagementCall,
  type ManagementError,
  type ManagementStats,
} from "./gateway";
import { consoleLogger, silentLogger, type Logger } from "./logger";
import { localSecret } from "./secret";
import { LocalSink } from "./sink";
import { bundleHandlers } from "./bundle";
import { ensureTables, localDynamoClient, localTableNames } from "./tables";
import { CreateQueueCommand } from "@aws-sdk/client-sqs";
import { localSqsClient, startLocalSqs, type LocalSqs, type QueueStats } from "./sqs";
import { startEventSourceMapping, type EventSourceMapping, type EventSourceMappingStats } from "./eventSourceMapping";
import { LOCAL_TOKEN_AUDIENCE, LOCAL_TOKEN_ISSUER, mintLocalToken, type LocalTokenAccess } from "./token";

const REPO_ROOT = path.resolve(__dirname, "..");
/** The module whose `FACTORIES[name]` is each function's callback factory (what the stack packages). */
export const HANDLERS_ENTRY = path.join(REPO_ROOT, "handlers", "index.ts");
/** The Lambda runtime the stack deploys; reported in AWS_EXECUTION_ENV. */
const LAMBDA_RUNTIME = "nodejs22.x";

/** Deployment settings a test or benchmark may change (everything else is the local default). */
export interface SettingsOverrides {
  readonly maxMessageBytes?: number;
  readonly rateLimitPerMinute?: number;
  readonly userRateLimitPerMinute?: number;
  readonly userConnectsPerMinute?: number;
  readonly fanoutConcurrency?: number;
  readonly messageRetentionHours?: number;
  readonly allowedOrigins?: readonly string[];
  readonly authMode?: AuthMode;
  /**
   * Required when authMode is "oidc": the identity provider's issuer, audience and JWKS URL (the
   * stack's authIssuer/authAudience/authJwksUrl). mintToken() still signs HS256 local tokens, which
   * an OIDC-mode authorizer rejects.
   */
  readonly oidc?: { readonly issuer: string; readonly audience: string; readonly jwksUrl: string };
  readonly logLevel?: LogLevel;
  readonly tracing?: boolean;
  /** Rooms a token without the `rooms` claim may use (handlers/settings.ts roomAccess). */
  readonly roomAccess?: RoomAccessMode;
  /** Least seconds between two typing fan-outs of a user in one conversation (handlers/settings.ts). */
  readonly typingIntervalSeconds?: number;
  /** Rooms with more users get no typing nor shared read positions (handlers/settings.ts). */
  readonly typingMaxRoomUsers?: number;
  /** Rooms whose members see each other's read positions: comma-separated patterns (handlers/settings.ts). */
  readonly readReceiptRooms?: string;
  /** Rooms with more users are delivered by the workers (handlers/settings.ts largeRoomUsers). */
  readonly largeRoomUsers?: number;
  /** Users per shard of a room's membership (handlers/settings.ts roomShardSize). */
  readonly roomShardSize?: number;
  /** Delivery workers at once (handlers/settings.ts deliveryWorkerConcurrency). */
  readonly deliveryWorkerConcurrency?: number;
  /** Posts per second of all delivery workers (handlers/settings.ts deliveryPostsPerSecond). */
  readonly deliveryPostsPerSecond?: number;
}

export interface LocalRuntimeOptions {
  /** TCP port of the gateway; 0 picks a free one. Default 0 (the CLI defaults to 3001). */
  readonly port?: number;
  /** Interface to listen on. Default 127.0.0.1. */
  readonly host?: string;
  /** API Gateway stage: the endpoint's path. Default "local". */
  readonly stage?: string;
  /** DynamoDB Local's data folder. Default .local/dynamodb. Ignored with inMemory or dynamodbEndpoint. */
  readonly dataDir?: string;
  /** Keep DynamoDB Local's data in memory only. Default false. */
  readonly inMemory?: boolean;
  /** Use this running DynamoDB (Local) instead of starting one; the runtime then never stops it. */
  readonly dynamodbEndpoint?: string;
  /** Physical table names are `<tablePrefix>-<table>`. Default `chat-<stage>`. */
  readonly tablePrefix?: string;
  /** Idle timeout; default 10 minutes as API Gateway. */
  readonly idleTimeoutMs?: number;
  /** Maximum connection duration; default 2 hours as API Gateway. */
  readonly maxDurationMs?: number;
  /** Delay added to every `@connections` call, to approximate the service's latency in benchmarks. Default 0. */
  readonly managementLatencyMs?: number;
  /** Fault injection: every Nth `@connections` POST answers 429 LimitExceededException. */
  readonly limitExceededEvery?: number;
  /** Fault injection: return an error name to fail that `@connections` call with it. */
  readonly managementFault?: (call: ManagementCall) => ManagementError | undefined;
  /** Run the serialized callback modules `pulumi up` would upload (written under buildDir). Default false. */
  readonly serialized?: boolean;
  /** Where serialized modules are written. Default .local/build. */
  readonly buildDir?: string;
  readonly settings?: SettingsOverrides;
  /** Function timeout in ms, for all functions or per function. Default 10 s (the stack's lambdaTimeoutSeconds). */
  readonly functionTimeoutMs?: number | Partial<Record<FunctionName, number>>;
  /** Memory size reported to and enforced on each function. Default 256 MB (the stack's lambdaMemoryMb). */
  readonly memoryMb?: number;
  /** Test only: replace a function with a module exporting `factory()` or `handler` (e.g. a slow fixture). */
  readonly functionOverrides?: Partial<Record<FunctionName, string>>;
  /** Test only: return true to never deliver this connection's `$disconnect` (best effort on AWS). */
  readonly loseDisconnect?: (connectionId: string) => boolean;
  /** Test only: deploy without these functions and their routes (e.g. without `$default`). */
  readonly disabledFunctions?: readonly FunctionName[];
  /** Static files served at / (the web client). */
  readonly webDir?: string;
  /** Folder of the local HS256 secret (`<secretDir>/secret`). Default .local. */
  readonly secretDir?: string;
  /** Start every function at startup instead of on first use. Default false (cold starts as on Lambda). */
  readonly warm?: boolean;
  readonly logger?: Logger;
  /** No logs at all (tests). */
  readonly quiet?: boolean;
  /** Lifetime of the tokens GET /_local/token mints (default 2 hours); tests of token expiry shorten it. */
  readonly localTokenTtlSeconds?: number;
  /** API id used in events and ARNs. Default derived from stage and port. */
  readonly apiId?: string;
  /** Benchmarks and tests: the sink keeps every frame's text per connection (local/sink.ts). Default false. */
  readonly sinkKeepsFrames?: boolean;
  /**
   * Test only: the delivery queue's visibility timeout in seconds, instead of the stack's 6 x the
   * deliver function's timeout (a retried job then comes back sooner).
   */
  readonly deliveryVisibilityTimeoutSeconds?: number;
}

/** The delivery queue's figures (issue 17): the queue, its dead-letter queue and the event source mapping. */
export interface DeliveryQueueStats {
  readonly queue: QueueStats;
  readonly deadLetter: QueueStats;
  readonly mapping: Readonly<EventSourceMappingStats>;
}

export interface RuntimeStats {
  readonly functions: Record<FunctionName, FunctionStats>;
  /** Every EMF document the functions wrote, in order. */
  readonly emf: EmfRecord[];
  readonly management: ManagementStats;
  /** The delivery queue's figures now (queue depth, in flight, dead letters, mapping invocations). */
  deliveryQueue(): DeliveryQueueStats;
}

export interface LocalRuntime {
  /** `ws://127.0.0.1:<port>/<stage>` */
  readonly endpoint: string;
  /** `http://127.0.0.1:<port>/<stage>`: what ApiGatewayManagementApiClient takes as `endpoint`. */
  readonly managementEndpoint: string;
  /** `http://127.0.0.1:<port>/` (the web client, when webDir is set). */
  readonly webUrl: string;
  readonly port: number;
  readonly stage: string;
  readonly apiId: string;
  readonly region: string;
  readonly dynamodbEndpoint: string;
  readonly tableNames: Readonly<Record<TableName, string>>;
  readonly settings: DeploymentSettings & SettingValues;
  readonly stats: RuntimeStats;
  /** A token the authorizer accepts for this user (HS256, local secret). */
  mintToken(userId: string, username: string, ttlSeconds?: number, access?: LocalTokenAccess): Promise<string>;
  /** Ids of the open connections. */
  connectionIds(): string[];
  /** Connections without a socket whose deliveries are counted (local/sink.ts): benchmarks of large rooms. */
  readonly sink: LocalSink;
  /** The stack outputs' names and local values (`pulumi stack output --json` shape). */
  outputs(): Record<string, string | number>;
  /** Sum of one EMF metric over every invocation (of one function, if given). */
  metricTotal(metric: string, fn?: FunctionName): number;
  /** Clears counters and EMF records (benchmarks measure one phase at a time). */
  resetStats(): void;
  /** Closes connections (invoking `$disconnect`), stops the functions and the DynamoDB Local it started. */
  stop(): Promise<void>;
}

/**
 * Local defaults: the stack's dev defaults (infra/config.ts), with the local identity settings; the
 * handlers' settings are their declared defaults (handlers/settings.ts).
 */
export const LOCAL_DEFAULTS = {
  region: "us-east-1",
  accountId: "000000000000",
  functionTimeoutMs: 10_000,
  memoryMb: 256,
  ...settingDefaults(),
  /** Outgoing bytes queued for one client above which a POST answers LimitExceededException. */
  clientBufferLimitBytes: 1024 * 1024,
} as const;

/** The query parameter the authorizer's identity source names (`route.request.querystring.token`). */
export const TOKEN_QUERY_PARAM = "token";

export async function startLocalRuntime(options: LocalRuntimeOptions = {}): Promise<LocalRuntime> {
  const logger: Logger = options.quiet ? silentLogger : (options.logger ?? consoleLogger("info"));
  const stage = options.stage ?? "local";
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(stage))
    throw new Error(`stage "${stage}" must be 1-128 letters, digits, '-' or '_' (API Gateway stage name rules)`);
  const host = options.host ?? "127.0.0.1";
  const { region, accountId } = LOCAL_DEFAULTS;

  let dynamo: DynamoLocal | undefined;
  let sqs: LocalSqs | undefined;
  let mapping: EventSourceMapping | undefined;
  let gateway: LocalGateway | undefined;
  let killDynamoOnExit: (() => void) | undefined;
  const hosts = new Map<FunctionName, FunctionHost>();
  // Stop order: the gateway first (closing connections still invokes $disconnect), then the functions, then DynamoDB.
  const stopAll = async () => {
    const step = async (what: string, f: () => Promise<void>) =>
      f().catch((err: Error) => logger({ level: "error", source: "runtime", message: `stopping ${what}: ${err.message}` }));
    if (gateway) await step("gateway", () => gateway!.stop());
    if (mapping) await step("event source mapping", () => mapping!.stop());
    await step("functions", async () => void (await Promise.all([...hosts.values()].map((h) => h.stop()))));
    if (dynamo) await step("DynamoDB Local", () => dynamo!.stop());
    if (sqs) await step("local SQS", () => sqs!.stop());
    if (killDynamoOnExit) process.off("exit", killDynamoOnExit);
  };

  try {
    // 1. The gateway's port first: a taken port fails fast, and MANAGEMENT_ENDPOINT depends on it.
    const managementStats = emptyManagementStats();
    const secret = localSecret(options.secretDir ?? ".local");
    let postCount = 0;
    gateway = new LocalGateway({
      host,
      port: options.port ?? 0,
      stage,
      region,
      accountId,
      routeSelectionExpression: ROUTE_SELECTION_EXPRESSION,
      idleTimeoutMs: options.idleTimeoutMs ?? IDLE_TIMEOUT_MS,
      maxDurationMs: options.maxDurationMs ?? MAX_DURATION_MS,
      managementLatencyMs: options.managementLatencyMs ?? 0,
      managementFault: (call) => {
        const injected = options.managementFault?.(call);
        if (injected) return injected;
        if (call.method === "POST" && options.limitExceededEvery && options.limitExceededEvery > 0) {
          postCount += 1;
          if (postCount % options.limitExceededEvery === 0) return "LimitExceededException";
        }
        return undefined;
      },
      clientBufferLimitBytes: LOCAL_DEFAULTS.clientBufferLimitBytes,
      webDir: options.webDir,
      loseDisconnect: options.loseDisconnect,
      mintToken: (userId, username, access) =>
        mintLocalToken(secret, { userId, username, ttlSeconds: options.localTokenTtlSeconds, ...access }),
      logger,
      managementStats,
    });
    const port = await gateway.listen();

    // 2. DynamoDB Local and the stack's tables, from the same schemas (handlers/tables.ts).
    let dynamodbEndpoint = options.dynamodbEndpoint;
    if (!dynamodbEndpoint) {
      dynamo = await startDynamoLocal({ dataDir: options.inMemory ? undefined : (options.dataDir ?? path.join(".local", "dynamodb")) });
      dynamodbEndpoint = dynamo.endpoint;
      // No orphan java process even if this Node process dies without calling stop().
      const child = dynamo.process;
      killDynamoOnExit = () => void (child.exitCode === null && child.kill("SIGKILL"));
      process.on("exit", killDynamoOnExit);
      logger({
        level: "info",
        source: "runtime",
        message: `DynamoDB Local on ${dynamodbEndpoint}${options.inMemory ? " (in memory)" : ""}`,
      });
    }
    const tableNames = localTableNames(options.tablePrefix ?? `chat-${stage}`);
    const ddb = localDynamoClient(dynamodbEndpoint);
    try {
      await ensureTables(ddb, tableNames);
    } finally {
      ddb.destroy();
    }

    // 2b. The delivery queue (issue 17): the local SQS, a FIFO queue and its FIFO dead-letter queue
    // with the stack's settings, created with the unchanged SDK client.
    const deliveriesEnabled = !(options.disabledFunctions ?? []).includes("deliver");
    // The worker is triggered by its queue, not by API Gateway: no 29 s cut, and its timeout is the
    // stack's (handlers/lib/deliveries.ts deliveryWorkerTimeoutSeconds: three times the time its shard
    // takes at its share of the post budget), unless a test sets one.
    const deliverTimeoutMs = ((): number => {
      const t = options.functionTimeoutMs;
      const given = typeof t === "number" ? t : t?.deliver;
      if (given !== undefined) return given;
      const s = options.settings ?? {};
      const seconds = deliveryWorkerTimeoutSeconds({
        roomShardSize: s.roomShardSize ?? LOCAL_DEFAULTS.roomShardSize,
        deliveryWorkerConcurrency: s.deliveryWorkerConcurrency ?? LOCAL_DEFAULTS.deliveryWorkerConcurrency,
        deliveryPostsPerSecond: s.deliveryPostsPerSecond ?? LOCAL_DEFAULTS.deliveryPostsPerSecond,
        lambdaTimeoutSeconds: LOCAL_DEFAULTS.functionTimeoutMs / 1000,
      });
      return (seconds ?? MAX_LAMBDA_TIMEOUT_SECONDS) * 1000;
    })();
    const queueName = `${options.tablePrefix ?? `chat-${stage}`}-deliveries.fifo`;
    const dlqName = `${options.tablePrefix ?? `chat-${stage}`}-deliveries-dlq.fifo`;
    let deliveryQueueUrl: string | undefined;
    if (deliveriesEnabled) {
      sqs = await startLocalSqs({ host: "127.0.0.1", region, accountId, logger });
      deliveryQueueUrl = await createDeliveryQueues(
        sqs,
        queueName,
        dlqName,
        options.deliveryVisibilityTimeoutSeconds ?? Math.ceil(deliveryVisibilityTimeoutSeconds(deliverTimeoutMs / 1000)),
      );
    }

    const apiId = options.apiId ?? apiIdFrom(`${stage}:${port}`);
    // Listening on every interface: advertise the loopback address, which always reaches it.
    const base = `${host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host}:${port}`;
    const endpoint = `ws://${base}/${stage}`;
    const managementEndpoint = `http://${base}/${stage}`;

    // 3. One DeploymentSettings, turned into each function's environment by functionEnvironment().
    const o = options.settings ?? {};
    const settings: DeploymentSettings & SettingValues = {
      tableNames,
      managementEndpoint,
      stage,
      environment: "local",
      messageRetentionHours: o.messageRetentionHours ?? LOCAL_DEFAULTS.messageRetentionHours,
      maxMessageBytes: o.maxMessageBytes ?? LOCAL_DEFAULTS.maxMessageBytes,
      rateLimitPerMinute: o.rateLimitPerMinute ?? LOCAL_DEFAULTS.rateLimitPerMinute,
      userRateLimitPerMinute: o.userRateLimitPerMinute ?? LOCAL_DEFAULTS.userRateLimitPerMinute,
      userConnectsPerMinute: o.userConnectsPerMinute ?? LOCAL_DEFAULTS.userConnectsPerMinute,
      fanoutConcurrency: o.fanoutConcurrency ?? LOCAL_DEFAULTS.fanoutConcurrency,
      roomAccess: o.roomAccess ?? LOCAL_DEFAULTS.roomAccess,
      typingIntervalSeconds: o.typingIntervalSeconds ?? LOCAL_DEFAULTS.typingIntervalSeconds,
      typingMaxRoomUsers: o.typingMaxRoomUsers ?? LOCAL_DEFAULTS.typingMaxRoomUsers,
      readReceiptRooms: o.readReceiptRooms ?? LOCAL_DEFAULTS.readReceiptRooms,
      largeRoomUsers: o.largeRoomUsers ?? LOCAL_DEFAULTS.largeRoomUsers,
      roomShardSize: o.roomShardSize ?? LOCAL_DEFAULTS.roomShardSize,
      deliveryWorkerConcurrency: o.deliveryWorkerConcurrency ?? LOCAL_DEFAULTS.deliveryWorkerConcurrency,
      deliveryPostsPerSecond: o.deliveryPostsPerSecond ?? LOCAL_DEFAULTS.deliveryPostsPerSecond,
      logLevel: o.logLevel ?? LOCAL_DEFAULTS.logLevel,
      metricsNamespace: DEFAULT_METRICS_NAMESPACE,
      metricsPerFunction: LOCAL_DEFAULTS.metricsPerFunction,
      tracing: o.tracing ?? LOCAL_DEFAULTS.tracing,
      auth: authSettings(o, secret),
      allowedOrigins: o.allowedOrigins ?? [],
      dynamodbEndpoint,
      ...(deliveryQueueUrl && sqs ? { deliveryQueueUrl, sqsEndpoint: sqs.endpoint } : {}),
    };

    // 4. One host per function, each in its own worker with its own process.env.
    const disabled = new Set(options.disabledFunctions ?? []);
    const specs = FUNCTIONS.filter((f) => !disabled.has(f.name));
    const sources = await functionSources(
      specs.map((s) => s.name),
      options,
    );
    const memoryMb = options.memoryMb ?? LOCAL_DEFAULTS.memoryMb;
    const timeoutFor = (name: FunctionName): number => {
      if (name === "deliver") return deliverTimeoutMs;
      const t = options.functionTimeoutMs;
      const ms = typeof t === "number" ? t : (t?.[name] ?? LOCAL_DEFAULTS.functionTimeoutMs);
      // API Gateway stops waiting after 29 s whatever the Lambda timeout (limits table).
      return Math.min(ms, INTEGRATION_TIMEOUT_MS);
    };
    const stats: RuntimeStats = {
      functions: Object.fromEntries(FUNCTIONS.map((f) => [f.name, emptyFunctionStats()])) as Record<FunctionName, FunctionStats>,
      emf: [],
      management: managementStats,
      deliveryQueue: () => {
        if (!sqs || !mapping) throw new Error("the delivery queue is not running (deliver is disabled)");
        return { queue: sqs.stats(queueName), deadLetter: sqs.stats(dlqName), mapping: mapping.stats };
      },
    };
    for (const spec of specs) {
      const physicalName = `chat-${stage}-${spec.name}`;
      const env: Record<string, string> = {
        ...functionEnvironment(spec, settings),
        // What the Lambda service itself sets in every execution environment (lambda configuration-envvars).
        AWS_REGION: region,
        AWS_DEFAULT_REGION: region,
        AWS_EXECUTION_ENV: `AWS_Lambda_${LAMBDA_RUNTIME}`,
        AWS_LAMBDA_FUNCTION_NAME: physicalName,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memoryMb),
        AWS_LAMBDA_FUNCTION_VERSION: "$LATEST",
        AWS_LAMBDA_INITIALIZATION_TYPE: "on-demand",
        AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${physicalName}`,
        // Each function signs with its own key id, as each has its own role on AWS (clients.ts localAccessKeyId).
        AWS_ACCESS_KEY_ID: localAccessKeyId(spec.name),
        AWS_SECRET_ACCESS_KEY: "local",
        AWS_SESSION_TOKEN: "local",
        LAMBDA_TASK_ROOT: REPO_ROOT,
        TZ: ":UTC",
        ...(process.env.HOME ? { HOME: process.env.HOME } : {}),
        // Lambda runs nodejs22.x; on an older local Node the SDK would print a support warning per function.
        ...(Number(process.versions.node.split(".")[0]) < 22 ? { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" } : {}),
      };
      hosts.set(
        spec.name,
        new FunctionHost({
          name: spec.name,
          source: sources[spec.name],
          env,
          timeoutMs: timeoutFor(spec.name),
          memoryMb,
          region,
          accountId,
          logger,
          stats: stats.functions[spec.name],
          onEmf: (r) => stats.emf.push(r),
        }),
      );
    }

    // 5. Routes from the route table, then the gateway accepts connections.
    const routes = new Map<string, { twoWay: boolean; invoke: Invoke<WebSocketResult> }>();
    for (const spec of specs) {
      const h = hosts.get(spec.name)!;
      if (spec.routeKey) routes.set(spec.routeKey, { twoWay: spec.twoWay, invoke: (e, id) => h.invoke<WebSocketResult>(e, id) });
    }
    // The delivery queue's event source mapping invokes `deliver` in its own worker, as the gateway
    // invokes the route functions (local/functions.ts): an invocation that fails, crashes or times
    // out fails its batch, which the queue delivers again after its visibility timeout.
    const deliverHost = hosts.get("deliver");
    if (sqs && deliverHost && deliveryQueueUrl) {
      let invocation = 0;
      mapping = startEventSourceMapping({
        queueUrl: deliveryQueueUrl,
        queueArn: sqs.queueArn(queueName),
        region,
        endpoint: sqs.endpoint,
        batchSize: 1,
        maximumConcurrency: settings.deliveryWorkerConcurrency,
        functionResponseTypes: ["ReportBatchItemFailures"],
        logger,
        handler: async (event) => {
          invocation += 1;
          const outcome = await deliverHost.invoke<unknown>(event, `esm-${Date.now().toString(36)}-${invocation}`);
          if (!outcome.ok) throw new Error(`${outcome.error.name}: ${outcome.error.message}`);
          return outcome.result;
        },
      });
    }
    const authorizerHost = hosts.get("authorizer");
    gateway.mount({
      apiId,
      routes,
      authorizer: authorizerHost
        ? { invoke: (e, id) => authorizerHost.invoke<AuthorizerResult>(e, id), identityQueryParam: TOKEN_QUERY_PARAM }
        : undefined,
    });
    if (options.warm) {
      await Promise.all(
        [...hosts.values()].map(async (h) => {
          const err = await h.warm();
          if (err) logger({ level: "error", source: "runtime", function: h.name, message: `cold start failed: ${err.message}` });
        }),
      );
    }

    const webUrl = `http://${base}/`;
    const g = gateway;
    let stopped: Promise<void> | undefined;
    logger({
      level: "info",
      source: "runtime",
      message: `gateway on ${endpoint} (${specs.length} functions${options.serialized ? ", serialized" : ""})`,
    });
    return {
      endpoint,
      managementEndpoint,
      webUrl,
      port,
      stage,
      apiId,
      region,
      dynamodbEndpoint,
      tableNames,
      settings,
      stats,
      mintToken: (userId, username, ttlSeconds, access) => mintLocalToken(secret, { userId, username, ttlSeconds, ...access }),
      connectionIds: () => g.connectionIds(),
      sink: new LocalSink(g, { keepFrames: options.sinkKeepsFrames ?? false }),
      // The stack's output names (index.ts), plus the local-only webUrl and dynamodbEndpoint.
      outputs: () => ({
        endpoint,
        managementEndpoint,
        apiId,
        stage,
        connectionsTable: tableNames.connections,
        roomsTable: tableNames.rooms,
        messagesTable: tableNames.messages,
        // Numbers, as `pulumi stack output --json` prints the stack's (index.ts): push validates with them.
        maxMessageBytes: settings.maxMessageBytes,
        messageRetentionHours: settings.messageRetentionHours,
        webUrl,
        dynamodbEndpoint,
        // The stack's deliveryQueueUrl and deliveryDlqUrl (issue 17), and the local-only sqsEndpoint.
        ...(deliveryQueueUrl && sqs ? { deliveryQueueUrl, deliveryDlqUrl: sqs.queueUrl(dlqName), sqsEndpoint: sqs.endpoint } : {}),
      }),
      metricTotal: (metric, fn) => stats.emf.filter((r) => !fn || r.function === fn).reduce((sum, r) => sum + (r.values[metric] ?? 0), 0),
      resetStats: () => {
        stats.emf.length = 0;
        for (const f of Object.values(stats.functions)) {
          f.invocations = f.errors = f.timeouts = f.crashes = f.coldStarts = 0;
          f.initMs.length = 0;
          f.durationsMs.length = 0;
        }
        Object.assign(managementStats, emptyManagementStats());
      },
      stop: () => (stopped ??= stopAll()),
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** The authorizer's settings: the local HS256 secret, or an identity provider's keys in OIDC mode. */
function authSettings(o: SettingsOverrides, secret: string): DeploymentSettings["auth"] {
  if ((o.authMode ?? "shared-secret") === "shared-secret") {
    return { mode: "shared-secret", issuer: LOCAL_TOKEN_ISSUER, audience: LOCAL_TOKEN_AUDIENCE, sharedSecret: secret };
  }
  if (!o.oidc) throw new Error('settings.authMode "oidc" needs settings.oidc: { issuer, audience, jwksUrl }');
  return { mode: "oidc", issuer: o.oidc.issuer, audience: o.oidc.audience, jwksUrl: o.oidc.jwksUrl };
}

/** Where each function's worker loads its code from. */
async function functionSources(
  names: readonly FunctionName[],
  options: LocalRuntimeOptions,
): Promise<Record<FunctionName, FunctionSource>> {
  const tsconfig = path.join(REPO_ROOT, "tsconfig.json");
  const out = {} as Record<FunctionName, FunctionSource>;
  let bundled: string | undefined;
  const serialized = options.serialized ? await serializeFactories(names, options.buildDir ?? path.join(".local", "build")) : undefined;
  for (const name of names) {
    const override = options.functionOverrides?.[name];
    if (override) {
      const modulePath = path.resolve(override);
      if (!fs.existsSync(modulePath)) throw new Error(`functionOverrides.${name}: ${modulePath} does not exist`);
      out[name] = { kind: "module", modulePath, tsconfig };
    } else if (serialized) {
      out[name] = { kind: "serialized", modulePath: serialized[name], exportName: "handler" };
    } else {
      bundled ??= await bundleHandlers(HANDLERS_ENTRY, path.join(REPO_ROOT, ".local", "build"));
      out[name] = { kind: "bundle", modulePath: bundled, exportName: "FACTORIES" };
    }
  }
  return out;
}

/**
 * Writes the module `aws.lambda.CallbackFunction` would upload for each function: the factory
 * serialized by Pulumi's closure serializer, called once at load (`isFactoryFunction`).
 */
export async function serializeFactories(names: readonly FunctionName[], buildDir: string): Promise<Record<FunctionName, string>> {
  const pulumi = await import("@pulumi/pulumi");
  const handlers = (await import(HANDLERS_ENTRY)) as { FACTORIES: Record<FunctionName, () => unknown> };
  const out = {} as Record<FunctionName, string>;
  for (const name of names) {
    functionSpec(name); // throws on a name the route table does not know
    const factory = handlers.FACTORIES[name];
    if (typeof factory !== "function") throw new Error(`handlers/index.ts FACTORIES has no ${name}`);
    const serialized = await pulumi.runtime.serializeFunction(factory, { isFactoryFunction: true, exportName: "handler" });
    const dir = path.resolve(buildDir, name);
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, "index.js");
    fs.writeFileSync(file, serialized.text);
    out[name] = file;
  }
  return out;
}

/**
 * Creates the delivery queue and its dead-letter queue on the local SQS with the stack's settings
 * (the values declared once in handlers/lib/deliveries.ts, which infra/deliveryQueue.ts uses too): both
 * FIFO, SSE (SQS-managed keys), redrive after DELIVERY_MAX_RECEIVE_COUNT receives; the visibility timeout
 * (6 x the worker's timeout, AWS's advice for an SQS event source) and the mapping (batch size 1,
 * ReportBatchItemFailures, maximumConcurrency = deliveryWorkerConcurrency) are set by the caller.
 */
async function createDeliveryQueues(sqs: LocalSqs, queueName: string, dlqName: string, visibilitySeconds: number): Promise<string> {
  const client = localSqsClient(sqs.endpoint, sqs.region, { accessKeyId: "localRuntime" });
  try {
    await client.send(new CreateQueueCommand({ QueueName: dlqName, Attributes: { FifoQueue: "true", SqsManagedSseEnabled: "true" } }));
    const out = await client.send(
      new CreateQueueCommand({
        QueueName: queueName,
        Attributes: {
          FifoQueue: "true",
          SqsManagedSseEnabled: "true",
          VisibilityTimeout: String(visibilitySeconds),
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: sqs.queueArn(dlqName), maxReceiveCount: DELIVERY_MAX_RECEIVE_COUNT }),
        },
      }),
    );
    if (!out.QueueUrl) throw new Error(`CreateQueue ${queueName} returned no QueueUrl`);
    return out.QueueUrl;
  } finally {
    client.destroy();
  }
}
