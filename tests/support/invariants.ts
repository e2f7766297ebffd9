/**
 * What the membership data must agree on once every frame is answered (docs/architecture.md,
 * "Races"): read straight from the tables with consistent Scans (tests only), independently of how
 * the handlers keep them in step.
 *  - a connection item's `rooms` set lists exactly the rooms holding a `c#<connectionId>` item;
 *  - no `c#` item belongs to a connection whose item is gone (a ghost member);
 *  - a room's `#summary.users` (0 when absent) is the number of distinct users among its members;
 *  - no connection is in more than 50 rooms;
 *  - sharded membership (docs/architecture.md, "Sharded membership"): a member item in shard k lives in
 *    partition `<roomId>#s<k>` (k > 0), its connection item's `shard#<roomId>` says k (absent: 0), all of
 *    a user's member connections in a room share one shard, the one the user's presence item names
 *    (`shard`, absent: 0), k < the summary's `shards`, and once a room has several shards the summary's
 *    `u<k>` is the number of distinct users in shard k.
 */
import { ScanCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";

export interface TableNames {
  readonly connections: string;
  readonly rooms: string;
}

export interface Snapshot {
  /** connectionId -> its rooms set (connection items only, not per-user budget items), and its shard per room (recorded ones only). */
  readonly connections: Map<string, { userId: string; rooms: Set<string>; shards: Map<string, number> }>;
  /** roomId -> member connectionId -> userId (every shard of the room) */
  readonly members: Map<string, Map<string, string>>;
  /** roomId -> member connectionId -> the shard whose partition holds its item */
  readonly memberShards: Map<string, Map<string, number>>;
  /** roomId -> summary users */
  readonly summaries: Map<string, number>;
  /** roomId -> the summary's shards (1 when absent) and per-shard users (`u<k>`, when present) */
  readonly summaryShards: Map<string, { shards: number; shardUsers: Map<number, number> }>;
  /** roomId -> userId -> presence item (`n` member connections, `v` transitions so far, `shard` the user's, 0 when absent). */
  readonly presence: Map<string, Map<string, { n: number; v: number; shard: number }>>;
}

const SHARD_PARTITION = /^(.*)#s(\d+)$/;
const CONNECTION_SHARD = "shard#";
const SHARD_USERS = /^u(\d+)$/;

async function scanAll(doc: DynamoDBDocumentClient, table: string): Promise<Array<Record<string, unknown>>> {
  const items: Array<Record<string, unknown>> = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await doc.send(new ScanCommand({ TableName: table, ConsistentRead: true, ExclusiveStartKey: start }));
    items.push(...((out.Items ?? []) as Array<Record<string, unknown>>));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

export async function snapshot(doc: DynamoDBDocumentClient, tables: TableNames): Promise<Snapshot> {
  const connections = new Map<string, { userId: string; rooms: Set<string>; shards: Map<string, number> }>();
  for (const item of await scanAll(doc, tables.connections)) {
    if (typeof item.userId !== "string") continue; // not a connection (a per-user budget item)
    const shards = new Map<string, number>();
    for (const [name, value] of Object.entries(item))
      if (name.startsWith(CONNECTION_SHARD)) shards.set(name.slice(CONNECTION_SHARD.length), Number(value));
    connections.set(String(item.connectionId), {
      userId: item.userId,
      rooms: new Set((item.rooms as Set<string> | undefined) ?? []),
      shards,
    });
  }
  const members = new Map<string, Map<string, string>>();
  const memberShards = new Map<string, Map<string, number>>();
  const summaries = new Map<string, number>();
  const summaryShards = new Map<string, { shards: number; shardUsers: Map<number, number> }>();
  const presence = new Map<string, Map<string, { n: number; v: number; shard: number }>>();
  for (const item of await scanAll(doc, tables.rooms)) {
    const partition = String(item.roomId);
    const sk = String(item.sk);
    if (partition.endsWith("#users") && sk.startsWith("u#")) {
      const room = partition.slice(0, -"#users".length);
      if (!presence.has(room)) presence.set(room, new Map());
      presence.get(room)!.set(sk.slice(2), { n: Number(item.n ?? 0), v: Number(item.v ?? 0), shard: Number(item.shard ?? 0) });
    } else if (sk.startsWith("c#")) {
      const sharded = SHARD_PARTITION.exec(partition);
      const roomId = sharded ? sharded[1] : partition;
      if (!members.has(roomId)) members.set(roomId, new Map());
      if (!memberShards.has(roomId)) memberShards.set(roomId, new Map());
      members.get(roomId)!.set(sk.slice(2), String(item.userId));
      memberShards.get(roomId)!.set(sk.slice(2), sharded ? Number(sharded[2]) : 0);
    } else if (sk === "#summary") {
      summaries.set(partition, Number(item.users ?? 0));
      const shardUsers = new Map<number, number>();
      for (const [name, value] of Object.entries(item)) {
        const k = SHARD_USERS.exec(name);
        if (k) shardUsers.set(Number(k[1]), Number(value));
      }
      summaryShards.set(partition, { shards: Number(item.shards ?? 1), shardUsers });
    }
  }
  return { connections, members, memberShards, summaries, summaryShards, presence };
}

/**
 * The presence items agree with the member items: for every (room, user), `n` is the number of the
 * user's member connections in the room, and `v` (transitions so far) is odd exactly when n > 0.
 */
export function presenceViolations(s: Snapshot, roomPrefix = ""): string[] {
  const out: string[] = [];
  const rooms = new Set([...s.members.keys(), ...s.presence.keys()].filter((r) => r.startsWith(roomPrefix)));
  for (const roomId of rooms) {
    const counts = new Map<string, number>();
    for (const userId of s.members.get(roomId)?.values() ?? []) counts.set(userId, (counts.get(userId) ?? 0) + 1);
    const users = new Set([...counts.keys(), ...(s.presence.get(roomId)?.keys() ?? [])]);
    for (const userId of users) {
      const p = s.presence.get(roomId)?.get(userId) ?? { n: 0, v: 0 };
      const n = counts.get(userId) ?? 0;
      if (p.n !== n) out.push(`presence of ${userId} in ${roomId}: n ${p.n}, member connections ${n}`);
      if ((p.v % 2 === 1) !== n > 0) out.push(`presence of ${userId} in ${roomId}: v ${p.v} with ${n} member connections`);
    }
  }
  return out;
}

/**
 * Every disagreement found, as sentences (empty when the data agrees with itself). With `roomPrefix`,
 * only rooms whose id starts with it are looked at (tests sharing tables check their own rooms).
 */
export function violations(s: Snapshot, roomPrefix = ""): string[] {
  const out: string[] = [];
  const mine = (roomId: string) => roomId.startsWith(roomPrefix);
  const roomsOf = new Map<string, Set<string>>();
  for (const [roomId, m] of s.members) {
    if (!mine(roomId)) continue;
    for (const connectionId of m.keys()) {
      if (!roomsOf.has(connectionId)) roomsOf.set(connectionId, new Set());
      roomsOf.get(connectionId)!.add(roomId);
      if (!s.connections.has(connectionId)) out.push(`ghost member: c#${connectionId} in ${roomId} has no connection item`);
    }
  }
  for (const [connectionId, c] of s.connections) {
    const actual = [...(roomsOf.get(connectionId) ?? [])].sort();
    const listed = [...c.rooms].filter(mine).sort();
    if (actual.join(",") !== listed.join(",")) out.push(`half member: ${connectionId} lists [${listed}] but is a member of [${actual}]`);
    if (c.rooms.size > 50 && (actual.length > 0 || listed.length > 0)) out.push(`${connectionId} is in ${c.rooms.size} rooms (cap 50)`);
  }
  for (const roomId of new Set([...s.members.keys(), ...s.summaries.keys()].filter(mine))) {
    const users = new Set(s.members.get(roomId)?.values() ?? []).size;
    const summary = s.summaries.get(roomId) ?? 0;
    if (users !== summary) out.push(`summary of ${roomId}: users ${summary}, distinct members ${users}`);
  }
  out.push(...shardViolations(s, roomPrefix));
  return out;
}

/** The sharded-membership agreements (the module's comment), as sentences. */
export function shardViolations(s: Snapshot, roomPrefix = ""): string[] {
  const out: string[] = [];
  for (const [roomId, shards] of s.memberShards) {
    if (!roomId.startsWith(roomPrefix)) continue;
    const summary = s.summaryShards.get(roomId) ?? { shards: 1, shardUsers: new Map<number, number>() };
    const shardOfUser = new Map<string, number>();
    const usersOfShard = new Map<number, Set<string>>();
    for (const [connectionId, shard] of shards) {
      const userId = s.members.get(roomId)?.get(connectionId) ?? "";
      if (shard >= summary.shards) out.push(`c#${connectionId} in ${roomId} is in shard ${shard} of ${summary.shards}`);
      const recorded = s.connections.get(connectionId)?.shards.get(roomId) ?? 0;
      if (s.connections.has(connectionId) && recorded !== shard)
        out.push(`c#${connectionId} in ${roomId}: in shard ${shard}, its connection item says ${recorded}`);
      const seen = shardOfUser.get(userId);
      if (seen !== undefined && seen !== shard) out.push(`user ${userId} in ${roomId} has connections in shards ${seen} and ${shard}`);
      shardOfUser.set(userId, shard);
      if (!usersOfShard.has(shard)) usersOfShard.set(shard, new Set());
      usersOfShard.get(shard)!.add(userId);
      const p = s.presence.get(roomId)?.get(userId);
      if (p && p.n > 0 && p.shard !== shard) out.push(`user ${userId} in ${roomId}: in shard ${shard}, presence says ${p.shard}`);
    }
    if (summary.shards > 1) {
      for (let k = 0; k < summary.shards; k++) {
        const n = usersOfShard.get(k)?.size ?? 0;
        const counted = summary.shardUsers.get(k) ?? 0;
        if (n !== counted) out.push(`summary of ${roomId}: u${k} ${counted}, distinct users in shard ${k} ${n}`);
      }
    }
  }
  return out;
}
