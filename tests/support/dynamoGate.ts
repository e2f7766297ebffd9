/**
 * A pass-through HTTP proxy in front of DynamoDB Local that can hold chosen requests, so a test
 * decides the order in which concurrent handler invocations reach the database: what API Gateway
 * running a connection's frames concurrently (or a `$disconnect` arriving mid-request) can do.
 * It matches requests by their DynamoDB operation (`X-Amz-Target`) and JSON body, so it holds the
 * same logical step whatever the handlers' code looks like (a plain UpdateItem or a transaction).
 *
 *   const gate = await startDynamoGate(dynamo.endpoint);
 *   const held = gate.hold((r) => r.operation === "DeleteItem" && r.body.includes("c#abc"));
 *   const leave = h.send(conn, { type: "leave", roomId });   // runs until that request
 *   await held.arrived;                                       // the request is parked here
 *   await h.send(conn, { type: "join", roomId });             // runs to completion meanwhile
 *   held.release();                                           // the parked request goes on
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { readAwsJsonRequest } from "./awsRequest";

export interface GateRequest {
  /** DynamoDB operation, e.g. "UpdateItem", "TransactWriteItems", "Query". */
  readonly operation: string;
  /** The request's JSON body as text (DynamoDB JSON: `{"S":"..."}` values). */
  readonly body: string;
}

export interface Hold {
  /** Resolves when `count` matching requests (or their responses) are parked. */
  readonly arrived: Promise<void>;
  /** Lets every parked request (and any later match) through. */
  release(): void;
}

export interface DynamoGate {
  /** The endpoint to give the functions instead of DynamoDB Local's. */
  readonly endpoint: string;
  /**
   * Parks the next `count` requests matching `match` until release(). With `response: true` the
   * request is executed at once and its RESPONSE is parked: the caller has read (or written) now
   * but learns it only later.
   */
  hold(match: (r: GateRequest) => boolean, count?: number, options?: { readonly response?: boolean }): Hold;
  /**
   * Answers every request matching `match` with DynamoDB's 500 InternalServerError (which the SDK
   * retries, and then throws) without forwarding it, until the returned function is called: an
   * outage of one step, e.g. the last write of a `$connect`. With `count`, only the first `count`
   * matching requests fail (the SDK makes 3 attempts of each call), and later ones go through.
   */
  fail(match: (r: GateRequest) => boolean, count?: number): () => void;
  stop(): Promise<void>;
}

export async function startDynamoGate(target: string): Promise<DynamoGate> {
  const upstream = new URL(target);
  interface Rule {
    readonly match: (r: GateRequest) => boolean;
    remaining: number;
    released: boolean;
    readonly response: boolean;
    readonly matched: number;
    readonly parked: Array<() => void>;
    readonly onFull: () => void;
  }
  const rules: Rule[] = [];
  const failures = new Map<(r: GateRequest) => boolean, { remaining: number }>();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  const server = http.createServer((req, res) => {
    readAwsJsonRequest(req, ({ operation, body }) => {
      const request: GateRequest = { operation, body: body.toString("utf8") };
      const forward = (answer: (send: () => void) => void = (send) => send()) => {
        const out = http.request(
          { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent },
          (up) => {
            const parts: Buffer[] = [];
            up.on("data", (c: Buffer) => parts.push(c));
            up.on("end", () =>
              answer(() => {
                res.writeHead(up.statusCode ?? 500, up.headers);
                res.end(Buffer.concat(parts));
              }),
            );
          },
        );
        out.on("error", () => {
          res.destroy();
        });
        out.end(body);
      };
      const failure = [...failures].find(([f, left]) => left.remaining > 0 && f(request));
      if (failure) {
        failure[1].remaining -= 1;
        const error = JSON.stringify({
          __type: "com.amazonaws.dynamodb.v20120810#InternalServerError",
          message: "Internal server error (injected by the test's DynamoGate)",
        });
        res.writeHead(500, { "content-type": "application/x-amz-json-1.0", "content-length": Buffer.byteLength(error) });
        res.end(error);
        return;
      }
      const rule = rules.find((r) => !r.released && r.remaining > 0 && r.match(request));
      if (!rule) return forward();
      rule.remaining -= 1;
      if (rule.response) {
        forward((send) => {
          if (rule.released) return send();
          rule.parked.push(send);
          if (rule.parked.length === rule.matched) rule.onFull();
        });
      } else {
        rule.parked.push(() => forward());
        if (rule.remaining === 0) rule.onFull();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    hold(match, count = 1, options = {}) {
      let onFull = () => {};
      const arrived = new Promise<void>((resolve) => (onFull = resolve));
      const rule: Rule = {
        match,
        remaining: count,
        matched: count,
        released: false,
        response: options.response === true,
        parked: [],
        onFull: () => onFull(),
      };
      rules.push(rule);
      return {
        arrived,
        release() {
          rule.released = true;
          for (const go of rule.parked.splice(0)) go();
        },
      };
    },
    fail(match, count = Number.POSITIVE_INFINITY) {
      failures.set(match, { remaining: count });
      return () => failures.delete(match);
    },
    async stop() {
      failures.clear();
      for (const r of rules) {
        r.released = true;
        for (const go of r.parked.splice(0)) go();
      }
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
