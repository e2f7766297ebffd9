/**
 * The local API Gateway: one HTTP port serving the WebSocket API on `/<stage>`, the `@connections`
 * management API on `/<stage>/@connections/<id>`, a local token endpoint and the web client's files.
 * Every rule it applies is one AWS-FACTS.md lists; docs/local.md has the faithfulness table.
 */
import * as diagnostics from "node:diagnostics_channel";
import * as fs from "node:fs";
import * as http from "node:http";
import type { Duplex } from "node:stream";
import * as path from "node:path";
import { WebSocket, WebSocketServer, type RawData } from "ws";
import type {
  AuthorizerContext,
  AuthorizerEvent,
  AuthorizerResult,
  WebSocketEvent,
  WebSocketRequestContext,
  WebSocketResult,
} from "../handlers/events";
import {
  CLOSE,
  MAX_MESSAGE_BYTES,
  authorizerContext,
  clfTime,
  forbiddenFrame,
  gatewayId,
  headerMaps,
  internalErrorFrame,
  policyAllows,
  queryMaps,
  routeFor,
} from "./apiGateway";
import { isAccessClaimProblem, parsePatternList } from "../handlers/lib/access";
import { USER_ID_PATTERN } from "../handlers/lib/frames";
import type { InvokeOutcome } from "./functions";
import type { LocalTokenAccess } from "./token";
import type { Logger } from "./logger";

/** Management API error types (ApiGatewayManagementApi service model). */
export type ManagementError = "GoneException" | "LimitExceededException" | "PayloadTooLargeException" | "ForbiddenException";

export interface ManagementCall {
  readonly method: "POST" | "GET" | "DELETE";
  readonly connectionId: string;
  /** 1-based sequence number of this call since the gateway started. */
  readonly n: number;
}

/**
 * Every `@connections` request the gateway answers is published on this diagnostics channel
 * (node:diagnostics_channel: nothing is built when nobody subscribes), with the access key id it was
 * signed with: each local function signs with its own (handlers/lib/clients.ts localAccessKeyId),
 * so an observer can attribute every call to its caller (tests/infra/iamSimulation.ts does).
 */
export const MANAGEMENT_CALL_CHANNEL = "websocket-chat:local:@connections";

const managementChannel = diagnostics.channel(MANAGEMENT_CALL_CHANNEL);

export interface ManagementRequestRecord {
  readonly method: string;
  readonly stage: string;
  readonly connectionId: string;
  /** From the SigV4 `Credential=<key id>/...` of the Authorization header; undefined when unsigned. */
  readonly accessKeyId: string | undefined;
}

/** The access key id of a SigV4 Authorization header (`AWS4-HMAC-SHA256 Credential=<id>/<date>/...`). */
export function sigV4AccessKeyId(authorization: string | undefined): string | undefined {
  return authorization ? /Credential=([^/,\s]+)\//.exec(authorization)?.[1] : undefined;
}

export interface ManagementStats {
  post: number;
  get: number;
  delete: number;
  gone: number;
  limitExceeded: number;
  payloadTooLarge: number;
  forbidden: number;
  /** Epoch ms (sub-ms: performance.timeOrigin + now) of the first and last POST answered 200; 0 before any. */
  firstPostAtMs: number;
  lastPostAtMs: number;
}

