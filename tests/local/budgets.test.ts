/**
 * Issue 14, item 10, through the local runtime with real clients: a user's handshake churn is
 * bounded (the handshake over userConnectsPerMinute is refused with HTTP 429, and nobody is told),
 * and a user's frames over all their connections are bounded by userRateLimitPerMinute beside the
 * per-connection rateLimitPerMinute.
 */
import * as assert from "node:assert/strict";
import { startLocalRuntime, type LocalRuntime } from "../../local/runtime";
import { sharedDynamo, uniquePrefix } from "../support/globalFixtures";
import { connect, eventually, HandshakeRejected, type TestClient } from "./wsClient";

async function awayFromMinuteBoundary(): Promise<void> {
  // Budgets use fixed one-minute windows: keep a burst inside one window.
  const left = 60_000 - (Date.now() % 60_000);
  if (left < 10_000) await new Promise((r) => setTimeout(r, left + 50));
}

describe("local runtime: per-user budgets (issue 14)", () => {
  let rt: LocalRuntime;
  before(async () => {
    const dynamo = await sharedDynamo();
    rt = await startLocalRuntime({
      dynamodbEndpoint: dynamo.endpoint,
      tablePrefix: uniquePrefix("budgets"),
      quiet: true,
      settings: { rateLimitPerMinute: 10, userRateLimitPerMinute: 20, userConnectsPerMinute: 4 },
    });
  });
  after(async () => {
    await rt?.stop();
  });

  const url = async (userId: string, roomId: string) =>
    `${rt.endpoint}?${new URLSearchParams({ roomId, token: await rt.mintToken(userId, userId) })}`;

  it("connects and closes in a burst: the handshakes over the user's budget get 429 and are never announced", async () => {
    await awayFromMinuteBoundary();
    const watcher = await connect(await url("churn-watch", "churn"));
    const events = () =>
      watcher.frames.filter((f) => f.json?.type === "presence" && f.json.userId === "churner").map((f) => String(f.json?.event));
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      try {
        const c = await connect(await url("churner", "churn"));
        statuses.push(101);
        await eventually(() => (events().length === 2 * i + 1 ? true : undefined), 30_000, `joined #${i + 1}`);
        await c.close();
        // Its $disconnect has run once the watcher is told: the next visit is a new arrival.
        await eventually(() => (events().length === 2 * i + 2 ? true : undefined), 30_000, `left #${i + 1}`);
      } catch (err) {
        if (!(err instanceof HandshakeRejected)) throw err;
        statuses.push(err.status);
        break;
      }
    }
    assert.deepEqual(statuses, [101, 101, 101, 101, 429]);
    // Another user still connects; once the watcher has their `joined`, anything the refused
    // handshake could have caused would have arrived too.
    const other = await connect(await url("churn-other", "churn"));
    await watcher.next((f) => f.json?.type === "presence" && f.json.userId === "churn-other", 30_000, "churn-other joined");
    assert.deepEqual(
      events(),
      ["joined", "left", "joined", "left", "joined", "left", "joined", "left"],
      "the refused handshake is never announced",
    );
    await other.close();
    await watcher.close();
  });

  it("a user's connections share the user's frame budget; each keeps its own limit", async () => {
    await awayFromMinuteBoundary();
    const clients: TestClient[] = [];
    for (let i = 0; i < 3; i++) clients.push(await connect(await url("frames-user", "frames")));
    for (const c of clients) for (let i = 0; i < 10; i++) c.send({ type: "ping" });
    const answers = await Promise.all(
      clients.map(async (c) => {
        const got: string[] = [];
        for (let i = 0; i < 10; i++) {
          const f = await c.next((x) => x.json?.type === "pong" || x.json?.type === "error", 10_000, "an answer");
          got.push(f.json?.type === "pong" ? "pong" : String(f.json?.code));
        }
        return got;
      }),
    );
    const all = answers.flat();
    assert.deepEqual(
      [all.filter((a) => a === "pong").length, all.filter((a) => a === "RATE_LIMITED").length],
      [20, 10],
      "30 frames, 10 per connection allowed, 20 for the user",
    );
    for (const c of clients) await c.close();
  });
});
