/**
 * The stack's configuration: declared once here (type, default, description, validation), read
 * once by `loadConfig()` and handed to the components as plain typed values (../shared/STYLE.md:
 * components never call `new pulumi.Config()`).
 *
 * `Pulumi.yaml` declares the same keys under `config:` so `pulumi config` and a new stack show
 * them; tests/infra/config.test.ts checks that the two declarations agree key for key.
 */
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import type { AuthMode } from "../handlers/env";
import { namedError } from "../handlers/lib/errors";
import {
  HANDLER_SETTINGS,
  SETTING_NAMES,
  configType,
  settingProblem,
  type SettingConfigKey,
  type SettingSpec,
  type SettingValuesByConfigKey,
} from "../handlers/settings";
import { deliveryWorkerTimeoutSeconds, MAX_LAMBDA_TIMEOUT_SECONDS } from "../handlers/lib/deliveries";

export type Environment = "dev" | "staging" | "prod";

/** Retention values CloudWatch Logs accepts (PutRetentionPolicy, `retentionInDays`). */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

export interface AlarmThresholds {
  /** Lambda errors as a percentage of invocations, per function and period. */
  readonly lambdaErrorRatePercent: number;
  /** DynamoDB read + write throttle events per table and period. */
  readonly dynamoThrottleEvents: number;
  /** API Gateway `ClientError` (4XX before the integration runs) per period. */
  readonly clientErrors: number;
  /** API Gateway `ExecutionError` + `IntegrationError` (5XX) per period. */
  readonly serverErrors: number;
  /** `RejectedConnects` emitted by the authorizer per period. */
  readonly rejectedConnects: number;
  /** `FailedDeliveries` (non-Gone `@connections` failures after retries) per period. */
  readonly failedDeliveries: number;
  /** The delivery queue's ApproximateAgeOfOldestMessage (seconds, maximum over the period) that alarms. */
  readonly deliveryAgeSeconds: number;
  /** Alarm period in seconds (a multiple of 60: every metric alarmed on has 1-minute resolution). */
  readonly periodSeconds: number;
  /** Consecutive breaching periods before an alarm fires. */
  readonly evaluationPeriods: number;
}

/**
 * The whole validated stack configuration. Plain values only: it decides what exists. The handlers'
 * behaviour settings (maxMessageBytes, logLevel, enableDetailedMonitoring, ...) come from their one
 * declaration, handlers/settings.ts, under their config keys.
 */
export interface StackConfig extends SettingValuesByConfigKey {
  readonly environment: Environment;
  readonly projectName: string;
  /** The Pulumi stack's name. */
  readonly stack: string;
  /** The AWS provider's named profile (`aws:profile`), if the stack sets one. */
  readonly awsProfile?: string;
  /**
   * `<projectName>-<stack>` (the stack name made name-safe, see stackSlug): prefix of every physical
   * name, so any number of stacks deploy side by side in one account and region. Names AWS keeps
   * account-wide (IAM, dashboards) add the region as well.
   */
  readonly resourcePrefix: string;
  /** API Gateway stage name (= environment): the last path segment of the endpoint. */
  readonly stageName: string;
  readonly logRetentionDays: number;
  readonly throttlingBurstLimit: number;
  readonly throttlingRateLimit: number;
  readonly lambdaMemoryMb: number;
  readonly lambdaTimeoutSeconds: number;
  /** Reserved concurrency of each message-handling function; -1 leaves them on the account's unreserved pool. */
  readonly reservedConcurrency: number;
  /** Provisioned concurrency of the `$connect` path (authorizer and connect); 0 = none. */
  readonly provisionedConcurrency: number;
  readonly auth: {
    readonly mode: AuthMode;
    readonly issuer: string;
    readonly audience: string;
    /** Set in oidc mode only. */
    readonly jwksUrl?: string;
  };
  /** Empty: no email subscription. */
  readonly alarmEmail?: string;
  readonly deletionProtection: boolean;
  readonly pointInTimeRecovery: boolean;
  readonly allowedOrigins: readonly string[];
  /** Whether this stack sets API Gateway's account-wide CloudWatch Logs role (one per account and region). */
  readonly manageApiGatewayAccount: boolean;
  /**
   * Timeout of the `deliver` worker in seconds (deliveryWorkerTimeoutSeconds): long enough to post a
   * whole shard at the worker's share of deliveryPostsPerSecond. The delivery queue's visibility
   * timeout is 6 times it (Lambda developer guide, SQS event source mapping).
   */
  readonly deliveryWorkerTimeoutSeconds: number;
  readonly alarms: AlarmThresholds;
}

