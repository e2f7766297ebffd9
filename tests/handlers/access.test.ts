/** Issue 16: room access from the token's `rooms` and `moderates` claims (handlers/lib/access.ts). */
import { strict as assert } from "node:assert";
import {
  accessContext,
  accessFromContext,
  canAccess,
  canModerate,
  isAccessClaimProblem,
  MAX_ACCESS_PATTERNS,
  matchesPattern,
  parseAccessClaims,
  type Access,
} from "../../handlers/lib/access";

const parsed = (payload: Record<string, unknown>): Access => {
  const a = parseAccessClaims(payload);
  if (isAccessClaimProblem(a)) throw new Error(a.problem);
  return a;
};

describe("handlers: room access from the token (access.ts)", () => {
  it("matches an exact id, a prefix ending in *, and * for every room, by string comparison only", () => {
    assert.equal(matchesPattern("ticket-123", "ticket-123"), true);
    assert.equal(matchesPattern("ticket-123", "ticket-1234"), false);
    assert.equal(matchesPattern("team-*", "team-a"), true);
    assert.equal(matchesPattern("team-*", "team-"), true);
    assert.equal(matchesPattern("team-*", "teams"), false);
    assert.equal(matchesPattern("*", "anything"), true);
    // A pattern is never a regular expression: characters that would be special in one are literal.
    assert.equal(matchesPattern("a.c", "abc"), false);
  });

  it("without the rooms claim, follows the deployment's roomAccess: open grants every room, token none", () => {
    const none = parsed({});
    assert.equal(canAccess(none, "open", "general"), true);
    assert.equal(canAccess(none, "token", "general"), false);
  });

  it("with the rooms claim, grants exactly the matching rooms whatever roomAccess says; an empty claim grants none", () => {
    const a = parsed({ rooms: ["support", "team-*"] });
    for (const mode of ["open", "token"] as const) {
      assert.equal(canAccess(a, mode, "support"), true);
      assert.equal(canAccess(a, mode, "team-blue"), true);
      assert.equal(canAccess(a, mode, "general"), false);
      assert.equal(canAccess(parsed({ rooms: [] }), mode, "general"), false);
    }
  });

  it("moderating a room implies access to it; moderation is only what moderates names", () => {
    const m = parsed({ rooms: [], moderates: ["team-*"] });
    assert.equal(canAccess(m, "token", "team-red"), true);
    assert.equal(canModerate(m, "team-red"), true);
    assert.equal(canModerate(m, "general"), false);
    assert.equal(canModerate(parsed({ rooms: ["*"] }), "general"), false);
  });

  it("refuses claims of the wrong type, too many patterns, and patterns that try to widen themselves", () => {
    const bad: unknown[] = [
      "team-*",
      { "0": "a" },
      [1],
      [null],
      [""],
      ["a*b"],
      ["*a"],
      ["**"],
      ["team-**"],
      [".."],
      ["../x"],
      ["a,b"],
      ["room with space"],
      ["tеam-*"], // Cyrillic "е": a look-alike of "team-*"
      ["ｔeam"], // a full-width letter
      ["a".repeat(65)],
      [`${"a".repeat(64)}*`],
      Array.from({ length: MAX_ACCESS_PATTERNS + 1 }, (_, i) => `r${i}`),
    ];
    for (const value of bad) {
      assert.equal(isAccessClaimProblem(parseAccessClaims({ rooms: value })), true, `rooms: ${JSON.stringify(value)}`);
      assert.equal(isAccessClaimProblem(parseAccessClaims({ moderates: value })), true, `moderates: ${JSON.stringify(value)}`);
    }
    assert.equal(isAccessClaimProblem(parseAccessClaims({ rooms: Array.from({ length: MAX_ACCESS_PATTERNS }, (_, i) => `r${i}`) })), false);
  });

  it("travels through the authorizer context and back unchanged, and fails closed on a context it did not write", () => {
    for (const a of [
      parsed({}),
      parsed({ rooms: [] }),
      parsed({ rooms: ["a", "team-*"], moderates: ["team-*"] }),
      parsed({ moderates: ["*"] }),
    ]) {
      const ctx = { principalId: "u", userId: "u", username: "u", ...accessContext(a) };
      assert.deepEqual(accessFromContext(ctx), a);
    }
    const forged = accessFromContext({ principalId: "u", userId: "u", username: "u", rooms: "a*b,ok", moderates: 7 });
    assert.deepEqual(forged, { rooms: ["ok"], moderates: [] });
  });
});
