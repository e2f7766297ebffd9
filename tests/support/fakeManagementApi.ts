/**
 * An in-process HTTP server speaking API Gateway's `@connections` protocol (AWS-FACTS: Management
 * API) so the real ApiGatewayManagementApiClient is exercised end to end:
 *   POST   /{stage}/@connections/{id}  -> 200, records the frame     | 410 GoneException if unknown
 *   GET    /{stage}/@connections/{id}  -> 200 {connectedAt, lastActiveAt, identity} | 410
 *   DELETE /{stage}/@connections/{id}  -> 204, forgets the connection | 410
 * Errors carry `x-amzn-errortype` and a `{"message": ...}` body, which is how the SDK's restJson1
 * protocol names the exception (GoneException, LimitExceededException).
 * Faults can be injected per connection: n times 429 LimitExceededException, or n times another status.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { sigV4AccessKeyId } from "../../local/gateway";
import { recordManagementCall } from "./awsCalls";

export interface ManagementCall {
  readonly method: string;
  readonly connectionId: string;
  readonly status: number;
}

export interface FakeManagementApi {
  /** The MANAGEMENT_ENDPOINT to give the functions: http://127.0.0.1:<port>/<stage> */
  readonly endpoint: string;
  readonly calls: ManagementCall[];
  /** Registers a live connection (the gateway would after a successful $connect). */
  open(connectionId: string): void;
  /** Forgets a connection: later posts to it get 410. */
  close(connectionId: string): void;
  isOpen(connectionId: string): boolean;
  /** Frames posted to a connection, parsed as JSON, in arrival order. */
  frames(connectionId: string): unknown[];
  clearFrames(): void;
  /** The next `times` posts to `connectionId` fail with 429 LimitExceededException. */
  throttle(connectionId: string, times: number): void;
  /** The next `times` posts to `connectionId` fail with `status` (e.g. 500 InternalServerErrorException). */
  fail(connectionId: string, times: number, status?: number): void;
  stop(): Promise<void>;
}

export async function startFakeManagementApi(stage = "test"): Promise<FakeManagementApi> {
  const open = new Map<string, { connectedAt: number; frames: unknown[] }>();
  const throttled = new Map<string, number>();
  const failing = new Map<string, { times: number; status: number }>();
  const calls: ManagementCall[] = [];
  const prefix = `/${stage}/@connections/`;

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://127.0.0.1");
      const method = req.method ?? "GET";
      const reply = (status: number, body?: unknown, errorType?: string) => {
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (errorType) headers["x-amzn-errortype"] = errorType;
        res.writeHead(status, headers);
        res.end(body === undefined ? undefined : JSON.stringify(body));
      };
      if (!url.pathname.startsWith(prefix)) {
        // A wrong stage or path: what a misconfigured endpoint gets from API Gateway.
        return reply(403, { message: "Forbidden" }, "ForbiddenException");
      }
      const connectionId = decodeURIComponent(url.pathname.slice(prefix.length));
      // Who called, for tests/infra/iamSimulation.ts (each function signs with its own key id).
      recordManagementCall({ method, stage, connectionId, accessKeyId: sigV4AccessKeyId(req.headers.authorization) });
      const record = (status: number) => calls.push({ method, connectionId, status });
      const conn = open.get(connectionId);
      if (!conn) {
        record(410);
        return reply(410, { message: "Gone" }, "GoneException");
      }
      if (method === "POST") {
        const t = throttled.get(connectionId) ?? 0;
        if (t > 0) {
          throttled.set(connectionId, t - 1);
          record(429);
          return reply(429, { message: "Rate exceeded" }, "LimitExceededException");
        }
        const f = failing.get(connectionId);
        if (f && f.times > 0) {
          f.times -= 1;
          record(f.status);
          return reply(f.status, { message: "Injected failure" }, f.status === 403 ? "ForbiddenException" : "InternalServerErrorException");
        }
        const text = Buffer.concat(chunks).toString("utf8");
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = text;
        }
        conn.frames.push(parsed);
        record(200);
        return reply(200);
      }
      if (method === "GET") {
        record(200);
        return reply(200, {
          connectedAt: new Date(conn.connectedAt).toISOString(),
          lastActiveAt: new Date().toISOString(),
          identity: { sourceIp: "127.0.0.1" },
        });
      }
      if (method === "DELETE") {
        open.delete(connectionId);
        record(204);
        return reply(204);
      }
      record(405);
      return reply(405, { message: "Method not allowed" });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}/${stage}`,
    calls,
    open: (id) => void open.set(id, { connectedAt: Date.now(), frames: [] }),
    close: (id) => void open.delete(id),
    isOpen: (id) => open.has(id),
    frames: (id) => open.get(id)?.frames ?? [],
    clearFrames: () => {
      for (const c of open.values()) c.frames.length = 0;
      calls.length = 0;
    },
    throttle: (id, times) => void throttled.set(id, times),
    fail: (id, times, status = 500) => void failing.set(id, { times, status }),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