export type ConfigType = "string" | "boolean" | "integer" | "array";

/** One key of the project config schema (mirrors Pulumi.yaml's `config:` declarations). */
export interface ConfigKeySpec {
  readonly type: ConfigType;
  readonly default: string | number | boolean | readonly string[];
  readonly description: string;
}

/** The config keys of the handlers' settings, derived from their declaration (handlers/settings.ts). */
function settingsSchema(): Record<SettingConfigKey, ConfigKeySpec> {
  const out: Partial<Record<SettingConfigKey, ConfigKeySpec>> = {};
  for (const name of SETTING_NAMES) {
    const s: SettingSpec = HANDLER_SETTINGS[name];
    out[HANDLER_SETTINGS[name].configKey] = { type: configType(s), default: s.defaultValue, description: s.description };
  }
  return out as Record<SettingConfigKey, ConfigKeySpec>;
}

/** Every config key, its type, default (the dev values) and description. */
export const CONFIG_SCHEMA = {
  environment: {
    type: "string",
    default: "dev",
    description:
      "Deployment environment: dev, staging or prod (default: the stack's name when it is one of these, else dev). Also the API Gateway stage name.",
  },
  projectName: {
    type: "string",
    default: "chat",
    description: "First part of every physical resource name, <projectName>-<stack> (lowercase letters, digits, hyphens; 2-20 characters).",
  },
  namePrefix: {
    type: "string",
    default: "",
    description:
      "Overrides the prefix of every physical name (default empty: <projectName>-<stack>); e.g. chat-prod keeps the names a stack not named like its environment had before names followed the stack (lowercase letters, digits, hyphens; 2-37 characters).",
  },
  logRetentionDays: {
    type: "integer",
    default: 7,
    description: "Retention of every log group, in days; one of the values CloudWatch Logs accepts.",
  },
  throttlingBurstLimit: { type: "integer", default: 100, description: "Stage default route burst limit (requests, per route; 0-5000)." },
  throttlingRateLimit: {
    type: "integer",
    default: 50,
    description: "Stage default route steady-state rate limit (requests per second, per route; 0-10000).",
  },
  lambdaMemoryMb: { type: "integer", default: 256, description: "Memory of every function in MB (128-10240)." },
  lambdaTimeoutSeconds: {
    type: "integer",
    default: 10,
    description: "Timeout of every function in seconds (1-29: API Gateway's integration timeout is 29 s).",
  },
  reservedConcurrency: {
    type: "integer",
    default: -1,
    description:
      "Reserved concurrency of each message-handling function (every route but $connect and $disconnect): caps it and guarantees it; -1 = unreserved, else 1-1000 (the stack reserves 14 times it).",
  },
  provisionedConcurrency: {
    type: "integer",
    default: 0,
    description:
      "Provisioned concurrency of the $connect path (authorizer and connect, through a `live` alias): warm instances so handshakes skip cold starts; 0 = none (0-100).",
  },
  authMode: {
    type: "string",
    default: "shared-secret",
    description:
      "shared-secret (HS256 secret generated by the stack, kept in Secrets Manager) or oidc (RS256 tokens verified against authJwksUrl).",
  },
  authIssuer: { type: "string", default: "websocket-chat", description: "Required JWT `iss` claim (an https URL in oidc mode)." },
  authAudience: { type: "string", default: "websocket-chat", description: "Required JWT `aud` claim." },
  authJwksUrl: {
    type: "string",
    default: "",
    description: "JWKS URL of the identity provider (https; required in oidc mode, must be empty otherwise).",
  },
  alarmEmail: { type: "string", default: "", description: "Email address subscribed to the alarm topic; empty for none." },
  deletionProtection: {
    type: "boolean",
    default: false,
    description:
      "Keep data on pulumi destroy: tables (DynamoDB deletion protection), log groups (CloudWatch Logs deletion protection), the HS256 secret (30-day recovery window) and the KMS key, each also Pulumi-protected, so pulumi destroy refuses to run while it is on.",
  },
  pointInTimeRecovery: { type: "boolean", default: false, description: "DynamoDB point-in-time recovery on every table." },
  allowedOrigins: {
    type: "array",
    default: [],
    description: "Browser origins allowed to connect (e.g. https://chat.example.com); empty allows any.",
  },
  manageApiGatewayAccount: {
    type: "boolean",
    default: true,
    description:
      "Make sure API Gateway's account-wide CloudWatch Logs role is set in the region (needed for access logs): creates apigateway-cloudwatch-logs-<region> only if no role is set, never replaces one, never resets it on destroy.",
  },
  alarmLambdaErrorRatePercent: {
    type: "integer",
    default: 5,
    description: "Alarm when a function's errors exceed this percentage of its invocations (1-100).",
  },
  alarmDynamoThrottleEvents: {
    type: "integer",
    default: 10,
    description: "Alarm when a table's read + write throttle events in a period reach this (>= 1).",
  },
  alarmClientErrors: {
    type: "integer",
    default: 100,
    description: "Alarm when API Gateway ClientError (4XX) in a period reaches this (>= 1).",
  },
  alarmServerErrors: {
    type: "integer",
    default: 5,
    description: "Alarm when ExecutionError + IntegrationError (5XX) in a period reach this (>= 1).",
  },
  alarmRejectedConnects: {
    type: "integer",
    default: 50,
    description: "Alarm when the authorizer rejects this many handshakes in a period (>= 1).",
  },
  alarmFailedDeliveries: {
    type: "integer",
    default: 10,
    description: "Alarm when this many deliveries fail (non-Gone errors) in a period (>= 1).",
  },
  alarmDeliveryAgeSeconds: {
    type: "integer",
    default: 300,
    description:
      "Alarm when the oldest message of the delivery queue (large rooms' broadcasts waiting for a worker) is this many seconds old (60-86400).",
  },
  alarmPeriodSeconds: {
    type: "integer",
    default: 300,
    description: "Alarm period in seconds: a multiple of 60 (the alarmed metrics have 1-minute resolution).",
  },
  alarmEvaluationPeriods: { type: "integer", default: 1, description: "Consecutive breaching periods before an alarm fires (1-100)." },
  ...settingsSchema(),
} as const satisfies Record<string, ConfigKeySpec>;