export function emptyManagementStats(): ManagementStats {
  return { post: 0, get: 0, delete: 0, gone: 0, limitExceeded: 0, payloadTooLarge: 0, forbidden: 0, firstPostAtMs: 0, lastPostAtMs: 0 };
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes of one machine. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Where the frames posted to a socketless connection go (local/sink.ts): the benchmark's members
 * that exist in the gateway and in DynamoDB exactly as a socket's would, without the socket.
 */
export interface SinkTarget {
  /** A POST this connection answered 200 for, at `at` (epochMs). */
  receive(connectionId: string, body: Buffer, at: number): void;
  /** The connection is closed (`$disconnect` is being invoked with this code). */
  closed(connectionId: string, code: number): void;
}

/** A handshake as the gateway sees it: the upgrade request's URL, headers and peer address. */
interface HandshakeRequest {
  readonly url: string;
  readonly rawHeaders: readonly string[];
  readonly sourceIp: string;
}

/** What is deployed behind the gateway; mounted once the port (hence the management endpoint) is known. */
export interface GatewayRouting {
  readonly apiId: string;
  /** Route key → integration; `twoWay` routes send the integration's body back. */
  readonly routes: ReadonlyMap<string, { readonly twoWay: boolean; readonly invoke: Invoke<WebSocketResult> }>;
  /** REQUEST authorizer on `$connect`, and the query parameter that is its identity source. */
  readonly authorizer?: { readonly invoke: Invoke<AuthorizerResult>; readonly identityQueryParam: string };
}

export interface GatewayOptions {
  readonly host: string;
  readonly port: number;
  readonly stage: string;
  readonly region: string;
  readonly accountId: string;
  readonly routeSelectionExpression: string;
  readonly idleTimeoutMs: number;
  readonly maxDurationMs: number;
  readonly managementLatencyMs: number;
  /** Fault injection: return an error name to fail this management call with it. */
  readonly managementFault?: (call: ManagementCall) => ManagementError | undefined;
  /**
   * Outgoing bytes queued for a client above which a POST answers LimitExceededException, as the
   * service does when a client does not read fast enough (AWS-FACTS: "a full client-side buffer").
   */
  readonly clientBufferLimitBytes: number;
  /**
   * Test only: `$disconnect` is best effort and may never arrive (AWS-FACTS); return true to drop
   * the one of this connection, so tests can show that clean-up does not depend on it.
   */
  readonly loseDisconnect?: (connectionId: string) => boolean;
  readonly webDir?: string;
  /** Mints a local token for GET /_local/token (never exists on AWS). */
  readonly mintToken?: (userId: string, username: string, access?: LocalTokenAccess) => Promise<string>;
  readonly logger: Logger;
  readonly managementStats: ManagementStats;
}

export type Invoke<T> = (event: unknown, requestId: string) => Promise<InvokeOutcome<T>>;

interface Connection {
  readonly id: string;
  /** The client's socket; undefined for a sink connection. */
  readonly ws: WebSocket | undefined;
  /** Set for a connection without a socket (openSink): its POSTs are counted by the sink. */
  readonly sink?: SinkTarget;
  readonly connectedAt: number;
  lastActiveAt: number;
  readonly sourceIp: string;
  readonly userAgent?: string;
  readonly domainName: string;
  readonly authorizer?: AuthorizerContext;
  idleTimer?: NodeJS.Timeout;
  durationTimer?: NodeJS.Timeout;
  /** Set when the gateway closes the connection: its code and reason go to `$disconnect`. */
  serverClose?: { code: number; reason: string };
  disconnected: boolean;
}

const MIME: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".map": "application/json",
  ".txt": "text/plain; charset=utf-8",
};

export class LocalGateway {
  private readonly server: http.Server;
  private readonly wss: WebSocketServer;
  private readonly connections = new Map<string, Connection>();
  /** Upgrades whose $connect succeeded, while ws completes them (verify). */
  private readonly upgrades = new WeakMap<http.IncomingMessage, (ws: WebSocket) => void>();
  /** Handshakes and `$disconnect` invocations under way, awaited by stop(). */
  private readonly inflight = new Set<Promise<unknown>>();
  private managementCalls = 0;
  private boundPort = 0;
  private stopping = false;
  private routing: (GatewayRouting & { readonly routeKeys: ReadonlySet<string> }) | undefined;

