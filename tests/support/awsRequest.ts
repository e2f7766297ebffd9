/**
 * How the test servers that stand in for AWS JSON-protocol endpoints (the DynamoDB recording relay
 * and gate, the loopback Secrets Manager) read a request: its whole body, and the operation its
 * `X-Amz-Target` header names ("DynamoDB_20120810.PutItem" -> "PutItem",
 * "secretsmanager.GetSecretValue" -> "GetSecretValue").
 */
import type * as http from "node:http";

export interface AwsJsonRequest {
  /** The operation from `X-Amz-Target` (the part after the last "."), "" when the header is absent. */
  readonly operation: string;
  /** The request's body as sent (JSON text for these protocols). */
  readonly body: Buffer;
}

/** Reads `req` to its end, then calls `then` with its operation and body (in the request's own 'end' event). */
export function readAwsJsonRequest(req: http.IncomingMessage, then: (request: AwsJsonRequest) => void): void {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () =>
    then({
      operation:
        String(req.headers["x-amz-target"] ?? "")
          .split(".")
          .pop() ?? "",
      body: Buffer.concat(chunks),
    }),
  );
}