export type ConfigKey = keyof typeof CONFIG_SCHEMA;
export const CONFIG_KEYS = Object.keys(CONFIG_SCHEMA) as ConfigKey[];

/** A config value that cannot be used: names the key and what it accepts. */
export interface ConfigError extends Error {
  readonly name: "ConfigError";
  readonly key: string;
}

/** The project's one error style (handlers/lib/errors.ts): a factory and a guard, no Error subclass. */
export function configError(key: string, message: string): ConfigError {
  return namedError("ConfigError", `config ${key}: ${message}`, { key }) as ConfigError;
}

export function isConfigError(err: unknown): err is ConfigError {
  return err instanceof Error && err.name === "ConfigError";
}

/** Raw config as Pulumi stores it: strings (arrays as JSON), keys without the project prefix. */
export type RawConfig = Readonly<Record<string, string | undefined>>;

const ENVIRONMENTS: readonly Environment[] = ["dev", "staging", "prod"];
const AUTH_MODES: readonly AuthMode[] = ["shared-secret", "oidc"];

class Reader {
  constructor(private readonly raw: RawConfig) {}

  private value(key: ConfigKey): string | undefined {
    const v = this.raw[key];
    return v === undefined || v === "" ? undefined : v.trim();
  }

  string(key: ConfigKey): string {
    const v = this.value(key);
    if (v !== undefined) return v;
    const d = CONFIG_SCHEMA[key].default;
    return typeof d === "string" ? d : String(d);
  }

  oneOf<T extends string>(key: ConfigKey, allowed: readonly T[]): T {
    const v = this.string(key);
    if (!(allowed as readonly string[]).includes(v)) {
      throw configError(key, `"${v}" is not allowed; allowed values: ${allowed.join(", ")}`);
    }
    return v as T;
  }

  boolean(key: ConfigKey): boolean {
    const v = this.value(key);
    if (v === undefined) return CONFIG_SCHEMA[key].default as boolean;
    if (v === "true") return true;
    if (v === "false") return false;
    throw configError(key, `"${v}" is not a boolean; allowed values: true, false`);
  }

