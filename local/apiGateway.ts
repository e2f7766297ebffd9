/**
 * Pure pieces of API Gateway's WebSocket behaviour that the local gateway reproduces: identifiers,
 * the request time format, route selection, the authorizer policy decision and the error frames.
 * Kept free of I/O so each rule has a plain unit test (tests/local/apiGateway.test.ts).
 */
import { createHash, randomBytes } from "node:crypto";
import type { AuthorizerResult, PolicyDocument } from "../handlers/events";

/** 128 KB: maximum message payload (apigateway-execution-service-websocket-limits-table). */
export const MAX_MESSAGE_BYTES = 128 * 1024;
/** Idle connection timeout: 10 minutes (same limits table). */
export const IDLE_TIMEOUT_MS = 10 * 60 * 1000;
/** Connection duration for WebSocket API: 2 hours (same limits table). */
export const MAX_DURATION_MS = 2 * 60 * 60 * 1000;
/** Integration timeout: 29 seconds for WebSocket APIs (limits table); a Lambda timeout can only shorten it. */
export const INTEGRATION_TIMEOUT_MS = 29_000;

/**
 * Close codes API Gateway uses. 1003: binary frames are rejected (websocket-api-develop-binary-media-types).
 * 1009: message over 128 KB (limits table). 1001 "Going away": what clients observe when the idle
 * timeout or the 2-hour limit ends a connection (not spelled out in the guide; widely reported).
 */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  unsupportedData: 1003,
  noStatus: 1005,
  abnormal: 1006,
  tooBig: 1009,
} as const;

/**
 * Identifiers in the service's format: 16 characters of URL-safe base64 ending in '=', as in the
 * developer guide's `L0SM9cOFvHcCIhw=` or `JC1dgf9yoAMCK-g=` (11 random bytes give 15 characters plus one pad).
 * Used for connectionId, requestId/extendedRequestId and messageId.
 */
export function gatewayId(): string {
  return `${randomBytes(11).toString("base64url")}=`;
}

/** An API id as the service makes them: 10 lowercase letters and digits. */
export function apiIdFrom(seed?: string): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = seed ? createHash("sha256").update(seed).digest() : randomBytes(10);
  let id = "";
  for (let i = 0; i < 10; i++) id += alphabet[bytes[i] % alphabet.length];
  return id;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** `requestTime` in Common Log Format as API Gateway writes it: `25/Nov/2026:22:05:00 +0000`. */
export function clfTime(epochMs: number): string {
  const d = new Date(epochMs);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(
    d.getUTCSeconds(),
  )} +0000`;
}

/**
 * Evaluates a route selection expression of the form `$request.body.<path>` on a message body.
 * Returns undefined when the body is not JSON or the path does not resolve to a string or number,
 * which API Gateway treats as "no match" and sends to `$default` (websocket-api-develop-routes).
 */
export function selectRouteValue(expression: string, body: string): string | undefined {
  const prefix = "$request.body.";
  if (!expression.startsWith(prefix)) throw new Error(`unsupported route selection expression ${expression}`);
  const path = expression.slice(prefix.length).split(".");
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return undefined;
  }
  for (const key of path) {
    if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return undefined;
}

/**
 * The route key a message goes to: the selected value if a route has that key, else `$default`
 * if it exists, else undefined (the caller sends the Forbidden frame). `$connect` and `$disconnect`
 * can never be selected by a message.
 */
export function routeFor(expression: string, body: string, routeKeys: ReadonlySet<string>): string | undefined {
  const value = selectRouteValue(expression, body);
  if (value !== undefined && value !== "$connect" && value !== "$disconnect" && value !== "$default" && routeKeys.has(value)) {
    return value;
  }
  return routeKeys.has("$default") ? "$default" : undefined;
}

/** `arn:aws:execute-api:*:*:api/stage/...` pattern match with `*` and `?` wildcards, as IAM evaluates it. */
export function arnMatches(pattern: string, arn: string): boolean {
  const re = new RegExp(
    "^" +
      pattern
        .split("")
        .map((c) => (c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.+^${}()|[\]\\]/g, "\\$&")))
        .join("") +
      "$",
  );
  return re.test(arn);
}

function actionMatches(action: string | readonly string[], wanted: string): boolean {
  const list = typeof action === "string" ? [action] : action;
  return list.some((a) => arnMatches(a.toLowerCase(), wanted.toLowerCase()));
}

function resourceMatches(resource: string | readonly string[], arn: string): boolean {
  const list = typeof resource === "string" ? [resource] : resource;
  return list.some((r) => arnMatches(r, arn));
}

/**
 * Whether an authorizer's policy allows `execute-api:Invoke` on the `$connect` method ARN:
 * an explicit Deny wins, then an Allow is required (IAM evaluation logic).
 */
export function policyAllows(policy: PolicyDocument | undefined, methodArn: string): boolean {
  if (!policy || !Array.isArray(policy.Statement)) return false;
  const applies = (s: PolicyDocument["Statement"][number]) =>
    actionMatches(s.Action, "execute-api:Invoke") && resourceMatches(s.Resource, methodArn);
  if (policy.Statement.some((s) => s.Effect === "Deny" && applies(s))) return false;
  return policy.Statement.some((s) => s.Effect === "Allow" && applies(s));
}

/** Context values API Gateway passes on: strings, numbers and booleans only (apigateway-lambda-authorizer-output). */
export function authorizerContext(result: AuthorizerResult, integrationLatency: number): Record<string, string | number | boolean> {
  const context: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(result.context ?? {})) {
    if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") context[k] = v;
  }
  return { ...context, principalId: result.principalId, integrationLatency };
}

/** The frame a client receives when no route matches and there is no `$default` (websocket-api-develop-routes). */
export function forbiddenFrame(connectionId: string, requestId: string): string {
  return JSON.stringify({ message: "Forbidden", connectionId, requestId });
}

/** The frame a client receives when the integration fails or times out. */
export function internalErrorFrame(connectionId: string, requestId: string): string {
  return JSON.stringify({ message: "Internal server error", connectionId, requestId });
}

/** Header maps in the proxy event shape: original casing, last value wins in `headers`. */
export function headerMaps(rawHeaders: readonly string[]): {
  headers: Record<string, string>;
  multiValueHeaders: Record<string, string[]>;
} {
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    const value = rawHeaders[i + 1];
    headers[name] = value;
    multiValueHeaders[name] = [...(multiValueHeaders[name] ?? []), value];
  }
  return { headers, multiValueHeaders };
}

/** Query maps in the proxy event shape, or undefined when there is no query string (the service omits them). */
export function queryMaps(
  search: URLSearchParams,
): { queryStringParameters: Record<string, string>; multiValueQueryStringParameters: Record<string, string[]> } | undefined {
  const single: Record<string, string> = {};
  const multi: Record<string, string[]> = {};
  let any = false;
  for (const [k, v] of search) {
    any = true;
    single[k] = v;
    multi[k] = [...(multi[k] ?? []), v];
  }
  return any ? { queryStringParameters: single, multiValueQueryStringParameters: multi } : undefined;
}
