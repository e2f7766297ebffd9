/**
 * The local SQS: an in-process HTTP server on loopback speaking SQS's AWS JSON 1.0 protocol (what
 * `@aws-sdk/client-sqs` v3 sends: `POST /`, `X-Amz-Target: AmazonSQS.<Action>`, content type
 * `application/x-amz-json-1.0`), so the unchanged SDK client works against it. It emulates the subset
 * the large-room delivery path uses, with the semantics the SQS Developer Guide documents: FIFO
 * queues (message groups, deduplication), visibility timeouts, receipt handles, redrive to a
 * dead-letter queue, retention, long polling, batch limits and the typed errors. docs/local.md,
 * "The delivery queue, locally", lists what it emulates and where it differs from AWS.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { SQSClient } from "@aws-sdk/client-sqs";
import type { Logger } from "./logger";

/** The account id local ARNs and URLs carry (as LocalStack's and the local gateway's). */
export const LOCAL_ACCOUNT_ID = "000000000000";

// SQS quotas (SQS Developer Guide, "Amazon SQS quotas").
/** Default MaximumMessageSize: 256 KiB (a queue may set up to 1 MiB, as AWS allows since 2025). */
export const DEFAULT_MAX_MESSAGE_BYTES = 262_144;
export const MAX_MESSAGE_BYTES_LIMIT = 1_048_576;
export const MAX_BATCH_ENTRIES = 10;
export const MAX_RECEIVE_MESSAGES = 10;
export const MAX_WAIT_TIME_SECONDS = 20;
export const MAX_VISIBILITY_TIMEOUT_SECONDS = 43_200;
export const MAX_DELAY_SECONDS = 900;
/** FIFO deduplication interval: 5 minutes. */
export const DEDUPLICATION_INTERVAL_MS = 5 * 60_000;
/** A second PurgeQueue within 60 s of the first fails with PurgeQueueInProgress. */
export const PURGE_INTERVAL_MS = 60_000;
/** A queue name cannot be reused within 60 s of DeleteQueue (QueueDeletedRecently). */
export const QUEUE_REUSE_INTERVAL_MS = 60_000;
export const MAX_MESSAGE_ATTRIBUTES = 10;
/** The request body the server reads at most (the SDK never sends more than a full batch of 1 MiB messages). */
const MAX_REQUEST_BYTES = 12 * MAX_MESSAGE_BYTES_LIMIT;
/**
 * CloudWatch's ApproximateAgeOfOldestMessage skips a message received this many times or more (a
 * poison pill), unless every message is such (SQS Developer Guide, "Available CloudWatch metrics").
 */
const POISON_RECEIVES = 3;

// ---------------------------------------------------------------------------------------------
// Errors: each as SQS's JSON protocol answers it: an HTTP status, `x-amzn-query-error: <code>;Sender`
// and a body `{"__type": "<shape id>", "message": ...}` (SQS Developer Guide, "Interpreting Amazon
// SQS JSON API responses"). The SDK names the exception from the query code (awsQueryCompatible).

interface ErrorKind {
  readonly status: number;
  readonly type: string;
  readonly queryCode: string;
}

const kind = (status: number, type: string, queryCode: string): ErrorKind => ({ status, type, queryCode });

export const SQS_ERRORS = {
  QueueDoesNotExist: kind(400, "com.amazonaws.sqs#QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"),
  QueueNameExists: kind(400, "com.amazonaws.sqs#QueueNameExists", "QueueAlreadyExists"),
  QueueDeletedRecently: kind(400, "com.amazonaws.sqs#QueueDeletedRecently", "AWS.SimpleQueueService.QueueDeletedRecently"),
  InvalidParameterValue: kind(400, "com.amazon.coral.service#InvalidParameterValueException", "InvalidParameterValue"),
  MissingParameter: kind(400, "com.amazon.coral.service#MissingParameterException", "MissingParameter"),
  InvalidAttributeName: kind(400, "com.amazonaws.sqs#InvalidAttributeName", "InvalidAttributeName"),
  InvalidAttributeValue: kind(400, "com.amazonaws.sqs#InvalidAttributeValue", "InvalidAttributeValue"),
  InvalidMessageContents: kind(400, "com.amazonaws.sqs#InvalidMessageContents", "InvalidMessageContents"),
  ReceiptHandleIsInvalid: kind(404, "com.amazonaws.sqs#ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid"),
  MessageNotInflight: kind(400, "com.amazonaws.sqs#MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight"),
  EmptyBatchRequest: kind(400, "com.amazonaws.sqs#EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest"),
  TooManyEntriesInBatchRequest: kind(
    400,
    "com.amazonaws.sqs#TooManyEntriesInBatchRequest",
    "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
  ),
  BatchEntryIdsNotDistinct: kind(400, "com.amazonaws.sqs#BatchEntryIdsNotDistinct", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"),
  InvalidBatchEntryId: kind(400, "com.amazonaws.sqs#InvalidBatchEntryId", "AWS.SimpleQueueService.InvalidBatchEntryId"),
  BatchRequestTooLong: kind(400, "com.amazonaws.sqs#BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong"),
  PurgeQueueInProgress: kind(403, "com.amazonaws.sqs#PurgeQueueInProgress", "AWS.SimpleQueueService.PurgeQueueInProgress"),
  UnsupportedOperation: kind(400, "com.amazonaws.sqs#UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation"),
  SerializationException: kind(400, "com.amazon.coral.service#SerializationException", "SerializationException"),
  UnknownOperationException: kind(400, "com.amazon.coral.service#UnknownOperationException", "UnknownOperationException"),
  InternalFailure: kind(500, "com.amazon.coral.service#InternalFailure", "InternalFailure"),
} as const;

export type SqsErrorCode = keyof typeof SQS_ERRORS;

/** An error SQS answers with; thrown inside the emulator and turned into the response. */
export class SqsError extends Error {
  constructor(
    readonly code: SqsErrorCode,
    message: string,
  ) {
    super(message);
    this.name = code;
  }
}

function fail(code: SqsErrorCode, message: string): never {
  throw new SqsError(code, message);
}

function invalidValue(parameter: string, value: unknown, reason: string): never {
  return fail("InvalidParameterValue", `Value ${String(value)} for parameter ${parameter} is invalid. Reason: ${reason}`);
}

// ---------------------------------------------------------------------------------------------
// Model

export interface MessageAttributeValue {
  readonly DataType: string;
  readonly StringValue?: string;
  /** Base64, as the JSON protocol carries blobs. */
  readonly BinaryValue?: string;
}

interface StoredMessage {
  readonly messageId: string;
  readonly body: string;
  readonly md5OfBody: string;
  readonly attributes: Readonly<Record<string, MessageAttributeValue>>;
  readonly md5OfAttributes?: string;
  readonly senderId: string;
  /** SentTimestamp (epoch ms): kept when the message moves to a dead-letter queue. */
  readonly sentAt: number;
  /** Retention counts from here: SentTimestamp, or for a FIFO dead-letter queue the move (the timestamp resets). */
  readonly enqueuedAt: number;
  /** What ApproximateAgeOfOldestMessage measures from: the send, or the move to a dead-letter queue. */
  readonly ageFrom: number;
  readonly groupId?: string;
  readonly deduplicationId?: string;
  readonly sequenceNumber?: string;
  readonly traceHeader?: string;
  readonly deadLetterSourceArn?: string;
  /** Not receivable before (delay, then visibility timeout). */
  visibleAt: number;
  receiveCount: number;
  firstReceiveAt?: number;
  /** The last receive's receipt handle and when it was issued. */
  receipt?: string;
  receivedAt?: number;
}

interface QueueAttributes {
  delaySeconds: number;
  maximumMessageSize: number;
  messageRetentionPeriod: number;
  receiveMessageWaitTimeSeconds: number;
  visibilityTimeout: number;
  redrivePolicy?: { readonly deadLetterTargetArn: string; readonly maxReceiveCount: number };
  fifoQueue: boolean;
  contentBasedDeduplication: boolean;
  deduplicationScope: "queue" | "messageGroup";
  fifoThroughputLimit: "perQueue" | "perMessageGroupId";
  /** Stored and returned, not enforced (no encryption or access policy locally). */
  passthrough: Record<string, string>;
}

interface Waiter {
  readonly max: number;
  readonly visibilityTimeout: number;
  readonly respond: (messages: StoredMessage[]) => void;
}

interface Queue {
  readonly name: string;
  readonly arn: string;
  readonly url: string;
  readonly createdAt: number;
  attributes: QueueAttributes;
  /** Send order (FIFO order within each group). */
  messages: StoredMessage[];
  /** Deduplication key → the accepted send, for DEDUPLICATION_INTERVAL_MS. */
  readonly dedup: Map<string, { readonly messageId: string; readonly sequenceNumber: string; readonly at: number }>;
  lastPurgeAt?: number;
  /** The earliest time a message's retention ends (sweep scans only from then). */
  nextExpiryAt: number;
  readonly waiters: Set<Waiter>;
  wakeTimer?: NodeJS.Timeout;
  readonly counters: { sent: number; received: number; deleted: number; movedToDeadLetterQueue: number; expired: number; purged: number };
}

/** What the bench reads: the queue-depth figures SQS reports and CloudWatch's age of the oldest message. */
export interface QueueStats {
  readonly name: string;
  /** ApproximateNumberOfMessages: available for retrieval (a FIFO message behind an in-flight one of its group counts too). */
  readonly approximateNumberOfMessages: number;
  /** ApproximateNumberOfMessagesNotVisible: received, neither deleted nor visible again. */
  readonly approximateNumberOfMessagesNotVisible: number;
  readonly approximateNumberOfMessagesDelayed: number;
  /** CloudWatch ApproximateAgeOfOldestMessage, seconds (0 when empty). */
  readonly approximateAgeOfOldestMessageSeconds: number;
  readonly sent: number;
  readonly received: number;
  readonly deleted: number;
  readonly movedToDeadLetterQueue: number;
  readonly expired: number;
  readonly purged: number;
}

export interface LocalSqsOptions {
  readonly host?: string;
  /** 0 (the default) picks a free port. */
  readonly port?: number;
  readonly region?: string;
  readonly accountId?: string;
  /** Epoch ms; tests may replace it to step over the deduplication or retention interval. */
  readonly now?: () => number;
  readonly logger?: Logger;
}

export interface LocalSqs {
  /** `http://<host>:<port>`: the SDK client's `endpoint`. */
  readonly endpoint: string;
  readonly region: string;
  readonly accountId: string;
  queueUrl(name: string): string;
  queueArn(name: string): string;
  /** Figures of one queue; throws QueueDoesNotExist for an unknown name. */
  stats(name: string): QueueStats;
  /** Answers every pending long poll with no messages, closes every connection and the port. */
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
/**
 * An unchanged AWS SDK SQS client pointed at a local SQS: any credentials sign (the emulator reads
 * only the access key id, as SenderId). `maxAttempts` 1 leaves retrying to the caller's own loop.
 */
export function localSqsClient(
  endpoint: string,
  region: string,
  options: { readonly accessKeyId?: string; readonly maxAttempts?: number } = {},
): SQSClient {
  return new SQSClient({
    region,
    endpoint,
    credentials: { accessKeyId: options.accessKeyId ?? "local", secretAccessKey: "local" },
    ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}),
  });
}

