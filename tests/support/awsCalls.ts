/**
 * Records, at the wire, every AWS API call the functions and the push module make in the tests:
 * a relay in front of DynamoDB Local reads each request's `X-Amz-Target` and JSON body, the fake
 * `@connections` server and the local gateway (its diagnostics channel) report each management
 * request, the loopback Secrets Manager each of its requests. The caller is the SigV4 access key id: every function signs with its own locally
 * (handlers/lib/clients.ts localAccessKeyId), so no production code knows it is being recorded.
 * tests/infra/iamSimulation.ts evaluates the calls against each caller's IAM policy.
 */
import * as diagnostics from "node:diagnostics_channel";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { MANAGEMENT_CALL_CHANNEL, sigV4AccessKeyId, type ManagementRequestRecord } from "../../local/gateway";
import { readAwsJsonRequest } from "./awsRequest";

/** What one DynamoDB request needs IAM permission for: an action on a table or one of its indexes. */
export interface DynamoPart {
  /** IAM action: a TransactWriteItems part is authorized as its PutItem/UpdateItem/DeleteItem/ConditionCheckItem. */
  readonly action: string;
  /** Physical table name, as sent. */
  readonly table: string;
  readonly index?: string;
}

export type RecordedCall =
  | { readonly service: "dynamodb"; readonly caller: string; readonly operation: string; readonly parts: readonly DynamoPart[] }
  | {
      readonly service: "execute-api";
      readonly caller: string;
      readonly operation: string;
      readonly stage: string;
      readonly connectionId: string;
    }
  | { readonly service: "secretsmanager"; readonly caller: string; readonly operation: string; readonly secretId: string };

/** Every call recorded in this process, in arrival order. */
export const RECORDED_CALLS: RecordedCall[] = [];

const TRANSACT_PART_ACTIONS: Readonly<Record<string, string>> = {
  Put: "PutItem",
  Update: "UpdateItem",
  Delete: "DeleteItem",
  ConditionCheck: "ConditionCheckItem",
  Get: "GetItem",
};

/**
 * The (action, table, index) triples a DynamoDB request is authorized on (DynamoDB developer guide:
 * "Using IAM with DynamoDB transactions"; BatchWriteItem and BatchGetItem are their own actions on
 * each table of RequestItems; a Query or Scan with IndexName is authorized on the index).
 */
export function dynamoParts(operation: string, body: Record<string, unknown>): DynamoPart[] {
  if (operation === "BatchWriteItem" || operation === "BatchGetItem") {
    return Object.keys((body.RequestItems ?? {}) as Record<string, unknown>).map((table) => ({ action: `dynamodb:${operation}`, table }));
  }
  if (operation === "TransactWriteItems" || operation === "TransactGetItems") {
    const parts: DynamoPart[] = [];
    for (const item of (body.TransactItems ?? []) as Array<Record<string, { TableName?: unknown } | undefined>>) {
      for (const [kind, part] of Object.entries(item)) {
        const action = TRANSACT_PART_ACTIONS[kind];
        if (!action || !part) throw new Error(`unknown ${operation} part ${kind}`);
        parts.push({ action: `dynamodb:${action}`, table: String(part.TableName) });
      }
    }
    return parts;
  }
  if (typeof body.TableName !== "string") throw new Error(`${operation} without TableName`);
  return [
    { action: `dynamodb:${operation}`, table: body.TableName, ...(typeof body.IndexName === "string" ? { index: body.IndexName } : {}) },
  ];
}

export interface RecordingRelay {
  readonly endpoint: string;
  stop(): Promise<void>;
}

/** A pass-through HTTP relay in front of DynamoDB (Local) that records every request into RECORDED_CALLS. */
export async function startDynamoRecorder(target: string): Promise<RecordingRelay> {
  const upstream = new URL(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const server = http.createServer((req, res) => {
    readAwsJsonRequest(req, ({ operation, body }) => {
      if (operation !== "") {
        try {
          const parts = dynamoParts(operation, JSON.parse(body.toString("utf8")) as Record<string, unknown>);
          RECORDED_CALLS.push({
            service: "dynamodb",
            caller: sigV4AccessKeyId(req.headers.authorization) ?? "(unsigned)",
            operation,
            parts,
          });
        } catch (err) {
          // Recorded as such: the evaluation fails on a request it cannot attribute to an action.
          RECORDED_CALLS.push({
            service: "dynamodb",
            caller: sigV4AccessKeyId(req.headers.authorization) ?? "(unsigned)",
            operation,
            parts: [{ action: `unparsed:${String(err)}`, table: "" }],
          });
        }
      }
      const out = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent },
        (up) => {
          res.writeHead(up.statusCode ?? 500, up.headers);
          up.pipe(res);
        },
      );
      out.on("error", () => res.destroy());
      out.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async stop() {
      agent.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Records one `@connections` request (the fake management API calls this; the gateway publishes). */
export function recordManagementCall(r: ManagementRequestRecord): void {
  RECORDED_CALLS.push({
    service: "execute-api",
    caller: r.accessKeyId ?? "(unsigned)",
    operation: r.method,
    stage: r.stage,
    connectionId: r.connectionId,
  });
}

/** Records one Secrets Manager request (tests/support/fakeSecretsManager.ts calls this). */
export function recordSecretsManagerCall(accessKeyId: string | undefined, operation: string, secretId: string): void {
  RECORDED_CALLS.push({ service: "secretsmanager", caller: accessKeyId ?? "(unsigned)", operation, secretId });
}

diagnostics.subscribe(MANAGEMENT_CALL_CHANNEL, (message) => recordManagementCall(message as ManagementRequestRecord));