  integer(key: ConfigKey, min: number, max: number): number {
    const v = this.value(key);
    const n = v === undefined ? (CONFIG_SCHEMA[key].default as number) : Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw configError(key, `"${v}" is not allowed; allowed values: an integer from ${min} to ${max}`);
    }
    return n;
  }

  integerIn(key: ConfigKey, allowed: readonly number[]): number {
    const v = this.value(key);
    const n = v === undefined ? (CONFIG_SCHEMA[key].default as number) : Number(v);
    if (!allowed.includes(n)) throw configError(key, `"${v}" is not allowed; allowed values: ${allowed.join(", ")}`);
    return n;
  }

  /** A handler setting, validated against its declaration (the range the handlers parse with). */
  setting(spec: SettingSpec): number | boolean | string {
    const key = spec.configKey as ConfigKey;
    if (spec.type === "integer") return this.integer(key, spec.min, spec.max);
    if (spec.type === "boolean") return this.boolean(key);
    if (spec.type === "patterns") return this.patterns(key, spec);
    return this.oneOf(key, spec.values);
  }

  /** A comma-separated list of room patterns (handlers/lib/access.ts syntax), as the handlers parse it. */
  patterns(key: ConfigKey, spec: SettingSpec): string {
    const v = this.value(key);
    const text = v === undefined ? String(CONFIG_SCHEMA[key].default) : v.trim();
    const problem = settingProblem(spec, text);
    if (problem !== undefined) throw configError(key, `"${v}" is not allowed; allowed values: ${problem}`);
    return text;
  }

  stringArray(key: ConfigKey): string[] {
    const v = this.value(key);
    if (v === undefined) return [...(CONFIG_SCHEMA[key].default as readonly string[])];
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      throw configError(
        key,
        `"${v}" is not a JSON array; allowed values: an array of strings (pulumi config set --path '${key}[0]' <value>)`,
      );
    }
    if (!Array.isArray(parsed) || !parsed.every((x): x is string => typeof x === "string")) {
      throw configError(key, `"${v}" is not allowed; allowed values: an array of strings`);
    }
    return parsed;
  }
}

/** Every handler setting under its config key, each validated against its declaration. */
function readSettings(r: Reader): SettingValuesByConfigKey {
  const out: Record<string, number | boolean | string> = {};
  for (const name of SETTING_NAMES) out[HANDLER_SETTINGS[name].configKey] = r.setting(HANDLER_SETTINGS[name]);
  return out as unknown as SettingValuesByConfigKey;
}

const PROJECT_NAME = /^[a-z][a-z0-9-]{1,19}$/;
// Loose on purpose: SNS confirms the address; this only catches an obviously wrong value.
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const ORIGIN = /^https?:\/\/[a-z0-9.-]+(:\d{1,5})?$/i;

function httpsUrl(key: ConfigKey, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw configError(key, `"${value}" is not allowed; allowed values: an https URL`);
  }
  if (url.protocol !== "https:") throw configError(key, `"${value}" is not allowed; allowed values: an https URL`);
  return value;
}

/** Longest stack part of a physical name: keeps `<projectName>-<stack>-authorizer` and its role's autoname within IAM's and Lambda's 64 characters. */
export const MAX_STACK_SLUG = 16;

/**
 * The stack's name as it appears in physical names. Pulumi allows letters, digits, `-`, `_` and `.`
 * in stack names; Lambda, SNS and dashboard names allow no `.`, DynamoDB and KMS no uppercase
 * distinction worth relying on. A name that is already lowercase letters, digits and hyphens within
 * MAX_STACK_SLUG is used as it is (dev -> chat-dev, unchanged for stacks deployed before); any other
 * is lowercased, cleaned, cut and suffixed with 6 hex digits of its SHA-256, so two stacks whose
 * names clean up alike (`feature.x`, `feature-x`) still get different names.
 */
export function stackSlug(stack: string): string {
  if (/^[a-z][a-z0-9-]*$/.test(stack) && stack.length <= MAX_STACK_SLUG && !stack.endsWith("-")) return stack;
  const cleaned =
    stack
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "") || "stack";
  const hash = createHash("sha256").update(stack).digest("hex").slice(0, 6);
  return `${cleaned.slice(0, MAX_STACK_SLUG - 7).replace(/-+$/, "")}-${hash}`;
}

/**
 * API Gateway's request quota of an account in a region: 10,000 a second (burst 5,000), shared by
 * every API there and by every `@connections` call (AWS-FACTS: Limits). deliveryPostsPerSecond is
 * the delivery workers' share of it and may not exceed it. A quota AWS has raised for the account is
 * not visible to the program: see docs/deploy.md, "The delivery queue".
 */
export const ACCOUNT_POSTS_PER_SECOND = 10_000;

