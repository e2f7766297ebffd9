/**
 * The route table: every Lambda function of the chat API, the WebSocket route it serves and what
 * it needs. Declared once here; `infra/` derives routes, integrations and least-privilege IAM
 * policies from it, and the local runtime derives route selection and function isolation from it.
 * The dependency arrow points from infrastructure to code, never back (../shared/STYLE.md).
 *
 * Module scope holds only plain constants, so it is safe to capture in serialized callbacks.
 */
import { internalError } from "./lib/errors";
import { CONNECTIONS_BY_USER_INDEX, ROOM_DIRECTORY_INDEX, type TableName } from "./tables";

/** Route selection expression of the WebSocket API (AWS-FACTS: Routing). */
export const ROUTE_SELECTION_EXPRESSION = "$request.body.type";

export type FunctionName =
  | "authorizer"
  | "connect"
  | "disconnect"
  | "default"
  | "chat"
  | "join"
  | "leave"
  | "private"
  | "rooms"
  | "history"
  | "ping"
  | "kick"
  | "edit"
  | "delete"
  | "typing"
  | "react"
  | "read"
  | "deliver";

export type DynamoAction =
  | "dynamodb:GetItem"
  | "dynamodb:PutItem"
  | "dynamodb:UpdateItem"
  | "dynamodb:DeleteItem"
  | "dynamodb:Query"
  | "dynamodb:BatchGetItem"
  | "dynamodb:BatchWriteItem"
  | "dynamodb:ConditionCheckItem";

/**
 * What a function (or a pushing backend) does to one table: `actions` on the table itself, and per
 * index name the actions on that index. A Query on an index is authorized on the index ARN, not the
 * table's (DynamoDB IAM resources), so a function that only queries an index gets no Query on the table.
 */
export interface TableAccess {
  readonly table: TableName;
  /** Actions on the table's own ARN (may be empty when only an index is read). */
  readonly actions: readonly DynamoAction[];
  /** Index name → actions on `<table ARN>/index/<name>` (only dynamodb:Query is meaningful there). */
  readonly indexes?: Readonly<Record<string, readonly DynamoAction[]>>;
}

export type ManagementMethod = "POST" | "GET" | "DELETE";

export interface FunctionSpec {
  readonly name: FunctionName;
  /** Route key served; absent for the authorizer, which is attached to `$connect`. */
  readonly routeKey?: string;
  /** One-line purpose, used as the Lambda description. */
  readonly description: string;
  /**
   * Two-way route: API Gateway sends the integration's response body back to the caller
   * (a route response with key `$default`). One-way routes reply, if at all, through `@connections`.
   */
  readonly twoWay: boolean;
  readonly tables: readonly TableAccess[];
  /** `@connections` methods the function calls (execute-api:ManageConnections on exactly these). */
  readonly manageConnections: readonly ManagementMethod[];
  /**
   * Delivers frames to other connections (a room's members, a user's devices) and cleans up the
   * stale ones it finds: what its Deliveries, FailedDeliveries and StaleConnectionsCleaned metrics
   * count (handlers/metrics.ts). Every route function can also close its own caller's connection.
   */
  readonly fansOut: boolean;
  /** Reads the shared HS256 secret from Secrets Manager (authorizer, shared-secret mode only). */
  readonly readsAuthSecret: boolean;
  /**
   * May broadcast to a room of more than `largeRoomUsers` users (issue 17): such a broadcast is sent
   * as delivery jobs to the delivery queue (handlers/lib/deliveries.ts), so the function gets
   * `sqs:SendMessage` on that queue and its URL in DELIVERY_QUEUE_URL.
   */
  readonly enqueuesDeliveries: boolean;
  /**
   * Set only on `deliver`: invoked by the delivery queue's event source mapping (batch size 1,
   * ReportBatchItemFailures, maximumConcurrency = deliveryWorkerConcurrency), not by a route.
   */
  readonly trigger?: "deliveryQueue";
  /**
   * npm packages loaded at run time: everything else is left out of the function's archive.
   * aws-xray-sdk-core is not listed: the handlers load it only when TRACING_ENABLED=true, and the
   * stack adds it to the archive exactly then.
   */
  readonly packages: readonly string[];
}

