/**
 * The short version of `npm run test:load` (issue 8): 100 connections in 5 rooms, 12 s of mixed
 * traffic and a flooding client, through the same code (tests/load/load.ts). Correctness is
 * asserted (nothing lost or duplicated, history exact, every frame answered, no unexpected error
 * or disconnect, the flood rate limited); latencies and memory are printed, never asserted.
 */
import * as assert from "node:assert/strict";
import { formatLoadResult, runLoad, type LoadResult } from "../load/load";

describe("load (short): mixed traffic, then every acknowledged message checked", function () {
  this.timeout(180_000);
  let result: LoadResult;

  before(async () => {
    // 150 flood frames: more than two minute windows' worth (2 x 60), so some are refused even if
    // the flood straddles a minute boundary; at 25 a second they fit inside the 12 s of traffic.
    result = await runLoad({ connections: 100, rooms: 5, durationSec: 12, rate: 10, floodFrames: 150, floodRate: 25 });
    // Figures for the reader of the test output; the assertions below are on correctness only.
    console.log(formatLoadResult(result).replace(/^/gm, "      "));
  });

  it("loses and duplicates nothing a sender saw acknowledged, and history holds each exactly once", () => {
    assert.ok(result.chat.acked > 0 && result.private.acked > 0, "traffic was acknowledged");
    assert.equal(result.lost, 0);
    assert.equal(result.duplicates, 0);
    assert.deepEqual({ missing: result.history.missing, duplicates: result.history.duplicates }, { missing: 0, duplicates: 0 });
    assert.equal(result.history.checked, result.chat.acked + result.private.acked + result.flood.accepted);
  });

  it("answers every frame, with no unexpected error frame and no unexpected disconnect", () => {
    assert.equal(result.unanswered, 0);
    assert.deepEqual(result.unexpectedErrors, {}, JSON.stringify(result.errorSamples));
    assert.equal(result.unexpectedDisconnects, 0);
  });

  it("rate limits the flooding client and no one else", () => {
    assert.ok(result.flood.rateLimited > 0);
    assert.equal(result.flood.accepted + result.flood.rateLimited, result.flood.frames);
    assert.equal(result.flood.othersRateLimited, 0);
  });

  it("passes every check of the load run (memory within its margin included)", () => {
    assert.deepEqual(
      result.checks.filter((c) => !c.ok),
      [],
    );
  });
});

describe("load run options and traffic mix (pure)", () => {
  it("parses the documented options and refuses bad ones with a clear message", async () => {
    const { parseLoadArgs, DEFAULTS } = await import("../load/run");
    assert.deepEqual(
      (({ connections, rooms, durationSec, rate }) => ({ connections, rooms, durationSec, rate }))(parseLoadArgs([]) as typeof DEFAULTS),
      { connections: 1000, rooms: 20, durationSec: 300, rate: 10 },
    );
    const o = parseLoadArgs(["--connections", "200", "--rooms=4", "--duration", "30", "--rate", "5", "--flood", "50", "--flood-rate", "2"]);
    assert.ok(o !== "help");
    assert.deepEqual([o.connections, o.rooms, o.durationSec, o.rate, o.floodFrames, o.floodRate], [200, 4, 30, 5, 50, 2]);
    assert.equal(parseLoadArgs(["--help"]), "help");
    assert.throws(() => parseLoadArgs(["--connections", "ten"]), /--connections must be a number/);
    assert.throws(() => parseLoadArgs(["--rate", "0"]), /--rate must be within/);
    assert.throws(() => parseLoadArgs(["--rooms", "600"]), /at least twice --rooms/);
    assert.throws(() => parseLoadArgs(["--bogus", "1"]), /unknown option --bogus/);
    assert.throws(() => parseLoadArgs(["--duration"]), /needs a value/);
  });

  it("draws the documented mix from a seeded generator, the same for the same seed", async () => {
    const { MIX, pickAction, prng } = await import("../load/load");
    const a = prng(8);
    const b = prng(8);
    const counts: Record<string, number> = {};
    for (let i = 0; i < 100_000; i++) {
      const u = a();
      assert.equal(u, b());
      const action = pickAction(u);
      counts[action] = (counts[action] ?? 0) + 1;
    }
    for (const [action, share] of Object.entries(MIX)) {
      assert.ok(Math.abs(counts[action] / 100_000 - share) < 0.01, `${action}: ${counts[action]} of 100,000 for a share of ${share}`);
    }
  });
});