// The worker's timeout is derived in handlers/lib/deliveries.ts, where the local runtime reads it too.
export { deliveryWorkerTimeoutSeconds, MAX_LAMBDA_TIMEOUT_SECONDS };

/** The delivery settings' combined constraints (each is in its own range already). */
function validateDelivery(settings: SettingValuesByConfigKey, lambdaTimeoutSeconds: number): number {
  const posts = settings.deliveryPostsPerSecond;
  const workers = settings.deliveryWorkerConcurrency;
  // Above ACCOUNT_POSTS_PER_SECOND: refused by the setting's declared range (handlers/settings.ts).
  if (posts < workers) {
    throw configError(
      "deliveryPostsPerSecond",
      `"${posts}" is not allowed; allowed values: at least deliveryWorkerConcurrency (${workers}): each worker posts deliveryPostsPerSecond / deliveryWorkerConcurrency a second`,
    );
  }
  const timeout = deliveryWorkerTimeoutSeconds({ ...settings, lambdaTimeoutSeconds });
  if (timeout === undefined) {
    throw configError(
      "roomShardSize",
      `"${settings.roomShardSize}" is not allowed with deliveryWorkerConcurrency ${workers} and deliveryPostsPerSecond ${posts}; allowed values: a shard a worker can post within Lambda's ${MAX_LAMBDA_TIMEOUT_SECONDS} s (3 x 2 x roomShardSize x deliveryWorkerConcurrency / deliveryPostsPerSecond <= ${MAX_LAMBDA_TIMEOUT_SECONDS})`,
    );
  }
  return timeout;
}

/**
 * Validates raw config (missing keys take CONFIG_SCHEMA's defaults) for the stack `stack`. Throws
 * ConfigError naming the key and its allowed values for the first bad value, and for a key this
 * program does not know.
 */
