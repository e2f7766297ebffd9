/**
 * Parses a function's environment (handlers/env.ts is the contract) once, at cold start.
 * A missing or malformed variable is a deployment error: it throws ConfigurationError so the
 * function fails loudly on its first invocation instead of misbehaving for clients.
 *
 * Module scope holds only function declarations (serialized by value by CallbackFunction).
 */
import { configurationError, ENV, intEnv, requireEnv, type AuthMode, type LogLevel } from "../env";
import { isAccessClaimProblem, parsePatternList, type RoomAccessMode } from "./access";
import { DEFAULT_METRICS_NAMESPACE } from "../metrics";
import { HANDLER_SETTINGS, type SettingName, type SettingSpec, type SettingValues } from "../settings";
import { TABLES, TABLE_NAMES, type TableName } from "../tables";

export interface HandlerConfig {
  readonly functionName: string;
  /** Physical table names this function was given (only those its route declares). */
  readonly tables: Readonly<Partial<Record<TableName, string>>>;
  readonly managementEndpoint?: string;
  readonly stage: string;
  readonly environment: string;
  readonly messageRetentionHours: number;
  readonly maxMessageBytes: number;
  readonly rateLimitPerMinute: number;
  /** Frames per minute of one user over all connections; 0 = 4 x rateLimitPerMinute (data.ts userFrameLimit). */
  readonly userRateLimitPerMinute: number;
  /** Handshakes per minute of one user; one over it is refused at $connect. */
  readonly userConnectsPerMinute: number;
  readonly fanoutConcurrency: number;
  /** Rooms a token without the `rooms` claim may use (access.ts canAccess). */
  readonly roomAccess: RoomAccessMode;
  /** Least seconds between two fan-outs of a user's typing (or shared read position) in one conversation (signals.ts). */
  readonly typingIntervalSeconds: number;
  /** Rooms with more users get no typing nor shared read positions; 0 = none. */
  readonly typingMaxRoomUsers: number;
  /** Comma-separated room patterns (access.ts) whose members see each other's read positions; "" = none (lib/reads.ts). */
  readonly readReceiptRooms: string;
  /** Rooms with more users are delivered by the workers and announce no joined/left (lib/deliveries.ts). */
  readonly largeRoomUsers: number;
  /** Users per shard of a room's membership (data.ts). */
  readonly roomShardSize: number;
  /** The delivery queue's maximumConcurrency; each worker posts at deliveryPostsPerSecond / this. */
  readonly deliveryWorkerConcurrency: number;
  /** Posts per second of all delivery workers together. */
  readonly deliveryPostsPerSecond: number;
  readonly logLevel: LogLevel;
  readonly metricsNamespace: string;
  /** EMF metrics also under [Stage, Function] (METRICS_PER_FUNCTION; handlers/metrics.ts metricDimensionSets). Absent: [Stage] only. */
  readonly metricsPerFunction?: boolean;
  readonly tracing: boolean;
  /** DynamoDB Local's URL; set by the local runtime only. */
  readonly dynamodbEndpoint?: string;
  /**
   * Optional Limit on each page of a room-partition Query (ROOM_QUERY_PAGE_SIZE). Unset in
   * production: DynamoDB then pages at 1 MB. Tests set it small to exercise pagination.
   */
  readonly roomQueryPageSize?: number;
  readonly region: string;
}

export interface AuthConfig {
  readonly mode: AuthMode;
  readonly issuer?: string;
  readonly audience?: string;
  readonly jwksUrl?: string;
  readonly secretArn?: string;
  readonly sharedSecret?: string;
  readonly allowedOrigins: readonly string[];
}

/** API Gateway's WebSocket message limit: 128 KB (AWS-FACTS: Limits; PayloadTooLargeException above). */
export const MAX_WEBSOCKET_MESSAGE_BYTES = 128 * 1024;

/** Extra, optional variable (additive to handlers/env.ts ENV): Limit per room-partition Query page. */
export const ROOM_QUERY_PAGE_SIZE_ENV = "ROOM_QUERY_PAGE_SIZE";

function optionalEnv(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === "" ? undefined : v.trim();
}

/**
 * One behaviour setting, parsed against its declaration (settings.ts): the range and default the
 * stack validates with, so a function accepts exactly what a stack may deploy.
 */
export function readSetting<K extends SettingName>(env: NodeJS.ProcessEnv, name: K): SettingValues[K] {
  const spec: SettingSpec = HANDLER_SETTINGS[name];
  const raw = optionalEnv(env, spec.env);
  if (spec.type === "integer") return intEnv(env, spec.env, spec.min, spec.max, spec.defaultValue) as SettingValues[K];
  if (spec.type === "boolean") return (raw === undefined ? spec.defaultValue : parseBoolean(spec.env, raw)) as SettingValues[K];
  if (raw === undefined) return spec.defaultValue as SettingValues[K];
  if (spec.type === "patterns") {
    const parsed = parsePatternList(spec.configKey, raw);
    if (isAccessClaimProblem(parsed)) throw configurationError(`environment variable ${spec.env}: ${parsed.problem}, got "${raw}"`);
    return parsed.join(",") as SettingValues[K];
  }
  const v = raw.toLowerCase();
  if (!spec.values.includes(v)) {
    const list =
      spec.values.length > 1 ? `${spec.values.slice(0, -1).join(", ")} or ${spec.values[spec.values.length - 1]}` : spec.values.join("");
    throw configurationError(`environment variable ${spec.env} must be ${list}, got "${raw}"`);
  }
  return v as SettingValues[K];
}

function parseBoolean(name: string, raw: string | undefined): boolean {
  if (raw === undefined || raw === "" || raw === "false" || raw === "0") return false;
  if (raw === "true" || raw === "1") return true;
  throw configurationError(`environment variable ${name} must be true or false, got "${raw}"`);
}