// Pure helpers (exported for unit tests)

export const md5Hex = (data: string | Buffer): string => createHash("md5").update(data).digest("hex");

/**
 * MD5OfMessageAttributes as SQS computes it (SQS Developer Guide, "Calculating the MD5 message digest
 * for message attributes"): attributes sorted by name; each as name, data type (4-byte big-endian
 * length + UTF-8 bytes each), a transport byte (1 String/Number, 2 Binary) and the value (length + bytes).
 */
export function md5OfMessageAttributes(attributes: Readonly<Record<string, MessageAttributeValue>>): string {
  const parts: Buffer[] = [];
  const lengthPrefixed = (bytes: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(bytes.length);
    parts.push(len, bytes);
  };
  for (const name of Object.keys(attributes).sort()) {
    const a = attributes[name];
    lengthPrefixed(Buffer.from(name, "utf8"));
    lengthPrefixed(Buffer.from(a.DataType, "utf8"));
    if (a.DataType.startsWith("Binary")) {
      parts.push(Buffer.from([2]));
      lengthPrefixed(Buffer.from(a.BinaryValue ?? "", "base64"));
    } else {
      parts.push(Buffer.from([1]));
      lengthPrefixed(Buffer.from(a.StringValue ?? "", "utf8"));
    }
  }
  return md5Hex(Buffer.concat(parts));
}

/** Characters SQS accepts in a body or attribute value: #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF. */
const INVALID_CHARACTER = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

export function hasInvalidCharacters(text: string): boolean {
  return INVALID_CHARACTER.test(text);
}

const QUEUE_NAME = /^[A-Za-z0-9_-]{1,80}$/;
/** MessageGroupId and MessageDeduplicationId: 1-128 alphanumeric and punctuation characters. */
const FIFO_ID = /^[A-Za-z0-9!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]{1,128}$/;
const BATCH_ENTRY_ID = /^[A-Za-z0-9_-]{1,80}$/;
const ATTRIBUTE_NAME = /^(?!aws\.|amazon\.)(?!.*\.\.)(?!\.)[A-Za-z0-9_.-]{1,256}(?<!\.)$/i;

/** Valid queue names: 1-80 of [A-Za-z0-9_-], plus the `.fifo` suffix for a FIFO queue. */
export function validQueueName(name: string, fifo: boolean): boolean {
  if (fifo) return name.endsWith(".fifo") && QUEUE_NAME.test(name.slice(0, -5)) && name.length <= 80;
  return QUEUE_NAME.test(name);
}

/** Receipt handles: opaque to clients, unique per receive, naming the queue and the message. */
function makeReceipt(queue: string, messageId: string): string {
  return Buffer.from(`${queue}\n${messageId}\n${randomBytes(24).toString("base64")}`, "utf8").toString("base64");
}

function parseReceipt(handle: string): { readonly queue: string; readonly messageId: string } | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(handle)) return undefined;
  const parts = Buffer.from(handle, "base64").toString("utf8").split("\n");
  if (parts.length !== 3 || !parts[0] || !parts[1]) return undefined;
  return { queue: parts[0], messageId: parts[1] };
}

// ---------------------------------------------------------------------------------------------
// Request field readers: the JSON protocol's members, checked as the service checks them.

type Json = Record<string, unknown>;

