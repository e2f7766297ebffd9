/**
 * Deterministic generator of hostile client input for tests/reliability/badInput.test.ts.
 *
 * Every case is built from a template plus values drawn from a seeded PRNG (mulberry32, bench/model/random.ts; never
 * Math.random), so a failing case is reproduced by running the test again with the same seed
 * (BAD_INPUT_SEED, default DEFAULT_SEED). Each case declares what the protocol (docs/protocol.md)
 * or API Gateway (AWS-FACTS.md) says must happen: an error frame with its code, a normal reply
 * (fields the server does not know are ignored), a close code, or a handshake status.
 */
import type { ErrorCode } from "../../handlers/lib/errors";
import { MESSAGE_TYPES } from "../../handlers/lib/frames";
import { seededRandom } from "../../bench/model/random";

export const DEFAULT_SEED = 0x8badf00d;

export type Category =
  | "malformed JSON"
  | "wrong types"
  | "missing fields"
  | "extra fields"
  | "oversized"
  | "unicode"
  | "binary frames"
  | "invalid UTF-8"
  | "deep nesting"
  | "prototype keys"
  | "unknown types"
  | "odd room ids"
  | "odd user ids"
  | "handshake";

/** What is sent on the wire. */
export type Payload =
  | { readonly kind: "text"; readonly text: string }
  /** A binary frame: API Gateway closes the connection with 1003. */
  | { readonly kind: "binary"; readonly bytes: Buffer }
  /** A text frame whose bytes are not UTF-8 (RFC 6455 section 8.1: the connection is failed with 1007). */
  | { readonly kind: "rawText"; readonly bytes: Buffer }
  /** A handshake with these query parameters (a valid token is added by the test). */
  | { readonly kind: "handshake"; readonly query: Readonly<Record<string, string>> };

export type Expectation =
  /** An `error` frame with this code; requestType and clientMessageId are checked against the documented echo rule. */
  | { readonly kind: "error"; readonly code: ErrorCode }
  /**
   * A normal reply of this type (the frame was valid once unknown fields are dropped). `check`
   * returns a problem description, or undefined when the reply is right.
   */
  | { readonly kind: "reply"; readonly type: string; readonly check?: (frame: Record<string, unknown>) => string | undefined }
  /** The server closes the connection with this code. */
  | { readonly kind: "close"; readonly code: number }
  /** The handshake is refused with this HTTP status. */
  | { readonly kind: "refused"; readonly status: number }
  /** The handshake succeeds; `username` is the display name the room then shows for this user. */
  | { readonly kind: "accepted"; readonly username: string };

export interface BadInputCase {
  /** Stable, unique: `<category>#<n> <what>`. */
  readonly id: string;
  readonly category: Category;
  readonly what: string;
  readonly payload: Payload;
  readonly expect: Expectation;
  /** Messages this case stores when it is (rightly) accepted: 0 for every rejected frame. */
  readonly stores: number;
}

export interface CaseContext {
  /** The user the test connects as (the token's sub). */
  readonly self: string;
  /** Its display name (the token's name claim). */
  readonly selfName: string;
  /** Another user id, the target of the valid private messages. */
  readonly peer: string;
  /** The room the connection is in; nothing may ever be stored there. */
  readonly guardedRoom: string;
  /** A second room the connection has joined, where the accepted chat cases go. */
  readonly sandboxRoom: string;
  /** The deployment's maxMessageBytes. */
  readonly maxMessageBytes: number;
  /** API Gateway's message limit (128 KB). */
  readonly maxFrameBytes: number;
}

export class Rng {
  private readonly next: () => number;
  constructor(readonly seed: number) {
    this.next = seededRandom(seed);
  }
  float(): number {
    return this.next();
  }
  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)];
  }
  /** A lowercase word of this length. */
  word(length: number): string {
    let s = "";
    for (let i = 0; i < length; i++) s += String.fromCharCode(97 + this.int(0, 25));
    return s;
  }
  bytes(length: number): Buffer {
    const b = Buffer.alloc(length);
    for (let i = 0; i < length; i++) b[i] = this.int(0, 255);
    return b;
  }
  /** A client message id matching ^[A-Za-z0-9_.:-]{1,64}$. */
  clientMessageId(): string {
    return `c-${this.word(8)}-${this.int(0, 999_999)}`;
  }
}

/** Wrong-typed JSON values, for fields that must be strings. */
const NON_STRINGS: ReadonlyArray<readonly [string, unknown]> = [
  ["a number", 123],
  ["a negative float", -1.5],
  ["true", true],
  ["false", false],
  ["null", null],
  ["an empty array", []],
  ["an array of one string", ["general"]],
  ["an empty object", {}],
  ["an object", { value: "x" }],
];

/** Room ids the pattern ^[A-Za-z0-9_-]{1,64}$ refuses (path characters, `#` the key separator, whitespace...). */
const BAD_ROOM_IDS: readonly string[] = [
  "",
  " ",
  "a b",
  " general",
  "general ",
  "\t",
  "gen\neral",
  "a/b",
  "../general",
  "..",
  ".",
  "a#b",
  "#",
  "room#c#x",
  "a%2Fb",
  "a\\b",
  "a?b=1",
  "a&b",
  "a.b",
  "a:b",
  "général",
  "gen\u200beral",
  "\u202egeneral",
  "ｇｅｎｅｒａｌ",
  "room\u0000",
  "<script>",
];