function parseUrl(name: string, raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw configurationError(`environment variable ${name} is not a URL: "${raw}"`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw configurationError(`environment variable ${name} must be an http(s) URL, got "${raw}"`);
  }
  return raw.replace(/\/+$/, "");
}

/**
 * Reads the configuration of a route function. `needs` lists the tables the function cannot work
 * without and whether it posts to `@connections`, so a stack that forgot a variable fails at cold start.
 */
export function readHandlerConfig(
  env: NodeJS.ProcessEnv,
  functionName: string,
  needs: { readonly tables: readonly TableName[]; readonly management: boolean },
): HandlerConfig {
  const tables: Partial<Record<TableName, string>> = {};
  for (const t of TABLE_NAMES) {
    const v = optionalEnv(env, TABLES[t].envVar);
    if (v !== undefined) tables[t] = v;
  }
  for (const t of needs.tables) requireEnv(env, TABLES[t].envVar);
  const managementRaw = optionalEnv(env, ENV.managementEndpoint);
  if (needs.management && managementRaw === undefined) requireEnv(env, ENV.managementEndpoint);
  const dynamoRaw = optionalEnv(env, ENV.dynamodbEndpoint);
  const pageRaw = optionalEnv(env, ROOM_QUERY_PAGE_SIZE_ENV);
  return {
    functionName,
    tables,
    managementEndpoint: managementRaw === undefined ? undefined : parseUrl(ENV.managementEndpoint, managementRaw),
    stage: optionalEnv(env, ENV.stage) ?? "local",
    environment: optionalEnv(env, ENV.environment) ?? "local",
    messageRetentionHours: readSetting(env, "messageRetentionHours"),
    maxMessageBytes: readSetting(env, "maxMessageBytes"),
    rateLimitPerMinute: readSetting(env, "rateLimitPerMinute"),
    userRateLimitPerMinute: readSetting(env, "userRateLimitPerMinute"),
    userConnectsPerMinute: readSetting(env, "userConnectsPerMinute"),
    fanoutConcurrency: readSetting(env, "fanoutConcurrency"),
    roomAccess: readSetting(env, "roomAccess"),
    typingIntervalSeconds: readSetting(env, "typingIntervalSeconds"),
    typingMaxRoomUsers: readSetting(env, "typingMaxRoomUsers"),
    readReceiptRooms: readSetting(env, "readReceiptRooms"),
    largeRoomUsers: readSetting(env, "largeRoomUsers"),
    roomShardSize: readSetting(env, "roomShardSize"),
    deliveryWorkerConcurrency: readSetting(env, "deliveryWorkerConcurrency"),
    deliveryPostsPerSecond: readSetting(env, "deliveryPostsPerSecond"),
    logLevel: readSetting(env, "logLevel"),
    metricsNamespace: optionalEnv(env, ENV.metricsNamespace) ?? DEFAULT_METRICS_NAMESPACE,
    metricsPerFunction: readSetting(env, "metricsPerFunction"),
    tracing: readSetting(env, "tracing"),
    dynamodbEndpoint: dynamoRaw === undefined ? undefined : parseUrl(ENV.dynamodbEndpoint, dynamoRaw),
    roomQueryPageSize: pageRaw === undefined ? undefined : intEnv(env, ROOM_QUERY_PAGE_SIZE_ENV, 1, 10_000),
    region: optionalEnv(env, "AWS_REGION") ?? optionalEnv(env, "AWS_DEFAULT_REGION") ?? "us-east-1",
  };
}

/** The authorizer's configuration: mode-specific variables are required for that mode only. */
export function readAuthConfig(env: NodeJS.ProcessEnv): AuthConfig {
  const modeRaw = optionalEnv(env, ENV.authMode) ?? "shared-secret";
  if (modeRaw !== "shared-secret" && modeRaw !== "oidc") {
    throw configurationError(`environment variable ${ENV.authMode} must be shared-secret or oidc, got "${modeRaw}"`);
  }
  const issuer = optionalEnv(env, ENV.authIssuer);
  const audience = optionalEnv(env, ENV.authAudience);
  const jwksUrlRaw = optionalEnv(env, ENV.authJwksUrl);
  const secretArn = optionalEnv(env, ENV.authSecretArn);
  const sharedSecret = env[ENV.authSharedSecret] === "" ? undefined : env[ENV.authSharedSecret];
  if (modeRaw === "oidc") {
    // OIDC tokens are only meaningful for one issuer and one audience: both are mandatory.
    requireEnv(env, ENV.authIssuer);
    requireEnv(env, ENV.authAudience);
    requireEnv(env, ENV.authJwksUrl);
  } else if (sharedSecret === undefined && secretArn === undefined) {
    throw configurationError(`shared-secret mode needs ${ENV.authSharedSecret} or ${ENV.authSecretArn}`);
  }
  if (sharedSecret !== undefined && Buffer.byteLength(sharedSecret, "utf8") < 32) {
    // RFC 7518 3.2: an HS256 key must be at least 256 bits.
    throw configurationError(`${ENV.authSharedSecret} must be at least 32 bytes (RFC 7518 section 3.2)`);
  }
  const allowedOrigins = (env[ENV.allowedOrigins] ?? "")
    .split(",")
    .map((o) => o.trim())
    .filter((o) => o !== "");
  return {
    mode: modeRaw,
    issuer,
    audience,
    jwksUrl: jwksUrlRaw === undefined ? undefined : parseUrl(ENV.authJwksUrl, jwksUrlRaw),
    secretArn,
    sharedSecret,
    allowedOrigins,
  };
}
