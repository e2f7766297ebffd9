/**
 * Key schemas of the chat API's DynamoDB tables: declared once here and read by the stack
 * (`infra/chatTables.ts`) and by the local runtime (`local/tables.ts`), so both create the same tables.
 *
 * Module scope holds only plain constants (../shared/STYLE.md): handlers that import this file
 * stay serializable by `aws.lambda.CallbackFunction`.
 */

export type TableName = "connections" | "rooms" | "messages";
export type AttributeType = "S" | "N";

export interface KeyAttribute {
  readonly name: string;
  readonly type: AttributeType;
}

export interface IndexSchema {
  readonly name: string;
  readonly partitionKey: KeyAttribute;
  readonly sortKey?: KeyAttribute;
  /** KEYS_ONLY and INCLUDE keep the index small: read units are paid on the size of what is read. */
  readonly projection: { readonly type: "KEYS_ONLY" | "INCLUDE" | "ALL"; readonly nonKeyAttributes?: readonly string[] };
}

export interface TableSchema {
  readonly name: TableName;
  /** Environment variable through which a function learns the table's physical name. */
  readonly envVar: string;
  readonly partitionKey: KeyAttribute;
  readonly sortKey?: KeyAttribute;
  /** Attribute holding an epoch-seconds expiry. DynamoDB deletes lazily, so reads filter it too. */
  readonly ttlAttribute: string;
  readonly indexes: readonly IndexSchema[];
  readonly description: string;
}

/** Name of the TTL attribute on every table (epoch seconds). */
export const TTL_ATTRIBUTE = "expiresAt";

export const CONNECTIONS_BY_USER_INDEX = "byUser";
export const ROOM_DIRECTORY_INDEX = "directory";

export const TABLES: Readonly<Record<TableName, TableSchema>> = {
  connections: {
    name: "connections",
    envVar: "CONNECTIONS_TABLE",
    description: "One item per open WebSocket connection (user, display name, joined rooms, rate-limit window).",
    partitionKey: { name: "connectionId", type: "S" },
    ttlAttribute: TTL_ATTRIBUTE,
    indexes: [
      {
        // A private message reaches every device of a user: one Query on this index.
        name: CONNECTIONS_BY_USER_INDEX,
        partitionKey: { name: "userId", type: "S" },
        sortKey: { name: "connectionId", type: "S" },
        projection: { type: "INCLUDE", nonKeyAttributes: [TTL_ATTRIBUTE] },
      },
    ],
  },
  rooms: {
    name: "rooms",
    envVar: "ROOMS_TABLE",
    description:
      "One partition per room: a `#summary` item (distinct users, directory entry) and one `c#<connectionId>` item per member connection; beside it the room's shards, presence and delivery progress partitions.",
    partitionKey: { name: "roomId", type: "S" },
    sortKey: { name: "sk", type: "S" },
    ttlAttribute: TTL_ATTRIBUTE,
    indexes: [
      {
        // Sparse index: only `#summary` items carry `directory`, so listing rooms never scans members.
        // expiresAt is projected so that `rooms` can skip abandoned rooms TTL has not removed yet.
        name: ROOM_DIRECTORY_INDEX,
        partitionKey: { name: "directory", type: "S" },
        sortKey: { name: "roomId", type: "S" },
        projection: { type: "INCLUDE", nonKeyAttributes: ["users", TTL_ATTRIBUTE] },
      },
    ],
  },
  messages: {
    name: "messages",
    envVar: "MESSAGES_TABLE",
    description:
      "Message history per conversation (`room#<roomId>` or `dm#<userA>#<userB>`), sorted by time, expiring after messageRetentionHours; plus idempotency records.",
    partitionKey: { name: "conversationId", type: "S" },
    sortKey: { name: "sk", type: "S" },
    ttlAttribute: TTL_ATTRIBUTE,
    indexes: [],
  },
};

export const TABLE_NAMES: readonly TableName[] = ["connections", "rooms", "messages"];