/** User ids the pattern ^[A-Za-z0-9_.@:|+=-]{1,128}$ refuses. */
const BAD_USER_IDS: readonly string[] = [
  "",
  " ",
  "a b",
  " bob",
  "a#b",
  "#",
  "dm#a#b",
  "a/b",
  "../bob",
  "bob\u0000",
  "bob\n",
  "bób",
  "a,b",
  "a;b",
  "a*b",
  "a%b",
  "a\\b",
  "<script>",
  "b\u200bob",
  "\u202ebob",
];

/** Valid Unicode text that must be stored and returned unchanged. */
const UNICODE_OK: ReadonlyArray<readonly [string, string]> = [
  ["emoji (astral plane, surrogate pairs)", "hello 😀🚀"],
  ["a ZWJ family sequence", "👩‍👩‍👧‍👦"],
  ["right-to-left Arabic", "مرحبا بالعالم"],
  ["right-to-left Hebrew mixed with Latin", "שלום world"],
  ["a right-to-left override", "abc\u202eevil\u202c"],
  ["zero-width space and joiner", "a\u200bb\u200dc\u2060d"],
  ["a NUL inside", "a\u0000b"],
  ["a byte order mark inside", "\ufeffbom"],
  ["combining marks", "e\u0301 Z\u0351\u0352\u0353\u0354"],
  ["the noncharacter U+FFFF", "x\uffffy"],
  ["line and paragraph separators", "a\u2028b\u2029c"],
  ["mathematical letters (U+1D518)", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢"],
];

/** Text that is not well-formed Unicode: it has no UTF-8 encoding. */
const LONE_SURROGATES: ReadonlyArray<readonly [string, string]> = [
  ["a lone high surrogate", "a\ud800b"],
  ["a lone low surrogate", "a\udc00"],
  ["a reversed surrogate pair", "\ude00\ud83d"],
];

const UNKNOWN_TYPES: ReadonlyArray<readonly [string, unknown]> = [
  ["upper case CHAT", "CHAT"],
  ["capitalised Chat", "Chat"],
  ["a leading space", " chat"],
  ["a trailing space", "chat "],
  ["the empty string", ""],
  ["$default", "$default"],
  ["$connect", "$connect"],
  ["$disconnect", "$disconnect"],
  ["sendmessage", "sendmessage"],
  ["message", "message"],
  ["__proto__", "__proto__"],
  ["constructor", "constructor"],
  ["prototype", "prototype"],
  ["toString", "toString"],
  ["hasOwnProperty", "hasOwnProperty"],
  ["a NUL after chat", "chat\u0000"],
  ["a zero-width space inside", "ch\u200bat"],
  ["fullwidth letters", "ｃｈａｔ"],
  ["a number", 1],
  ["true", true],
  ["null", null],
  ["an array", ["chat"]],
  ["an object", { type: "chat" }],
];

/**
 * All cases for one seed. Order matters only within the main connection: the cases are run in
 * order on one connection, and a few accepted ones (join then leave) depend on the previous one.
 */
export function generateCases(ctx: CaseContext, seed: number = DEFAULT_SEED): BadInputCase[] {
  const rng = new Rng(seed);
  const cases: BadInputCase[] = [];
  const counters = new Map<Category, number>();
  const add = (category: Category, what: string, payload: Payload, expect: Expectation, stores = 0): void => {
    const n = (counters.get(category) ?? 0) + 1;
    counters.set(category, n);
    cases.push({ id: `${category}#${n} ${what}`, category, what, payload, expect, stores });
  };
  const json = (value: unknown): Payload => ({ kind: "text", text: JSON.stringify(value) });
  const text = (t: string): Payload => ({ kind: "text", text: t });
  const bad: Expectation = { kind: "error", code: "BAD_REQUEST" };
  const badJson: Expectation = { kind: "error", code: "BAD_JSON" };
  const unknownType: Expectation = { kind: "error", code: "UNKNOWN_TYPE" };
  const tooLarge: Expectation = { kind: "error", code: "TOO_LARGE" };
  const notMember: Expectation = { kind: "error", code: "NOT_A_MEMBER" };
  const pong: Expectation = { kind: "reply", type: "pong" };
  const { guardedRoom: room, sandboxRoom: sandbox, peer, self, selfName, maxMessageBytes: max, maxFrameBytes } = ctx;

  /** An accepted chat in the sandbox room: the reply is the broadcast itself, with the server's own fields. */
  const acceptedChat = (message: string, cmid: string): Expectation => ({
    kind: "reply",
    type: "chat",
    check: (f) => {
      if (f.clientMessageId !== cmid) return `clientMessageId ${String(f.clientMessageId)} instead of ${cmid}`;
      if (f.userId !== self || f.username !== selfName) return `sender shown as ${String(f.userId)}/${String(f.username)}`;
      if (f.roomId !== sandbox) return `roomId ${String(f.roomId)}`;
      if (f.message !== message) return "message text changed";
      if (typeof f.messageId !== "string" || !/^[0-9a-f-]{36}$/.test(f.messageId))
        return `messageId ${String(f.messageId)} is not the server's`;
      if (typeof f.sentAt !== "string" || f.sentAt.startsWith("1999")) return `sentAt ${String(f.sentAt)} is not the server's`;
      const extra = Object.keys(f).filter(
        (k) => !["type", "roomId", "messageId", "userId", "username", "message", "sentAt", "clientMessageId"].includes(k),
      );
      return extra.length > 0 ? `unexpected fields ${extra.join(", ")}` : undefined;
    },
  });
  const delivered = (to: string): Expectation => ({
    kind: "reply",
    type: "delivered",
    check: (f) => (f.deliveredTo === 0 && typeof f.messageId === "string" ? undefined : `to ${to}: ${JSON.stringify(f)}`),
  });

  // ---------------------------------------------------------------- malformed JSON -> $default -> BAD_JSON
  const malformed: ReadonlyArray<readonly [string, string]> = [
    ["an empty frame", ""],
    ["only spaces", "   "],
    ["a lone brace", "{"],
    ["a closing brace", "}"],
    ["an unterminated object", '{"type":"ping"'],
    ["single quotes", "{'type':'ping'}"],
    ["unquoted keys", '{type:"ping"}'],
    ["a trailing comma", '{"type":"ping",}'],
    ["trailing garbage", '{"type":"ping"}x'],
    ["two objects in one frame", '{"type":"ping"}{"type":"ping"}'],
    ["a byte order mark before the object", '\ufeff{"type":"ping"}'],
    ["null", "null"],
    ["true", "true"],
    ["a number", "42"],
    ["a string", '"ping"'],
    ["an empty array", "[]"],
    ["an array holding a valid frame", '[{"type":"ping"}]'],
    ["NaN", "NaN"],
    ["a NaN value", '{"type":"ping","x":NaN}'],
    ["an undefined value", '{"type":"ping","x":undefined}'],
    ["a comment", '{"type":"ping" /* hi */}'],
    ["an invalid escape", '{"type":"p\\ing"}'],
    ["a raw newline inside a string", '{"type":"ping\n"}'],
    ["a hex number", '{"type":"ping","limit":0x10}'],
    ["plain text", "hello"],
    ["XML", "<chat>hello</chat>"],
  ];
  for (const [what, t] of malformed) add("malformed JSON", what, text(t), badJson);
  const valid = [
    JSON.stringify({ type: "chat", roomId: room, message: "never stored" }),
    JSON.stringify({ type: "private", toUserId: peer, message: "never stored" }),
    JSON.stringify({ type: "history", roomId: room, limit: 10 }),
    JSON.stringify({ type: "join", roomId: "lobby" }),
  ];
  for (let i = 0; i < 8; i++) {
    // Every strict prefix of a JSON object is incomplete, hence not JSON.
    const frame = rng.pick(valid);
    const cut = rng.int(1, frame.length - 1);
    add("malformed JSON", `a frame cut after ${cut} of ${frame.length} characters`, text(frame.slice(0, cut)), badJson);
  }
  for (let i = 0; i < 4; i++) {
    const junk = `#${rng.word(rng.int(1, 40))}`;
    add("malformed JSON", `random text (${junk.length} characters)`, text(junk), badJson);
  }

  // ---------------------------------------------------------------- wrong types for every field of every route
  const sample = (n: number) => {
    // n distinct wrong-typed values, drawn by the PRNG.
    const pool = [...NON_STRINGS];
    const out: Array<readonly [string, unknown]> = [];
    while (out.length < n && pool.length > 0) out.push(pool.splice(rng.int(0, pool.length - 1), 1)[0]);
    return out;
  };
  for (const [what, v] of NON_STRINGS) add("wrong types", `chat.message as ${what}`, json({ type: "chat", roomId: room, message: v }), bad);
  add("wrong types", "chat.message empty", json({ type: "chat", roomId: room, message: "" }), bad);
  for (const [what, v] of sample(5)) add("wrong types", `chat.roomId as ${what}`, json({ type: "chat", roomId: v, message: "x" }), bad);
  for (const [what, v] of sample(3)) {
    add("wrong types", `chat.clientMessageId as ${what}`, json({ type: "chat", roomId: room, message: "x", clientMessageId: v }), bad);
  }
  for (const [what, v] of sample(5)) add("wrong types", `join.roomId as ${what}`, json({ type: "join", roomId: v }), bad);
  for (const [what, v] of sample(5)) add("wrong types", `leave.roomId as ${what}`, json({ type: "leave", roomId: v }), bad);
  for (const [what, v] of sample(5))
    add("wrong types", `private.toUserId as ${what}`, json({ type: "private", toUserId: v, message: "x" }), bad);
  for (const [what, v] of sample(5))
    add("wrong types", `private.message as ${what}`, json({ type: "private", toUserId: peer, message: v }), bad);
  add("wrong types", "private.message empty", json({ type: "private", toUserId: peer, message: "" }), bad);
  for (const [what, v] of sample(3)) {
    add(
      "wrong types",
      `private.clientMessageId as ${what}`,
      json({ type: "private", toUserId: peer, message: "x", clientMessageId: v }),
      bad,
    );
  }
  for (const [what, v] of sample(3)) add("wrong types", `history.roomId as ${what}`, json({ type: "history", roomId: v }), bad);
  for (const [what, v] of sample(3)) add("wrong types", `history.withUserId as ${what}`, json({ type: "history", withUserId: v }), bad);
  const limits: ReadonlyArray<readonly [string, unknown]> = [
    ["a numeric string", "10"],
    ["0", 0],
    ["101", 101],
    ["-1", -1],
    ["1.5", 1.5],
    ["null", null],
    ["true", true],
    ["1e308", 1e308],
    ["an array", [10]],
  ];
  for (const [what, v] of limits) add("wrong types", `history.limit as ${what}`, json({ type: "history", roomId: room, limit: v }), bad);
  for (const [what, v] of sample(4))
    add("wrong types", `history.before as ${what}`, json({ type: "history", roomId: room, before: v }), bad);
  add(
    "wrong types",
    "history.before a cursor the server did not issue",
    json({ type: "history", roomId: room, before: rng.word(20) }),
    bad,
  );
  add(
    "wrong types",
    "history.before a base64url cursor with a forged key",
    json({
      type: "history",
      roomId: room,
      before: Buffer.from(JSON.stringify({ sk: "x#y", conversationId: "room#other" })).toString("base64url"),
    }),
    bad,
  );
  add("wrong types", "history.before empty", json({ type: "history", roomId: room, before: "" }), bad);
  // edit and delete (issue 16), in the guarded room: fixed values, so the PRNG's later draws are
  // those of the cases above. A well-formed id of no message is NOT_FOUND, nothing is changed.
  for (const [what, v] of NON_STRINGS.slice(0, 3)) {
    add("wrong types", `edit.messageId as ${what}`, json({ type: "edit", roomId: room, messageId: v, message: "x" }), bad);
    add("wrong types", `edit.message as ${what}`, json({ type: "edit", roomId: room, messageId: "m-1", message: v }), bad);
    add("wrong types", `delete.messageId as ${what}`, json({ type: "delete", roomId: room, messageId: v }), bad);
  }
  add("wrong types", "edit.message empty", json({ type: "edit", roomId: room, messageId: "m-1", message: "" }), bad);
  add("wrong types", "delete.messageId with a space", json({ type: "delete", roomId: room, messageId: "m 1" }), bad);
  add(
    "wrong types",
    "delete.messageId naming no message (a UUIDv4)",
    json({ type: "delete", roomId: room, messageId: "3f1c2a9e-1111-4bbb-8ccc-0123456789ab" }),
    { kind: "error", code: "NOT_FOUND" },
  );
  // kick (issue 16): fixed values too. The caller's token moderates no room, so a well-formed kick
  // is FORBIDDEN (naming the room); a malformed one is BAD_REQUEST first.
  for (const [what, v] of NON_STRINGS.slice(0, 3)) {
    add("wrong types", `kick.userId as ${what}`, json({ type: "kick", roomId: room, userId: v }), bad);
  }
  for (const minutes of [0, 10_081, 1.5, "5"]) {
    add("wrong types", `kick.minutes ${JSON.stringify(minutes)}`, json({ type: "kick", roomId: room, userId: peer, minutes }), bad);
  }
  add("wrong types", "kick by a user who moderates no room", json({ type: "kick", roomId: room, userId: peer, minutes: 1 }), {
    kind: "error",
    code: "FORBIDDEN",
  });
  // typing (issue 18): fixed values too. A valid one is answered by nothing (no reply on success),
  // so only refusals are cases: the access rules and the target are checked before anything else.
  for (const [what, v] of NON_STRINGS.slice(0, 3)) {
    add("wrong types", `typing.roomId as ${what}`, json({ type: "typing", roomId: v }), bad);
    add("wrong types", `typing.withUserId as ${what}`, json({ type: "typing", withUserId: v }), bad);
  }
  add("wrong types", "typing to oneself", json({ type: "typing", withUserId: self }), bad);
  add("wrong types", "typing naming another sender", json({ type: "typing", roomId: room, userId: peer }), bad);
  add("wrong types", "typing in a room this connection has not joined", json({ type: "typing", roomId: `${room}-typing` }), {
    kind: "error",
    code: "NOT_A_MEMBER",
  });
  // react (issue 18): fixed values too. The emoji must be exactly one RGI emoji; a well-formed
  // reaction to an id of no message is NOT_FOUND, and nothing is counted or stored.
  for (const [what, v] of NON_STRINGS.slice(0, 3)) {
    add("wrong types", `react.emoji as ${what}`, json({ type: "react", roomId: room, messageId: "m-1", emoji: v }), bad);
    add("wrong types", `react.messageId as ${what}`, json({ type: "react", roomId: room, messageId: v, emoji: "👍" }), bad);
  }
  for (const [what, emoji] of [
    ["text", "ok"],
    ["two emoji", "👍👍"],
    ["© without VS16", "©"],
    ["empty", ""],
    ["a lone ZWJ", "\u200d"],
  ] as const) {
    add("wrong types", `react.emoji ${what}`, json({ type: "react", roomId: room, messageId: "m-1", emoji }), bad);
  }
  add("wrong types", "react.remove as a string", json({ type: "react", roomId: room, messageId: "m-1", emoji: "👍", remove: "yes" }), bad);
  add(
    "wrong types",
    "react to an id naming no message (a UUIDv4)",
    json({ type: "react", roomId: room, messageId: "3f1c2a9e-1111-4bbb-8ccc-0123456789ab", emoji: "👍" }),
    { kind: "error", code: "NOT_FOUND" },
  );
  // read and history's forward starts (issue 18): fixed values too. A well-formed id that names no
  // possible message (not a UUIDv7, or one from the far future) is NOT_FOUND; nothing is stored.
  for (const [what, v] of NON_STRINGS.slice(0, 3)) {
    add("wrong types", `read.messageId as ${what}`, json({ type: "read", roomId: room, messageId: v }), bad);
    add("wrong types", `history.after as ${what}`, json({ type: "history", roomId: room, after: v }), bad);
  }
  add("wrong types", "read.messageId with a space", json({ type: "read", roomId: room, messageId: "m 1" }), bad);
  add(
    "wrong types",
    "read.messageId naming no message (a UUIDv4)",
    json({ type: "read", roomId: room, messageId: "3f1c2a9e-1111-4bbb-8ccc-0123456789ab" }),
    { kind: "error", code: "NOT_FOUND" },
  );
  add(
    "wrong types",
    "read.messageId a UUIDv7 of the year 2100",
    json({ type: "read", roomId: room, messageId: "03bb2cc3-d800-7000-8000-000000000000" }),
    { kind: "error", code: "NOT_FOUND" },
  );
  add(
    "wrong types",
    "read in a room the connection has not joined",
    json({ type: "read", roomId: `${room}-elsewhere`, messageId: "3f1c2a9e-1111-4bbb-8ccc-0123456789ab" }),
    notMember,
  );
  add("wrong types", "history.after a cursor the server did not issue", json({ type: "history", roomId: room, after: "abc" }), bad);
  add("wrong types", 'history.fromRead as "true"', json({ type: "history", roomId: room, fromRead: "true" }), bad);
  add("wrong types", "history.fromRead with withUserId", json({ type: "history", withUserId: peer, fromRead: true }), bad);
  add("wrong types", "history with before and after", json({ type: "history", roomId: room, before: "abc", after: "abc" }), bad);
  add("wrong types", "history with after and fromRead", json({ type: "history", roomId: room, after: "abc", fromRead: true }), bad);

  // ---------------------------------------------------------------- missing fields
  add("missing fields", "chat without message", json({ type: "chat", roomId: room }), bad);
  add("missing fields", "chat with only a type", json({ type: "chat" }), bad);
  add("missing fields", "join without roomId", json({ type: "join" }), bad);
  add("missing fields", "leave without roomId", json({ type: "leave" }), bad);
  add("missing fields", "private without toUserId", json({ type: "private", message: "x" }), bad);
  add("missing fields", "private without message", json({ type: "private", toUserId: peer }), bad);
  add("missing fields", "history with neither roomId nor withUserId", json({ type: "history" }), bad);
  add("missing fields", "history with both roomId and withUserId", json({ type: "history", roomId: room, withUserId: peer }), bad);
  add("missing fields", "edit without messageId", json({ type: "edit", roomId: room, message: "x" }), bad);
  add("missing fields", "edit without message", json({ type: "edit", roomId: room, messageId: "m-1" }), bad);
  add("missing fields", "delete with neither roomId nor withUserId", json({ type: "delete", messageId: "m-1" }), bad);
  add(
    "missing fields",
    "delete with both roomId and withUserId",
    json({ type: "delete", roomId: room, withUserId: peer, messageId: "m-1" }),
    bad,
  );
  add("missing fields", "typing with neither roomId nor withUserId", json({ type: "typing" }), bad);
  add("missing fields", "typing with both roomId and withUserId", json({ type: "typing", roomId: room, withUserId: peer }), bad);
  add("missing fields", "react without emoji", json({ type: "react", roomId: room, messageId: "m-1" }), bad);
  add("missing fields", "react without messageId", json({ type: "react", roomId: room, emoji: "👍" }), bad);
  add("missing fields", "react with neither roomId nor withUserId", json({ type: "react", messageId: "m-1", emoji: "👍" }), bad);
  add("missing fields", "read without messageId", json({ type: "read", roomId: room }), bad);
  add("missing fields", "read without roomId (rooms only)", json({ type: "read", messageId: "m-1" }), bad);
  add("missing fields", "an object without type", json({ message: "hello", roomId: room }), unknownType);
  add("missing fields", "an empty object", text("{}"), unknownType);

  // ---------------------------------------------------------------- extra fields: ignored (docs/protocol.md, Routing)
  add("extra fields", "ping with unknown fields", json({ type: "ping", [rng.word(6)]: rng.word(10), n: 1, nested: { a: [1, 2] } }), pong);
  add("extra fields", "ping with an out-of-range number (1e999 parses as Infinity)", text('{"type":"ping","x":1e999}'), pong);
  {
    // As many keys as fit under the 128 KB message limit.
    const many: Record<string, number> = { type: 0 };
    for (let i = 0; i < 8000; i++) many[`k${i}`] = i;
    const frame = JSON.stringify({ ...many, type: "ping" });
    if (Buffer.byteLength(frame) > maxFrameBytes) throw new Error("the many-keys frame must fit in one message");
    add("extra fields", "ping with 8,000 unknown keys", text(frame), pong);
  }
  add("extra fields", "rooms with unknown fields", json({ type: "rooms", filter: "all", page: 2 }), { kind: "reply", type: "rooms" });
  add(
    "extra fields",
    "history with unknown fields: the guarded room is still empty",
    json({ type: "history", roomId: room, order: "desc", includeDeleted: true }),
    {
      kind: "reply",
      type: "history",
      check: (f) => (Array.isArray(f.messages) && f.messages.length === 0 ? undefined : `messages: ${JSON.stringify(f.messages)}`),
    },
  );
  {
    const cmid = rng.clientMessageId();
    add(
      "extra fields",
      "chat naming itself and claiming messageId, sentAt: the server's values win",
      json({
        type: "chat",
        roomId: sandbox,
        message: "extra fields",
        clientMessageId: cmid,
        userId: self,
        messageId: "forged",
        sentAt: "1999-01-01T00:00:00.000Z",
        admin: true,
      }),
      acceptedChat("extra fields", cmid),
      1,
    );
  }
  add(
    "extra fields",
    "chat claiming another sender (userId, username): refused, nothing stored",
    json({ type: "chat", roomId: sandbox, message: "forged", userId: peer, username: "Forged" }),
    bad,
  );
  add(
    "extra fields",
    "private claiming another sender (fromUserId, fromUsername): refused, nothing stored",
    json({ type: "private", toUserId: peer, message: "from whom?", fromUserId: peer, fromUsername: "Forged" }),
    bad,
  );
  add("extra fields", "join with unknown fields", json({ type: "join", roomId: sandbox, role: "admin" }), {
    kind: "reply",
    type: "joined",
  });

  // ---------------------------------------------------------------- oversized strings and frames
  add(
    "oversized",
    `chat.message of ${max + 1} ASCII bytes (maxMessageBytes + 1)`,
    json({ type: "chat", roomId: room, message: "a".repeat(max + 1) }),
    tooLarge,
  );
  {
    const euros = "€".repeat(Math.floor(max / 3) + 1);
    add(
      "oversized",
      `chat.message of ${euros.length} characters but ${Buffer.byteLength(euros)} UTF-8 bytes`,
      json({ type: "chat", roomId: room, message: euros }),
      tooLarge,
    );
    const emoji = "😀".repeat(Math.floor(max / 4) + 1);
    add(
      "oversized",
      `chat.message of ${emoji.length} UTF-16 units but ${Buffer.byteLength(emoji)} UTF-8 bytes`,
      json({ type: "chat", roomId: room, message: emoji }),
      tooLarge,
    );
  }
  {
    const cmid = rng.clientMessageId();
    const exact = "b".repeat(max);
    add(
      "oversized",
      `chat.message of exactly maxMessageBytes (${max}) bytes is accepted`,
      json({ type: "chat", roomId: sandbox, message: exact, clientMessageId: cmid }),
      acceptedChat(exact, cmid),
      1,
    );
  }
  add(
    "oversized",
    `private.message of ${max + 1} bytes`,
    json({ type: "private", toUserId: peer, message: "p".repeat(max + 1), clientMessageId: rng.clientMessageId() }),
    tooLarge,
  );
  for (let i = 0; i < 4; i++) {
    const size = rng.int(max + 2, maxFrameBytes - 200);
    add(
      "oversized",
      `chat.message of ${size} bytes (random size)`,
      json({ type: "chat", roomId: room, message: rng.word(1).repeat(size), clientMessageId: rng.clientMessageId() }),
      tooLarge,
    );
  }
  add("oversized", "roomId of 65 characters", json({ type: "join", roomId: "r".repeat(65) }), bad);
  add("oversized", "toUserId of 129 characters", json({ type: "private", toUserId: "u".repeat(129), message: "x" }), bad);
  add(
    "oversized",
    "clientMessageId of 65 characters",
    json({ type: "chat", roomId: room, message: "x", clientMessageId: "c".repeat(65) }),
    bad,
  );
  add("oversized", "history.before of 401 characters", json({ type: "history", roomId: room, before: "A".repeat(401) }), bad);
  add("oversized", "edit.messageId of 65 characters", json({ type: "edit", roomId: room, messageId: "m".repeat(65), message: "x" }), bad);
  add(
    "oversized",
    `edit.message of ${max + 1} bytes`,
    json({ type: "edit", roomId: room, messageId: "m-1", message: "e".repeat(max + 1) }),
    tooLarge,
  );
  add(
    "oversized",
    "react.emoji of 17 code units",
    json({ type: "react", roomId: room, messageId: "m-1", emoji: `${"👍".repeat(8)}x` }),
    bad,
  );
  add("oversized", "a type of 100 characters", json({ type: `chat${"x".repeat(96)}` }), unknownType);
  add("oversized", "a type of 100,000 characters", json({ type: "t".repeat(100_000) }), unknownType);
  add("oversized", "ping carrying a 120 KB unknown field", json({ type: "ping", pad: "p".repeat(120 * 1024) }), pong);
  {
    const base = JSON.stringify({ type: "ping", pad: "" });
    const frame = JSON.stringify({ type: "ping", pad: "p".repeat(maxFrameBytes - Buffer.byteLength(base)) });
    add("oversized", `a frame of exactly ${Buffer.byteLength(frame)} bytes (128 KB) is delivered`, text(frame), pong);
    const over = JSON.stringify({ type: "ping", pad: "p".repeat(maxFrameBytes - Buffer.byteLength(base) + 1) });
    add("oversized", `a frame of ${Buffer.byteLength(over)} bytes (128 KB + 1) closes with 1009`, text(over), {
      kind: "close",
      code: 1009,
    });
  }
  add("oversized", "a 200 KB chat frame closes with 1009", json({ type: "chat", roomId: room, message: "m".repeat(200 * 1024) }), {
    kind: "close",
    code: 1009,
  });
  add("oversized", "a 1 MB frame closes with 1009", text("x".repeat(1024 * 1024)), { kind: "close", code: 1009 });

  // ---------------------------------------------------------------- Unicode
  for (const [what, message] of UNICODE_OK) {
    const cmid = rng.clientMessageId();
    add(
      "unicode",
      `chat.message with ${what} is stored and returned unchanged`,
      json({ type: "chat", roomId: sandbox, message, clientMessageId: cmid }),
      acceptedChat(message, cmid),
      1,
    );
  }
  for (const [what, message] of LONE_SURROGATES) {
    // JSON.stringify escapes lone surrogates (\ud800), so the frame itself is valid JSON and valid UTF-8.
    add(
      "unicode",
      `chat.message with ${what}`,
      json({ type: "chat", roomId: sandbox, message, clientMessageId: rng.clientMessageId() }),
      bad,
    );
    add("unicode", `private.message with ${what}`, json({ type: "private", toUserId: peer, message }), bad);
  }
  add("unicode", "a clientMessageId with an emoji", json({ type: "chat", roomId: room, message: "x", clientMessageId: "id-😀" }), bad);
  add("unicode", "a lone surrogate as type", text('{"type":"\\ud800"}'), unknownType);

  // ---------------------------------------------------------------- binary frames: API Gateway closes with 1003
  add(
    "binary frames",
    "a valid ping sent as a binary frame",
    { kind: "binary", bytes: Buffer.from('{"type":"ping"}') },
    { kind: "close", code: 1003 },
  );
  add("binary frames", "an empty binary frame", { kind: "binary", bytes: Buffer.alloc(0) }, { kind: "close", code: 1003 });
  for (let i = 0; i < 3; i++) {
    const n = rng.int(1, 2048);
    add("binary frames", `${n} random bytes`, { kind: "binary", bytes: rng.bytes(n) }, { kind: "close", code: 1003 });
  }
  add("binary frames", "64 KB of random bytes", { kind: "binary", bytes: rng.bytes(64 * 1024) }, { kind: "close", code: 1003 });

  // ---------------------------------------------------------------- invalid UTF-8 in a text frame
  const invalidUtf8: ReadonlyArray<readonly [string, number[]]> = [
    ["a 0xFF byte", [0x7b, 0xff, 0x7d]],
    ["a truncated 3-byte sequence", [0x22, 0xe2, 0x82, 0x22]],
    ["an encoded surrogate (CESU-8)", [0x22, 0xed, 0xa0, 0x80, 0x22]],
    ["an overlong encoding of '/'", [0x22, 0xc0, 0xaf, 0x22]],
  ];
  for (const [what, bytes] of invalidUtf8)
    add("invalid UTF-8", `a text frame with ${what}`, { kind: "rawText", bytes: Buffer.from(bytes) }, { kind: "close", code: 1007 });

  // ---------------------------------------------------------------- deep nesting
  const nestedArray = (depth: number) => "[".repeat(depth) + "]".repeat(depth);
  const nestedObject = (depth: number, leaf: string) => '{"a":'.repeat(depth) + leaf + "}".repeat(depth);
  for (const depth of [10, 1000, rng.int(20_000, 60_000)]) {
    add(
      "deep nesting",
      `chat.message as arrays nested ${depth} deep`,
      text(`{"type":"chat","roomId":"${room}","message":${nestedArray(depth)}}`),
      bad,
    );
  }
  for (const depth of [rng.int(1000, 5000), rng.int(30_000, 60_000)]) {
    add(
      "deep nesting",
      `ping with an unknown field of arrays nested ${depth} deep`,
      text(`{"type":"ping","x":${nestedArray(depth)}}`),
      pong,
    );
  }
  {
    const depth = rng.int(5000, 20_000);
    add(
      "deep nesting",
      `ping with an unknown field of objects nested ${depth} deep`,
      text(`{"type":"ping","x":${nestedObject(depth, "1")}}`),
      pong,
    );
  }
  add("deep nesting", "join.roomId as nested objects", text(`{"type":"join","roomId":${nestedObject(500, '"general"')}}`), bad);
  add("deep nesting", "type as nested objects", text(`{"type":${nestedObject(2000, '"chat"')}}`), unknownType);
  add("deep nesting", "a top-level array nested 50,000 deep", text(nestedArray(50_000)), badJson);

  // ---------------------------------------------------------------- __proto__ / constructor / prototype keys
  add("prototype keys", "__proto__ holding the type (not an own `type`)", text('{"__proto__":{"type":"ping"}}'), unknownType);
  add("prototype keys", "constructor.prototype holding the type", text('{"constructor":{"prototype":{"type":"ping"}}}'), unknownType);
  add("prototype keys", "ping with __proto__ pollution", text('{"type":"ping","__proto__":{"polluted":true,"type":"chat"}}'), pong);
  add("prototype keys", "rooms with __proto__: null", text('{"type":"rooms","__proto__":null}'), { kind: "reply", type: "rooms" });
  {
    const cmid = rng.clientMessageId();
    add(
      "prototype keys",
      "chat with __proto__.userId: the real sender is kept",
      text(
        `{"type":"chat","roomId":"${sandbox}","message":"proto","clientMessageId":"${cmid}","__proto__":{"userId":"admin","username":"Admin"}}`,
      ),
      acceptedChat("proto", cmid),
      1,
    );
  }
  add(
    "prototype keys",
    "history with __proto__.limit: the guarded room is still empty",
    text(`{"type":"history","roomId":"${room}","__proto__":{"limit":100000,"roomId":"${sandbox}"}}`),
    {
      kind: "reply",
      type: "history",
      check: (f) =>
        f.roomId === room && Array.isArray(f.messages) && f.messages.length === 0 ? undefined : JSON.stringify(f).slice(0, 200),
    },
  );
  add(
    "prototype keys",
    "join with constructor.prototype.rooms",
    text(`{"type":"join","roomId":"${room}","constructor":{"prototype":{"rooms":["x"]}}}`),
    {
      kind: "reply",
      type: "joined",
    },
  );
  add("prototype keys", "join.roomId as a __proto__ object", text('{"type":"join","roomId":{"__proto__":"general"}}'), bad);
  add("prototype keys", 'join the room "__proto__" (a valid room id)', json({ type: "join", roomId: "__proto__" }), {
    kind: "reply",
    type: "joined",
    check: (f) => (f.roomId === "__proto__" ? undefined : JSON.stringify(f)),
  });
  add("prototype keys", 'rooms lists "__proto__" as an ordinary room', json({ type: "rooms" }), {
    kind: "reply",
    type: "rooms",
    check: (f) =>
      Array.isArray(f.rooms) && f.rooms.some((r: { roomId?: unknown }) => r.roomId === "__proto__") ? undefined : JSON.stringify(f),
  });
  add("prototype keys", 'leave the room "__proto__"', json({ type: "leave", roomId: "__proto__" }), { kind: "reply", type: "left" });
  add("prototype keys", 'leave the room "constructor" (never joined)', json({ type: "leave", roomId: "constructor" }), notMember);
  add("prototype keys", 'chat to the room "toString" (never joined)', json({ type: "chat", roomId: "toString", message: "x" }), notMember);
  add(
    "prototype keys",
    'history of the room "hasOwnProperty" (never joined)',
    json({ type: "history", roomId: "hasOwnProperty" }),
    notMember,
  );
  add(
    "prototype keys",
    'private to the user "__proto__" (a valid user id)',
    json({ type: "private", toUserId: "__proto__", message: "to proto" }),
    delivered("__proto__"),
    1,
  );
  add("prototype keys", 'history with the user "__proto__" holds that one message', json({ type: "history", withUserId: "__proto__" }), {
    kind: "reply",
    type: "history",
    check: (f) => {
      const m = f.messages as Array<Record<string, unknown>> | undefined;
      return m?.length === 1 && m[0].message === "to proto" && m[0].userId === self && m[0].toUserId === "__proto__"
        ? undefined
        : JSON.stringify(f).slice(0, 300);
    },
  });

  // ---------------------------------------------------------------- unknown types -> $default -> UNKNOWN_TYPE
  for (const [what, type] of UNKNOWN_TYPES) add("unknown types", `type ${what}`, json({ type, message: "x", roomId: room }), unknownType);
  for (let i = 0; i < 5; i++) {
    const type = rng.word(rng.int(1, 20));
    if ((MESSAGE_TYPES as readonly string[]).includes(type)) continue;
    add("unknown types", `random type "${type}"`, json({ type }), unknownType);
  }

  // ---------------------------------------------------------------- odd room ids
  const roomFrames: ReadonlyArray<(roomId: string) => Record<string, unknown>> = [
    (roomId) => ({ type: "join", roomId }),
    (roomId) => ({ type: "leave", roomId }),
    (roomId) => ({ type: "chat", roomId, message: "x" }),
    (roomId) => ({ type: "history", roomId }),
  ];
  for (const roomId of BAD_ROOM_IDS) {
    const frame = rng.pick(roomFrames)(roomId);
    add("odd room ids", `${String(frame.type)} with roomId ${JSON.stringify(roomId)}`, json(frame), bad);
  }
  for (const roomId of ["-", "_", "0", "R".repeat(64)]) {
    add(
      "odd room ids",
      `join the unusual but valid room ${JSON.stringify(roomId.length > 10 ? `${roomId.slice(0, 4)}…(${roomId.length})` : roomId)}`,
      json({ type: "join", roomId }),
      {
        kind: "reply",
        type: "joined",
      },
    );
    add("odd room ids", `leave it again`, json({ type: "leave", roomId }), { kind: "reply", type: "left" });
  }
  add("odd room ids", "join the guarded room again (its current room again)", json({ type: "join", roomId: room }), {
    kind: "reply",
    type: "joined",
  });

  // ---------------------------------------------------------------- odd user ids
  for (const userId of BAD_USER_IDS) {
    const asPrivate = rng.float() < 0.5;
    add(
      "odd user ids",
      `${asPrivate ? "private.toUserId" : "history.withUserId"} ${JSON.stringify(userId)}`,
      json(asPrivate ? { type: "private", toUserId: userId, message: "x" } : { type: "history", withUserId: userId }),
      bad,
    );
  }
  add("odd user ids", "toUserId of 129 characters", json({ type: "private", toUserId: "x".repeat(129), message: "x" }), bad);
  add("odd user ids", "a private message to oneself", json({ type: "private", toUserId: self, message: "me" }), bad);
  add("odd user ids", "history with oneself", json({ type: "history", withUserId: self }), bad);
  for (const userId of ["user@example.com", "auth0|5f1c", "a:b=c+d", "U".repeat(128)]) {
    add(
      "odd user ids",
      `private to the unusual but valid user id ${JSON.stringify(userId.length > 20 ? `${userId.slice(0, 4)}…(${userId.length})` : userId)}`,
      json({ type: "private", toUserId: userId, message: "hi" }),
      delivered(userId),
      1,
    );
  }

  // ---------------------------------------------------------------- handshake query parameters
  for (const roomId of ["", "a#b", "../general", "a b", "r".repeat(65), "room\u0000", "général", "a/b"]) {
    add(
      "handshake",
      `roomId ${JSON.stringify(roomId.length > 20 ? `${roomId.slice(0, 4)}…(${roomId.length})` : roomId)} refused with 400`,
      { kind: "handshake", query: { roomId } },
      { kind: "refused", status: 400 },
    );
  }
  const userRoom = `hs-${rng.word(6)}`;
  const names: ReadonlyArray<readonly [string, string, string]> = [
    ["control characters removed", "Al\u0000i\u0007ce\u001b", "Alice"],
    ["trimmed", "   Bob   ", "Bob"],
    ["cut to 64 characters", "N".repeat(300), "N".repeat(64)],
    ["emoji kept, cut by code point", "😀".repeat(70), "😀".repeat(64)],
    ["only control characters: the token's name instead", "\u0001\u0002\u0003", selfName],
    ["right-to-left text kept", "مرحبا", "مرحبا"],
  ];
  for (const [what, username, shown] of names) {
    add(
      "handshake",
      `username ${what}`,
      { kind: "handshake", query: { roomId: userRoom, username } },
      { kind: "accepted", username: shown },
    );
  }
  return cases;
}

/** `{category: count}` in generation order. */
export function countByCategory(cases: readonly BadInputCase[]): Map<Category, number> {
  const counts = new Map<Category, number>();
  for (const c of cases) counts.set(c.category, (counts.get(c.category) ?? 0) + 1);
  return counts;
}