  constructor(private readonly o: GatewayOptions) {
    // maxPayload: API Gateway closes the connection with 1009 past 128 KB (limits table).
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_MESSAGE_BYTES,
      perMessageDeflate: false,
      // Runs only once ws has found the request to be a valid upgrade (GET, `Upgrade: websocket`, a
      // well-formed Sec-WebSocket-Key, version 13): the authorizer and $connect never run for another.
      verifyClient: (info: { req: http.IncomingMessage }, accept: (ok: boolean) => void) => this.verify(info.req, accept),
    });
    this.server = http.createServer((req, res) => {
      this.onRequest(req, res).catch((err: Error) => {
        o.logger({ level: "error", source: "runtime", message: `request failed: ${err.message}` });
        if (!res.headersSent) sendJson(res, 500, { message: "Internal server error" });
        else res.destroy();
      });
    });
    this.server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on("error", () => socket.destroy());
      const refused = this.refusal(req);
      if (refused) return rejectUpgrade(socket, refused);
      // ws answers an invalid upgrade itself (405 for another method, 400 for a bad key or version),
      // as API Gateway refuses it before any integration; a valid one goes through verify().
      this.wss.handleUpgrade(req, socket, head, (ws) => this.upgrades.get(req)?.(ws));
    });
  }

  /** Deploys the routes; until then every handshake is answered 503. */
  mount(routing: GatewayRouting): void {
    this.routing = { ...routing, routeKeys: new Set(routing.routes.keys()) };
  }

  get port(): number {
    return this.boundPort;
  }

  /** Open connections (ids). */
  connectionIds(): string[] {
    return [...this.connections.keys()];
  }

  /**
   * Opens a connection that has no socket (local/sink.ts): the same handshake as an upgrade with
   * this query string (the authorizer, then `$connect`, with the headers a `ws` client sends), then
   * an open connection whose POSTs go to `sink`, answered as for an open socket after the same
   * managementLatencyMs and managementFault. Resolves with its id, or with the HTTP status a
   * socket's handshake would have been refused with.
   */
  async openSink(query: URLSearchParams, sink: SinkTarget): Promise<{ readonly connectionId: string } | { readonly status: number }> {
    if (this.stopping || !this.routing) return { status: 503 };
    let refused = 0;
    const host = `${this.o.host.includes(":") ? `[${this.o.host}]` : this.o.host}:${this.boundPort}`;
    const request: HandshakeRequest = {
      url: `/${this.o.stage}?${query.toString()}`,
      rawHeaders: [
        "Sec-WebSocket-Version",
        "13",
        "Sec-WebSocket-Key",
        Buffer.from(gatewayId()).toString("base64"),
        "Connection",
        "Upgrade",
        "Upgrade",
        "websocket",
        "Host",
        host,
        "User-Agent",
        "local-sink",
      ],
      sourceIp: "127.0.0.1",
    };
    const open = await this.track(
      this.handshake(
        request,
        (status) => {
          refused = status;
          return undefined;
        },
        sink,
      ),
    );
    if (!open) return { status: refused || 500 };
    const connectionId = open(undefined);
    if (this.stopping) {
      // Its $connect ran: like a socket refused during stop(), it gets its $disconnect.
      await this.closeSink(connectionId, CLOSE.goingAway, "Going away");
      return { status: 503 };
    }
    return { connectionId };
  }

  /**
   * Closes a sink connection as its client would (close code 1000 by default): `$disconnect` runs,
   * and this resolves once it has. False when there is no such open sink connection.
   */
  async closeSink(connectionId: string, code: number = CLOSE.normal, reason = ""): Promise<boolean> {
    const conn = this.connections.get(connectionId);
    if (!conn?.sink || conn.disconnected) return false;
    conn.serverClose = { code, reason };
    await this.track(this.disconnect(conn, code, reason));
    return true;
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        this.server.off("listening", onListening);
        if (err.code === "EADDRINUSE") {
          reject(new Error(`port ${this.o.port} on ${this.o.host} is already in use: stop what uses it or choose another with --port`));
        } else reject(err);
      };
      const onListening = () => {
        this.server.off("error", onError);
        const addr = this.server.address();
        this.boundPort = typeof addr === "object" && addr ? addr.port : this.o.port;
        resolve(this.boundPort);
      };
      this.server.once("error", onError);
      this.server.once("listening", onListening);
      this.server.listen(this.o.port, this.o.host);
    });
  }

  /** Closes every connection with 1001 (invoking `$disconnect`), waits for pending invocations, closes the port. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const c of this.connections.values()) this.closeConnection(c, CLOSE.goingAway, "Going away");
    // Give clients a moment to answer the close frame; each close starts its $disconnect.
    const deadline = Date.now() + 2000;
    while (this.connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise((r) => setImmediate(r));
    // Handshakes, messages and $disconnect invocations under way finish before the functions stop.
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** Tracks work for stop(); a failure is logged, never left as an unhandled rejection. */
  private track<T>(p: Promise<T>): Promise<T | undefined> {
    const safe = p.catch((err: Error) => {
      this.log("error", `unexpected gateway error: ${err.stack ?? err.message}`);
      return undefined;
    });
    this.inflight.add(safe);
    void safe.finally(() => this.inflight.delete(safe));
    return safe;
  }

  private log(level: "debug" | "info" | "warn" | "error", message: string, data?: Record<string, unknown>): void {
    this.o.logger({ level, source: "runtime", message, data });
  }

  // ---------------------------------------------------------------- WebSocket: handshake

  /** The HTTP status refusing an upgrade before anything else is looked at, if any. */
  private refusal(req: http.IncomingMessage): number | undefined {
    if (this.stopping || !this.routing) return 503;
    const url = new URL(req.url ?? "/", "http://local");
    const stagePath = `/${this.o.stage}`;
    // The service answers 403 for a path that is not a deployed stage.
    if (url.pathname !== stagePath && url.pathname !== `${stagePath}/`) return 403;
    return undefined;
  }

  /**
   * A valid upgrade: runs the authorizer and $connect, then lets ws complete the handshake. A
   * client that left (or half-closed) while they ran is not upgraded by ws (its socket is
   * destroyed without a callback), yet the connection existed for the integrations: it gets its
   * `$disconnect` (1006), so nothing $connect wrote is left behind, as API Gateway does not
   * leave a connection half made either.
   */
  private verify(req: http.IncomingMessage, accept: (ok: boolean) => void): void {
    const socket = req.socket;
    const request: HandshakeRequest = {
      url: req.url ?? "/",
      rawHeaders: req.rawHeaders,
      sourceIp: (req.socket.remoteAddress ?? "127.0.0.1").replace(/^::ffff:/, ""),
    };
    void this.track(
      this.handshake(request, (status) => rejectUpgrade(socket, status))
        .then((open) => {
          if (!open) return; // refused: the answer is written
          if (this.stopping) {
            open(undefined);
            return rejectUpgrade(socket, 503);
          }
          let opened = false;
          this.upgrades.set(req, (ws) => {
            opened = true;
            open(ws);
          });
          try {
            accept(true); // completes the upgrade synchronously, calling upgrades.get(req), unless the socket is gone
          } finally {
            this.upgrades.delete(req);
          }
          if (!opened) open(undefined);
        })
        .catch((err: Error) => {
          this.log("error", `handshake failed: ${err.stack ?? err.message}`);
          rejectUpgrade(socket, 500);
        }),
    );
  }

  /**
   * Authorizer and $connect of one upgrade (or of a sink connection: openSink); resolves to the
   * function opening the connection, or undefined once refused (`refuse` has answered).
   */
  private async handshake(
    req: HandshakeRequest,
    refuse: (status: number) => undefined,
    sink?: SinkTarget,
  ): Promise<((ws: WebSocket | undefined) => string) | undefined> {
    const url = new URL(req.url, "http://local");
    const routing = this.routing;
    if (!routing) return refuse(503);
    const now = Date.now();
    const connectionId = gatewayId();
    const sourceIp = req.sourceIp;
    const { headers, multiValueHeaders } = headerMaps([...req.rawHeaders]);
    const userAgent = rawHeader(req.rawHeaders, "user-agent");
    const domainName = rawHeader(req.rawHeaders, "host") ?? `${this.o.host}:${this.boundPort}`;
    // Headers the service adds on its way to the integration.
    const forwarded = { "X-Forwarded-For": sourceIp, "X-Forwarded-Port": String(this.boundPort), "X-Forwarded-Proto": "http" };
    for (const [k, v] of Object.entries(forwarded)) {
      headers[k] = v;
      multiValueHeaders[k] = [v];
    }
    const query = queryMaps(url.searchParams);
    // One upgrade request: the authorizer and $connect see the same request id.
    const handshakeRequestId = gatewayId();
    const baseContext = (requestId: string, time: number) => ({
      routeKey: "$connect",
      eventType: "CONNECT" as const,
      extendedRequestId: requestId,
      requestTime: clfTime(time),
      messageDirection: "IN" as const,
      stage: this.o.stage,
      connectedAt: now,
      requestTimeEpoch: time,
      identity: { sourceIp, ...(userAgent ? { userAgent } : {}) },
      requestId,
      domainName,
      connectionId,
      apiId: routing.apiId,
    });

    let authorizer: AuthorizerContext | undefined;
    if (routing.authorizer) {
      // A missing identity source is answered 401 without invoking the authorizer (apigateway-websocket-api-lambda-auth).
      const token = url.searchParams.get(routing.authorizer.identityQueryParam);
      if (!token) return refuse(401);
      const requestId = handshakeRequestId;
      const methodArn = `arn:aws:execute-api:${this.o.region}:${this.o.accountId}:${routing.apiId}/${this.o.stage}/$connect`;
      const event: AuthorizerEvent = {
        type: "REQUEST",
        methodArn,
        headers,
        multiValueHeaders,
        ...(query ?? {}),
        stageVariables: {},
        requestContext: baseContext(requestId, Date.now()),
      };
      const started = performance.now();
      const outcome = await routing.authorizer.invoke(event, requestId);
      const latency = Math.round(performance.now() - started);
      if (!outcome.ok) {
        // `throw new Error("Unauthorized")` is the documented way to answer 401 from a Lambda authorizer;
        // any other failure is a 500.
        const status = outcome.kind === "error" && outcome.error.message === "Unauthorized" ? 401 : 500;
        this.log(status === 401 ? "info" : "error", `authorizer ${outcome.kind}: ${outcome.error.message}`, { connectionId, requestId });
        return refuse(status);
      }
      const result = outcome.result;
      if (!result || typeof result !== "object" || !policyAllows(result.policyDocument, methodArn)) {
        this.log("info", "authorizer denied the connection", { connectionId, requestId });
        return refuse(403);
      }
      authorizer = authorizerContext(result, latency) as unknown as AuthorizerContext;
    }

    const connectRoute = routing.routes.get("$connect");
    if (connectRoute) {
      const requestId = handshakeRequestId;
      const time = Date.now();
      const event: WebSocketEvent = {
        headers,
        multiValueHeaders,
        ...(query ?? {}),
        requestContext: { ...baseContext(requestId, time), ...(authorizer ? { authorizer } : {}) },
        isBase64Encoded: false,
      };
      const outcome = await connectRoute.invoke(event, requestId);
      if (!outcome.ok) {
        this.log("error", `$connect ${outcome.kind}: ${outcome.error.message}`, { connectionId, requestId });
        return refuse(500);
      }
      const status = resultStatus(outcome.result);
      if (status < 200 || status > 299) {
        this.log("info", `$connect answered ${status}: handshake rejected`, { connectionId, requestId });
        return refuse(status);
      }
    }

    const open = (ws: WebSocket | undefined) => {
      const conn: Connection = {
        id: connectionId,
        ws,
        ...(sink ? { sink } : {}),
        connectedAt: now,
        lastActiveAt: Date.now(),
        sourceIp,
        userAgent,
        domainName,
        authorizer,
        disconnected: false,
      };
      if (!ws && !sink) {
        // The client left while $connect ran: the connection existed for the integration, so it gets its $disconnect.
        void this.track(this.disconnect(conn, CLOSE.abnormal, ""));
        return connectionId;
      }
      this.connections.set(connectionId, conn);
      this.attach(conn);
      return connectionId;
    };
    return open;
  }

  // ---------------------------------------------------------------- WebSocket: open connection

  private attach(conn: Connection): void {
    const { ws } = conn;
    this.touch(conn);
    conn.durationTimer = setTimeout(() => this.closeConnection(conn, CLOSE.goingAway, "Going away"), this.o.maxDurationMs);
    if (!ws) return; // a sink connection: closed by closeSink, the timers above or a DELETE
    ws.on("message", (data: RawData, isBinary: boolean) => this.onMessage(conn, data, isBinary));
    ws.on("error", (err: Error & { code?: string }) => {
      // ws closes with 1009 itself when maxPayload is exceeded; record it for $disconnect.
      if (err.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") conn.serverClose ??= { code: CLOSE.tooBig, reason: "Message too big" };
      this.log("debug", `connection error: ${err.message}`, { connectionId: conn.id });
    });
    ws.on("close", (code: number, reason: Buffer) => {
      const closed = conn.serverClose ?? { code, reason: reason.toString("utf8") };
      void this.track(this.disconnect(conn, closed.code, closed.reason));
    });
  }

  /** Resets the idle timer: any message in either direction counts as activity (limits table, idle timeout). */
  private touch(conn: Connection): void {
    conn.lastActiveAt = Date.now();
    if (conn.idleTimer) clearTimeout(conn.idleTimer);
    conn.idleTimer = setTimeout(() => this.closeConnection(conn, CLOSE.goingAway, "Going away"), this.o.idleTimeoutMs);
  }

  private closeConnection(conn: Connection, code: number, reason: string): void {
    if (conn.serverClose || conn.disconnected) return;
    conn.serverClose = { code, reason };
    if (!conn.ws) {
      // No socket to exchange close frames with: the connection is closed now.
      void this.track(this.disconnect(conn, code, reason));
      return;
    }
    const { ws } = conn;
    ws.close(code, reason);
    // A peer that never answers the close frame is dropped, as the service does not wait on it.
    setTimeout(() => ws.terminate(), 2000).unref();
  }

  private onMessage(conn: Connection, data: RawData, isBinary: boolean): void {
    if (conn.serverClose || conn.disconnected) return;
    if (isBinary) {
      // API Gateway rejects binary frames and disconnects the client with 1003 (websocket-api-develop-binary-media-types).
      this.closeConnection(conn, CLOSE.unsupportedData, "Binary frames are not supported");
      return;
    }
    const routing = this.routing!;
    this.touch(conn);
    const body = rawToString(data);
    const requestId = gatewayId();
    const messageId = gatewayId();
    const routeKey = routeFor(this.o.routeSelectionExpression, body, routing.routeKeys);
    if (!routeKey) {
      this.send(conn, forbiddenFrame(conn.id, requestId));
      return;
    }
    const route = routing.routes.get(routeKey)!;
    const time = Date.now();
    const requestContext: WebSocketRequestContext = {
      routeKey,
      eventType: "MESSAGE",
      messageId,
      extendedRequestId: requestId,
      requestTime: clfTime(time),
      messageDirection: "IN",
      stage: this.o.stage,
      connectedAt: conn.connectedAt,
      requestTimeEpoch: time,
      identity: { sourceIp: conn.sourceIp, ...(conn.userAgent ? { userAgent: conn.userAgent } : {}) },
      requestId,
      domainName: conn.domainName,
      connectionId: conn.id,
      apiId: routing.apiId,
      ...(conn.authorizer ? { authorizer: conn.authorizer } : {}),
    };
    const event: WebSocketEvent = { requestContext, body, isBase64Encoded: false };
    // Messages of one connection are processed concurrently, as API Gateway invokes Lambda for each
    // message without waiting for the previous one (no ordering guarantee across invocations).
    void this.track(
      route.invoke(event, requestId).then((outcome) => {
        if (!outcome.ok) {
          this.log("error", `${routeKey} ${outcome.kind}: ${outcome.error.message}`, { connectionId: conn.id, requestId, routeKey });
          this.send(conn, internalErrorFrame(conn.id, requestId));
          return;
        }
        if (!route.twoWay) return;
        const result = outcome.result as WebSocketResult | null;
        if (result === null || result === undefined) return;
        if (typeof result !== "object" || (result.body !== undefined && result.body !== null && typeof result.body !== "string")) {
          // A malformed proxy response is an integration failure.
          this.log("error", `${routeKey} returned a malformed result`, { connectionId: conn.id, requestId });
          this.send(conn, internalErrorFrame(conn.id, requestId));
          return;
        }
        if (typeof result.body === "string" && Buffer.byteLength(result.body, "utf8") > MAX_MESSAGE_BYTES) {
          // A route response is a message like any other: over 128 KB API Gateway cannot send it
          // (limits table). What the client then sees is not documented; locally it is the
          // integration-failure frame, so a reply that could never be delivered on AWS fails here too.
          this.log(
            "error",
            `${routeKey} returned a ${Buffer.byteLength(result.body, "utf8")}-byte body: over the 128 KB message limit, not sent`,
            {
              connectionId: conn.id,
              requestId,
            },
          );
          this.send(conn, internalErrorFrame(conn.id, requestId));
          return;
        }
        if (typeof result.body === "string" && result.body.length > 0) this.send(conn, result.body);
      }),
    );
  }

  private send(conn: Connection, text: string): void {
    if (!conn.ws || conn.ws.readyState !== WebSocket.OPEN) return;
    this.touch(conn);
    conn.ws.send(text);
  }

  private async disconnect(conn: Connection, code: number, reason: string): Promise<void> {
    if (conn.disconnected) return;
    conn.disconnected = true;
    if (conn.idleTimer) clearTimeout(conn.idleTimer);
    if (conn.durationTimer) clearTimeout(conn.durationTimer);
    this.connections.delete(conn.id);
    conn.sink?.closed(conn.id, code);
    const route = this.routing?.routes.get("$disconnect");
    if (!route || !this.routing) return;
    if (this.o.loseDisconnect?.(conn.id)) {
      this.log("info", "$disconnect dropped (loseDisconnect)", { connectionId: conn.id });
      return;
    }
    const requestId = gatewayId();
    const time = Date.now();
    const event: WebSocketEvent = {
      requestContext: {
        routeKey: "$disconnect",
        eventType: "DISCONNECT",
        extendedRequestId: requestId,
        requestTime: clfTime(time),
        messageDirection: "IN",
        stage: this.o.stage,
        connectedAt: conn.connectedAt,
        requestTimeEpoch: time,
        identity: { sourceIp: conn.sourceIp, ...(conn.userAgent ? { userAgent: conn.userAgent } : {}) },
        requestId,
        domainName: conn.domainName,
        connectionId: conn.id,
        apiId: this.routing.apiId,
        ...(conn.authorizer ? { authorizer: conn.authorizer } : {}),
        disconnectStatusCode: code,
        disconnectReason: reason,
      },
      isBase64Encoded: false,
    };
    const outcome = await route.invoke(event, requestId);
    if (!outcome.ok) this.log("error", `$disconnect ${outcome.kind}: ${outcome.error.message}`, { connectionId: conn.id, requestId });
  }

  // ---------------------------------------------------------------- HTTP: management API, token, static files

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://local");
    const mgmt = /^\/([^/]+)\/@connections\/([^/]+)\/?$/.exec(url.pathname);
    if (mgmt) return this.onManagement(req, res, decodeURIComponent(mgmt[1]), decodeURIComponent(mgmt[2]));
    if (url.pathname.includes("/@connections")) return managementError(res, 403, "ForbiddenException", "Forbidden");
    if (req.method !== "GET" && req.method !== "HEAD") return sendJson(res, 405, { message: "Method Not Allowed" });
    if (url.pathname === "/_local/token") return this.onToken(url, res);
    if (url.pathname === "/_local/health") return sendJson(res, 200, { ok: true, connections: this.connections.size });
    return this.onStatic(url.pathname, req, res);
  }

  private async onManagement(req: http.IncomingMessage, res: http.ServerResponse, stage: string, connectionId: string): Promise<void> {
    const method = req.method ?? "";
    if (managementChannel.hasSubscribers) {
      const record: ManagementRequestRecord = { method, stage, connectionId, accessKeyId: sigV4AccessKeyId(req.headers.authorization) };
      managementChannel.publish(record);
    }
    const body = await readBody(req, MAX_MESSAGE_BYTES + 1);
    if (this.o.managementLatencyMs > 0) await new Promise((r) => setTimeout(r, this.o.managementLatencyMs));
    const stats = this.o.managementStats;
    if (method !== "POST" && method !== "GET" && method !== "DELETE") {
      stats.forbidden += 1;
      return managementError(res, 403, "ForbiddenException", "Forbidden");
    }
    const n = ++this.managementCalls;
    if (method === "POST") stats.post += 1;
    else if (method === "GET") stats.get += 1;
    else stats.delete += 1;
    // Requests must be SigV4-signed; any signature is accepted locally, an unsigned call is refused as on AWS.
    if (!req.headers.authorization) {
      stats.forbidden += 1;
      return managementError(res, 403, "ForbiddenException", "Missing Authentication Token");
    }
    // A wrong stage is the usual cause of a 403 from @connections (AWS-FACTS).
    if (stage !== this.o.stage) {
      stats.forbidden += 1;
      return managementError(res, 403, "ForbiddenException", "Forbidden");
    }
    const fault = this.o.managementFault?.({ method, connectionId, n });
    if (fault) return this.fail(res, fault);
    const conn = this.connections.get(connectionId);
    if (method === "POST" && body.length > MAX_MESSAGE_BYTES) {
      stats.payloadTooLarge += 1;
      return managementError(res, 413, "PayloadTooLargeException", "Request entity too large");
    }
    if (!conn || conn.disconnected || (!conn.sink && conn.ws?.readyState !== WebSocket.OPEN)) {
      stats.gone += 1;
      return managementError(res, 410, "GoneException", `Connection ${connectionId} is gone`);
    }
    if (method === "GET") {
      return sendJson(res, 200, {
        connectedAt: new Date(conn.connectedAt).toISOString(),
        identity: { sourceIp: conn.sourceIp, ...(conn.userAgent ? { userAgent: conn.userAgent } : {}) },
        lastActiveAt: new Date(conn.lastActiveAt).toISOString(),
      });
    }
    if (method === "DELETE") {
      this.closeConnection(conn, CLOSE.normal, "");
      res.writeHead(204).end();
      return;
    }
    if (conn.ws && conn.ws.bufferedAmount > this.o.clientBufferLimitBytes) {
      stats.limitExceeded += 1;
      return managementError(res, 429, "LimitExceededException", "Client buffer is full");
    }
    this.touch(conn);
    const at = epochMs();
    if (conn.sink) conn.sink.receive(conn.id, body, at);
    else conn.ws?.send(body, { binary: !isUtf8(body) });
    stats.firstPostAtMs ||= at;
    stats.lastPostAtMs = at;
    res.writeHead(200, { "content-type": "application/json", "content-length": "0" }).end();
  }

  private fail(res: http.ServerResponse, error: ManagementError): void {
    const stats = this.o.managementStats;
    const status = { GoneException: 410, LimitExceededException: 429, PayloadTooLargeException: 413, ForbiddenException: 403 }[error];
    if (error === "GoneException") stats.gone += 1;
    else if (error === "LimitExceededException") stats.limitExceeded += 1;
    else if (error === "PayloadTooLargeException") stats.payloadTooLarge += 1;
    else stats.forbidden += 1;
    managementError(res, status, error, `${error} (injected by the local runtime)`);
  }

  private async onToken(url: URL, res: http.ServerResponse): Promise<void> {
    if (!this.o.mintToken) return sendJson(res, 404, { message: "token minting is off" });
    const userId = url.searchParams.get("userId") ?? "";
    const username = url.searchParams.get("name") ?? url.searchParams.get("username") ?? userId;
    if (!USER_ID_PATTERN.test(userId)) {
      return sendJson(res, 400, { message: "userId must be 1-128 characters of A-Z a-z 0-9 _ . @ : | + = -" });
    }
    if (username.length < 1 || username.length > 64) return sendJson(res, 400, { message: "name must be 1-64 characters" });
    // Optional `rooms` and `moderates` (comma-separated patterns): the access claims (issue 16).
    const access: { rooms?: readonly string[]; moderates?: readonly string[] } = {};
    for (const name of ["rooms", "moderates"] as const) {
      const text = url.searchParams.get(name);
      if (text === null) continue;
      const patterns = parsePatternList(name, text);
      if (isAccessClaimProblem(patterns)) return sendJson(res, 400, { message: patterns.problem });
      access[name] = patterns;
    }
    const token = await this.o.mintToken(userId, username, access);
    sendJson(res, 200, { token, userId, username, ...access });
  }

  private onStatic(pathname: string, req: http.IncomingMessage, res: http.ServerResponse): void {
    if (!this.o.webDir) {
      sendJson(res, 404, { message: "Not Found" });
      return;
    }
    const root = path.resolve(this.o.webDir);
    let rel: string;
    try {
      rel = decodeURIComponent(pathname);
    } catch {
      sendJson(res, 400, { message: "Bad Request" });
      return;
    }
    const file = path.resolve(root, `.${rel.endsWith("/") ? `${rel}index.html` : rel}`);
    if (file !== root && !file.startsWith(root + path.sep)) {
      sendJson(res, 403, { message: "Forbidden" });
      return;
    }
    fs.stat(file, (err, st) => {
      if (err || !st.isFile()) {
        const hint = fs.existsSync(root) ? "" : ` (${root} does not exist yet: run npm run build:web)`;
        return sendJson(res, 404, { message: `Not Found${hint}` });
      }
      res.writeHead(200, {
        "content-type": MIME[path.extname(file).toLowerCase()] ?? "application/octet-stream",
        "content-length": String(st.size),
        "cache-control": "no-cache",
      });
      if (req.method === "HEAD") return res.end();
      fs.createReadStream(file).pipe(res);
    });
  }
}

