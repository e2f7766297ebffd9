/**
 * What every route function shares: reading the environment, building the SDK clients (once per
 * cold start), and wrapping each invocation with its log context, its usage accounting and its
 * EMF line. `createRuntime` is called by a function's factory; nothing here runs at import time.
 */
import type { AuthorizerContext, WebSocketEvent, WebSocketResult, LambdaContextLike, WebSocketHandler } from "../events";
import type { FunctionName } from "../routes";
import type { TableName } from "../tables";
import { createDocumentClient } from "./clients";
import { readHandlerConfig, type HandlerConfig } from "./config";
import { type ConnectionItem, type DataContext, spendUserFrame, touchConnection } from "./data";
import { publishUsage } from "./emf";
import { accessFromContext, canAccess } from "./access";
import { chatError, errorFrame, forbiddenError, internalError, isChatError, type ErrorCode } from "./errors";
import type { Fanout } from "./fanout";
import { CLIENT_MESSAGE_ID_PATTERN, type ServerFrame } from "./frames";
import { parseJsonObject } from "./json";
import { createLogger, type Logger } from "./logger";
import { createUsageScope, emptyUsage, type UsageScope } from "./usage";

/** What every invocation wrapper needs: the function's name, configuration, logger and usage scope. */
export interface InvocationHost {
  readonly name: FunctionName;
  readonly config: HandlerConfig;
  readonly log: Logger;
  readonly usage: UsageScope;
}

export interface Runtime extends InvocationHost, DataContext {
  /** Present when the function posts to `@connections`. */
  readonly fanout?: Fanout;
}

export interface RuntimeNeeds {
  readonly tables: readonly TableName[];
  /** Posts to `@connections`: MANAGEMENT_ENDPOINT is then required (pass managementFanout too). */
  readonly management: boolean;
}

/** Configuration, logger and usage scope of a function (no SDK client). */
export function createHost(name: FunctionName, needs: RuntimeNeeds, env: NodeJS.ProcessEnv = process.env): InvocationHost {
  const config: HandlerConfig = readHandlerConfig(env, name, needs);
  const log = createLogger(config.logLevel, { function: name, stage: config.stage });
  return { name, config, log, usage: createUsageScope() };
}

/** Builds the configuration, logger and clients of a function. Throws ConfigurationError on a bad environment. */
export function createRuntime(
  name: FunctionName,
  needs: RuntimeNeeds,
  fanout?: (rt: Pick<Runtime, "config" | "doc" | "usage">) => Fanout,
  env: NodeJS.ProcessEnv = process.env,
): Runtime {
  const { config, log, usage } = createHost(name, needs, env);
  const doc = createDocumentClient(config, usage);
  return { name, config, log, usage, doc, fanout: fanout?.({ config, doc, usage }) };
}

export function requireFanout(rt: Runtime): Fanout {
  if (!rt.fanout) throw internalError(`${rt.name} was built without a management client`);
  return rt.fanout;
}

/** Runs one invocation inside its own usage scope and publishes its EMF line, whatever happens. */
export async function withInvocation<T>(
  rt: InvocationHost,
  event: { readonly requestContext?: { readonly requestId?: string; readonly connectionId?: string; readonly routeKey?: string } },
  context: LambdaContextLike | undefined,
  fn: (log: Logger) => Promise<T>,
): Promise<T> {
  const rc = event.requestContext;
  const requestId = rc?.requestId ?? context?.awsRequestId ?? "unknown";
  const log = rt.log.child({ requestId, connectionId: rc?.connectionId, routeKey: rc?.routeKey });
  const usage = emptyUsage();
  try {
    return await rt.usage.run(usage, () => fn(log));
  } finally {
    publishUsage(
      rt.config.metricsNamespace,
      {
        function: rt.name,
        stage: rt.config.stage,
        requestId,
        routeKey: rc?.routeKey,
        connectionId: rc?.connectionId,
      },
      usage,
      undefined,
      { perFunction: rt.config.metricsPerFunction === true },
    );
  }
}

/** The body of a MESSAGE event as text (API Gateway base64-encodes binary frames). */
export function bodyText(event: WebSocketEvent): string {
  const body = event.body ?? "";
  return event.isBase64Encoded ? Buffer.from(body, "base64").toString("utf8") : body;
}

export interface MessageRequest {
  readonly event: WebSocketEvent;
  readonly connectionId: string;
  /** The connection as the rate-limit update returned it (user, rooms, current room). */
  readonly connection: ConnectionItem;
  /** The frame as a JSON object, or undefined if the body was not one. */
  readonly frame: Record<string, unknown> | undefined;
  readonly nowMs: number;
  readonly log: Logger;
}

const CLIENT_ERROR_CODES: readonly ErrorCode[] = [
  "BAD_REQUEST",
  "FORBIDDEN",
  "NOT_FOUND",
  "NOT_A_MEMBER",
  "TOO_LARGE",
  "UNKNOWN_TYPE",
  "BAD_JSON",
];

/**
 * A two-way route: rate-limits the frame (one conditional UpdateItem that also returns the
 * connection, then one on the user's budget item), runs the route, and returns its reply frame as the body (API Gateway sends it back
 * through the `$default` route response). Client errors become typed error frames; anything
 * unexpected (a DynamoDB outage, a bug) is logged and answered INTERNAL, so the connection stays
 * usable and the client is never left waiting.
 */
