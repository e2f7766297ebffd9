/**
 * What a backend that pushes (push/index.ts) does to the stack's resources: the exact DynamoDB
 * actions per table and index, and the `@connections` methods. Declared once here, next to the
 * code that makes the calls; infra/pushPolicy.ts derives the IAM policy from it (the dependency
 * arrow points from infrastructure to code), and tests/push/push.test.ts checks, from the calls the
 * module really makes, that nothing is missing or unused.
 *
 * Pure data: no Pulumi, no AWS SDK.
 */
import type { ManagementMethod, TableAccess } from "../handlers/routes";
import { CONNECTIONS_BY_USER_INDEX } from "../handlers/tables";

/**
 * What a push does to one table: the route table's shape (handlers/routes.ts TableAccess), actions
 * on the table itself and, per index, actions on the index (a Query on an index is authorized on the
 * index ARN: DynamoDB IAM resources).
 */
export type PushTableAccess = TableAccess;

export const PUSH_TABLE_ACCESS: readonly PushTableAccess[] = [
  {
    table: "connections",
    // BatchGetItem + DeleteItem: removing connections a post found gone (410), as the chat
    // routes do (handlers/lib/fanout.ts); BatchGetItem also tells, when closing a user's
    // connections, a 410 of a handshake still running from a gone connection, and reads a kicked
    // user's connections (their rooms). PutItem: a ban, and a kick's restriction; DeleteItem: an
    // unban (handlers/lib/bans.ts). UpdateItem: a kick's leave transaction (the connection item's
    // `rooms`; handlers/lib/moderation.ts). Query only on the byUser index: a user's devices.
    actions: ["dynamodb:BatchGetItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
    indexes: { [CONNECTIONS_BY_USER_INDEX]: ["dynamodb:Query"] },
  },
  {
    table: "rooms",
    // Query: the room partition (members; handlers/lib/data.ts readRoom, which also deletes a
    // summary left at 0 users: DeleteItem). DeleteItem/UpdateItem: a gone or kicked member's
    // removal, one transaction of member Delete, presence Update and summary Update (fanout.ts,
    // moderation.ts).
    actions: ["dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
  },
  {
    table: "messages",
    // PutItem: a room push is stored in the room's history before it is delivered. No GetItem:
    // pushes carry no clientMessageId, so the idempotency path is never taken. UpdateItem: a
    // delete (one conditional UpdateItem leaving a tombstone; handlers/lib/messageChanges.ts).
    actions: ["dynamodb:PutItem", "dynamodb:UpdateItem"],
  },
];

/**
 * `@connections` methods a push uses: POST to deliver (notices, `deleted`, `kicked`, `left`),
 * DELETE to close a room member found past its token's expiry (as a room broadcast does) and a
 * disconnected or banned user's connections; never GET.
 */
export const PUSH_MANAGEMENT_METHODS: readonly ManagementMethod[] = ["POST", "DELETE"];