const SDK_DYNAMO = ["@aws-sdk/client-dynamodb", "@aws-sdk/lib-dynamodb"];
const SDK_MANAGEMENT = ["@aws-sdk/client-apigatewaymanagementapi"];
/** The producers of delivery jobs send them with SendMessageBatch (handlers/lib/deliveryQueue.ts). */
const SDK_SQS = ["@aws-sdk/client-sqs"];

/**
 * `@connections` for every route function: POST to deliver (and, for a frame whose token has
 * expired, to answer TOKEN_EXPIRED before closing), DELETE to close a connection that outlived its
 * token (runtime.ts messageRoute; a fan-out meeting an expired member, presence.ts).
 */
const CLOSE_AND_POST: ManagementMethod[] = ["POST", "DELETE"];

/**
 * Cleaning stale connections after a GoneException (handlers/lib/fanout.ts): BatchGetItem of their
 * connection items (handshake state), DeleteItem of each (ALL_OLD: its rooms); per room one
 * TransactWriteItems of a member Delete, a presence Delete or Update and (when the user's last
 * connection went) a summary Update, authorized as those actions on the rooms table (DynamoDB
 * developer guide, "Using IAM with DynamoDB transactions").
 */
const CLEANUP_CONNECTIONS: DynamoAction[] = ["dynamodb:BatchGetItem", "dynamodb:DeleteItem"];
const CLEANUP_MEMBERSHIPS: DynamoAction[] = ["dynamodb:DeleteItem", "dynamodb:UpdateItem"];
/**
 * Reading a room partition (members, presence, summary: one paginated Query) and deleting a summary
 * left at 0 users (conditional DeleteItem); handlers/lib/data.ts readRoom.
 */
const ROOM_READ: DynamoAction[] = ["dynamodb:Query", "dynamodb:DeleteItem"];
/**
 * Joining or leaving (data.ts addMembership, removeMembership): one TransactWriteItems of the
 * connection item's Update and, on the rooms table, the member item's Put or Delete, the presence
 * item's Put, Update or Delete and the summary's Update.
 */
const MEMBERSHIP_ROOMS: DynamoAction[] = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"];
/**
 * The join transaction's check that no kick restriction of the user in the room is in force
 * (data.ts addMembership: a ConditionCheck part on the `kick#<roomId>#<userId>` item of the
 * connections table, authorized as dynamodb:ConditionCheckItem).
 */
const KICK_CHECK: DynamoAction[] = ["dynamodb:ConditionCheckItem"];
/**
 * Storing a message: PutItem, or TransactWriteItems of two Puts when the frame has a
 * clientMessageId (a transaction's parts are authorized as the underlying PutItem: DynamoDB
 * developer guide, "Using IAM with DynamoDB transactions"); GetItem of the idempotency record and
 * the original message on a retry.
 */
const STORE_MESSAGE: DynamoAction[] = ["dynamodb:PutItem", "dynamodb:GetItem"];

/**
 * Editing or deleting a message (handlers/lib/messageChanges.ts): one conditional UpdateItem on the
 * message's key, which its UUIDv7 id gives; ReturnValuesOnConditionCheckFailure tells why a refused
 * one was refused, so nothing is read.
 */
const CHANGE_MESSAGE: DynamoAction[] = ["dynamodb:UpdateItem"];

/**
 * The user's unread count in a room (handlers/lib/reads.ts): GetItem of their read position, then a
 * COUNT Query of the room's messages after it (at most UNREAD_CAP + 1 items).
 */
const UNREAD_READ: DynamoAction[] = ["dynamodb:GetItem", "dynamodb:Query"];

/**
 * The tables of a route that changes a message and tells everyone who can see it: a room's members
 * (consistent room Query, stale clean-up as `chat`) or both users' devices (byUser index, as `private`).
 */
