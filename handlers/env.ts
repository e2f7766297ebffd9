/**
 * The environment contract between the stack, the local runtime and the handlers.
 *
 * `functionEnvironment()` is the one definition of the variables a function receives: the stack
 * calls it (with resolved Outputs) for each CallbackFunction, and the local runtime calls it for
 * each function's isolated worker. `readHandlerConfig()` is what a handler factory calls at cold
 * start to parse and validate them.
 */
import { namedError } from "./lib/errors";
import type { FunctionSpec } from "./routes";
import { HANDLER_SETTINGS, SETTING_NAMES, type SettingSpec, type SettingValues } from "./settings";
import { TABLES, TABLE_NAMES, type TableName } from "./tables";

export type AuthMode = "shared-secret" | "oidc";
export type LogLevel = SettingValues["logLevel"];

/**
 * Everything a deployment decides about the functions' behaviour (all plain values). The behaviour
 * settings (maxMessageBytes, logLevel, ...) are declared in settings.ts; one left out is left out of
 * the environment, and the function uses its declared default.
 */
export interface DeploymentSettings extends Partial<SettingValues> {
  /** Physical table names. */
  readonly tableNames: Readonly<Record<TableName, string>>;
  /** `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}` (or a custom domain / the local runtime). */
  readonly managementEndpoint: string;
  readonly stage: string;
  readonly environment: string;
  readonly metricsNamespace: string;
  readonly auth: {
    readonly mode: AuthMode;
    readonly issuer?: string;
    readonly audience?: string;
    readonly jwksUrl?: string;
    /** Secrets Manager ARN of the HS256 secret (deployed, shared-secret mode). */
    readonly secretArn?: string;
    /** The HS256 secret itself: only the local runtime and tests pass it this way. */
    readonly sharedSecret?: string;
  };
  /** Browser origins allowed to connect; empty = any (non-browser clients send no Origin). */
  readonly allowedOrigins: readonly string[];
  /** Only the local runtime sets this: DynamoDB Local's URL. */
  readonly dynamodbEndpoint?: string;
  /**
   * The delivery queue's URL (issue 17), given to the functions that may broadcast to a large room
   * (routes.ts enqueuesDeliveries; absent, they post to every room themselves, as before) and to the
   * `deliver` worker (it makes a job it stopped visible again at once: takesDeliveryQueueUrl).
   */
  readonly deliveryQueueUrl?: string;
  /** Only the local runtime sets this: the SQS emulator's URL (local/sqs.ts). */
  readonly sqsEndpoint?: string;
}

/** The variables that are not behaviour settings (those name theirs in settings.ts). */
export const ENV = {
  managementEndpoint: "MANAGEMENT_ENDPOINT",
  stage: "STAGE",
  environment: "CHAT_ENVIRONMENT",
  metricsNamespace: "METRICS_NAMESPACE",
  authMode: "AUTH_MODE",
  authIssuer: "AUTH_ISSUER",
  authAudience: "AUTH_AUDIENCE",
  authJwksUrl: "AUTH_JWKS_URL",
  authSecretArn: "AUTH_SECRET_ARN",
  authSharedSecret: "AUTH_SHARED_SECRET",
  allowedOrigins: "ALLOWED_ORIGINS",
  dynamodbEndpoint: "DYNAMODB_ENDPOINT",
  deliveryQueueUrl: "DELIVERY_QUEUE_URL",
  sqsEndpoint: "SQS_ENDPOINT",
} as const;

/** The environment variables a function receives. Functions get only what they use. */
export function functionEnvironment(spec: FunctionSpec, s: DeploymentSettings): Record<string, string> {
  const env: Record<string, string> = {
    [ENV.stage]: s.stage,
    [ENV.environment]: s.environment,
    [ENV.metricsNamespace]: s.metricsNamespace,
  };
  for (const name of SETTING_NAMES) {
    const setting: SettingSpec = HANDLER_SETTINGS[name];
    const value = s[name];
    if (setting.receivers === "data" && spec.tables.length === 0) continue;
    if (value === undefined || (setting.omitDefault === true && value === setting.defaultValue)) continue;
    env[setting.env] = String(value);
  }
  for (const access of spec.tables) env[TABLES[access.table].envVar] = s.tableNames[access.table];
  if (spec.manageConnections.length > 0) env[ENV.managementEndpoint] = s.managementEndpoint;
  if (spec.name === "authorizer") {
    env[ENV.authMode] = s.auth.mode;
    if (s.auth.issuer) env[ENV.authIssuer] = s.auth.issuer;
    if (s.auth.audience) env[ENV.authAudience] = s.auth.audience;
    if (s.auth.jwksUrl) env[ENV.authJwksUrl] = s.auth.jwksUrl;
    if (s.auth.secretArn) env[ENV.authSecretArn] = s.auth.secretArn;
    if (s.auth.sharedSecret) env[ENV.authSharedSecret] = s.auth.sharedSecret;
    env[ENV.allowedOrigins] = s.allowedOrigins.join(",");
  }
  if (s.dynamodbEndpoint && spec.tables.length > 0) env[ENV.dynamodbEndpoint] = s.dynamodbEndpoint;
  if (takesDeliveryQueueUrl(spec) && s.deliveryQueueUrl) {
    env[ENV.deliveryQueueUrl] = s.deliveryQueueUrl;
    if (s.sqsEndpoint) env[ENV.sqsEndpoint] = s.sqsEndpoint;
  }
  return env;
}

/**
 * Thrown at cold start when the environment is incomplete or invalid: a deployment error, not a
 * client's. A factory, not an `Error` subclass: Pulumi's closure serializer rewrites classes into
 * functions, and a serialized subclass of `Error` loses its message and stack (`super(message)`
 * initialises a different object), so a misconfigured function on AWS would log nothing useful
 * (tests/handlers/serialize.test.ts runs every serialized archive with an empty environment).
 */
export interface ConfigurationError extends Error {
  readonly name: "ConfigurationError";
}

export function configurationError(message: string): ConfigurationError {
  return namedError("ConfigurationError", message) as ConfigurationError;
}

export function isConfigurationError(err: unknown): err is ConfigurationError {
  return err instanceof Error && err.name === "ConfigurationError";
}

export function requireEnv(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (value === undefined || value === "") throw configurationError(`environment variable ${name} is not set`);
  return value;
}

export function intEnv(env: NodeJS.ProcessEnv, name: string, min: number, max: number, fallback?: number): number {
  const raw = env[name];
  if ((raw === undefined || raw === "") && fallback !== undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw configurationError(`environment variable ${name} must be an integer from ${min} to ${max}, got "${raw ?? ""}"`);
  }
  return value;
}

/** Table names a function was given, by logical name (only those in its spec). */
export function tableNamesFromEnv(env: NodeJS.ProcessEnv): Partial<Record<TableName, string>> {
  const names: Partial<Record<TableName, string>> = {};
  for (const t of TABLE_NAMES) {
    const v = env[TABLES[t].envVar];
    if (v) names[t] = v;
  }
  return names;
}

/**
 * The functions given DELIVERY_QUEUE_URL: those that send delivery jobs, and the worker that
 * receives them (deliver.ts: ChangeMessageVisibility of a job it stopped at its time margin).
 */
export function takesDeliveryQueueUrl(spec: Pick<FunctionSpec, "enqueuesDeliveries" | "trigger">): boolean {
  return spec.enqueuesDeliveries || spec.trigger === "deliveryQueue";
}
