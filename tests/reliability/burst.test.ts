/**
 * Issue 14 item 9: every frame gets exactly one answer, and the one it would get alone, even when
 * connections send their frames in bursts (API Gateway runs a connection's frames concurrently).
 * Several connections each send bursts of the generated hostile frames (tests/reliability/cases.ts)
 * at once to one local runtime with the real handlers; each connection must receive, per burst,
 * exactly the multiset of answers the cases declare: no frame unanswered, none answered twice,
 * none answered INTERNAL or with API Gateway's "Internal server error" because of the load.
 */
import * as assert from "node:assert/strict";
import { startLocalRuntime, type LocalRuntime } from "../../local/runtime";
import { sharedDynamo, uniquePrefix } from "../support/globalFixtures";
import { connect, eventually, type Frame, type TestClient } from "../local/wsClient";
import { DEFAULT_SEED, generateCases, type BadInputCase, type CaseContext } from "./cases";

const CONNECTIONS = Number(process.env.BURST_CONNECTIONS ?? 6);
const BURST = Number(process.env.BURST_SIZE ?? 50);
const ROUNDS = Number(process.env.BURST_ROUNDS ?? 2);

/** What a case declares, as a comparable key. */
function expectedKey(c: BadInputCase): string {
  const e = c.expect;
  if (e.kind === "error") return `error ${e.code}`;
  if (e.kind === "reply") return `reply ${e.type}`;
  throw new Error(`not a frame-answer case: ${c.id}`);
}

/** What an answer is, as a comparable key (API Gateway's own frames have no type). */
function answerKey(f: Frame): string {
  const o = f.json;
  if (!o) return `not JSON: ${f.text.slice(0, 60)}`;
  if (o.type === "error") return `error ${String(o.code)}`;
  if (typeof o.type === "string") return `reply ${o.type}`;
  return `gateway ${String(o.message)}`;
}

const sorted = (keys: string[]): string[] => [...keys].sort();

describe(`reliability: ${CONNECTIONS} connections each sending ${ROUNDS} bursts of ${BURST} hostile frames at once`, function () {
  this.timeout(240_000);
  let rt: LocalRuntime;
  const opened: TestClient[] = [];

  before(async () => {
    const dynamo = await sharedDynamo();
    rt = await startLocalRuntime({
      dynamodbEndpoint: dynamo.endpoint,
      tablePrefix: uniquePrefix("burst"),
      quiet: true,
      settings: { rateLimitPerMinute: 100_000, userRateLimitPerMinute: 100_000, maxMessageBytes: 16_384 },
    });
  });

  after(async () => {
    await Promise.all(opened.map((c) => c.close().catch(() => undefined)));
    await rt?.stop();
  });

  it("answers every frame of every burst exactly once, with the answer the frame gets alone", async () => {
    const clients = await Promise.all(
      Array.from({ length: CONNECTIONS }, async (_, i) => {
        const ctx: CaseContext = {
          self: `burst-${i}`,
          selfName: `Burst ${i}`,
          peer: "peer-offline",
          guardedRoom: `guarded-${i}`,
          sandboxRoom: `sandbox-${i}`,
          maxMessageBytes: 16_384,
          maxFrameBytes: 128 * 1024,
        };
        const token = await rt.mintToken(ctx.self, ctx.selfName);
        const client = await connect(`${rt.endpoint}?${new URLSearchParams({ roomId: ctx.guardedRoom, token })}`);
        opened.push(client);
        await client.request({ type: "join", roomId: ctx.sandboxRoom }, "joined");
        // Frames answered on the connection itself (not the cases that close it or are handshakes),
        // without join/leave (their answers depend on the order of the frames about the room).
        const cases = generateCases(ctx, DEFAULT_SEED + i).filter(
          (c) =>
            c.payload.kind === "text" &&
            (c.expect.kind === "error" || c.expect.kind === "reply") &&
            !/"type"\s*:\s*"(join|leave)"/.test(c.payload.text),
        );
        return { client, cases };
      }),
    );
    const problems: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      await Promise.all(
        clients.map(async ({ client, cases }, i) => {
          const burst = cases
            .slice((round * BURST) % cases.length)
            .concat(cases)
            .slice(0, BURST);
          client.frames.length = 0;
          for (const c of burst) client.send((c.payload as { text: string }).text);
          const answers = () => client.frames.filter((f) => f.json?.type !== "presence");
          try {
            await eventually(() => (answers().length >= burst.length ? true : undefined), 60_000, "every answer");
          } catch {
            // Reported below with what did arrive.
          }
          // No second answer to any frame (a short quiet period, as tests/local does with expectNone).
          await new Promise((r) => setTimeout(r, 300));
          const want = sorted(burst.map(expectedKey));
          const got = sorted(answers().map(answerKey));
          if (JSON.stringify(want) !== JSON.stringify(got)) {
            const missing = want
              .filter((k, n) => want.indexOf(k) === n)
              .flatMap((k) => {
                const d = want.filter((x) => x === k).length - got.filter((x) => x === k).length;
                return d !== 0 ? [`${k} ${d > 0 ? `-${d}` : `+${-d}`}`] : [];
              });
            const extra = [...new Set(got.filter((k) => !want.includes(k)))].map((k) => `${k} +${got.filter((x) => x === k).length}`);
            problems.push(
              `connection ${i} round ${round}: ${got.length} answers to ${burst.length} frames; ${[...missing, ...extra].join(", ")}`,
            );
          }
        }),
      );
    }
    assert.deepEqual(problems, []);
  });
});