const MESSAGE_CHANGE_TABLES: readonly TableAccess[] = [
  {
    table: "connections",
    actions: ["dynamodb:UpdateItem", ...CLEANUP_CONNECTIONS],
    indexes: { [CONNECTIONS_BY_USER_INDEX]: ["dynamodb:Query"] },
  },
  { table: "rooms", actions: uniqueActions([...ROOM_READ, ...CLEANUP_MEMBERSHIPS]) },
  { table: "messages", actions: CHANGE_MESSAGE },
];

/**
 * Reacting to a message (handlers/lib/reactions.ts): one TransactWriteItems of the reaction item's
 * Put (add) or Delete (remove) and the message's counter Update (its parts are authorized as those
 * actions), the follow-up UpdateItem that drops an emoji whose count reached 0, and the consistent
 * GetItem of the count in force.
 */
const REACT_MESSAGES: DynamoAction[] = ["dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem", "dynamodb:GetItem"];

/** Actions without repeats, in first-seen order. */
function uniqueActions(actions: readonly DynamoAction[]): DynamoAction[] {
  return [...new Set(actions)];
}

export const FUNCTIONS: readonly FunctionSpec[] = [
  {
    name: "authorizer",
    description: "REQUEST authorizer on $connect: verifies the JWT in the token query parameter",
    twoWay: false,
    tables: [],
    manageConnections: [],
    fansOut: false,
    readsAuthSecret: true,
    enqueuesDeliveries: false,
    packages: ["jose", "@aws-sdk/client-secrets-manager"],
  },
  {
    name: "connect",
    routeKey: "$connect",
    description: "Registers the connection and joins its first room",
    twoWay: false,
    tables: [
      // UpdateItem: the user's handshake budget, the membership transaction, markConnected;
      // PutItem: the connection item; BatchGetItem (as CLEANUP_CONNECTIONS): the user's ban
      // (handlers/lib/bans.ts) and, after a join a kick overtook, the kick restriction, strongly
      // consistent (data.ts readConnectionsItem); ConditionCheckItem: the join transaction's kick check.
      {
        table: "connections",
        actions: ["dynamodb:PutItem", "dynamodb:UpdateItem", ...KICK_CHECK, ...CLEANUP_CONNECTIONS],
      },
      { table: "rooms", actions: uniqueActions([...MEMBERSHIP_ROOMS, ...ROOM_READ, ...CLEANUP_MEMBERSHIPS]) },
    ],
    manageConnections: CLOSE_AND_POST,
    fansOut: true,
    readsAuthSecret: false,
    enqueuesDeliveries: false,
    packages: [...SDK_DYNAMO, ...SDK_MANAGEMENT],
  },
  {
    name: "disconnect",
    routeKey: "$disconnect",
    description: "Removes the connection and its room memberships (idempotent)",
    twoWay: false,
    tables: [
      { table: "connections", actions: uniqueActions(["dynamodb:DeleteItem", ...CLEANUP_CONNECTIONS]) },
      // Each membership: the transaction of removeMembershipOfGone (as CLEANUP_MEMBERSHIPS).
      { table: "rooms", actions: uniqueActions([...ROOM_READ, ...CLEANUP_MEMBERSHIPS]) },
    ],
    manageConnections: CLOSE_AND_POST,
    fansOut: true,
    readsAuthSecret: false,
    enqueuesDeliveries: false,
    packages: [...SDK_DYNAMO, ...SDK_MANAGEMENT],
  },
  {
    name: "default",
    routeKey: "$default",
    description: "Answers frames with an unknown type or invalid JSON with a typed error",
    twoWay: true,
    // UpdateItem: the per-connection rate limit and the per-user budget (every message route).
    tables: [{ table: "connections", actions: ["dynamodb:UpdateItem"] }],
    manageConnections: CLOSE_AND_POST,
    fansOut: false,
    readsAuthSecret: false,
    enqueuesDeliveries: false,
    packages: [...SDK_DYNAMO, ...SDK_MANAGEMENT],
  },
  {
    name: "chat",
    routeKey: "chat",
    description: "Stores a room message, then delivers it to every connection in the room",
    twoWay: true,
    tables: [
      { table: "connections", actions: ["dynamodb:UpdateItem", ...CLEANUP_CONNECTIONS] },
      { table: "rooms", actions: uniqueActions([...ROOM_READ, ...CLEANUP_MEMBERSHIPS]) },
      { table: "messages", actions: STORE_MESSAGE },
    ],
    manageConnections: CLOSE_AND_POST,
    fansOut: true,
    readsAuthSecret: false,
    enqueuesDeliveries: true,
    packages: [...SDK_DYNAMO, ...SDK_MANAGEMENT, ...SDK_SQS, "zod"],
  },
  {
    name: "join",
    routeKey: "join",
    description: "Joins a room and announces the user's presence",
    twoWay: true,
    tables: [
      { table: "connections", actions: ["dynamodb:UpdateItem", ...KICK_CHECK, ...CLEANUP_CONNECTIONS] },
      { table: "rooms", actions: uniqueActions([...MEMBERSHIP_ROOMS, ...ROOM_READ, ...CLEANUP_MEMBERSHIPS]) },
      { table: "messages", actions: UNREAD_READ },
    ],
    manageConnections: CLOSE_AND_POST,
    fansOut: true,
    readsAuthSecret: false,
    enqueuesDeliveries: false,
    packages: [...SDK_DYNAMO, ...SDK_MANAGEMENT, "zod"],
  },
  {
    name: "leave",
    routeKey: "leave",
    description: "Leaves a room and announces it when the user's last connection leaves",
    twoWay: true,
    tables: [
      { table: "connections", actions: ["dynamodb:UpdateItem", ...CLEANUP_CONNECTIONS] },
      { table: "rooms", actions: uniqueActions([...ROOM_READ, ...CLEANUP_MEMBERSHIPS]) },
    ],
    manageConnections: CLOSE_AND_POST,
    fansOut: true,
    readsAuthSecret: false,
    enqueuesDeliveries: false,
    packages: [...SDK_DYNAMO, ...SDK_MANAGEMENT, "zod"],
  },
  {
    name: "private",
    routeKey: "private",
    description: "Stores a private message and delivers it to every device of both users",
    twoWay: true,
    tables: [
      // Query: only the byUser index (a user's devices), never the table.
      {
        table: "connections",
        actions: ["dynamodb:UpdateItem", ...CLEANUP_CONNECTIONS],
        indexes: { [CONNECTIONS_BY_USER_INDEX]: ["dynamodb:Query"] },
      },
      // Only the clean-up of stale recipients' memberships: private messages never read rooms.
      { table: "rooms", actions: CLEANUP_MEMBERSHIPS },
      { table: "messages", actions: STORE_MESSAGE },
    ],
    manageConnections: CLOSE_AND_POST,
    fansOut: true,
    readsAuthSecret: false,
    enqueuesDeliveries: false,
    packages: [...SDK_DYNAMO, ...SDK_MANAGEMENT, "zod"],
  },
  {
    name: "rooms",
    routeKey: "rooms",
    description: "Lists active rooms with their number of users",
    twoWay: true,
    tables: [
      { table: "connections", actions: ["dynamodb:UpdateItem"] },
      // Query: only the directory index (the rooms' summaries), never the table.
      { table: "rooms", actions: [], indexes: { [ROOM_DIRECTORY_INDEX]: ["dynamodb:Query"] } },
      // Query: the user's read positions in the page's range and the unread counts (lib/reads.ts).
      { table: "messages", actions: ["dynamodb:Query"] },
    ],
    manageConnections: CLOSE_AND_POST,
    fansOut: false,
    readsAuthSecret: false,
    enqueuesDeliveries: false,
    packages: [...SDK_DYNAMO, ...SDK_MANAGEMENT, "zod"],
  },
  {
    name: "history",
    routeKey: "history",
    description: "Pages through a room's or a private conversation's history",
    twoWay: true,
    tables: [
      { table: "connections", actions: ["dynamodb:UpdateItem"] },
      // Query: the conversation's messages, and the caller's reaction items of the page (`me`,
      // reactions.ts); GetItem: the caller's read position for `fromRead` (lib/reads.ts).
      { table: "messages", actions: ["dynamodb:Query", "dynamodb:GetItem"] },
    ],
    manageConnections: CLOSE_AND_POST,
    fansOut: false,
    readsAuthSecret: false,
    enqueuesDeliveries: false,
    packages: [...SDK_DYNAMO, ...SDK_MANAGEMENT, "zod"],
  },
  {
    name: "ping",
    routeKey: "ping",
    description: "Refreshes the connection's liveness and answers pong",
    twoWay: true,
    tables: [{ table: "connections", actions: ["dynamodb:UpdateItem"] }],
    manageConnections: CLOSE_AND_POST,
    fansOut: false,
    readsAuthSecret: false,
    enqueuesDeliveries: false,
    packages: [...SDK_DYNAMO, ...SDK_MANAGEMENT, "zod"],
  },
  {
    name: "kick",
    routeKey: "kick",
    description: "A moderator keeps a user out of a room for some minutes and removes their connections from it",
    twoWay: true,
    tables: [
      // PutItem: the kick restriction item; BatchGetItem: the kicked connections' items (their rooms,
      // for the leave transaction), and with DeleteItem the clean-up of stale ones.
      { table: "connections", actions: ["dynamodb:UpdateItem", "dynamodb:PutItem", ...CLEANUP_CONNECTIONS] },
      // The room read, then per kicked connection the leave transaction (member Delete, presence and
      // summary Updates, as CLEANUP_MEMBERSHIPS), and the `left` broadcast's clean-up.
      { table: "rooms", actions: uniqueActions([...ROOM_READ, ...CLEANUP_MEMBERSHIPS]) },
    ],
    manageConnections: CLOSE_AND_POST,
    fansOut: true,
    readsAuthSecret: false,
    enqueuesDeliveries: false,
    packages: [...SDK_DYNAMO, ...SDK_MANAGEMENT, "zod"],
  },
  {
    name: "edit",
    routeKey: "edit",
    description: "Replaces the text of the author's message and tells the room or both users",
    twoWay: true,
    tables: MESSAGE_CHANGE_TABLES,
    manageConnections: CLOSE_AND_POST,
    fansOut: true,
    readsAuthSecret: false,
    enqueuesDeliveries: true,
    packages: [...SDK_DYNAMO, ...SDK_MANAGEMENT, ...SDK_SQS, "zod"],
  },
  {
    name: "delete",
    routeKey: "delete",
    description: "Deletes a message (author, or a moderator of the room) and tells the room or both users",
    twoWay: true,
    tables: MESSAGE_CHANGE_TABLES,
    manageConnections: CLOSE_AND_POST,
    fansOut: true,
    readsAuthSecret: false,
    enqueuesDeliveries: true,
    packages: [...SDK_DYNAMO, ...SDK_MANAGEMENT, ...SDK_SQS, "zod"],
  },
  {
    name: "typing",
    routeKey: "typing",
    description:
      "Tells a room's other users, or the other user of a private conversation, that the user is typing (throttled, nothing stored)",
    twoWay: true,
    tables: [
      // UpdateItem: the rate limit and the typing throttle item (signals.ts passThrottle); Query on
      // the byUser index: the other user's devices (private); the clean-up of stale recipients.
      {
        table: "connections",
        actions: ["dynamodb:UpdateItem", ...CLEANUP_CONNECTIONS],
        indexes: { [CONNECTIONS_BY_USER_INDEX]: ["dynamodb:Query"] },
      },
      // GetItem: the room's summary (signals.ts roomUsers, the typingMaxRoomUsers bound); the room
      // read and the clean-up of stale members, as `chat`. Nothing on messages: nothing is stored.
      { table: "rooms", actions: uniqueActions(["dynamodb:GetItem", ...ROOM_READ, ...CLEANUP_MEMBERSHIPS]) },
    ],
    manageConnections: CLOSE_AND_POST,
    fansOut: true,
    readsAuthSecret: false,
    enqueuesDeliveries: false,
    packages: [...SDK_DYNAMO, ...SDK_MANAGEMENT, "zod"],
  },
  {
    name: "react",
    routeKey: "react",
    description: "Adds or removes the caller's reaction to a message and tells the room or both users the count",
    twoWay: true,
    // As edit and delete (the same fan-out), with the reaction's own writes on the messages table.
    tables: [...MESSAGE_CHANGE_TABLES.filter((t) => t.table !== "messages"), { table: "messages", actions: REACT_MESSAGES }],
    manageConnections: CLOSE_AND_POST,
    fansOut: true,
    readsAuthSecret: false,
    enqueuesDeliveries: true,
    packages: [...SDK_DYNAMO, ...SDK_MANAGEMENT, ...SDK_SQS, "zod"],
  },
  {
    name: "read",
    routeKey: "read",
    description: "Moves the user's read position in a room forward and tells their other devices (and the room, where shared)",
    twoWay: true,
    tables: [
      // UpdateItem: the rate limit and the shared position's throttle (signals.ts passThrottle);
      // Query on byUser: the user's other devices; the clean-up of stale ones.
      {
        table: "connections",
        actions: ["dynamodb:UpdateItem", ...CLEANUP_CONNECTIONS],
        indexes: { [CONNECTIONS_BY_USER_INDEX]: ["dynamodb:Query"] },
      },
      // GetItem: the room's user count from its summary (signals.ts roomUsers); the room read and
      // its clean-up for a shared position (readReceiptRooms), `left` for users the clean-up removed.
      { table: "rooms", actions: uniqueActions(["dynamodb:GetItem", ...ROOM_READ, ...CLEANUP_MEMBERSHIPS]) },
      // UpdateItem: the read position (lib/reads.ts moveReadPosition), nothing else.
      { table: "messages", actions: ["dynamodb:UpdateItem"] },
    ],
    manageConnections: CLOSE_AND_POST,
    fansOut: true,
    readsAuthSecret: false,
    enqueuesDeliveries: false,
    packages: [...SDK_DYNAMO, ...SDK_MANAGEMENT, "zod"],
  },
  {
    name: "deliver",
    description: "Delivery worker: posts one shard's share of a large room's broadcast (a job of the delivery queue)",
    twoWay: false,
    tables: [
      // The clean-up of members found gone (410), as `chat` (handlers/lib/fanout.ts).
      { table: "connections", actions: CLEANUP_CONNECTIONS },
      // Query: the job's shard partition (data.ts readShard); GetItem: a room's summary (is a room
      // where a clean-up took a user's last connection small enough to announce `left`); the
      // clean-up of gone and expired members, as `chat`; GetItem, UpdateItem and DeleteItem: the
      // progress of a job handed back for another attempt (lib/deliveryProgress.ts).
      {
        table: "rooms",
        actions: uniqueActions([
          "dynamodb:Query",
          "dynamodb:GetItem",
          ...ROOM_READ,
          ...CLEANUP_MEMBERSHIPS,
          "dynamodb:GetItem",
          "dynamodb:UpdateItem",
          "dynamodb:DeleteItem",
        ]),
      },
    ],
    manageConnections: CLOSE_AND_POST,
    fansOut: true,
    readsAuthSecret: false,
    enqueuesDeliveries: false,
    trigger: "deliveryQueue",
    // client-sqs: ChangeMessageVisibility of a job stopped at its time margin (deliver.ts).
    packages: [...SDK_DYNAMO, ...SDK_MANAGEMENT, ...SDK_SQS],
  },
];

/** The functions that serve a route, in route-table order. */
export const ROUTE_FUNCTIONS: readonly FunctionSpec[] = FUNCTIONS.filter((f) => f.routeKey !== undefined);

export function functionSpec(name: FunctionName): FunctionSpec {
  const spec = FUNCTIONS.find((f) => f.name === name);
  if (!spec) throw internalError(`unknown function ${name}`);
  return spec;
}