export function validateConfig(raw: RawConfig, stack = "dev"): StackConfig {
  for (const key of Object.keys(raw)) {
    if (!(key in CONFIG_SCHEMA)) {
      throw configError(key, `unknown key; allowed keys: ${CONFIG_KEYS.join(", ")}`);
    }
  }
  // A stack named like an environment (dev, staging, prod) is that environment unless its file says otherwise.
  const r = new Reader(
    raw.environment === undefined && (ENVIRONMENTS as readonly string[]).includes(stack) ? { ...raw, environment: stack } : raw,
  );
  const environment = r.oneOf("environment", ENVIRONMENTS);
  const projectName = r.string("projectName");
  if (!PROJECT_NAME.test(projectName)) {
    throw configError(
      "projectName",
      `"${projectName}" is not allowed; allowed values: 2-20 characters, lowercase letters, digits and hyphens, starting with a letter`,
    );
  }

  const namePrefix = r.string("namePrefix");
  // At most 37 characters: `<prefix>-authorizer` and its role's autoname stay within 64 (see MAX_STACK_SLUG).
  if (namePrefix && !/^[a-z][a-z0-9-]{1,36}$/.test(namePrefix)) {
    throw configError(
      "namePrefix",
      `"${namePrefix}" is not allowed; allowed values: empty, or 2-37 characters, lowercase letters, digits and hyphens, starting with a letter`,
    );
  }

  const mode = r.oneOf("authMode", AUTH_MODES);
  const issuer = r.string("authIssuer");
  const audience = r.string("authAudience");
  const jwks = r.string("authJwksUrl");
  if (!issuer) throw configError("authIssuer", "must not be empty");
  if (!audience) throw configError("authAudience", "must not be empty");
  let jwksUrl: string | undefined;
  if (mode === "oidc") {
    if (!jwks) throw configError("authJwksUrl", "is required when authMode is oidc; allowed values: an https URL");
    jwksUrl = httpsUrl("authJwksUrl", jwks);
    httpsUrl("authIssuer", issuer);
  } else if (jwks) {
    throw configError("authJwksUrl", `must be empty when authMode is shared-secret (got "${jwks}")`);
  }

  const alarmEmail = r.string("alarmEmail");
  if (alarmEmail && !EMAIL.test(alarmEmail)) {
    throw configError("alarmEmail", `"${alarmEmail}" is not allowed; allowed values: an email address or empty`);
  }
  const allowedOrigins = r.stringArray("allowedOrigins");
  for (const o of allowedOrigins) {
    if (!ORIGIN.test(o))
      throw configError(
        "allowedOrigins",
        `"${o}" is not allowed; allowed values: origins like https://chat.example.com (scheme, host, optional port; no path)`,
      );
  }

  const reservedConcurrency = r.integer("reservedConcurrency", -1, 1000);
  // 0 would throttle every invocation of the functions (Lambda: reserved concurrency of zero).
  if (reservedConcurrency === 0)
    throw configError("reservedConcurrency", `"0" is not allowed; allowed values: -1 (unreserved) or an integer from 1 to 1000`);
  const periodSeconds = r.integer("alarmPeriodSeconds", 1, 86400);
  // CloudWatch accepts 10 and 30 s periods only for high-resolution metrics; Lambda, DynamoDB and API
  // Gateway metrics and the handlers' EMF metrics have 1-minute resolution, so a shorter period would
  // evaluate mostly empty periods and never fire (AWS-FACTS: Stack lifecycle facts, CloudWatch).
  if (periodSeconds % 60 !== 0) {
    // (60 to 86400 in steps of 60; 1-59 land here too, with this explanation.)
    throw configError(
      "alarmPeriodSeconds",
      `"${periodSeconds}" is not allowed; allowed values: a multiple of 60 from 60 to 86400 (the alarmed metrics have 1-minute resolution)`,
    );
  }

  const settings = readSettings(r);
  // The integration times out at 29 s whatever the function's timeout (AWS-FACTS: Limits).
  const lambdaTimeoutSeconds = r.integer("lambdaTimeoutSeconds", 1, 29);
  const workerTimeout = validateDelivery(settings, lambdaTimeoutSeconds);

  return {
    environment,
    projectName,
    stack,
    resourcePrefix: namePrefix || `${projectName}-${stackSlug(stack)}`,
    stageName: environment,
    ...settings,
    logRetentionDays: r.integerIn("logRetentionDays", LOG_RETENTION_DAYS),
    // Account-level WebSocket throttle: 10,000 rps, burst 5,000 (AWS-FACTS: Limits).
    throttlingBurstLimit: r.integer("throttlingBurstLimit", 0, 5000),
    throttlingRateLimit: r.integer("throttlingRateLimit", 0, 10000),
    lambdaMemoryMb: r.integer("lambdaMemoryMb", 128, 10240),
    lambdaTimeoutSeconds,
    reservedConcurrency,
    provisionedConcurrency: r.integer("provisionedConcurrency", 0, 100),
    auth: { mode, issuer, audience, ...(jwksUrl ? { jwksUrl } : {}) },
    ...(alarmEmail ? { alarmEmail } : {}),
    deletionProtection: r.boolean("deletionProtection"),
    pointInTimeRecovery: r.boolean("pointInTimeRecovery"),
    allowedOrigins,
    manageApiGatewayAccount: r.boolean("manageApiGatewayAccount"),
    deliveryWorkerTimeoutSeconds: workerTimeout,
    alarms: {
      lambdaErrorRatePercent: r.integer("alarmLambdaErrorRatePercent", 1, 100),
      dynamoThrottleEvents: r.integer("alarmDynamoThrottleEvents", 1, 1_000_000),
      clientErrors: r.integer("alarmClientErrors", 1, 1_000_000),
      serverErrors: r.integer("alarmServerErrors", 1, 1_000_000),
      rejectedConnects: r.integer("alarmRejectedConnects", 1, 1_000_000),
      failedDeliveries: r.integer("alarmFailedDeliveries", 1, 1_000_000),
      // At least a minute (the SQS metric's resolution), at most a day: a delivery that old is useless.
      deliveryAgeSeconds: r.integer("alarmDeliveryAgeSeconds", 60, 86400),
      periodSeconds,
      evaluationPeriods: r.integer("alarmEvaluationPeriods", 1, 100),
    },
  };
}

/**
 * Reads the project's config once. Keys set for this project that the program does not know
 * (a typo in a stack file) are rejected rather than silently ignored.
 */
export function loadConfig(): StackConfig {
  const config = new pulumi.Config();
  const raw: Record<string, string | undefined> = {};
  for (const key of CONFIG_KEYS) raw[key] = config.get(key);
  const prefix = `${pulumi.getProject()}:`;
  for (const fullKey of Object.keys(pulumi.runtime.allConfig())) {
    if (fullKey.startsWith(prefix)) {
      const key = fullKey.slice(prefix.length);
      if (!(key in raw)) raw[key] = config.get(key);
    }
  }
  const awsProfile = new pulumi.Config("aws").get("profile");
  return { ...validateConfig(raw, pulumi.getStack()), ...(awsProfile ? { awsProfile } : {}) };
}
