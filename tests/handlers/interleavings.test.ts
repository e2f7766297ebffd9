/**
 * Property test (issue 14): seeded random batches of join, leave, chat, $connect, $disconnect and
 * vanishing clients (whose clean-up a later broadcast's 410 does), run concurrently over a few
 * users, connections and rooms, each operation started after a seeded random delay. After every
 * batch, once every frame is answered:
 *  - each connection item's rooms set equals its member items; no ghost member; summary users ==
 *    distinct member users (tests/support/invariants.ts violations);
 *  - each presence item counts its user's member connections, and its transition count `v` is odd
 *    exactly when the user is present (presenceViolations);
 *  - a watcher in every room has received, for each other user, exactly `v` presence events,
 *    alternating joined, left, joined, ... (each transition announced once, in order).
 * A failure prints the seed; SEED=<n> replays that sequence of operations.
 */
import { strict as assert } from "node:assert";
import { createHarness, type Harness, type TestConnection } from "../support/handlerHarness";
import { presenceViolations, snapshot, violations } from "../support/invariants";
import { seededRandom } from "../../bench/model/random";

const ROOMS = ["pi-a", "pi-b", "pi-c"];
const USERS = ["pu1", "pu2", "pu3", "pu4"];

describe("property: random interleavings keep membership, counts and presence in agreement (issue 14)", function () {
  this.timeout(240_000);
  let h: Harness;
  before(async () => {
    h = await createHarness({ label: "interleave" });
  });
  after(async () => {
    await h?.stop();
  });

  const seeds = process.env.SEED ? [Number(process.env.SEED)] : [1401, 1402, 1403];
  for (const seed of seeds) {
    it(`seed ${seed}: 12 batches of up to 5 concurrent operations`, async () => {
      const rnd = seededRandom(seed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
      const prefix = `pi${seed}-`;
      const rooms = ROOMS.map((r) => prefix + r);
      const users = USERS.map((u) => `${u}-${seed}`);
      const watcher = await h.join(`watch-${seed}`, rooms[0]);
      for (const r of rooms.slice(1)) assert.equal((await h.send(watcher, { type: "join", roomId: r }))?.type, "joined");
      let live: TestConnection[] = [];
      let vanished: TestConnection[] = [];
      for (let i = 0; i < 4; i++) live.push(await h.join(pick(users), pick(rooms)));

      for (let batch = 0; batch < 12; batch++) {
        const ops: Array<() => Promise<unknown>> = [];
        const n = 2 + Math.floor(rnd() * 4);
        const closing = new Set<TestConnection>();
        const disconnecting = new Set<TestConnection>();
        for (let i = 0; i < n; i++) {
          const kind = rnd();
          const delay = Math.floor(rnd() * 15);
          const later = (f: () => Promise<unknown>) => ops.push(() => new Promise((r) => setTimeout(r, delay)).then(f));
          const usable = live.filter((c) => !closing.has(c));
          if (kind < 0.1 || usable.length === 0) {
            const user = pick(users);
            const room = pick(rooms);
            later(async () => {
              const { result, conn } = await h.connect(user, { roomId: room });
              if (result.statusCode === 200) live.push(conn);
            });
          } else if (kind < 0.4) {
            const c = pick(usable);
            const room = pick(rooms);
            later(() => h.send(c, { type: "join", roomId: room }));
          } else if (kind < 0.6) {
            const c = pick(usable);
            const room = pick(rooms);
            later(() => h.send(c, { type: "leave", roomId: room }));
          } else if (kind < 0.75) {
            const c = pick(usable);
            const room = pick(rooms);
            later(() => h.send(c, { type: "chat", roomId: room, message: `b${batch}` }));
          } else if (kind < 0.87) {
            // The client drops; API Gateway's $disconnect comes (now or, if it races, meanwhile).
            const c = pick(usable);
            closing.add(c);
            disconnecting.add(c);
            later(() => h.disconnect(c));
          } else {
            // The client vanishes without $disconnect: a later broadcast's 410 cleans it up.
            const c = pick(usable);
            closing.add(c);
            h.api.close(c.connectionId);
            later(() => h.vanish(c).catch(() => undefined));
          }
        }
        // Sometimes the $disconnect of a client that vanished earlier arrives now, racing clean-ups.
        if (vanished.length > 0 && rnd() < 0.5) {
          const c = pick(vanished);
          vanished = vanished.filter((v) => v !== c);
          ops.push(() => h.disconnect(c));
        }
        await Promise.all(ops.map((op) => op()));
        for (const c of closing) if (!disconnecting.has(c)) vanished.push(c);
        live = live.filter((c) => !closing.has(c));

        const s = await snapshot(h.doc, h.tables);
        const context = `seed ${seed}, after batch ${batch}`;
        assert.deepEqual(violations(s, prefix), [], context);
        assert.deepEqual(presenceViolations(s, prefix), [], context);
        for (const room of rooms) {
          for (const user of users) {
            const v = s.presence.get(room)?.get(user)?.v ?? 0;
            const events = h
              .frames(watcher)
              .filter((f) => f.type === "presence" && f.roomId === room && f.userId === user)
              .map((f) => String(f.event));
            // Each transition is announced exactly once. Their order is not guaranteed: a `joined` and
            // the `left` after it are posted by two concurrent invocations and may arrive swapped
            // (docs/architecture.md, Races, "Order of events about one user"), so the events are
            // compared as a multiset; a run of this seed once saw joined, joined, left.
            const expected = Array.from({ length: v }, (_, i) => (i % 2 === 0 ? "joined" : "left"));
            assert.deepEqual(
              [...events].sort(),
              [...expected].sort(),
              `${context}: presence events of ${user} in ${room}: ${events.join(", ")}`,
            );
          }
        }
      }
    });
  }
});