export function messageRoute(
  rt: Runtime,
  handle: (req: MessageRequest) => Promise<ServerFrame | undefined>,
  now: () => number = Date.now,
): WebSocketHandler {
  return (event, context) =>
    withInvocation(rt, event, context, async (log): Promise<WebSocketResult> => {
      const connectionId = event.requestContext?.connectionId;
      const frame = parseJsonObject(bodyText(event));
      const requestType = typeof frame?.type === "string" && frame.type.length <= 64 ? frame.type : undefined;
      const cmid = frame?.clientMessageId;
      const clientMessageId = typeof cmid === "string" && CLIENT_MESSAGE_ID_PATTERN.test(cmid) ? cmid : undefined;
      try {
        if (!connectionId) throw chatError("BAD_REQUEST", "missing connection id");
        const nowMs = now();
        assertTokenLive(event, nowMs);
        const connection = await touchConnection(rt, connectionId, nowMs);
        // The user's budget over all their connections (issue 14): one more conditional UpdateItem.
        await spendUserFrame(rt, connection.userId, nowMs);
        const reply = await handle({ event, connectionId, connection, frame, nowMs, log: log.child({ userId: connection.userId }) });
        return reply === undefined ? { statusCode: 200 } : { statusCode: 200, body: JSON.stringify(reply) };
      } catch (err) {
        if (isChatError(err)) {
          if (err.code === "RATE_LIMITED") rt.usage.count("RateLimited");
          else if (CLIENT_ERROR_CODES.includes(err.code)) rt.usage.count("ClientErrors");
          log.info("frame rejected", { code: err.code, requestType });
          const body = JSON.stringify(errorFrame(err.code, err.message, requestType, clientMessageId, err.roomId));
          // The token has expired: the answer goes out through `@connections`, then the connection
          // is closed (code 1000; its `$disconnect` removes its data). If the close fails, the
          // answer is the route's reply as for any other error, and the next frame tries again.
          if (err.code === "TOKEN_EXPIRED" && connectionId && rt.fanout && (await rt.fanout.close(connectionId, log, body)) !== "failed") {
            return { statusCode: 200 };
          }
          return { statusCode: 200, body };
        }
        log.error("route failed", { requestType }, err);
        return {
          statusCode: 200,
          body: JSON.stringify(errorFrame("INTERNAL", "internal error; the request may be retried", requestType, clientMessageId)),
        };
      }
    });
}

/**
 * Leeway after the token's `exp`, as the authorizer's (authorizer.ts CLOCK_TOLERANCE_SECONDS,
 * kept equal by tests/handlers/units.test.ts): a token the authorizer would still accept is not
 * refused here, so a client reconnecting with it is not refused in a loop.
 */
export const TOKEN_EXPIRY_LEEWAY_SECONDS = 5;

/**
 * The epoch second from which a connection's token no longer counts (`exp` + leeway), or undefined
 * when the authorizer passed no `exp` (an older authorizer: the connection is not limited).
 */
export function tokenDeadline(authorizer: AuthorizerContext | undefined): number | undefined {
  const exp = Number(authorizer?.exp);
  return Number.isFinite(exp) && exp > 0 ? exp + TOKEN_EXPIRY_LEEWAY_SECONDS : undefined;
}

/**
 * A connection does not outlive its token (API Gateway authorizes the handshake only, so this is
 * the API's own rule): its items expire at the token's deadline (connect.ts), so nothing reaches it
 * afterwards, and every frame from then on is refused with TOKEN_EXPIRED before anything is read or
 * written; messageRoute then closes the connection (docs/protocol.md "Token expiry"). Judged in
 * whole seconds as the authorizer judges `exp`, so a token it accepts is never refused here.
 */
export function assertTokenLive(event: WebSocketEvent, nowMs: number): void {
  const deadline = tokenDeadline(event.requestContext?.authorizer);
  if (deadline === undefined) return;
  const exp = deadline - TOKEN_EXPIRY_LEEWAY_SECONDS;
  if (Math.floor(nowMs / 1000) >= deadline) {
    throw chatError(
      "TOKEN_EXPIRED",
      `the token of this connection expired at ${new Date(exp * 1000).toISOString()}; reconnect with a new token`,
    );
  }
}

/** Throws BAD_JSON when the body was not a JSON object. */
export function requireFrame(req: MessageRequest): Record<string, unknown> {
  if (!req.frame) throw chatError("BAD_JSON", "the frame is not a JSON object");
  return req.frame;
}

/**
 * Throws FORBIDDEN unless the connection's token grants the room (its `rooms`/`moderates` claims as
 * the authorizer passed them, or the deployment's roomAccess without the claim: access.ts).
 * Checked before membership: FORBIDDEN (not granted) comes before NOT_A_MEMBER (granted, not joined).
 */
export function requireAccess(rt: Pick<Runtime, "config">, event: WebSocketEvent, roomId: string): void {
  if (!canAccess(accessFromContext(event.requestContext?.authorizer), rt.config.roomAccess, roomId)) throw forbiddenError(roomId);
}

/** Throws NOT_A_MEMBER unless the connection has joined the room. */
export function requireMember(connection: ConnectionItem, roomId: string): void {
  if (!connection.rooms?.has(roomId)) throw chatError("NOT_A_MEMBER", `this connection has not joined room ${roomId}`);
}
