/**
 * Push from a backend: lets another Node service send a `system` frame (docs/protocol.md) to every
 * connection of a user or to a room, without holding a WebSocket; disconnect, ban or unban a user
 * (handlers/lib/bans.ts); delete a message and kick a user from a room as "system"
 * (handlers/lib/messageChanges.ts, handlers/lib/moderation.ts; docs/push.md).
 *
 * It goes through the same code as the chat routes (handlers/lib): the byUser index for a user's
 * devices, one consistent Query of the room partition for its members, `storeMessage` so that a
 * room push is in the room's history before anyone receives it (write before deliver, like `chat`),
 * and `createFanout` for the posts: bounded concurrency, LimitExceededException retried with
 * backoff, and connections that answer 410 removed with their memberships exactly as a broadcast
 * removes them. The IAM permissions this needs are declared in ./access.ts; the stack turns them
 * into the `pushPolicyArn` output (infra/pushPolicy.ts).
 *
 * No Pulumi import: a backend depends on the AWS SDK only.
 */
import { randomUUID } from "node:crypto";
import { createDocumentClient, createDynamoClient, type SdkCredentials } from "../handlers/lib/clients";
import { MAX_WEBSOCKET_MESSAGE_BYTES, type HandlerConfig } from "../handlers/lib/config";
import { HANDLER_SETTINGS, type IntegerSetting } from "../handlers/settings";
import {
  dmConversation,
  epochSeconds,
  liveConnectionsOfUser,
  roomConversation,
  sleep,
  storeMessage,
  type DataContext,
  type RoomView,
} from "../handlers/lib/data";
import { banUser as writeBan, closeUserConnections, INDEX_SETTLE_MS, MAX_BAN_DAYS, unbanUser as deleteBan } from "../handlers/lib/bans";
import { isChatError } from "../handlers/lib/errors";
import { deleteMessage as deleteStoredMessage, deletedFrame } from "../handlers/lib/messageChanges";
import { kickUser } from "../handlers/lib/moderation";
import { createFanout, createManagementClient, type Fanout } from "../handlers/lib/fanout";
import {
  DEFAULT_KICK_MINUTES,
  MAX_KICK_MINUTES,
  MESSAGE_ID_PATTERN,
  ROOM_ID_PATTERN,
  SYSTEM_USERNAME,
  SYSTEM_USER_ID,
  USER_ID_PATTERN,
  assertDeliverable,
  buildSchemas,
  parseFrame,
  utf8Bytes,
  type SystemFrame,
} from "../handlers/lib/frames";
import { createLogger, type Logger } from "../handlers/lib/logger";
import { createUsageScope, type UsageScope } from "../handlers/lib/usage";
import { announceDepartures } from "../handlers/lib/presence";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DELIVERY_JOB_VERSION, type DeliveryJob } from "../handlers/lib/deliveries";
import { sendJobs } from "../handlers/lib/deliveryQueue";
import { isLargeRoom, readAllShards, readRoomToBroadcast, type LargeRoomView } from "../handlers/lib/largeRooms";
import { DEFAULT_METRICS_NAMESPACE } from "../handlers/metrics";

export { PUSH_MANAGEMENT_METHODS, PUSH_TABLE_ACCESS } from "./access";
export { MAX_BAN_DAYS } from "../handlers/lib/bans";
export { DEFAULT_KICK_MINUTES, MAX_KICK_MINUTES } from "../handlers/lib/frames";
export type { DeletedFrame, KickedFrame, SystemFrame } from "../handlers/lib/frames";

export type PushErrorCode =
  /** An id, the message or `data` is invalid (the text says which and why). */
  | "BAD_REQUEST"
  /** The message or `data` is over maxMessageBytes, or the frame over API Gateway's 128 KB. */
  | "TOO_LARGE"
  /** createPusher was given an unusable option (missing table name, endpoint that is not a URL). */
  | "BAD_OPTIONS"
  /**
   * deleteMessage: no such message in that conversation (unknown id, another conversation's,
   * past its retention, or stored before message ids were UUIDv7: docs/protocol.md, "Message ids").
   */
  | "NOT_FOUND"
  /** DynamoDB failed (access denied, wrong table, unreachable): nothing was delivered. */
  | "UNAVAILABLE";