const optionalString = (req: Json, field: string): string | undefined => {
  const v = req[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") return fail("InvalidParameterValue", `Value for parameter ${field} must be a string.`);
  return v;
};

const requiredString = (req: Json, field: string): string => {
  const v = optionalString(req, field);
  if (v === undefined) return fail("MissingParameter", `The request must contain the parameter ${field}.`);
  return v;
};

const optionalInt = (req: Json, field: string, min: number, max: number, reason: string): number | undefined => {
  const v = req[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) return invalidValue(field, v, reason);
  return v;
};

const stringList = (req: Json, field: string): string[] => {
  const v = req[field];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string"))
    return fail("InvalidParameterValue", `Value for parameter ${field} must be a list of strings.`);
  return v as string[];
};

const entries = (req: Json): Json[] => {
  const v = req.Entries;
  if (v === undefined || v === null || (Array.isArray(v) && v.length === 0))
    return fail("EmptyBatchRequest", "There should be at least one SendMessageBatchRequestEntry in the request.");
  if (!Array.isArray(v) || v.some((e) => typeof e !== "object" || e === null || Array.isArray(e)))
    return fail("InvalidParameterValue", "Value for parameter Entries must be a list of entries.");
  return v as Json[];
};

// ---------------------------------------------------------------------------------------------
// The emulator

const QUEUE_ATTRIBUTE_NAMES = [
  "DelaySeconds",
  "MaximumMessageSize",
  "MessageRetentionPeriod",
  "ReceiveMessageWaitTimeSeconds",
  "VisibilityTimeout",
  "RedrivePolicy",
  "FifoQueue",
  "ContentBasedDeduplication",
  "DeduplicationScope",
  "FifoThroughputLimit",
  "Policy",
  "RedriveAllowPolicy",
  "KmsMasterKeyId",
  "KmsDataKeyReusePeriodSeconds",
  "SqsManagedSseEnabled",
] as const;

const READ_ONLY_ATTRIBUTE_NAMES = [
  "ApproximateNumberOfMessages",
  "ApproximateNumberOfMessagesNotVisible",
  "ApproximateNumberOfMessagesDelayed",
  "CreatedTimestamp",
  "LastModifiedTimestamp",
  "QueueArn",
] as const;

const SYSTEM_ATTRIBUTE_NAMES = [
  "SenderId",
  "SentTimestamp",
  "ApproximateReceiveCount",
  "ApproximateFirstReceiveTimestamp",
  "SequenceNumber",
  "MessageDeduplicationId",
  "MessageGroupId",
  "AWSTraceHeader",
  "DeadLetterQueueSourceArn",
] as const;

class Emulator {
  readonly queues = new Map<string, Queue>();
  private readonly deletedAt = new Map<string, number>();
  private sequence = 18_000_000_000_000_000_000n;
  origin = "";

  constructor(
    readonly region: string,
    readonly accountId: string,
    readonly now: () => number,
  ) {}

  queueArn(name: string): string {
    return `arn:aws:sqs:${this.region}:${this.accountId}:${name}`;
  }

  queueUrl(name: string): string {
    return `${this.origin}/${this.accountId}/${name}`;
  }

  /** The queue a QueueUrl names (its path is `/<account>/<name>`, whatever the host, as the SDK may rewrite it). */
  private queueOf(req: Json): Queue {
    const url = requiredString(req, "QueueUrl");
    let path: string;
    try {
      path = new URL(url).pathname;
    } catch {
      path = url;
    }
    const m = /^\/?(\d{12})\/([^/]+)\/?$/.exec(path);
    const q = m && m[1] === this.accountId ? this.queues.get(m[2]) : undefined;
    if (!q) return fail("QueueDoesNotExist", "The specified queue does not exist.");
    this.sweep(q);
    return q;
  }

  private queueByArn(arn: string): Queue | undefined {
    const prefix = `arn:aws:sqs:${this.region}:${this.accountId}:`;
    return arn.startsWith(prefix) ? this.queues.get(arn.slice(prefix.length)) : undefined;
  }

  private nextSequence(): string {
    this.sequence += 1n;
    return this.sequence.toString();
  }

  // --- queue state over time -----------------------------------------------------------------

  /**
   * Drops what retention expired and the deduplication entries older than the interval. Messages are
   * scanned only once the earliest expiry is due (nextExpiryAt), so a busy queue is not rescanned on
   * every call; deduplication entries are in send order, so the scan stops at the first live one.
   */
  private sweep(q: Queue): void {
    const now = this.now();
    if (now >= q.nextExpiryAt) {
      const retentionMs = q.attributes.messageRetentionPeriod * 1000;
      const before = q.messages.length;
      q.messages = q.messages.filter((m) => m.enqueuedAt + retentionMs > now);
      q.counters.expired += before - q.messages.length;
      q.nextExpiryAt = q.messages.reduce((min, m) => Math.min(min, m.enqueuedAt + retentionMs), Number.POSITIVE_INFINITY);
    }
    for (const [key, entry] of q.dedup) {
      if (entry.at + DEDUPLICATION_INTERVAL_MS > now) break;
      q.dedup.delete(key);
    }
  }

  /** Adds a message (a send, or a move to this dead-letter queue). */
  private enqueue(q: Queue, m: StoredMessage): void {
    q.messages.push(m);
    q.nextExpiryAt = Math.min(q.nextExpiryAt, m.enqueuedAt + q.attributes.messageRetentionPeriod * 1000);
  }

  private inFlight(m: StoredMessage, now: number): boolean {
    return m.receiveCount > 0 && m.receipt !== undefined && m.visibleAt > now;
  }

  /**
   * Picks up to `max` messages and marks them received. Standard queues: oldest visible first.
   * FIFO queues: a group with a message in flight is blocked; otherwise its messages come in order,
   * as many of one group as possible first (SQS Developer Guide, "FIFO queue delivery logic").
   * A message already received maxReceiveCount times moves to the dead-letter queue instead of
   * being returned (the receive that would exceed the count).
   */
  private take(q: Queue, max: number, visibilityTimeout: number): StoredMessage[] {
    this.sweep(q);
    const now = this.now();
    const out: StoredMessage[] = [];
    const redrive = q.attributes.redrivePolicy;
    const dlq = redrive ? this.queueByArn(redrive.deadLetterTargetArn) : undefined;
    const tryTake = (m: StoredMessage): "taken" | "moved" => {
      if (redrive && dlq && m.receiveCount >= redrive.maxReceiveCount) {
        this.moveToDeadLetterQueue(q, m, dlq, now);
        return "moved";
      }
      m.receiveCount += 1;
      m.firstReceiveAt ??= now;
      m.receipt = makeReceipt(q.name, m.messageId);
      m.receivedAt = now;
      m.visibleAt = now + visibilityTimeout * 1000;
      out.push(m);
      q.counters.received += 1;
      return "taken";
    };
    if (!q.attributes.fifoQueue) {
      for (const m of [...q.messages]) {
        if (out.length >= max) break;
        if (m.visibleAt <= now) tryTake(m);
      }
      return out;
    }
    // One pass: each group's messages in order (groups in the order of their oldest message), and
    // the groups blocked by a message in flight.
    const groups = new Map<string, StoredMessage[]>();
    const blocked = new Set<string>();
    for (const m of q.messages) {
      const group = m.groupId ?? "";
      if (this.inFlight(m, now)) blocked.add(group);
      const list = groups.get(group);
      if (list) list.push(m);
      else groups.set(group, [m]);
    }
    for (const [group, list] of groups) {
      if (out.length >= max) break;
      if (blocked.has(group)) continue;
      for (const m of list) {
        if (out.length >= max || m.visibleAt > now) break;
        tryTake(m);
      }
    }
    return out;
  }

  private moveToDeadLetterQueue(q: Queue, m: StoredMessage, dlq: Queue, now: number): void {
    q.messages.splice(q.messages.indexOf(m), 1);
    q.counters.movedToDeadLetterQueue += 1;
    // MessageId, body, attributes, SentTimestamp, the first receive and the receive count are kept
    // (what the DLQ's ApproximateReceiveCount starts from is not documented); a standard DLQ keeps
    // the enqueue time (retention), a FIFO one resets it (SQS Developer Guide, "Setting-up
    // dead-letter queue retention"); the age metric counts from the move in both.
    const moved: StoredMessage = {
      ...m,
      enqueuedAt: dlq.attributes.fifoQueue ? now : m.enqueuedAt,
      ageFrom: now,
      visibleAt: now,
      receipt: undefined,
      receivedAt: undefined,
      sequenceNumber: dlq.attributes.fifoQueue ? this.nextSequence() : undefined,
      deadLetterSourceArn: q.arn,
    };
    this.enqueue(dlq, moved);
    this.kick(dlq);
  }

  /** Answers the long polls that can now get messages, and arms a timer for the next message to become visible. */
  kick(q: Queue): void {
    for (const w of [...q.waiters]) {
      // A waiter answered meanwhile (release() kicks again from inside a respond) is skipped.
      if (!q.waiters.has(w)) continue;
      const got = this.take(q, w.max, w.visibilityTimeout);
      if (got.length === 0) break;
      q.waiters.delete(w);
      w.respond(got);
    }
    if (q.wakeTimer) clearTimeout(q.wakeTimer);
    q.wakeTimer = undefined;
    if (q.waiters.size === 0) return;
    const now = this.now();
    let next = Number.POSITIVE_INFINITY;
    for (const m of q.messages) if (m.visibleAt > now) next = Math.min(next, m.visibleAt);
    if (next !== Number.POSITIVE_INFINITY) {
      q.wakeTimer = setTimeout(() => this.kick(q), Math.max(1, next - now));
      q.wakeTimer.unref();
    }
  }

  stats(name: string): QueueStats {
    const q = this.queues.get(name) ?? fail("QueueDoesNotExist", "The specified queue does not exist.");
    this.sweep(q);
    const now = this.now();
    let visible = 0;
    let notVisible = 0;
    let delayed = 0;
    for (const m of q.messages) {
      if (m.visibleAt <= now) visible += 1;
      else if (m.receiveCount > 0) notVisible += 1;
      else delayed += 1;
    }
    const candidates = q.messages.filter((m) => m.receiveCount < POISON_RECEIVES);
    const counted = candidates.length > 0 ? candidates : q.messages;
    const oldest = counted.reduce((min, m) => Math.min(min, m.ageFrom), Number.POSITIVE_INFINITY);
    return {
      name,
      approximateNumberOfMessages: visible,
      approximateNumberOfMessagesNotVisible: notVisible,
      approximateNumberOfMessagesDelayed: delayed,
      approximateAgeOfOldestMessageSeconds: oldest === Number.POSITIVE_INFINITY ? 0 : Math.max(0, Math.floor((now - oldest) / 1000)),
      ...q.counters,
    };
  }

  // --- actions -------------------------------------------------------------------------------

  createQueue(req: Json): Json {
    const name = requiredString(req, "QueueName");
    const given = this.readAttributes(req.Attributes);
    const fifo = given.FifoQueue === "true";
    if (!validQueueName(name, fifo)) {
      return fail(
        "InvalidParameterValue",
        fifo || name.endsWith(".fifo")
          ? "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length."
          : "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
      );
    }
    const attributes = this.queueAttributes(given, fifo);
    const existing = this.queues.get(name);
    if (existing) {
      for (const key of Object.keys(given)) {
        if (this.attributeValue(existing, key) !== this.normalisedAttribute(attributes, key)) {
          return fail("QueueNameExists", `A queue already exists with the same name and a different value for attribute ${key}`);
        }
      }
      return { QueueUrl: existing.url };
    }
    const deleted = this.deletedAt.get(name);
    if (deleted !== undefined && this.now() - deleted < QUEUE_REUSE_INTERVAL_MS) {
      return fail(
        "QueueDeletedRecently",
        "You must wait 60 seconds after deleting a queue before you can create another with the same name.",
      );
    }
    const q: Queue = {
      name,
      arn: this.queueArn(name),
      url: this.queueUrl(name),
      createdAt: this.now(),
      attributes,
      messages: [],
      nextExpiryAt: Number.POSITIVE_INFINITY,
      dedup: new Map(),
      waiters: new Set(),
      counters: { sent: 0, received: 0, deleted: 0, movedToDeadLetterQueue: 0, expired: 0, purged: 0 },
    };
    this.queues.set(name, q);
    return { QueueUrl: q.url };
  }

  private readAttributes(value: unknown): Record<string, string> {
    if (value === undefined || value === null) return {};
    if (typeof value !== "object" || Array.isArray(value)) return fail("InvalidParameterValue", "Attributes must be a map of strings.");
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(value as Json)) {
      if (!(QUEUE_ATTRIBUTE_NAMES as readonly string[]).includes(k)) {
        return fail("InvalidAttributeName", `Unknown Attribute ${k}.`);
      }
      if (typeof v !== "string") return fail("InvalidAttributeValue", `Invalid value for the parameter ${k}.`);
      out[k] = v;
    }
    return out;
  }

  private queueAttributes(given: Record<string, string>, fifo: boolean): QueueAttributes {
    const int = (key: string, min: number, max: number, dflt: number): number => {
      const raw = given[key];
      if (raw === undefined) return dflt;
      const n = Number(raw);
      if (!/^\d+$/.test(raw) || n < min || n > max) return fail("InvalidAttributeValue", `Invalid value for the parameter ${key}.`);
      return n;
    };
    const bool = (key: string): boolean => {
      const raw = given[key];
      if (raw === undefined) return false;
      if (raw !== "true" && raw !== "false") return fail("InvalidAttributeValue", `Invalid value for the parameter ${key}.`);
      return raw === "true";
    };
    if (given.FifoQueue !== undefined && given.FifoQueue !== "true") {
      return fail("InvalidAttributeValue", "Invalid value for the parameter FifoQueue. Reason: Modifying queue type is not supported.");
    }
    for (const key of ["ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"]) {
      if (!fifo && given[key] !== undefined) {
        return fail("InvalidAttributeName", `Unknown Attribute ${key}.`);
      }
    }
    const scope = given.DeduplicationScope ?? "queue";
    const limit = given.FifoThroughputLimit ?? "perQueue";
    if (scope !== "queue" && scope !== "messageGroup")
      return fail("InvalidAttributeValue", "Invalid value for the parameter DeduplicationScope.");
    if (limit !== "perQueue" && limit !== "perMessageGroupId")
      return fail("InvalidAttributeValue", "Invalid value for the parameter FifoThroughputLimit.");
    const passthrough: Record<string, string> = {};
    for (const key of ["Policy", "RedriveAllowPolicy", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled"]) {
      if (given[key] !== undefined) passthrough[key] = given[key];
    }
    return {
      delaySeconds: int("DelaySeconds", 0, MAX_DELAY_SECONDS, 0),
      maximumMessageSize: int("MaximumMessageSize", 1024, MAX_MESSAGE_BYTES_LIMIT, DEFAULT_MAX_MESSAGE_BYTES),
      messageRetentionPeriod: int("MessageRetentionPeriod", 60, 1_209_600, 345_600),
      receiveMessageWaitTimeSeconds: int("ReceiveMessageWaitTimeSeconds", 0, MAX_WAIT_TIME_SECONDS, 0),
      visibilityTimeout: int("VisibilityTimeout", 0, MAX_VISIBILITY_TIMEOUT_SECONDS, 30),
      redrivePolicy: given.RedrivePolicy === undefined ? undefined : this.redrivePolicy(given.RedrivePolicy, fifo),
      fifoQueue: fifo,
      contentBasedDeduplication: bool("ContentBasedDeduplication"),
      deduplicationScope: scope,
      fifoThroughputLimit: limit,
      passthrough,
    };
  }

  /** RedrivePolicy: JSON `{deadLetterTargetArn, maxReceiveCount}`; the target must exist and be of the same type. */
  private redrivePolicy(raw: string, fifo: boolean): QueueAttributes["redrivePolicy"] {
    const bad = (reason: string) => invalidValue("RedrivePolicy", raw, reason);
    let p: unknown;
    try {
      p = JSON.parse(raw);
    } catch {
      return bad("Redrive policy is not a valid JSON map.");
    }
    const o = p as { deadLetterTargetArn?: unknown; maxReceiveCount?: unknown } | null;
    if (typeof o !== "object" || o === null) return bad("Redrive policy is not a valid JSON map.");
    if (typeof o.deadLetterTargetArn !== "string") return bad("Redrive policy does not contain mandatory attribute: deadLetterTargetArn.");
    const count = typeof o.maxReceiveCount === "string" ? Number(o.maxReceiveCount) : o.maxReceiveCount;
    if (o.maxReceiveCount === undefined) return bad("Redrive policy does not contain mandatory attribute: maxReceiveCount.");
    if (typeof count !== "number" || !Number.isInteger(count) || count < 1 || count > 1000) {
      return bad("Invalid value for maxReceiveCount: must be an integer from 1 to 1000.");
    }
    const target = this.queueByArn(o.deadLetterTargetArn);
    if (!target) return bad("Dead letter target does not exist.");
    if (target.attributes.fifoQueue !== fifo) return bad("Dead-letter queue must be same type of queue as the source.");
    return { deadLetterTargetArn: o.deadLetterTargetArn, maxReceiveCount: count };
  }

  private normalisedAttribute(a: QueueAttributes, key: string): string | undefined {
    switch (key) {
      case "DelaySeconds":
        return String(a.delaySeconds);
      case "MaximumMessageSize":
        return String(a.maximumMessageSize);
      case "MessageRetentionPeriod":
        return String(a.messageRetentionPeriod);
      case "ReceiveMessageWaitTimeSeconds":
        return String(a.receiveMessageWaitTimeSeconds);
      case "VisibilityTimeout":
        return String(a.visibilityTimeout);
      case "RedrivePolicy":
        return a.redrivePolicy ? JSON.stringify(a.redrivePolicy) : undefined;
      case "FifoQueue":
        return a.fifoQueue ? "true" : undefined;
      case "ContentBasedDeduplication":
        return a.fifoQueue ? String(a.contentBasedDeduplication) : undefined;
      case "DeduplicationScope":
        return a.fifoQueue ? a.deduplicationScope : undefined;
      case "FifoThroughputLimit":
        return a.fifoQueue ? a.fifoThroughputLimit : undefined;
      default:
        return a.passthrough[key];
    }
  }

  private attributeValue(q: Queue, key: string): string | undefined {
    const stats = () => this.stats(q.name);
    switch (key) {
      case "ApproximateNumberOfMessages":
        return String(stats().approximateNumberOfMessages);
      case "ApproximateNumberOfMessagesNotVisible":
        return String(stats().approximateNumberOfMessagesNotVisible);
      case "ApproximateNumberOfMessagesDelayed":
        return String(stats().approximateNumberOfMessagesDelayed);
      case "CreatedTimestamp":
      case "LastModifiedTimestamp":
        return String(Math.floor(q.createdAt / 1000));
      case "QueueArn":
        return q.arn;
      default:
        return this.normalisedAttribute(q.attributes, key);
    }
  }

  getQueueUrl(req: Json): Json {
    const name = requiredString(req, "QueueName");
    const owner = optionalString(req, "QueueOwnerAWSAccountId");
    const q = owner === undefined || owner === this.accountId ? this.queues.get(name) : undefined;
    if (!q) return fail("QueueDoesNotExist", "The specified queue does not exist.");
    return { QueueUrl: q.url };
  }

  getQueueAttributes(req: Json): Json {
    const q = this.queueOf(req);
    const names = stringList(req, "AttributeNames");
    const all = [...QUEUE_ATTRIBUTE_NAMES, ...READ_ONLY_ATTRIBUTE_NAMES] as readonly string[];
    for (const n of names) if (n !== "All" && !all.includes(n)) return fail("InvalidAttributeName", `Unknown Attribute ${n}.`);
    const wanted = names.includes("All") ? all : names;
    const out: Record<string, string> = {};
    for (const n of wanted) {
      const v = this.attributeValue(q, n);
      if (v !== undefined) out[n] = v;
    }
    return Object.keys(out).length > 0 ? { Attributes: out } : {};
  }

  listQueues(req: Json): Json {
    const prefix = optionalString(req, "QueueNamePrefix") ?? "";
    const urls = [...this.queues.values()].filter((q) => q.name.startsWith(prefix)).map((q) => q.url);
    return urls.length > 0 ? { QueueUrls: urls.slice(0, 1000) } : {};
  }

  deleteQueue(req: Json): Json {
    const q = this.queueOf(req);
    this.queues.delete(q.name);
    this.deletedAt.set(q.name, this.now());
    for (const w of q.waiters) w.respond([]);
    q.waiters.clear();
    if (q.wakeTimer) clearTimeout(q.wakeTimer);
    return {};
  }

  purgeQueue(req: Json): Json {
    const q = this.queueOf(req);
    const now = this.now();
    if (q.lastPurgeAt !== undefined && now - q.lastPurgeAt < PURGE_INTERVAL_MS) {
      return fail("PurgeQueueInProgress", `Only one PurgeQueue operation on ${q.name} is allowed every 60 seconds.`);
    }
    q.lastPurgeAt = now;
    q.counters.purged += q.messages.length;
    q.messages = [];
    return {};
  }

  /** Validates one message (SendMessage or a batch entry) and returns it ready to store, or the duplicate's answer. */
  private prepare(
    q: Queue,
    req: Json,
    senderId: string,
  ): { readonly stored?: StoredMessage; readonly result: Json; readonly bytes: number } {
    const body = requiredString(req, "MessageBody");
    if (body.length === 0) return fail("MissingParameter", "The request must contain the parameter MessageBody.");
    if (hasInvalidCharacters(body)) {
      return fail(
        "InvalidMessageContents",
        "Invalid binary character in message body. Only the characters #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF are allowed.",
      );
    }
    const attributes = this.messageAttributes(req.MessageAttributes);
    const traceHeader = this.traceHeader(req.MessageSystemAttributes);
    const bytes = Buffer.byteLength(body, "utf8") + attributeBytes(attributes);
    const limit = q.attributes.maximumMessageSize;
    if (bytes > limit)
      return fail("InvalidParameterValue", `One or more parameters are invalid. Reason: Message must be shorter than ${limit} bytes.`);
    const delay = optionalInt(req, "DelaySeconds", 0, MAX_DELAY_SECONDS, "DelaySeconds must be >= 0 and <= 900.");
    const groupId = optionalString(req, "MessageGroupId");
    let dedupId = optionalString(req, "MessageDeduplicationId");
    const fifo = q.attributes.fifoQueue;
    if (fifo) {
      if (delay !== undefined && delay !== 0) {
        return invalidValue("DelaySeconds", delay, "The request include parameter that is not valid for this queue type");
      }
      if (groupId === undefined) return fail("MissingParameter", "The request must contain the parameter MessageGroupId.");
      if (!FIFO_ID.test(groupId)) {
        return invalidValue(
          "MessageGroupId",
          groupId,
          "MessageGroupId can only include alphanumeric and punctuation characters. 1 to 128 in length.",
        );
      }
      if (dedupId !== undefined && !FIFO_ID.test(dedupId)) {
        return invalidValue(
          "MessageDeduplicationId",
          dedupId,
          "MessageDeduplicationId can only include alphanumeric and punctuation characters. 1 to 128 in length.",
        );
      }
      if (dedupId === undefined) {
        if (!q.attributes.contentBasedDeduplication) {
          return fail(
            "InvalidParameterValue",
            "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
          );
        }
        // Content-based deduplication: the SHA-256 of the body (not of the attributes).
        dedupId = createHash("sha256").update(body, "utf8").digest("hex");
      }
    } else if (dedupId !== undefined) {
      return invalidValue("MessageDeduplicationId", dedupId, "The request include parameter that is not valid for this queue type");
    } else if (groupId !== undefined && !FIFO_ID.test(groupId)) {
      return invalidValue(
        "MessageGroupId",
        groupId,
        "MessageGroupId can only include alphanumeric and punctuation characters. 1 to 128 in length.",
      );
    }
    const md5OfBody = md5Hex(body);
    const md5OfAttributes = Object.keys(attributes).length > 0 ? md5OfMessageAttributes(attributes) : undefined;
    const now = this.now();
    if (fifo && dedupId !== undefined) {
      const key = q.attributes.deduplicationScope === "messageGroup" ? `${groupId}\n${dedupId}` : dedupId;
      const prior = q.dedup.get(key);
      if (prior && prior.at + DEDUPLICATION_INTERVAL_MS > now) {
        // A duplicate within the interval is accepted and not delivered: the answer names the original.
        return {
          bytes,
          result: {
            MessageId: prior.messageId,
            MD5OfMessageBody: md5OfBody,
            ...(md5OfAttributes ? { MD5OfMessageAttributes: md5OfAttributes } : {}),
            SequenceNumber: prior.sequenceNumber,
          },
        };
      }
    }
    const stored: StoredMessage = {
      messageId: randomUUID(),
      body,
      md5OfBody,
      attributes,
      md5OfAttributes,
      senderId,
      sentAt: now,
      enqueuedAt: now,
      ageFrom: now,
      groupId,
      deduplicationId: fifo ? dedupId : undefined,
      sequenceNumber: fifo ? this.nextSequence() : undefined,
      traceHeader,
      visibleAt: now + (delay ?? q.attributes.delaySeconds) * 1000,
      receiveCount: 0,
    };
    return {
      stored,
      bytes,
      result: {
        MessageId: stored.messageId,
        MD5OfMessageBody: md5OfBody,
        ...(md5OfAttributes ? { MD5OfMessageAttributes: md5OfAttributes } : {}),
        ...(stored.sequenceNumber ? { SequenceNumber: stored.sequenceNumber } : {}),
      },
    };
  }

  private commit(q: Queue, stored: StoredMessage, dedupId: string | undefined): void {
    this.enqueue(q, stored);
    q.counters.sent += 1;
    if (q.attributes.fifoQueue && dedupId !== undefined) {
      const key = q.attributes.deduplicationScope === "messageGroup" ? `${stored.groupId}\n${dedupId}` : dedupId;
      q.dedup.delete(key); // re-inserted at the end: the map stays in send order for sweep()
      q.dedup.set(key, { messageId: stored.messageId, sequenceNumber: stored.sequenceNumber ?? "", at: stored.sentAt });
    }
  }

  private messageAttributes(value: unknown): Record<string, MessageAttributeValue> {
    if (value === undefined || value === null) return {};
    if (typeof value !== "object" || Array.isArray(value)) return fail("InvalidParameterValue", "MessageAttributes must be a map.");
    const out: Record<string, MessageAttributeValue> = {};
    const names = Object.keys(value as Json);
    if (names.length > MAX_MESSAGE_ATTRIBUTES) {
      return fail(
        "InvalidParameterValue",
        `Number of message attributes [${names.length}] exceeds the allowed maximum [${MAX_MESSAGE_ATTRIBUTES}].`,
      );
    }
    for (const name of names) {
      if (!ATTRIBUTE_NAME.test(name)) return fail("InvalidParameterValue", `Message (user) attribute name '${name}' is invalid.`);
      const a = (value as Json)[name] as Json | null;
      if (typeof a !== "object" || a === null)
        return fail("InvalidParameterValue", `The message attribute '${name}' must contain a non-empty value.`);
      const type = a.DataType;
      if (typeof type !== "string" || !/^(String|Number|Binary)(\.[^\s]+)?$/.test(type)) {
        return fail(
          "InvalidParameterValue",
          `The message attribute '${name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.`,
        );
      }
      if (type.startsWith("Binary")) {
        if (typeof a.BinaryValue !== "string" || a.BinaryValue.length === 0) {
          return fail("InvalidParameterValue", `The message attribute '${name}' with type 'Binary' must use field 'Binary'.`);
        }
        out[name] = { DataType: type, BinaryValue: a.BinaryValue };
      } else {
        if (typeof a.StringValue !== "string" || a.StringValue.length === 0) {
          return fail(
            "InvalidParameterValue",
            `The message attribute '${name}' must contain a non-empty message attribute value for message attribute type '${type.split(".")[0]}'.`,
          );
        }
        if (hasInvalidCharacters(a.StringValue))
          return fail("InvalidParameterValue", `The message attribute '${name}' contains an invalid character.`);
        if (type.startsWith("Number") && !/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(a.StringValue)) {
          return fail("InvalidParameterValue", `Can't cast the value of message (user) attribute '${name}' to a number.`);
        }
        out[name] = { DataType: type, StringValue: a.StringValue };
      }
    }
    return out;
  }

  private traceHeader(value: unknown): string | undefined {
    if (value === undefined || value === null) return undefined;
    const v = value as Json;
    for (const k of Object.keys(v))
      if (k !== "AWSTraceHeader") return fail("InvalidParameterValue", `Message system attribute name '${k}' is invalid.`);
    const a = v.AWSTraceHeader as Json | undefined;
    if (!a) return undefined;
    if (a.DataType !== "String" || typeof a.StringValue !== "string") {
      return fail("InvalidParameterValue", "The message system attribute 'AWSTraceHeader' must be of type String.");
    }
    return a.StringValue;
  }

  sendMessage(req: Json, senderId: string): Json {
    const q = this.queueOf(req);
    const { stored, result } = this.prepare(q, req, senderId);
    if (stored) {
      this.commit(q, stored, stored.deduplicationId);
      this.kick(q);
    }
    return result;
  }

  sendMessageBatch(req: Json, senderId: string): Json {
    const q = this.queueOf(req);
    const list = this.checkBatch(entries(req));
    // The whole request is refused when its messages together pass the limit (BatchRequestTooLong).
    const total = list.reduce((n, e) => n + rawMessageBytes(e), 0);
    if (total > q.attributes.maximumMessageSize) {
      return fail(
        "BatchRequestTooLong",
        `Batch requests cannot be longer than ${q.attributes.maximumMessageSize} bytes. You have sent ${total} bytes.`,
      );
    }
    // Entries are taken in order, each against the deduplication state the earlier ones left.
    const answer = eachEntry(list, (e) => {
      const { stored, result } = this.prepare(q, e, senderId);
      if (stored) this.commit(q, stored, stored.deduplicationId);
      return result;
    });
    if (answer.Successful.length > 0) this.kick(q);
    return answer;
  }

  /** The request-level batch checks: at most 10 entries, ids well formed and distinct. */
  private checkBatch(list: Json[]): Json[] {
    if (list.length > MAX_BATCH_ENTRIES) {
      return fail(
        "TooManyEntriesInBatchRequest",
        `Maximum number of entries per request are ${MAX_BATCH_ENTRIES}. You have sent ${list.length}.`,
      );
    }
    const seen = new Set<string>();
    for (const e of list) {
      const id = e.Id;
      if (typeof id !== "string") return fail("MissingParameter", "The request must contain the parameter Id.");
      if (!BATCH_ENTRY_ID.test(id)) {
        return fail(
          "InvalidBatchEntryId",
          "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
        );
      }
      if (seen.has(id)) return fail("BatchEntryIdsNotDistinct", `Id ${id} repeated.`);
      seen.add(id);
    }
    return list;
  }

  receiveMessage(req: Json, respond: (body: Json) => void, onClose: (cancel: () => void) => void): void {
    const q = this.queueOf(req);
    const max = optionalInt(req, "MaxNumberOfMessages", 1, MAX_RECEIVE_MESSAGES, "Must be between 1 and 10, if provided.") ?? 1;
    const visibilityTimeout =
      optionalInt(req, "VisibilityTimeout", 0, MAX_VISIBILITY_TIMEOUT_SECONDS, "Must be between 0 and 43200, if provided.") ??
      q.attributes.visibilityTimeout;
    const wait =
      optionalInt(req, "WaitTimeSeconds", 0, MAX_WAIT_TIME_SECONDS, "Must be >= 0 and <= 20, if provided.") ??
      q.attributes.receiveMessageWaitTimeSeconds;
    const system = [...stringList(req, "AttributeNames"), ...stringList(req, "MessageSystemAttributeNames")];
    for (const n of system) {
      if (n !== "All" && !(SYSTEM_ATTRIBUTE_NAMES as readonly string[]).includes(n))
        fail("InvalidAttributeName", `Unknown Attribute ${n}.`);
    }
    const userNames = stringList(req, "MessageAttributeNames");
    const render = (messages: StoredMessage[]) => ({ Messages: messages.map((m) => this.render(m, system, userNames)) });
    const got = this.take(q, max, visibilityTimeout);
    if (got.length > 0 || wait === 0) {
      respond(got.length > 0 ? render(got) : {});
      return;
    }
    // Long polling: answer as soon as a message can be returned, or with none after WaitTimeSeconds.
    let timer: NodeJS.Timeout | undefined;
    const waiter: Waiter = {
      max,
      visibilityTimeout,
      respond: (messages) => {
        if (timer) clearTimeout(timer);
        respond(messages.length > 0 ? render(messages) : {});
      },
    };
    q.waiters.add(waiter);
    timer = setTimeout(() => {
      if (q.waiters.delete(waiter)) waiter.respond([]);
    }, wait * 1000);
    // A client that goes away (an aborted poll) takes nothing with it.
    onClose(() => {
      if (timer) clearTimeout(timer);
      q.waiters.delete(waiter);
    });
    this.kick(q);
  }

  private render(m: StoredMessage, system: readonly string[], userNames: readonly string[]): Json {
    const all = system.includes("All");
    const attrs: Record<string, string | undefined> = {
      SenderId: m.senderId,
      SentTimestamp: String(m.sentAt),
      ApproximateReceiveCount: String(m.receiveCount),
      ApproximateFirstReceiveTimestamp: m.firstReceiveAt === undefined ? undefined : String(m.firstReceiveAt),
      SequenceNumber: m.sequenceNumber,
      MessageDeduplicationId: m.deduplicationId,
      MessageGroupId: m.groupId,
      AWSTraceHeader: m.traceHeader,
      DeadLetterQueueSourceArn: m.deadLetterSourceArn,
    };
    const Attributes: Record<string, string> = {};
    for (const [k, v] of Object.entries(attrs)) if (v !== undefined && (all || system.includes(k))) Attributes[k] = v;
    const selected: Record<string, MessageAttributeValue> = {};
    for (const [name, value] of Object.entries(m.attributes)) {
      const wanted = userNames.some(
        (p) => p === "All" || p === ".*" || p === name || (p.endsWith(".*") && name.startsWith(p.slice(0, -1))),
      );
      if (wanted) selected[name] = value;
    }
    const hasSelected = Object.keys(selected).length > 0;
    return {
      MessageId: m.messageId,
      ReceiptHandle: m.receipt,
      MD5OfBody: m.md5OfBody,
      Body: m.body,
      ...(Object.keys(Attributes).length > 0 ? { Attributes } : {}),
      ...(hasSelected ? { MD5OfMessageAttributes: md5OfMessageAttributes(selected), MessageAttributes: selected } : {}),
    };
  }

  /**
   * Deletes by receipt handle (API reference, DeleteMessage): a handle that is not one of this queue's
   * fails with ReceiptHandleIsInvalid; a message already gone succeeds. A handle of an earlier receive
   * still succeeds on a standard queue ("the request will still succeed"; the emulator deletes). On a
   * FIFO queue a handle whose visibility timeout ran out, or that a later receive superseded, fails
   * with InvalidParameterValue "The receipt handle has expired" and deletes nothing.
   */
  private deleteOne(q: Queue, handle: string): void {
    const parsed = parseReceipt(handle);
    if (!parsed || parsed.queue !== q.name) {
      fail("ReceiptHandleIsInvalid", `The input receipt handle "${handle}" is not a valid receipt handle.`);
    }
    const m = q.messages.find((x) => x.messageId === parsed.messageId);
    if (!m) return;
    if (q.attributes.fifoQueue && (m.receipt !== handle || !this.inFlight(m, this.now()))) {
      invalidValue("ReceiptHandle", handle, "The receipt handle has expired.");
    }
    q.messages.splice(q.messages.indexOf(m), 1);
    q.counters.deleted += 1;
  }

  deleteMessage(req: Json): Json {
    const q = this.queueOf(req);
    this.deleteOne(q, requiredString(req, "ReceiptHandle"));
    if (q.attributes.fifoQueue) this.kick(q);
    return {};
  }

  deleteMessageBatch(req: Json): Json {
    const q = this.queueOf(req);
    const list = this.checkBatch(entries(req));
    const answer = eachEntry(list, (e) => {
      this.deleteOne(q, requiredString(e, "ReceiptHandle"));
      return undefined;
    });
    if (q.attributes.fifoQueue) this.kick(q);
    return answer;
  }

  /**
   * ChangeMessageVisibility (API reference): the new timeout counts from now; 0 makes the message
   * visible at once; a message's total visibility after a receive cannot pass 12 hours.
   */
  private changeOne(q: Queue, handle: string, timeout: number): void {
    const parsed = parseReceipt(handle);
    if (!parsed || parsed.queue !== q.name) {
      fail("ReceiptHandleIsInvalid", `The input receipt handle "${handle}" is not a valid receipt handle.`);
    }
    const now = this.now();
    const m = q.messages.find((x) => x.messageId === parsed.messageId);
    if (!m) invalidValue("ReceiptHandle", handle, "Message does not exist or is not available for visibility timeout change.");
    if (m.receipt !== handle) {
      if (q.attributes.fifoQueue) invalidValue("ReceiptHandle", handle, "The receipt handle has expired.");
      invalidValue("ReceiptHandle", handle, "Message does not exist or is not available for visibility timeout change.");
    }
    if (!this.inFlight(m, now)) fail("MessageNotInflight", "The message referred to isn't in flight.");
    if (now + timeout * 1000 > (m.receivedAt ?? now) + MAX_VISIBILITY_TIMEOUT_SECONDS * 1000) {
      invalidValue("VisibilityTimeout", timeout, "Total VisibilityTimeout for the message is beyond the limit [43200 seconds]");
    }
    m.visibleAt = now + timeout * 1000;
  }

  changeMessageVisibility(req: Json): Json {
    const q = this.queueOf(req);
    const timeout = optionalInt(req, "VisibilityTimeout", 0, MAX_VISIBILITY_TIMEOUT_SECONDS, "Must be between 0 and 43200.");
    if (timeout === undefined) return fail("MissingParameter", "The request must contain the parameter VisibilityTimeout.");
    this.changeOne(q, requiredString(req, "ReceiptHandle"), timeout);
    this.kick(q);
    return {};
  }

  changeMessageVisibilityBatch(req: Json): Json {
    const q = this.queueOf(req);
    const list = this.checkBatch(entries(req));
    const answer = eachEntry(list, (e) => {
      const timeout = optionalInt(e, "VisibilityTimeout", 0, MAX_VISIBILITY_TIMEOUT_SECONDS, "Must be between 0 and 43200.");
      if (timeout === undefined) fail("MissingParameter", "The request must contain the parameter VisibilityTimeout.");
      this.changeOne(q, requiredString(e, "ReceiptHandle"), timeout as number);
      return undefined;
    });
    this.kick(q);
    return answer;
  }

  /**
   * Puts back messages a receive took but could not hand over (its client had hung up): visible again
   * at once, their receive not counted, as if that receive had not happened.
   */
  release(rendered: readonly Json[]): void {
    for (const r of rendered) {
      const parsed = parseReceipt(String(r.ReceiptHandle));
      const q = parsed && this.queues.get(parsed.queue);
      const m = q?.messages.find((x) => x.messageId === parsed?.messageId);
      if (!q || !m || m.receipt !== r.ReceiptHandle) continue;
      m.receiveCount -= 1;
      if (m.receiveCount === 0) m.firstReceiveAt = undefined;
      m.receipt = undefined;
      m.receivedAt = undefined;
      m.visibleAt = this.now();
      q.counters.received -= 1;
      this.kick(q);
    }
  }

  /** Ends every long poll with no messages (stop). */
  drain(): void {
    for (const q of this.queues.values()) {
      for (const w of q.waiters) w.respond([]);
      q.waiters.clear();
      if (q.wakeTimer) clearTimeout(q.wakeTimer);
    }
  }
}

/** A batch entry's size as sent (body and attributes), before any validation. */
function rawMessageBytes(e: Json): number {
  let n = typeof e.MessageBody === "string" ? Buffer.byteLength(e.MessageBody, "utf8") : 0;
  const attrs = e.MessageAttributes;
  if (attrs && typeof attrs === "object" && !Array.isArray(attrs)) {
    for (const [name, a] of Object.entries(attrs as Json)) {
      const v = (a ?? {}) as Json;
      n += Buffer.byteLength(name);
      if (typeof v.DataType === "string") n += Buffer.byteLength(v.DataType);
      if (typeof v.StringValue === "string") n += Buffer.byteLength(v.StringValue);
      if (typeof v.BinaryValue === "string") n += Buffer.from(v.BinaryValue, "base64").length;
    }
  }
  return n;
}

function attributeBytes(attributes: Readonly<Record<string, MessageAttributeValue>>): number {
  let n = 0;
  for (const [name, a] of Object.entries(attributes)) {
    n += Buffer.byteLength(name) + Buffer.byteLength(a.DataType);
    n += a.BinaryValue !== undefined ? Buffer.from(a.BinaryValue, "base64").length : Buffer.byteLength(a.StringValue ?? "");
  }
  return n;
}

/**
 * A batch action's answer: each entry acted on in order, its result (fields beside its Id) under
 * Successful, or its SqsError under Failed; any other error is the emulator's own and is thrown.
 */
function eachEntry(list: readonly Json[], act: (entry: Json) => Json | undefined): { Successful: Json[]; Failed: Json[] } {
  const Successful: Json[] = [];
  const Failed: Json[] = [];
  for (const e of list) {
    try {
      Successful.push({ Id: e.Id, ...(act(e) ?? {}) });
    } catch (err) {
      if (!(err instanceof SqsError)) throw err;
      Failed.push(batchFailure(e.Id as string, err));
    }
  }
  return { Successful, Failed };
}

/** A batch entry's failure as SQS reports it: `{Id, SenderFault, Code, Message}` with the query code. */
function batchFailure(id: string, err: SqsError): Json {
  const k = SQS_ERRORS[err.code];
  return { Id: id, SenderFault: k.status < 500, Code: k.queryCode.replace(/^AWS\.SimpleQueueService\./, ""), Message: err.message };
}

/** The SigV4 access key id (`Credential=<id>/...`): SQS reports the sender's identity as SenderId. */
function senderOf(authorization: string | undefined): string {
  return (authorization && /Credential=([^/,\s]+)\//.exec(authorization)?.[1]) || "AIDAEXAMPLELOCALSENDER";
}

const ACTIONS = new Set([
  "CreateQueue",
  "GetQueueUrl",
  "GetQueueAttributes",
  "ListQueues",
  "DeleteQueue",
  "PurgeQueue",
  "SendMessage",
  "SendMessageBatch",
  "ReceiveMessage",
  "DeleteMessage",
  "DeleteMessageBatch",
  "ChangeMessageVisibility",
  "ChangeMessageVisibilityBatch",
]);

/** The client of this request has closed its connection (its half or all of it). */
function gone(req: http.IncomingMessage): boolean {
  const s = req.socket;
  return s.destroyed || s.readableEnded || !s.writable;
}

/** Starts the local SQS on loopback. */
export async function startLocalSqs(options: LocalSqsOptions = {}): Promise<LocalSqs> {
  const host = options.host ?? "127.0.0.1";
  const region = options.region ?? "us-east-1";
  const accountId = options.accountId ?? LOCAL_ACCOUNT_ID;
  const logger = options.logger;
  const emulator = new Emulator(region, accountId, options.now ?? Date.now);
  const sockets = new Set<import("node:net").Socket>();

  const send = (res: http.ServerResponse, status: number, body: Json, extra: Record<string, string> = {}) => {
    if (res.writableEnded || res.destroyed) return;
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "content-type": "application/x-amz-json-1.0",
      "content-length": String(Buffer.byteLength(text)),
      "x-amzn-requestid": randomUUID(),
      ...extra,
    });
    res.end(text);
  };
  const sendError = (res: http.ServerResponse, err: SqsError) => {
    const k = SQS_ERRORS[err.code];
    send(
      res,
      k.status,
      { __type: k.type, message: err.message },
      { "x-amzn-query-error": `${k.queryCode};${k.status < 500 ? "Sender" : "Receiver"}` },
    );
  };

  const handle = (req: http.IncomingMessage, res: http.ServerResponse, raw: Buffer) => {
    const target = String(req.headers["x-amz-target"] ?? "");
    const action = target.startsWith("AmazonSQS.") ? target.slice("AmazonSQS.".length) : "";
    try {
      if (req.method !== "POST" || !ACTIONS.has(action)) {
        if (req.method === "POST" && target.startsWith("AmazonSQS.")) {
          return fail("UnsupportedOperation", `${action} is not emulated by the local SQS (docs/local.md, "The delivery queue, locally").`);
        }
        return fail("UnknownOperationException", "The action or operation requested is invalid.");
      }
      let body: unknown;
      try {
        body = JSON.parse(raw.toString("utf8") || "{}");
      } catch {
        return fail("SerializationException", "Start of structure or map found where not expected.");
      }
      if (typeof body !== "object" || body === null || Array.isArray(body)) {
        return fail("SerializationException", "Start of structure or map found where not expected.");
      }
      const input = body as Json;
      const sender = senderOf(req.headers.authorization);
      const ok = (out: Json) => send(res, 200, out);
      switch (action) {
        case "CreateQueue":
          return ok(emulator.createQueue(input));
        case "GetQueueUrl":
          return ok(emulator.getQueueUrl(input));
        case "GetQueueAttributes":
          return ok(emulator.getQueueAttributes(input));
        case "ListQueues":
          return ok(emulator.listQueues(input));
        case "DeleteQueue":
          return ok(emulator.deleteQueue(input));
        case "PurgeQueue":
          return ok(emulator.purgeQueue(input));
        case "SendMessage":
          return ok(emulator.sendMessage(input, sender));
        case "SendMessageBatch":
          return ok(emulator.sendMessageBatch(input, sender));
        case "ReceiveMessage":
          return emulator.receiveMessage(
            input,
            (out) => {
              // A poll whose client hung up (an aborted long poll) keeps no message from the others.
              if (gone(req)) {
                if (out.Messages) emulator.release(out.Messages as Json[]);
                return;
              }
              ok(out);
            },
            (cancel) => {
              res.on("close", () => {
                if (!res.writableEnded) cancel();
              });
            },
          );
        case "DeleteMessage":
          return ok(emulator.deleteMessage(input));
        case "DeleteMessageBatch":
          return ok(emulator.deleteMessageBatch(input));
        case "ChangeMessageVisibility":
          return ok(emulator.changeMessageVisibility(input));
        case "ChangeMessageVisibilityBatch":
          return ok(emulator.changeMessageVisibilityBatch(input));
      }
    } catch (err) {
      if (err instanceof SqsError) return sendError(res, err);
      logger?.({ level: "error", source: "runtime", message: `local SQS ${action} failed: ${(err as Error).stack ?? err}` });
      return sendError(res, new SqsError("InternalFailure", "We encountered an internal error. Please try again."));
    }
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_REQUEST_BYTES) {
        res.writeHead(413, { connection: "close" }).end();
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => {
      if (size <= MAX_REQUEST_BYTES) handle(req, res, Buffer.concat(chunks));
    });
  });
  // A 20 s long poll must not be cut by Node's request timeouts.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 5_000;
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  emulator.origin = `http://${host}:${port}`;
  logger?.({ level: "info", source: "runtime", message: `local SQS listening on ${emulator.origin}` });

  let stopped: Promise<void> | undefined;
  return {
    endpoint: emulator.origin,
    region,
    accountId,
    queueUrl: (name) => emulator.queueUrl(name),
    queueArn: (name) => emulator.queueArn(name),
    stats: (name) => emulator.stats(name),
    stop: () => {
      stopped ??= new Promise<void>((resolve) => {
        emulator.drain();
        server.close(() => resolve());
        server.closeIdleConnections();
        // The drained polls' answers are written: end each connection after them (a client that
        // keeps its end open is cut a second later).
        for (const s of sockets) {
          s.end();
          setTimeout(() => s.destroy(), 1_000).unref();
        }
      });
      return stopped;
    },
  };
}
