/**
 * Issue 17, sharded membership (docs/architecture.md, "Sharded membership"): a room's members spread
 * over 1, 2, 4, ... partitions once it passes roomShardSize users per shard. Against DynamoDB Local,
 * with a shard size of 4 so that a few dozen users make many shards: growth in the join transaction,
 * the per-shard bound under churn and under concurrent joins across a doubling, exact removal by
 * leave, `$disconnect` and the stale clean-up from a shard other than 0, exact `rooms` counts,
 * presence per user with two devices, items written before shards, and the silence of large rooms.
 * The tables must agree with themselves after each (tests/support/invariants.ts, shard rules included).
 */
import { strict as assert } from "node:assert";
import { DeleteCommand, GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import {
  addMembership,
  CONNECTION_LIFETIME_SECONDS,
  epochSeconds,
  MAX_ROOM_SHARDS,
  memberPartition,
  placeUser,
  presencePartition,
  putConnection,
  readRoom,
  readRoomSummary,
  removeMembership,
  shardState,
  type DataContext,
  type ShardState,
} from "../../handlers/lib/data";
import { seededRandom } from "../../bench/model/random";
import { readHandlerConfig } from "../../handlers/lib/config";
import { createHarness, type Harness, type TestConnection } from "../support/handlerHarness";
import { snapshot, violations } from "../support/invariants";

/** The summary a join's transaction leaves behind (what data.ts arrivalSummary writes), in memory. */
function arrive(state: ShardState, userId: string, size: number): { state: ShardState; shard: number } {
  const p = placeUser(state, userId, size);
  const shardUsers =
    p.shards > state.shards
      ? [...(state.shards === 1 ? [state.users] : state.shardUsers), ...new Array(p.shards - state.shards).fill(0)]
      : [...state.shardUsers];
  shardUsers[p.shard] += 1;
  return { state: { users: state.users + 1, shards: p.shards, shardUsers }, shard: p.shard };
}

function depart(state: ShardState, shard: number): ShardState {
  const shardUsers = [...state.shardUsers];
  shardUsers[shard] -= 1;
  return { users: state.users - 1, shards: state.shards, shardUsers };
}

/** What a join and a leave of a 3-user room cost before shards existed (measured on the code before this change). */
const SMALL_ROOM_COSTS = [
  [
    "join",
    2,
    10,
    "dynamodb:UpdateItem dynamodb:UpdateItem dynamodb:UpdateItem dynamodb:UpdateItem dynamodb:PutItem dynamodb:ConditionCheckItem dynamodb:UpdateItem dynamodb:UpdateItem dynamodb:Query dynamodb:GetItem dynamodb:Query",
  ],
  [
    "leave",
    1,
    10,
    "dynamodb:UpdateItem dynamodb:UpdateItem dynamodb:UpdateItem dynamodb:DeleteItem dynamodb:UpdateItem dynamodb:UpdateItem dynamodb:Query",
  ],
];

describe("sharded membership (issue 17)", () => {
  describe("placement (pure)", () => {
    it("100,000 users with roomShardSize 1,000, a third of them leaving and rejoining: 128 shards, none above 1,000 users", () => {
      const size = 1000;
      const random = seededRandom(17);
      let state = shardState(undefined);
      const where = new Map<string, number>();
      const ids: string[] = [];
      let peak = 0;
      while (ids.length < 100_000) {
        // Churn: one step in four, a present user leaves and rejoins (placed afresh).
        if (ids.length > 1000 && random() < 0.25) {
          const id = ids[Math.floor(random() * ids.length)] ?? "";
          state = depart(state, where.get(id) ?? 0);
          where.delete(id);
          const back = arrive(state, id, size);
          state = back.state;
          where.set(id, back.shard);
        } else {
          const id = `user-${ids.length}`;
          ids.push(id);
          const placed = arrive(state, id, size);
          state = placed.state;
          where.set(id, placed.shard);
        }
        peak = Math.max(peak, ...state.shardUsers);
      }
      assert.equal(state.users, 100_000);
      assert.equal(state.shards, 128);
      assert.ok(peak <= size, `a shard reached ${peak} users`);
      const counted = new Array(state.shards).fill(0);
      for (const shard of where.values()) counted[shard] += 1;
      assert.deepEqual(counted, state.shardUsers);
    });

    it("doubles only when users reach roomShardSize x shards, and stops at MAX_ROOM_SHARDS", () => {
      assert.deepEqual(placeUser({ users: 3, shards: 1, shardUsers: [3] }, "a", 4), { shard: 0, shards: 1 });
      assert.deepEqual(placeUser({ users: 4, shards: 1, shardUsers: [4] }, "a", 4), { shard: 1, shards: 2 });
      const atMax: ShardState = { users: 4 * MAX_ROOM_SHARDS, shards: MAX_ROOM_SHARDS, shardUsers: new Array(MAX_ROOM_SHARDS).fill(4) };
      assert.equal(placeUser(atMax, "a", 4).shards, MAX_ROOM_SHARDS);
    });
  });

  describe("against DynamoDB Local (roomShardSize 4)", () => {
    let h: Harness;
    let ctx: DataContext;
    before(async () => {
      h = await createHarness({ label: "shards", extraEnv: { ROOM_SHARD_SIZE: "4" } });
      ctx = {
        doc: h.doc,
        config: readHandlerConfig(h.envFor("join"), "join", { tables: ["connections", "rooms", "messages"], management: true }),
      };
    });
    after(async () => {
      await h?.stop();
    });
    beforeEach(() => h.api.clearFrames());

    const consistent = async (roomId: string) => assert.deepEqual(violations(await snapshot(h.doc, h.tables), roomId), []);
    const presence = (conn: TestConnection, event: string, userId: string) =>
      h.frames(conn).filter((f) => f.type === "presence" && f.event === event && f.userId === userId).length;
    /** Shard of each member connection of a room, from the partitions themselves. */
    const shardsOf = async (roomId: string): Promise<Map<string, number>> => {
      const s = await snapshot(h.doc, h.tables);
      return s.memberShards.get(roomId) ?? new Map();
    };
    const usersPerShard = async (roomId: string): Promise<number[]> => {
      const s = await snapshot(h.doc, h.tables);
      const byShard = new Map<number, Set<string>>();
      for (const [connectionId, shard] of s.memberShards.get(roomId) ?? []) {
        if (!byShard.has(shard)) byShard.set(shard, new Set());
        byShard.get(shard)?.add(s.members.get(roomId)?.get(connectionId) ?? "");
      }
      const shards = (await readRoomSummary(ctx, roomId)).shards;
      return Array.from({ length: shards }, (_, k) => byShard.get(k)?.size ?? 0);
    };
    const summaryItem = async (roomId: string) =>
      (await h.doc.send(new GetCommand({ TableName: h.tables.rooms, Key: { roomId, sk: "#summary" }, ConsistentRead: true }))).Item;
    /** A registered connection (its item), for the data-level tests that join without a socket. */
    const connection = async (id: string, userId: string) => {
      const nowMs = Date.now();
      await putConnection(ctx, {
        connectionId: id,
        userId,
        username: userId,
        connectedAt: nowMs,
        expiresAt: epochSeconds(nowMs) + CONNECTION_LIFETIME_SECONDS,
      });
      return { connectionId: id, userId, username: userId, expiresAt: epochSeconds(nowMs) + CONNECTION_LIFETIME_SECONDS };
    };

    it("grows 1 -> 2 -> 4 in the join that takes users past 4 x shards; the summary counts users exactly", async () => {
      const room = "grow-1";
      const conns: TestConnection[] = [];
      for (let i = 0; i < 4; i++) conns.push(await h.join(`grow-u${i}`, room));
      assert.deepEqual(await readRoomSummary(ctx, room), { users: 4, shards: 1 });
      assert.deepEqual([...new Set((await shardsOf(room)).values())], [0], "a room that never grew keeps one partition");
      conns.push(await h.join("grow-u4", room));
      assert.deepEqual(await readRoomSummary(ctx, room), { users: 5, shards: 2 });
      assert.equal((await shardsOf(room)).get(conns[4].connectionId), 1, "the user who doubled the room is in the new shard");
      for (let i = 5; i < 9; i++) conns.push(await h.join(`grow-u${i}`, room));
      assert.deepEqual(await readRoomSummary(ctx, room), { users: 9, shards: 4 });
      const perShard = await usersPerShard(room);
      assert.equal(perShard[0] + perShard[1], 8);
      assert.equal(perShard[2] + perShard[3], 1);
      // Every member sees every later arrival, whatever shard it is in (a small room: the route reads all shards).
      assert.equal(presence(conns[0], "joined", "grow-u8"), 1);
      assert.equal(presence(conns[4], "joined", "grow-u8"), 1);
      const view = await readRoom(ctx, room, epochSeconds(Date.now()));
      assert.equal(view.users.length, 9);
      assert.ok(
        view.members.every((m) => m.roomId === room),
        "items of shard k > 0 come back with the room's id",
      );
      await consistent(room);
    });

    it("filling a room with 200 users, a third leaving and rejoining: no shard ever holds more than 4 users", async () => {
      const room = "bound-1";
      const random = seededRandom(4);
      const present: Array<{ connectionId: string; userId: string; username: string }> = [];
      let peak = 0;
      // Five arrivals at a time, then as many rejoins (leave, join) of earlier users, each of them
      // concurrent with the others: a third of all joins are churn.
      for (let i = 0; i < 200; i += 5) {
        const batch = await Promise.all([0, 1, 2, 3, 4].map((j) => connection(`bound-c${i + j}`, `bound-u${i + j}`)));
        await Promise.all(batch.map((c) => addMembership(ctx, { ...c, roomId: room, nowMs: Date.now() })));
        const churn = i < 20 ? [] : [...new Set([0, 1, 2].map(() => present[Math.floor(random() * present.length)]))];
        await Promise.all(
          churn.map(async (c) => {
            if (!c) return;
            await removeMembership(ctx, { ...c, rooms: new Set([room]), currentRoom: room }, room, Date.now());
            await addMembership(ctx, { ...c, expiresAt: epochSeconds(Date.now()) + 600, roomId: room, nowMs: Date.now() });
          }),
        );
        present.push(...batch);
        // The summary's per-shard counts, checked against the partitions themselves at the end.
        peak = Math.max(peak, ...shardState(await summaryItem(room)).shardUsers);
      }
      const perShard = await usersPerShard(room);
      peak = Math.max(peak, ...perShard);
      assert.deepEqual(await readRoomSummary(ctx, room), { users: 200, shards: 64 });
      assert.ok(peak <= 4, `a shard held ${peak} users`);
      assert.equal(
        perShard.reduce((a, b) => a + b, 0),
        200,
      );
      await consistent(room);
    });

    it("concurrent joins across a doubling lose no count and no member, and respect the bound", async () => {
      const room = "conc-1";
      const first = await Promise.all(Array.from({ length: 3 }, (_, i) => connection(`conc-a${i}`, `conc-a${i}`)));
      for (const c of first) await addMembership(ctx, { ...c, roomId: room, nowMs: Date.now() });
      // 3 present; 21 arrive at once: the room must double 1 -> 2 -> 4 -> 8 while they race.
      const racers = await Promise.all(Array.from({ length: 21 }, (_, i) => connection(`conc-b${i}`, `conc-b${i}`)));
      const out = await Promise.all(racers.map((c) => addMembership(ctx, { ...c, roomId: room, nowMs: Date.now() })));
      assert.ok(out.every((o) => o.added && o.firstOfUser));
      assert.deepEqual(await readRoomSummary(ctx, room), { users: 24, shards: 8 });
      const perShard = await usersPerShard(room);
      assert.ok(Math.max(...perShard) <= 4, `users per shard ${perShard}`);
      assert.equal(
        perShard.reduce((a, b) => a + b, 0),
        24,
      );
      await consistent(room);
    });

    /** A room of 6 users (2 shards): returns the connections, the last two in shard 1. */
    const shardedRoom = async (room: string): Promise<TestConnection[]> => {
      const conns: TestConnection[] = [];
      for (let i = 0; i < 6; i++) conns.push(await h.join(`${room}-u${i}`, room));
      const shards = await shardsOf(room);
      assert.equal(shards.get(conns[4].connectionId), 1);
      assert.equal(shards.get(conns[5].connectionId), 1);
      h.api.clearFrames();
      return conns;
    };

    it("leave from shard 1 deletes the member item there, counts the user out and announces `left`", async () => {
      const room = "leave-s";
      const conns = await shardedRoom(room);
      const reply = await h.send(conns[5], { type: "leave", roomId: room });
      assert.equal(reply?.type, "left");
      const item = await h.doc.send(
        new GetCommand({ TableName: h.tables.rooms, Key: { roomId: memberPartition(room, 1), sk: `c#${conns[5].connectionId}` } }),
      );
      assert.equal(item.Item, undefined);
      const conn = (await h.doc.send(new GetCommand({ TableName: h.tables.connections, Key: { connectionId: conns[5].connectionId } })))
        .Item;
      assert.equal(conn?.[`shard#${room}`], undefined, "the connection's shard record goes with the membership");
      assert.deepEqual(await readRoomSummary(ctx, room), { users: 5, shards: 2 });
      assert.equal(presence(conns[0], "left", `${room}-u5`), 1);
      assert.equal(presence(conns[4], "left", `${room}-u5`), 1);
      await consistent(room);
    });

    it("$disconnect of a connection in shard 1 removes its membership there and announces `left`", async () => {
      const room = "disc-s";
      const conns = await shardedRoom(room);
      await h.disconnect(conns[4]);
      assert.deepEqual(await readRoomSummary(ctx, room), { users: 5, shards: 2 });
      assert.equal((await shardsOf(room)).has(conns[4].connectionId), false);
      assert.equal(presence(conns[0], "left", `${room}-u4`), 1);
      await consistent(room);
    });

    it("the stale clean-up removes a vanished connection of shard 1, with or without its connection item", async () => {
      const room = "stale-s";
      const conns = await shardedRoom(room);
      await h.vanish(conns[4]);
      // Its item is gone too (a `$disconnect` that deleted it and failed): only the room read says where it was.
      h.api.close(conns[5].connectionId);
      await h.doc.send(new DeleteCommand({ TableName: h.tables.connections, Key: { connectionId: conns[5].connectionId } }));
      await h.send(conns[0], { type: "chat", roomId: room, message: "anyone in shard 1?" });
      assert.deepEqual(await readRoomSummary(ctx, room), { users: 4, shards: 2 });
      const left = await shardsOf(room);
      assert.equal(left.has(conns[4].connectionId) || left.has(conns[5].connectionId), false);
      assert.equal(presence(conns[1], "left", `${room}-u4`), 1);
      assert.equal(presence(conns[1], "left", `${room}-u5`), 1);
      await consistent(room);
    });

    it("a kick removes a user's two devices from shard 1 (their connection views carry no shard) and the room hears one `left`", async () => {
      const room = "kick-shard";
      const { result, conn: mod } = await h.connect("kick-shard-mod", { roomId: room, access: { moderates: "kick-*" } });
      assert.equal(result.statusCode, 200);
      const conns = [mod];
      for (let i = 1; i < 5; i++) conns.push(await h.join(`${room}-u${i}`, room));
      const phone = await h.join("kick-shard-bob", room);
      const laptop = await h.join("kick-shard-bob", room);
      const shards = await shardsOf(room);
      assert.deepEqual([shards.get(phone.connectionId), shards.get(laptop.connectionId)], [1, 1]);
      h.api.clearFrames();
      const reply = await h.send(mod, { type: "kick", roomId: room, userId: "kick-shard-bob", minutes: 5 });
      assert.deepEqual([reply?.type, reply?.connections], ["userKicked", 2]);
      const left = await shardsOf(room);
      assert.equal(left.has(phone.connectionId) || left.has(laptop.connectionId), false);
      assert.equal(presence(conns[1], "left", "kick-shard-bob"), 1);
      assert.deepEqual(await readRoomSummary(ctx, room), { users: 5, shards: 2 });
      await consistent(room);
    });

    it("`rooms` counts the users of every shard exactly, through growth and departures", async () => {
      const room = "count-s";
      const conns = await shardedRoom(room);
      const counted = async () => {
        const reply = await h.send(conns[0], { type: "rooms", limit: 100 });
        return (reply?.rooms as Array<{ roomId: string; members: number }>).find((r) => r.roomId === room)?.members;
      };
      assert.equal(await counted(), 6);
      await h.send(conns[5], { type: "leave", roomId: room });
      await h.disconnect(conns[1]);
      assert.equal(await counted(), 4);
      await consistent(room);
    });

    it("a user's second device joins the first one's shard: presence counts the user once, `left` only after both", async () => {
      const room = "dev-s";
      const conns = await shardedRoom(room);
      // conns[4]'s user, already in shard 1, opens a second device.
      const second = await h.join(`${room}-u4`, room);
      assert.equal((await shardsOf(room)).get(second.connectionId), 1, "the second device is in the user's shard");
      assert.equal(presence(conns[0], "joined", `${room}-u4`), 0, "no second `joined`");
      assert.deepEqual(await readRoomSummary(ctx, room), { users: 6, shards: 2 });
      await h.send(second, { type: "leave", roomId: room });
      assert.equal(presence(conns[0], "left", `${room}-u4`), 0, "still present on the first device");
      await h.disconnect(conns[4]);
      assert.equal(presence(conns[0], "left", `${room}-u4`), 1);
      assert.deepEqual(await readRoomSummary(ctx, room), { users: 5, shards: 2 });
      await consistent(room);
    });

    it("items written before shards (no shard anywhere) mean shard 0: a legacy member leaves exactly after the room doubled", async () => {
      const room = "legacy-s";
      const nowMs = Date.now();
      const expiresAt = epochSeconds(nowMs) + CONNECTION_LIFETIME_SECONDS;
      const legacy: TestConnection[] = [];
      // Four members stored as the code before this change stored them: no shard attribute, no `shards`.
      for (let i = 0; i < 4; i++) {
        const conn = await h.join(`${room}-old${i}`, "legacy-lobby");
        legacy.push(conn);
        await h.doc.send(
          new PutCommand({
            TableName: h.tables.rooms,
            Item: {
              roomId: room,
              sk: `c#${conn.connectionId}`,
              connectionId: conn.connectionId,
              userId: conn.userId,
              username: conn.username,
              joinedAt: nowMs,
              expiresAt,
            },
          }),
        );
        await h.doc.send(
          new PutCommand({
            TableName: h.tables.rooms,
            Item: {
              roomId: presencePartition(room),
              sk: `u#${conn.userId}`,
              n: 1,
              v: 1,
              room,
              userId: conn.userId,
              username: conn.username,
              expiresAt,
            },
          }),
        );
        const item = (await h.doc.send(new GetCommand({ TableName: h.tables.connections, Key: { connectionId: conn.connectionId } }))).Item;
        await h.doc.send(
          new PutCommand({ TableName: h.tables.connections, Item: { ...item, rooms: new Set([...(item?.rooms ?? []), room]) } }),
        );
      }
      await h.doc.send(
        new PutCommand({ TableName: h.tables.rooms, Item: { roomId: room, sk: "#summary", users: 4, directory: "rooms", expiresAt } }),
      );
      await consistent(room);
      const newcomer = await h.join(`${room}-new`, room);
      assert.deepEqual(await readRoomSummary(ctx, room), { users: 5, shards: 2 });
      assert.equal((await shardsOf(room)).get(newcomer.connectionId), 1);
      assert.equal(presence(legacy[0], "joined", `${room}-new`), 1);
      await h.send(legacy[1], { type: "leave", roomId: room });
      await h.disconnect(legacy[2]);
      assert.deepEqual(await readRoomSummary(ctx, room), { users: 3, shards: 2 });
      assert.equal(presence(newcomer, "left", `${room}-old1`), 1);
      assert.equal(presence(newcomer, "left", `${room}-old2`), 1);
      await consistent(room);
    });

    it("a small room's join and leave cost exactly what they cost before shards (read and write units, calls)", async () => {
      const room = "small-s";
      await h.join("small-a", room);
      await h.join("small-b", room);
      const c = await h.join("small-c", "small-lobby");
      const before = h.reports.length;
      await h.send(c, { type: "join", roomId: room });
      await h.send(c, { type: "leave", roomId: room });
      const costs = h.reports
        .slice(before)
        .map((r) => [r.routeKey, r.metrics.DynamoReadUnits, r.metrics.DynamoWriteUnits, r.dynamoCalls.map((d) => d.action).join(" ")]);
      assert.deepEqual(costs, SMALL_ROOM_COSTS);
    });
  });

  describe("a join overtaken by a doubling (DynamoGate, roomShardSize 4)", () => {
    let h: Harness;
    before(async () => {
      h = await createHarness({ label: "shards-gate", gate: true, extraEnv: { ROOM_SHARD_SIZE: "4" } });
    });
    after(async () => {
      await h?.stop();
    });

    it("is cancelled by the summary's condition and placed again by the summary it finds: no shard passes 4, every count exact", async () => {
      const room = "overtake-1";
      for (let i = 0; i < 3; i++) await h.join(`overtake-u${i}`, room);
      const gate = h.gate;
      assert.ok(gate);
      // A's join transaction is built for a one-shard room with room left (3 users) and parked.
      const held = gate.hold((r) => r.operation === "TransactWriteItems" && r.body.includes("c#overtake-a-conn"));
      const a = h.connect("overtake-a", { roomId: room, connectionId: "overtake-a-conn" });
      await held.arrived;
      await h.join("overtake-b", room); // 4 users: shard 0 is full
      const c = await h.join("overtake-c", room); // doubles the room: C is in shard 1
      held.release();
      assert.equal((await a).result.statusCode, 200);
      const s = await snapshot(h.doc, h.tables);
      assert.deepEqual([s.summaries.get(room), s.summaryShards.get(room)?.shards], [6, 2]);
      assert.deepEqual([...(s.summaryShards.get(room)?.shardUsers ?? [])].sort(), [
        [0, 4],
        [1, 2],
      ]);
      assert.deepEqual([s.memberShards.get(room)?.get("overtake-a-conn"), s.memberShards.get(room)?.get(c.connectionId)], [1, 1]);
      assert.deepEqual(violations(s, room), []);
    });
  });

  describe("large rooms (roomShardSize 2, largeRoomUsers 3)", () => {
    let h: Harness;
    let ctx: DataContext;
    before(async () => {
      h = await createHarness({ label: "shards-large", extraEnv: { ROOM_SHARD_SIZE: "2", LARGE_ROOM_USERS: "3" } });
      ctx = {
        doc: h.doc,
        config: readHandlerConfig(h.envFor("join"), "join", { tables: ["connections", "rooms", "messages"], management: true }),
      };
    });
    after(async () => {
      await h?.stop();
    });

    it("announce no joined/left above largeRoomUsers, keep the user count exact, and answer a join from part of the room", async () => {
      const room = "large-1";
      const conns: TestConnection[] = [];
      for (let i = 0; i < 3; i++) conns.push(await h.join(`large-u${i}`, room));
      assert.equal(h.frames(conns[0]).filter((f) => f.type === "presence" && f.event === "joined").length, 2, "a small room announces");
      h.api.clearFrames();
      for (let i = 3; i < 9; i++) conns.push(await h.join(`large-u${i}`, room));
      assert.deepEqual(await readRoomSummary(ctx, room), { users: 9, shards: 8 });
      assert.equal(h.api.calls.length, 0, "no presence posted to anyone");
      const reply = await h.send(conns[8], { type: "join", roomId: room });
      assert.equal(reply?.memberCount, 9);
      assert.equal(reply?.membersTruncated, true);
      assert.ok((reply?.members as unknown[]).length < 9, "the reply lists the shards it read, not the whole room");
      await h.send(conns[8], { type: "leave", roomId: room });
      await h.disconnect(conns[7]);
      assert.equal(h.api.calls.filter((c) => c.connectionId !== conns[7].connectionId).length, 0, "no `left` posted");
      assert.deepEqual(await readRoomSummary(ctx, room), { users: 7, shards: 8 });
      assert.deepEqual(violations(await snapshot(h.doc, h.tables), room), []);
    });
  });
});