/** The only error the pusher throws; `cause` holds the AWS SDK error for UNAVAILABLE. */
export class PushError extends Error {
  override readonly name = "PushError";
  constructor(
    readonly code: PushErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isPushError(err: unknown): err is PushError {
  return err instanceof PushError;
}

/** AWS credentials as the SDK clients take them (static keys or a provider such as fromNodeProviderChain()). */
export type PushCredentials = NonNullable<SdkCredentials>;

export interface PusherOptions {
  /** Stack output `connectionsTable`. */
  readonly connectionsTable: string;
  /** Stack output `roomsTable`. */
  readonly roomsTable: string;
  /** Stack output `messagesTable`. */
  readonly messagesTable: string;
  /** Stack output `managementEndpoint`: `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}`. */
  readonly managementEndpoint: string;
  /** Default: the region in managementEndpoint's host, else AWS_REGION / AWS_DEFAULT_REGION, else us-east-1. */
  readonly region?: string;
  /** Default: the SDK's default provider chain (a role, environment variables, a profile). */
  readonly credentials?: PushCredentials;
  /** DynamoDB endpoint override: DynamoDB Local for the local runtime (`dynamodbEndpoint` in .local/outputs.json). */
  readonly dynamoEndpoint?: string;
  /** The stack's maxMessageBytes (output `maxMessageBytes`); default 16384, the stack's default (handlers/settings.ts). */
  readonly maxMessageBytes?: number;
  /** How long a room push stays in history (output `messageRetentionHours`); default 168, the stack's. */
  readonly messageRetentionHours?: number;
  /** Posts in flight at once (default 50, the functions' FANOUT_CONCURRENCY). */
  readonly concurrency?: number;
  /** JSON logs of clean-ups and failed posts; default warnings and errors on stdout. */
  readonly logger?: Logger;
  /** Accounting of the DynamoDB calls made (tests and benchmarks read it); default a private one. */
  readonly usage?: UsageScope;
  /**
   * Stack output `deliveryQueueUrl` (issue 17): a room push or delete in a room of more than
   * `largeRoomUsers` users is then handed to the delivery workers (one job per shard) instead of
   * posted from here. Without it every room is posted from here, all of its shards.
   */
  readonly deliveryQueueUrl?: string;
  /** SQS endpoint override: the local runtime's SQS emulator (`sqsEndpoint` in .local/outputs.json). */
  readonly sqsEndpoint?: string;
  /** The stack's largeRoomUsers (default 1000, handlers/settings.ts). */
  readonly largeRoomUsers?: number;
}

/** What a backend sends: the text every client shows, and optional structured data for applications. */
export interface PushNotice {
  /** 1 to maxMessageBytes UTF-8 bytes. */
  readonly message: string;
  /** A JSON object (an order id, a link); its JSON text counts against maxMessageBytes too. */
  readonly data?: Readonly<Record<string, unknown>>;
}

export interface PushResult {
  /** Id of the `system` frame (and of the history item for a room push). */
  readonly messageId: string;
  readonly sentAt: string;
  /** True for a room push: it is in the room's history before any delivery. */
  readonly stored: boolean;
  /** Live connections found (a user's devices, or the room's member connections). */
  readonly targets: number;
  /** Connections the frame reached (0 for a large room: the workers deliver it, see `queued`). */
  readonly delivered: number;
  /** Connections that no longer existed (410); removed with their memberships. */
  readonly gone: number;
  /** Connections that could not be reached for another reason, after retries (see the logs). */
  readonly failed: number;
  /**
   * Connections that answered 410 while their handshake was still running (`$connect` not
   * finished): not delivered, and kept, since they are about to be open (handlers/lib/fanout.ts).
   */
  readonly connecting: number;
  /**
   * A room of more than largeRoomUsers users with a delivery queue (issue 17): the delivery jobs
   * sent, one per shard; the workers post the frame after this returns (`targets` is then the
   * room's user count).
   */
  readonly queued?: number;
}

/** What closing a user's connections did (disconnectUser, banUser). */
export interface DisconnectResult {
  readonly userId: string;
  /** Live connections found (the user's devices, from the byUser index). */
  readonly targets: number;
  /** Connections closed through `@connections` DELETE (clients see close code 1000; their `$disconnect` removes their data and announces `left`). */
  readonly closed: number;
  /** Connections that no longer existed (closed meanwhile, refused at the handshake, or stale items: those are removed with their memberships). */
  readonly gone: number;
  /** Connections that could not be closed after retries (see the logs). */
  readonly failed: number;
}

export interface BanResult extends DisconnectResult {
  /** When the ban ends (ISO 8601, UTC): until then every handshake of the user is refused with 403. */
  readonly until: string;
}

export interface UnbanResult {
  readonly userId: string;
  /** True when a ban in force was lifted; false when the user was not banned (or the ban had passed). */
  readonly lifted: boolean;
}

/** The conversation of a message: a room, or the private conversation of two users (either order). */
export type MessageTarget = { readonly roomId: string } | { readonly between: readonly [string, string] };

/** What deleting a message did (deleteMessage). */
export interface DeleteResult {
  readonly messageId: string;
  /** Who deleted it: "system", or, when it was already deleted, whoever deleted it first. */
  readonly by: string;
  /** When it was deleted (ISO 8601; the first delete's when it was already deleted). */
  readonly deletedAt: string;
  /** True when it was already deleted: nothing was written and nothing sent (a repeat is not an error). */
  readonly alreadyDeleted: boolean;
  /** Live connections found: the room's member connections, or both users' devices (0 when already deleted). */
  readonly targets: number;
  /** Connections the `deleted` frame reached. */
  readonly delivered: number;
  /** Connections that no longer existed (410); removed with their memberships. */
  readonly gone: number;
  /** Connections that could not be reached for another reason, after retries (see the logs). */
  readonly failed: number;
  /** Connections that answered 410 while their handshake was still running (kept, not delivered). */
  readonly connecting: number;
  /** A large room with a delivery queue (issue 17): the delivery jobs sent; the workers post `deleted`. */
  readonly queued?: number;
}

/** What kicking a user from a room did (kick). */
export interface KickResult {
  readonly roomId: string;
  readonly userId: string;
  /** When the user may join the room again (ISO 8601, UTC): a kick never shortens a longer restriction in force. */
  readonly until: string;
  /** The user's connections taken out of the room (each still open was sent `kicked`); 0 when none was in it. */
  readonly removed: number;
}

export interface Pusher {
  /** Sends a `system` frame to every live connection of `userId` (not stored: see docs/push.md). */
  toUser(userId: string, notice: PushNotice | string): Promise<PushResult>;
  /** Stores a `system` message in the room's history, then sends it to every connection in the room. */
  toRoom(roomId: string, notice: PushNotice | string): Promise<PushResult>;
  /** Closes every connection of `userId` (`@connections` DELETE). Not a ban: the user may connect again at once. */
  disconnectUser(userId: string): Promise<DisconnectResult>;
  /**
   * Bans `userId` until `until` (in the future, at most MAX_BAN_DAYS ahead; a ban replaces an
   * earlier one): handshakes are refused with 403 until then, then every connection is closed.
   */
  banUser(userId: string, until: Date): Promise<BanResult>;
  /** Lifts the user's ban: handshakes are accepted again at once. */
  unbanUser(userId: string): Promise<UnbanResult>;
  /**
   * Deletes a message of a room or of a private conversation as "system" (any author), leaving a
   * tombstone in history, then sends `deleted` to the room's connections or to both users' devices.
   * Deleting a deleted message is not an error (`alreadyDeleted`; announced again when a backend
   * deleted it, a retry; nothing sent when a user did); no such message: NOT_FOUND.
   */
  deleteMessage(target: MessageTarget, messageId: string): Promise<DeleteResult>;
  /**
   * Keeps `userId` out of `roomId` for `minutes` (1 to MAX_KICK_MINUTES, default 10): every
   * connection of theirs leaves the room and gets `kicked` (by "system"), the room hears `left`
   * once, and their joins are FORBIDDEN (their handshakes into the room 403) until then.
   */
  kick(roomId: string, userId: string, minutes?: number): Promise<KickResult>;
  /** Closes the SDK clients' sockets. */
  close(): void;
}

/** DynamoDB table names: 3-255 characters of a-z A-Z 0-9 _ . - (DynamoDB naming rules). */
const TABLE_NAME_PATTERN = /^[A-Za-z0-9_.-]{3,255}$/;

function badOptions(message: string): PushError {
  return new PushError("BAD_OPTIONS", message);
}

function httpUrl(name: string, raw: unknown): string {
  if (typeof raw !== "string" || raw.trim() === "") throw badOptions(`${name} is required`);
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw badOptions(`${name} is not a URL: "${raw}"`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw badOptions(`${name} must be an http(s) URL, got "${raw}"`);
  return raw.trim().replace(/\/+$/, "");
}

/** An option that is one of the handlers' settings: its declared range and default (handlers/settings.ts). */
function intOption(name: string, raw: number | undefined, setting: IntegerSetting): number {
  if (raw === undefined) return setting.defaultValue;
  if (!Number.isInteger(raw) || raw < setting.min || raw > setting.max) {
    throw badOptions(`${name} must be an integer from ${setting.min} to ${setting.max}, got ${raw}`);
  }
  return raw;
}

/** The region of an execute-api host (`{apiId}.execute-api.{region}.amazonaws.com[.cn]`), if it is one. */
export function regionOfEndpoint(endpoint: string): string | undefined {
  const host = new URL(endpoint).hostname;
  return /^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(host)?.[1];
}

/**
 * Validates a notice: the message as `chat` validates it (1 to maxMessageBytes UTF-8 bytes, no
 * unpaired surrogate), and `data` as a JSON object whose JSON text also fits maxMessageBytes.
 * Returns the data as clients will receive it, and its JSON text (what history stores).
 */
export function validateNotice(
  notice: PushNotice | string,
  maxMessageBytes: number,
): { message: string; data?: Record<string, unknown>; dataText?: string } {
  const n: PushNotice = typeof notice === "string" ? { message: notice } : notice;
  if (typeof n !== "object" || n === null) throw new PushError("BAD_REQUEST", "the notice must be a string or { message, data? }");
  // The `chat` frame's message schema (frames.ts): non-empty, well-formed Unicode, maxMessageBytes.
  try {
    parseFrame(buildSchemas(maxMessageBytes).chat.shape.message, n.message);
  } catch (err) {
    if (isChatError(err))
      throw new PushError(err.code === "TOO_LARGE" ? "TOO_LARGE" : "BAD_REQUEST", `message ${err.message.replace(/^[:\s]+/, "")}`);
    throw err;
  }
  if (n.data === undefined) return { message: n.message };
  if (typeof n.data !== "object" || n.data === null || Array.isArray(n.data))
    throw new PushError("BAD_REQUEST", "data must be a JSON object");
  let dataText: string;
  try {
    dataText = JSON.stringify(n.data);
  } catch (err) {
    // Cycles and BigInt values cannot be written as JSON.
    throw new PushError("BAD_REQUEST", `data is not serializable as JSON: ${(err as Error).message}`);
  }
  if (utf8Bytes(dataText) > maxMessageBytes) {
    throw new PushError("TOO_LARGE", `data is ${utf8Bytes(dataText)} UTF-8 bytes of JSON; at most ${maxMessageBytes} (maxMessageBytes)`);
  }
  // What clients and history receive is exactly this JSON (functions and undefined values dropped).
  const data: unknown = JSON.parse(dataText);
  // An object whose toJSON() returns something else (a Date gives a string) is not a JSON object.
  if (typeof data !== "object" || data === null || Array.isArray(data))
    throw new PushError("BAD_REQUEST", "data must serialize to a JSON object");
  return { message: n.message, data: data as Record<string, unknown>, dataText };
}

/** The end of a ban as epoch ms: a valid Date after `nowMs`, at most MAX_BAN_DAYS later; BAD_REQUEST otherwise. */
export function banEnd(until: unknown, nowMs: number): number {
  if (!(until instanceof Date) || Number.isNaN(until.getTime())) throw new PushError("BAD_REQUEST", "until must be a valid Date");
  const ms = until.getTime();
  if (ms <= nowMs) throw new PushError("BAD_REQUEST", `until (${until.toISOString()}) must be in the future`);
  if (ms > nowMs + MAX_BAN_DAYS * 86_400_000) {
    throw new PushError("BAD_REQUEST", `until (${until.toISOString()}) must be at most ${MAX_BAN_DAYS} days ahead`);
  }
  return ms;
}

const USER_ID_RULE = "1-128 characters of A-Z a-z 0-9 _ . @ : | + = -";
const ROOM_ID_RULE = "1-64 characters of A-Z a-z 0-9 _ -";
const MESSAGE_ID_RULE = "1-64 characters of A-Z a-z 0-9 _ . : -";

function requirePattern(what: string, value: unknown, pattern: RegExp, rule: string): string {
  if (typeof value !== "string" || !pattern.test(value)) {
    throw new PushError("BAD_REQUEST", `${what} ${JSON.stringify(value)} is invalid: it must be ${rule}`);
  }
  return value;
}

/** The conversation id of a delete's target: a valid room id, or two distinct valid user ids; BAD_REQUEST otherwise. */
export function conversationOfTarget(target: unknown): { conversationId: string; where: string } {
  const t = (typeof target === "object" && target !== null ? target : {}) as { roomId?: unknown; between?: unknown };
  if ((t.roomId === undefined) === (t.between === undefined)) {
    throw new PushError("BAD_REQUEST", "the target must be exactly one of { roomId } or { between: [userA, userB] }");
  }
  if (t.roomId !== undefined) {
    const roomId = requirePattern("roomId", t.roomId, ROOM_ID_PATTERN, ROOM_ID_RULE);
    return { conversationId: roomConversation(roomId), where: `room ${roomId}` };
  }
  if (!Array.isArray(t.between) || t.between.length !== 2) throw new PushError("BAD_REQUEST", "between must be two user ids");
  const [a, b] = t.between.map((u: unknown) => requirePattern("between's userId", u, USER_ID_PATTERN, USER_ID_RULE));
  if (a === b) throw new PushError("BAD_REQUEST", "between must name two different users");
  return { conversationId: dmConversation(a, b), where: `the conversation of ${a} and ${b}` };
}

/** A kick's length: an integer from 1 to MAX_KICK_MINUTES (the `kick` frame's bounds), default DEFAULT_KICK_MINUTES. */
export function kickMinutes(minutes: unknown): number {
  if (minutes === undefined) return DEFAULT_KICK_MINUTES;
  if (typeof minutes !== "number" || !Number.isInteger(minutes) || minutes < 1 || minutes > MAX_KICK_MINUTES) {
    throw new PushError("BAD_REQUEST", `minutes must be an integer from 1 to ${MAX_KICK_MINUTES}, got ${String(minutes)}`);
  }
  return minutes;
}

export function createPusher(options: PusherOptions): Pusher {
  if (typeof options !== "object" || options === null) throw badOptions("options are required");
  const tables = {
    connections: options.connectionsTable,
    rooms: options.roomsTable,
    messages: options.messagesTable,
  };
  for (const [logical, name] of Object.entries(tables)) {
    if (typeof name !== "string" || !TABLE_NAME_PATTERN.test(name)) {
      throw badOptions(
        `${logical}Table must be a DynamoDB table name (3-255 characters of A-Z a-z 0-9 _ . -), got ${JSON.stringify(name)}`,
      );
    }
  }
  const managementEndpoint = httpUrl("managementEndpoint", options.managementEndpoint);
  const dynamoEndpoint = options.dynamoEndpoint === undefined ? undefined : httpUrl("dynamoEndpoint", options.dynamoEndpoint);
  const region =
    options.region ?? regionOfEndpoint(managementEndpoint) ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1";
  const config: HandlerConfig = {
    functionName: "push",
    tables,
    managementEndpoint,
    stage: new URL(managementEndpoint).pathname.replace(/^\/+/, "") || "push",
    environment: "push",
    messageRetentionHours: intOption("messageRetentionHours", options.messageRetentionHours, HANDLER_SETTINGS.messageRetentionHours),
    // The bounds and default of the functions' maxMessageBytes (handlers/settings.ts): at most API Gateway's 128 KB.
    maxMessageBytes: intOption("maxMessageBytes", options.maxMessageBytes, HANDLER_SETTINGS.maxMessageBytes),
    rateLimitPerMinute: HANDLER_SETTINGS.rateLimitPerMinute.defaultValue,
    // Budgets of clients' frames and handshakes: push sends neither.
    userRateLimitPerMinute: HANDLER_SETTINGS.userRateLimitPerMinute.defaultValue,
    userConnectsPerMinute: HANDLER_SETTINGS.userConnectsPerMinute.defaultValue,
    fanoutConcurrency: intOption("concurrency", options.concurrency, HANDLER_SETTINGS.fanoutConcurrency),
    // A backend pushes where it decides: room access concerns clients' frames only.
    roomAccess: HANDLER_SETTINGS.roomAccess.defaultValue,
    // Typing and read positions are users' signals: a backend sends neither.
    typingIntervalSeconds: HANDLER_SETTINGS.typingIntervalSeconds.defaultValue,
    typingMaxRoomUsers: HANDLER_SETTINGS.typingMaxRoomUsers.defaultValue,
    readReceiptRooms: HANDLER_SETTINGS.readReceiptRooms.defaultValue,
    // Large rooms (issue 17): the stack's defaults unless the backend is told otherwise.
    largeRoomUsers: intOption("largeRoomUsers", options.largeRoomUsers, HANDLER_SETTINGS.largeRoomUsers),
    roomShardSize: HANDLER_SETTINGS.roomShardSize.defaultValue,
    deliveryWorkerConcurrency: HANDLER_SETTINGS.deliveryWorkerConcurrency.defaultValue,
    deliveryPostsPerSecond: HANDLER_SETTINGS.deliveryPostsPerSecond.defaultValue,
    logLevel: "warn",
    metricsNamespace: DEFAULT_METRICS_NAMESPACE,
    tracing: false,
    dynamodbEndpoint: dynamoEndpoint,
    region,
  };
  const usage = options.usage ?? createUsageScope();
  const log = options.logger ?? createLogger("warn", { component: "push" });

  // The functions' own clients (timeouts, retries, usage accounting); without explicit credentials,
  // the SDK's provider chain, or placeholders against DynamoDB Local (clients.ts localCredentials).
  const dynamo = createDynamoClient(config, options.credentials);
  const doc = createDocumentClient(config, usage, dynamo);
  const management = createManagementClient(config, options.credentials);
  const fanout: Fanout = createFanout({ management, doc, tables, concurrency: config.fanoutConcurrency, usage });
  const ctx: DataContext = { doc, config };
  const deliveryQueueUrl = options.deliveryQueueUrl === undefined ? undefined : httpUrl("deliveryQueueUrl", options.deliveryQueueUrl);
  const sqs =
    deliveryQueueUrl === undefined
      ? undefined
      : new SQSClient({
          region,
          maxAttempts: 3,
          ...(options.sqsEndpoint !== undefined ? { endpoint: httpUrl("sqsEndpoint", options.sqsEndpoint) } : {}),
          ...(options.credentials ? { credentials: options.credentials } : {}),
        });

  /**
   * A room as a push reads it: a small one whole, a large one by its summary. A large room without
   * a delivery queue is read shard by shard and posted from here.
   */
  async function roomToPush(roomId: string, nowMs: number): Promise<RoomView | LargeRoomView> {
    const room = await readRoomToBroadcast(ctx, roomId, epochSeconds(nowMs), config.largeRoomUsers);
    if (!isLargeRoom(room) || sqs) return room;
    return readAllShards(ctx, roomId, room.summary.shards, epochSeconds(nowMs));
  }

  /** Hands a large room's frame to the delivery workers: one job per shard (handlers/lib/deliveries.ts). */
  async function enqueue(
    roomId: string,
    room: LargeRoomView,
    frame: Record<string, unknown>,
    id: string,
  ): Promise<Delivery & { queued: number }> {
    if (!sqs || deliveryQueueUrl === undefined) throw new PushError("UNAVAILABLE", "no delivery queue");
    const enqueuedAtMs = Date.now();
    const jobs: DeliveryJob[] = Array.from({ length: room.summary.shards }, (_, shard) => ({
      v: DELIVERY_JOB_VERSION,
      id,
      roomId,
      shard,
      frame,
      enqueuedAtMs,
    }));
    await step(`queueing the delivery to room ${roomId} (${deliveryQueueUrl})`, () => sendJobs(sqs, deliveryQueueUrl, jobs, log));
    return { targets: room.summary.users, delivered: 0, gone: 0, failed: 0, connecting: 0, queued: jobs.length };
  }

  /** Runs a DynamoDB step; an AWS failure becomes UNAVAILABLE, naming the step and the SDK error. */
  async function step<T>(what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (isPushError(err)) throw err;
      const name = err instanceof Error ? err.name : "Error";
      const message = err instanceof Error ? err.message : String(err);
      throw new PushError("UNAVAILABLE", `${what} failed (${name}: ${message})`, { cause: err });
    }
  }

  /** The frame must fit one API Gateway message once JSON-escaped (PayloadTooLargeException above 128 KB). */
  function checkDeliverable(frame: Omit<SystemFrame, "messageId" | "sentAt">): void {
    try {
      assertDeliverable({ ...frame }, MAX_WEBSOCKET_MESSAGE_BYTES);
    } catch (err) {
      if (isChatError(err)) throw new PushError("TOO_LARGE", err.message);
      throw err;
    }
  }

  /** Delivery counts: what a push, or a delete's `deleted` frame, did. */
  type Delivery = Pick<PushResult, "targets" | "delivered" | "gone" | "failed" | "connecting">;

  /**
   * Posts `payload` to `targets` through the fan-out; for a room, also closes and removes members
   * past their expiry, as a room broadcast does, and announces `left` where a clean-up took a
   * user's last connection.
   */
  async function deliver(
    targets: readonly string[],
    payload: string,
    logId: Record<string, string>,
    room: (Pick<RoomView, "members" | "expired"> & { roomId: string }) | undefined,
  ): Promise<Delivery> {
    const expired = room?.expired ?? [];
    if (targets.length === 0 && expired.length === 0) return { targets: 0, delivered: 0, gone: 0, failed: 0, connecting: 0 };
    const pushLog = log.child(logId);
    const result = await step("delivery", async () => {
      const out =
        targets.length > 0
          ? await fanout.deliver(targets, payload, pushLog, room ? { roomId: room.roomId, members: room.members } : {})
          : { delivered: [], gone: [], connecting: [], failed: [], departed: [] };
      const departed = [...out.departed];
      // Members past their expiry (their token's deadline, or API Gateway's 2 h): not posted to;
      // closed and removed as a room broadcast does (presence.ts broadcastToRoom).
      if (room && expired.length > 0) {
        departed.push(
          ...(await fanout.removeGone(
            expired.map((m) => m.connectionId),
            pushLog,
            { roomId: room.roomId, members: expired, close: true },
          )),
        );
      }
      // Users whose last connection in a room the clean-up of gone ones removed: announced `left`
      // here, by the remover, exactly once (handlers/lib/presence.ts).
      await announceDepartures(ctx, fanout, pushLog, departed);
      return out;
    });
    return {
      targets: targets.length,
      delivered: result.delivered.length,
      gone: result.gone.length,
      failed: result.failed.length,
      connecting: result.connecting.length,
    };
  }

  /** A `system` frame's delivery, as a PushResult. */
  async function deliverNotice(
    targets: readonly string[],
    frame: SystemFrame,
    room: (Pick<RoomView, "members" | "expired"> & { roomId: string }) | undefined,
    stored: boolean,
  ): Promise<PushResult> {
    const counts = await deliver(targets, JSON.stringify(frame), { messageId: frame.messageId }, room);
    return { messageId: frame.messageId, sentAt: frame.sentAt, stored, ...counts };
  }

  return {
    async toUser(userId, notice) {
      requirePattern("userId", userId, USER_ID_PATTERN, USER_ID_RULE);
      const n = validateNotice(notice, config.maxMessageBytes);
      const shape = {
        type: "system",
        from: SYSTEM_USER_ID,
        toUserId: userId,
        message: n.message,
        ...(n.data ? { data: n.data } : {}),
      } as const;
      checkDeliverable(shape);
      const nowMs = Date.now();
      const targets = await step(`reading ${userId}'s connections (index byUser of ${tables.connections})`, () =>
        liveConnectionsOfUser(ctx, userId, epochSeconds(nowMs)),
      );
      const frame: SystemFrame = { ...shape, messageId: randomUUID(), sentAt: new Date(nowMs).toISOString() };
      return deliverNotice(targets, frame, undefined, false);
    },

    async toRoom(roomId, notice) {
      requirePattern("roomId", roomId, ROOM_ID_PATTERN, ROOM_ID_RULE);
      const n = validateNotice(notice, config.maxMessageBytes);
      const shape = { type: "system", from: SYSTEM_USER_ID, roomId, message: n.message, ...(n.data ? { data: n.data } : {}) } as const;
      checkDeliverable(shape);
      const nowMs = Date.now();
      // As `chat` does: the room is read while the message is stored, and nothing is posted before
      // the store has succeeded, so whatever anyone receives is in history.
      const [stored, room] = await step(`storing in ${tables.messages} and reading room ${roomId} in ${tables.rooms}`, () =>
        Promise.all([
          storeMessage(ctx, {
            conversationId: roomConversation(roomId),
            userId: SYSTEM_USER_ID,
            username: SYSTEM_USERNAME,
            message: n.message,
            roomId,
            kind: "system",
            ...(n.dataText !== undefined ? { data: n.dataText } : {}),
            nowMs,
          }),
          roomToPush(roomId, nowMs),
        ]),
      );
      const frame: SystemFrame = { ...shape, messageId: stored.item.messageId, sentAt: stored.item.sentAt };
      if (isLargeRoom(room)) {
        return {
          messageId: frame.messageId,
          sentAt: frame.sentAt,
          stored: true,
          ...(await enqueue(roomId, room, { ...frame }, frame.messageId)),
        };
      }
      return deliverNotice(
        room.members.map((m) => m.connectionId),
        frame,
        { roomId, members: room.members, expired: room.expired },
        true,
      );
    },

    async disconnectUser(userId) {
      requirePattern("userId", userId, USER_ID_PATTERN, USER_ID_RULE);
      const out = await step(`closing ${userId}'s connections (index byUser of ${tables.connections})`, () =>
        closeUserConnections(ctx, fanout, log, userId),
      );
      return { userId, targets: out.targets, closed: out.closed, gone: out.gone, failed: out.failed };
    },

    async banUser(userId, until) {
      requirePattern("userId", userId, USER_ID_PATTERN, USER_ID_RULE);
      const untilMs = banEnd(until, Date.now());
      // The ban first, then the close: a handshake either sees the ban (its check follows its
      // connection item's write) or its item precedes this lookup (docs/architecture.md, "Races").
      await step(`writing ${userId}'s ban in ${tables.connections}`, () => writeBan(ctx, userId, untilMs));
      const what = `closing ${userId}'s connections (index byUser of ${tables.connections})`;
      const first = await step(what, () => closeUserConnections(ctx, fanout, log, userId));
      // byUser is eventually consistent: a connection whose item was written just before the ban
      // may have been missing from the first Query. A second one, once an index normally has caught
      // up, closes it (the connections already closed are not counted twice).
      await sleep(INDEX_SETTLE_MS);
      const second = await step(what, () => closeUserConnections(ctx, fanout, log, userId, new Set(first.ids)));
      return {
        userId,
        until: new Date(untilMs).toISOString(),
        targets: first.targets + second.targets,
        closed: first.closed + second.closed,
        gone: first.gone + second.gone,
        failed: first.failed + second.failed,
      };
    },

    async unbanUser(userId) {
      requirePattern("userId", userId, USER_ID_PATTERN, USER_ID_RULE);
      const lifted = await step(`deleting ${userId}'s ban in ${tables.connections}`, () => deleteBan(ctx, userId));
      return { userId, lifted };
    },

    async deleteMessage(target, messageId) {
      const { conversationId, where } = conversationOfTarget(target);
      requirePattern("messageId", messageId, MESSAGE_ID_PATTERN, MESSAGE_ID_RULE);
      const nowMs = Date.now();
      // One conditional UpdateItem on the key the UUIDv7 id gives, as the `delete` route does
      // (messageChanges.ts); a backend deletes any author's message.
      const change = await step(`deleting message ${messageId} of ${where} in ${tables.messages}`, async () => {
        try {
          return await deleteStoredMessage(ctx, { conversationId, messageId, by: SYSTEM_USER_ID, anyAuthor: true, nowMs });
        } catch (err) {
          if (isChatError(err) && err.code === "NOT_FOUND") {
            throw new PushError("NOT_FOUND", `no message ${messageId} in ${where} (unknown, past its retention, or not a UUIDv7 id)`);
          }
          throw err;
        }
      });
      const frame = deletedFrame(change.item);
      const base = { messageId: frame.messageId, by: frame.by, deletedAt: frame.deletedAt, alreadyDeleted: change.repeat };
      // Deleted already by someone else (its author, a moderator): its `deleted` went out then, so
      // nothing is sent. Deleted already by a backend: this is a retry, and the first attempt may
      // have stopped after its write (UNAVAILABLE while reading the room): announce it again, as the
      // `delete` route does for its caller's retry (clients ignore a `deleted` they have had).
      if (change.repeat && change.item.deletedBy !== SYSTEM_USER_ID) {
        return { ...base, targets: 0, delivered: 0, gone: 0, failed: 0, connecting: 0 };
      }
      const payload = JSON.stringify(frame);
      const logId = { messageId: frame.messageId };
      // Deleted before anything is sent: whoever receives `deleted` reads the tombstone in history.
      if (frame.roomId !== undefined) {
        const roomId = frame.roomId;
        const room = await step(`reading room ${roomId} in ${tables.rooms}`, () => roomToPush(roomId, nowMs));
        if (isLargeRoom(room)) return { ...base, ...(await enqueue(roomId, room, { ...frame }, randomUUID())) };
        const members = room.members.map((m) => m.connectionId);
        return { ...base, ...(await deliver(members, payload, logId, { roomId, members: room.members, expired: room.expired })) };
      }
      // Every device of both users (the byUser index), as a private message and its `deleted` reach them.
      const users = [...new Set([change.item.userId, change.item.toUserId ?? change.item.userId])];
      const devices = await step(`reading ${users.join(" and ")}'s connections (index byUser of ${tables.connections})`, () =>
        Promise.all(users.map((u) => liveConnectionsOfUser(ctx, u, epochSeconds(nowMs)))),
      );
      return { ...base, ...(await deliver([...new Set(devices.flat())], payload, logId, undefined)) };
    },

    async kick(roomId, userId, minutes) {
      requirePattern("roomId", roomId, ROOM_ID_PATTERN, ROOM_ID_RULE);
      requirePattern("userId", userId, USER_ID_PATTERN, USER_ID_RULE);
      const n = kickMinutes(minutes);
      // The `kick` route's code (moderation.ts): the restriction first, then a consistent read of
      // the members and each of the user's connections out through the leave path.
      const out = await step(`kicking ${userId} from room ${roomId} (${tables.connections}, ${tables.rooms})`, () =>
        kickUser({ ...ctx, fanout }, log, { roomId, userId, by: SYSTEM_USER_ID, minutes: n, nowMs: Date.now() }),
      );
      return { roomId, userId, until: new Date(out.until).toISOString(), removed: out.removed.length };
    },

    close() {
      sqs?.destroy();
      management.destroy();
      dynamo.destroy();
    },
  };
}