/** A header's first value, by case-insensitive name (as node's `req.headers` keeps user-agent and host). */
function rawHeader(rawHeaders: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) if (rawHeaders[i].toLowerCase() === name) return rawHeaders[i + 1];
  return undefined;
}

function resultStatus(result: unknown): number {
  if (result && typeof result === "object" && typeof (result as { statusCode?: unknown }).statusCode === "number") {
    return (result as { statusCode: number }).statusCode;
  }
  // A proxy integration result without a status code is a malformed response.
  return 502;
}

function rawToString(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString("utf8");
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  return Buffer.from(data).toString("utf8");
}

function isUtf8(buf: Buffer): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(buf);
    return true;
  } catch {
    return false;
  }
}

function rejectUpgrade(socket: Duplex, status: number): undefined {
  if (socket.destroyed) return undefined;
  const text = http.STATUS_CODES[status] ?? "Error";
  const body = JSON.stringify({ message: text });
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  return undefined;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)) }).end(text);
}

/** The service's error shape: the type in `x-amzn-ErrorType`, a JSON `message` body (how SDK v3 names the error). */
function managementError(res: http.ServerResponse, status: number, type: ManagementError, message: string): void {
  const text = JSON.stringify({ message });
  res
    .writeHead(status, {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(text)),
      "x-amzn-errortype": type,
    })
    .end(text);
}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      // Keep reading past the limit without storing, so the client gets its 413 instead of a reset.
      if (size <= limit) chunks.push(c);
      size += c.length;
    });
    req.on("end", () => resolve(size > limit ? Buffer.alloc(limit + 1) : Buffer.concat(chunks)));
    req.on("error", reject);
  });
}
