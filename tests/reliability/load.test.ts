/**
 * The short version of `npm run test:load` (issue 8): 100 connections in 5 rooms, 20 s of mixed
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
    result = await runLoad({ connections: 100, rooms: 5, durationSec: 20, rate: 10, floodFrames: 100, floodRate: 10 });
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
    assert.deepEqual(result.checks.filter((c) => !c.ok), []);
  });
});
