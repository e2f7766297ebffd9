/**
 * A small in-test stand-in for SQS's SendMessageBatch and ChangeMessageVisibility (AWS JSON 1.0
 * protocol, as @aws-sdk/client-sqs speaks it), so that the handlers' producers and the worker can be
 * run in-process with their real SQS client before the local emulator (local/sqs.ts) is involved. It
 * records what it was sent, answers the MD5 of each body (the SDK checks it), and can fail chosen entries.
 */
import { createHash } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";

export interface SentEntry {
  readonly Id: string;
  readonly MessageBody: string;
  readonly MessageGroupId?: string;
  readonly MessageDeduplicationId?: string;
}

export interface FakeSqs {
  readonly endpoint: string;
  readonly queueUrl: string;
  /** Every entry accepted, in order (FIFO deduplication is not modelled: a repeat is recorded again). */
  readonly accepted: SentEntry[];
  /** Calls made (SendMessageBatch requests). */
  calls: number;
  /** ChangeMessageVisibility requests, in order (the `deliver` worker's, for a job it stopped). */
  readonly visibilityChanges: Array<{ readonly QueueUrl: string; readonly ReceiptHandle: string; readonly VisibilityTimeout: number }>;
  /** Return a failure for an entry: `{ SenderFault, Code }`, or undefined to accept it. */
  failEntry?: (entry: SentEntry, call: number) => { SenderFault: boolean; Code: string } | undefined;
  stop(): Promise<void>;
}

export async function startFakeSqs(): Promise<FakeSqs> {
  const state: FakeSqs = {
    endpoint: "",
    queueUrl: "",
    accepted: [],
    calls: 0,
    visibilityChanges: [],
    stop: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const target = String(req.headers["x-amz-target"] ?? "");
      if (target === "AmazonSQS.ChangeMessageVisibility") {
        state.visibilityChanges.push(JSON.parse(Buffer.concat(chunks).toString("utf8")));
        res.writeHead(200, { "content-type": "application/x-amz-json-1.0" });
        res.end("{}");
        return;
      }
      if (target !== "AmazonSQS.SendMessageBatch") {
        res.writeHead(400, { "content-type": "application/x-amz-json-1.0" });
        res.end(JSON.stringify({ __type: "com.amazonaws.sqs#InvalidAction", message: `unsupported ${target}` }));
        return;
      }
      state.calls += 1;
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { Entries: SentEntry[] };
      const Successful: unknown[] = [];
      const Failed: unknown[] = [];
      for (const e of body.Entries) {
        const fault = state.failEntry?.(e, state.calls);
        if (fault) {
          Failed.push({ Id: e.Id, SenderFault: fault.SenderFault, Code: fault.Code, Message: "injected" });
          continue;
        }
        state.accepted.push(e);
        Successful.push({
          Id: e.Id,
          MessageId: `m-${state.accepted.length}`,
          MD5OfMessageBody: createHash("md5").update(e.MessageBody, "utf8").digest("hex"),
          SequenceNumber: String(state.accepted.length).padStart(20, "0"),
        });
      }
      res.writeHead(200, { "content-type": "application/x-amz-json-1.0" });
      res.end(JSON.stringify({ Successful, Failed }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  Object.assign(state, {
    endpoint: `http://127.0.0.1:${port}`,
    queueUrl: `http://127.0.0.1:${port}/000000000000/test-deliveries.fifo`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
  return state;
}
