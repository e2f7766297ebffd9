/**
 * What the membership data must agree on once every frame is answered (docs/architecture.md,
 * "Races"): read straight from the tables with consistent Scans (tests only), independently of how
 * the handlers keep them in step.
 *  - a connection item's `rooms` set lists exactly the rooms holding a `c#<connectionId>` item;
 *  - no `c#` item belongs to a connection whose item is gone (a ghost member);
 *  - a room's `#summary.users` (0 when absent) is the number of distinct users among its members;
 *  - no connection is in more than 50 rooms.
 */
import { ScanCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";

export interface TableNames {
  readonly connections: string;
  readonly rooms: string;
}

export interface Snapshot {
  /** connectionId -> its rooms set (connection items only, not per-user budget items). */
  readonly connections: Map<string, { userId: string; rooms: Set<string> }>;
  /** roomId -> member connectionId -> userId */
  readonly members: Map<string, Map<string, string>>;
  /** roomId -> summary users */
  readonly summaries: Map<string, number>;
  /** roomId -> userId -> presence item (`n` member connections, `v` transitions so far). */
  readonly presence: Map<string, Map<string, { n: number; v: number }>>;
}

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
  const connections = new Map<string, { userId: string; rooms: Set<string> }>();
  for (const item of await scanAll(doc, tables.connections)) {
    if (typeof item.userId !== "string") continue; // not a connection (a per-user budget item)
    connections.set(String(item.connectionId), { userId: item.userId, rooms: new Set((item.rooms as Set<string> | undefined) ?? []) });
  }
  const members = new Map<string, Map<string, string>>();
  const summaries = new Map<string, number>();
  const presence = new Map<string, Map<string, { n: number; v: number }>>();
  for (const item of await scanAll(doc, tables.rooms)) {
    const roomId = String(item.roomId);
    const sk = String(item.sk);
    if (roomId.endsWith("#users") && sk.startsWith("u#")) {
      const room = roomId.slice(0, -"#users".length);
      if (!presence.has(room)) presence.set(room, new Map());
      presence.get(room)!.set(sk.slice(2), { n: Number(item.n ?? 0), v: Number(item.v ?? 0) });
    } else if (sk.startsWith("c#")) {
      if (!members.has(roomId)) members.set(roomId, new Map());
      members.get(roomId)!.set(sk.slice(2), String(item.userId));
    } else if (sk === "#summary") summaries.set(roomId, Number(item.users ?? 0));
  }
  return { connections, members, summaries, presence };
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
  return out;
}
