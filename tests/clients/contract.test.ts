/**
 * The wire contract has one source: the server's frame types (handlers/lib/frames.ts,
 * handlers/lib/errors.ts). clients/shared/protocol.ts imports them with `import type` (clients/ ->
 * handlers/ for types only: erased at build time, so no server code reaches the clients; checked
 * below on the web bundle) and keeps only a few runtime constants, checked here equal to the
 * server's.
 *
 * Two kinds of check:
 * - type-level assertions (the `Assert<...>` aliases): `npm test` runs `tsc --noEmit` first, so a
 *   client frame type that drifts from the server's breaks the build. Each deliberate difference is
 *   listed: ErrorFrame's `code` is widened to string, SystemFrame drops `from`, ReactionFrame's
 *   `version` is optional (a frame without one is applied as it comes), GatewayFrame is
 *   API Gateway's own answer, `history`, `edit` and `delete` requests need exactly one of roomId/withUserId.
 * - runtime checks: the client's parser keeps every field of every server frame (a sample per frame
 *   type with every optional field set, typed so that a field added on the server must be added to
 *   the sample), the server's schemas accept every client frame, and the constants agree.
 */
import { strict as assert } from "node:assert";
import * as esbuild from "esbuild";
import * as path from "node:path";
import * as client from "../../clients/shared/protocol";
import { DEFAULT_ROOM as SERVER_DEFAULT_ROOM } from "../../handlers/functions/connect";
import {
  ERROR_CODES as SERVER_ERROR_CODES,
  type ErrorCode as WireErrorCode,
  type ErrorFrame as WireErrorFrame,
} from "../../handlers/lib/errors";
import {
  DEFAULT_KICK_MINUTES,
  MAX_KICK_MINUTES,
  MESSAGE_TYPES,
  buildSchemas,
  type ClientFrameInput,
  type HistoryEntry,
  type MessageType,
  type ServerFrame as WireServerFrame,
} from "../../handlers/lib/frames";

// ---------------------------------------------------------------------------------------------
// Type-level assertions (checked by tsc; a `false` anywhere is a compile error)

type Assert<T extends true> = T;
/** A and B are assignable to each other. */
type Mutual<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assignable<A, B> = [A] extends [B] ? true : false;
type AllTrue<T> = { [K in keyof T]: T[K] }[keyof T];
/** The keys of any member of a union (keyof of a union gives only the common ones). */
type KeysOf<U> = U extends unknown ? keyof U : never;
/**
 * Assignable both ways AND the same field names: mutual assignability alone does not see an
 * optional field that one side lacks (the client's private frame once lacked `clientMessageId`).
 */
type Same<A, B> = Mutual<A, B> extends true ? Mutual<KeysOf<A>, KeysOf<B>> : false;

type ClientServerFrame = client.ServerFrame;
type WireType = WireServerFrame["type"];
type Of<U, K> = Extract<U, { readonly type: K }>;

/** Every server frame type is known to the client, and the client knows no other (but error and API Gateway's). */
export type ServerFrameTypes = Assert<Mutual<Exclude<ClientServerFrame["type"], "error" | "gateway">, WireType>>;
/** Each server frame the client reads is the server's, both ways (system: see below). */
type SameServerFrames = { [K in Exclude<WireType, "system" | "reaction">]: Same<Of<ClientServerFrame, K>, Of<WireServerFrame, K>> };
export type ServerFramesAgree = Assert<AllTrue<SameServerFrames>>;
/** system: the server's frame fits the client's, which has every field of it but `from`. */
export type SystemFrameAgrees = Assert<Assignable<Of<WireServerFrame, "system">, client.SystemFrame>>;
export type SystemFrameFields = Assert<Mutual<keyof client.SystemFrame | "from", keyof Of<WireServerFrame, "system">>>;
/** reaction: the server's frame fits the client's, whose `version` is optional; same fields. */
export type ReactionFrameAgrees = Assert<Assignable<Of<WireServerFrame, "reaction">, client.ReactionFrame>>;
export type ReactionFrameFields = Assert<Mutual<keyof client.ReactionFrame, keyof Of<WireServerFrame, "reaction">>>;
/** error: the server's frame fits the client's, whose `code` is any string; same fields. */
export type ErrorFrameAgrees = Assert<Assignable<WireErrorFrame, client.ErrorFrame>>;
export type ErrorFrameFields = Assert<Mutual<keyof client.ErrorFrame, keyof WireErrorFrame>>;
export type ErrorCodesAgree = Assert<Mutual<client.ErrorCode, WireErrorCode>>;
export type ErrorCodeListComplete = Assert<Mutual<(typeof client.ERROR_CODES)[number], WireErrorCode>>;
/** The pieces the clients name separately. */
export type HistoryMessageAgrees = Assert<Same<client.HistoryMessage, HistoryEntry>>;
export type MemberAgrees = Assert<Same<client.Member, Of<WireServerFrame, "joined">["members"][number]>>;
export type RoomSummaryAgrees = Assert<Same<client.RoomSummary, Of<WireServerFrame, "rooms">["rooms"][number]>>;

/** Every frame a client sends is one the server's schemas accept, and the client can send every type. */
export type ClientFramesAccepted = Assert<Assignable<client.ClientFrame, ClientFrameInput>>;
export type ClientFrameTypes = Assert<Mutual<client.ClientFrame["type"], MessageType>>;
/** The frames whose schemas require exactly one of roomId/withUserId (a refinement the client type spells out). */
type TargetedType = "history" | "edit" | "delete" | "typing" | "react";
type SameClientFrames = { [K in Exclude<MessageType, TargetedType>]: Same<Of<client.ClientFrame, K>, Of<ClientFrameInput, K>> };
export type ClientFramesAgree = Assert<AllTrue<SameClientFrames>>;
/** history, edit, delete: the same fields; the client type additionally requires one of roomId/withUserId (the schema's refinement). */
type TargetedFields = { [K in TargetedType]: Mutual<KeysOf<Of<client.ClientFrame, K>>, keyof Of<ClientFrameInput, K>> };
export type TargetedRequestFields = Assert<AllTrue<TargetedFields>>;

// ---------------------------------------------------------------------------------------------
// Runtime checks

/** T with every optional field present: a field the server adds must be added to the samples below. */
type Full<T> = { [K in keyof T]-?: Exclude<T[K], undefined> };

const fullEntry: Full<HistoryEntry> = {
  messageId: "m1",
  userId: "alice",
  username: "Alice",
  message: "hi",
  sentAt: "2026-01-01T10:00:00.000Z",
  toUserId: "bob",
  clientMessageId: "c1",
  kind: "system",
  data: { orderId: 42 },
  editedAt: "2026-01-01T10:01:00.000Z",
  deleted: true,
  deletedAt: "2026-01-01T10:02:00.000Z",
  deletedBy: "mod",
  reactions: [{ emoji: "👍", count: 2, me: true }],
  reactionsVersion: 7,
};

/** One frame of each type the server sends, every optional field set. */
const serverSamples: { [K in WireType]: Full<Of<WireServerFrame, K>> } = {
  chat: {
    type: "chat",
    roomId: "general",
    messageId: "m1",
    userId: "alice",
    username: "Alice",
    message: "hi",
    sentAt: "2026-01-01T10:00:00.000Z",
    clientMessageId: "c1",
  },
  private: {
    type: "private",
    messageId: "m2",
    fromUserId: "alice",
    fromUsername: "Alice",
    toUserId: "bob",
    message: "psst",
    sentAt: "2026-01-01T10:00:00.000Z",
    clientMessageId: "c2",
  },
  presence: { type: "presence", event: "joined", roomId: "general", userId: "bob", username: "Bob" },
  system: {
    type: "system",
    from: "system",
    messageId: "m3",
    message: "deployed",
    sentAt: "2026-01-01T10:00:00.000Z",
    roomId: "ops",
    toUserId: "alice",
    data: { v: 1 },
  },
  joined: {
    type: "joined",
    roomId: "general",
    members: [{ userId: "alice", username: "Alice" }],
    memberCount: 2,
    membersTruncated: true,
    unread: 3,
    unreadMore: true,
    readMessageId: "m0",
  },
  left: { type: "left", roomId: "general" },
  delivered: { type: "delivered", messageId: "m2", clientMessageId: "c2", deliveredTo: 2 },
  rooms: { type: "rooms", rooms: [{ roomId: "general", members: 3, unread: 99, unreadMore: true }], next: "cursor-r" },
  history: {
    type: "history",
    roomId: "general",
    withUserId: "bob",
    messages: [fullEntry],
    next: "cursor-h",
    newer: "cursor-n",
    readMessageId: "m0",
  },
  typing: { type: "typing", userId: "alice", username: "Alice", roomId: "general", toUserId: "bob" },
  reaction: {
    type: "reaction",
    messageId: "m1",
    emoji: "👍",
    userId: "bob",
    count: 1,
    version: 8,
    removed: true,
    roomId: "general",
    fromUserId: "alice",
    toUserId: "bob",
  },
  read: { type: "read", roomId: "general", userId: "alice", username: "Alice", messageId: "m1" },
  pong: { type: "pong" },
  kicked: { type: "kicked", roomId: "general", by: "mod", until: "2026-01-01T10:10:00.000Z" },
  userKicked: { type: "userKicked", roomId: "general", userId: "bob", until: "2026-01-01T10:10:00.000Z", connections: 2 },
  edited: {
    type: "edited",
    messageId: "m4",
    message: "hi, fixed",
    editedAt: "2026-01-01T10:01:00.000Z",
    userId: "alice",
    roomId: "general",
    fromUserId: "alice",
    toUserId: "bob",
  },
  deleted: {
    type: "deleted",
    messageId: "m4",
    by: "mod",
    deletedAt: "2026-01-01T10:02:00.000Z",
    roomId: "general",
    fromUserId: "alice",
    toUserId: "bob",
  },
};

const errorSample: Full<WireErrorFrame> = {
  type: "error",
  code: "FORBIDDEN",
  message: "you do not have access to room ops",
  requestType: "chat",
  clientMessageId: "c1",
  roomId: "ops",
};

/** One frame of each type a client sends, every optional field set. */
const clientSamples: { [K in MessageType]: Full<Of<client.ClientFrame, K>> } = {
  chat: { type: "chat", message: "hi", roomId: "general", clientMessageId: "c1" },
  join: { type: "join", roomId: "general" },
  leave: { type: "leave", roomId: "general" },
  private: { type: "private", toUserId: "bob", message: "psst", clientMessageId: "c2" },
  rooms: { type: "rooms", limit: 10, after: "cursor-r" },
  history: { type: "history", roomId: "general", limit: 20, before: "cursor-h", after: "cursor-a", fromRead: true },
  ping: { type: "ping" },
  kick: { type: "kick", roomId: "general", userId: "bob", minutes: 15 },
  edit: { type: "edit", roomId: "general", messageId: "m4", message: "hi, fixed" },
  delete: { type: "delete", withUserId: "bob", messageId: "m2" },
  typing: { type: "typing", roomId: "general" },
  react: { type: "react", roomId: "general", messageId: "m1", emoji: "👍", remove: true },
  read: { type: "read", roomId: "general", messageId: "m1" },
};

/**
 * The frames sent for one client sample. A history request starts at most at one of `before`,
 * `after` and `fromRead` (the schema refuses two), so its full sample is sent once per start, each
 * time with every other field: together they still send every field.
 */
function sentFrames(type: MessageType): client.ClientFrame[] {
  if (type !== "history") return [clientSamples[type]];
  const { before, after, fromRead, ...rest } = clientSamples.history;
  return [
    { ...rest, before },
    { ...rest, after },
    { ...rest, fromRead },
  ];
}

describe("clients: the wire contract is the server's", () => {
  it("parses every field of every server frame (samples with all optional fields set)", () => {
    for (const [type, frame] of Object.entries(serverSamples)) {
      const { from: _from, ...expected } = frame as Record<string, unknown>;
      assert.deepEqual(client.parseServerFrame(JSON.stringify(frame)), type === "system" ? expected : frame, type);
    }
    assert.deepEqual(client.parseServerFrame(JSON.stringify(errorSample)), errorSample);
  });

  it("sends only frames the server's schemas accept, for every client frame type", () => {
    const schemas = buildSchemas(4096);
    assert.deepEqual(Object.keys(clientSamples).sort(), [...MESSAGE_TYPES].sort());
    for (const type of MESSAGE_TYPES) {
      const frames = sentFrames(type);
      // Every field of the sample is sent by one of its frames.
      assert.deepEqual([...new Set(frames.flatMap((f) => Object.keys(f)))].sort(), Object.keys(clientSamples[type]).sort(), type);
      for (const frame of frames) {
        const encoded = client.encodeFrame(frame);
        assert.ok(encoded.ok, type);
        const result = schemas[type].safeParse(JSON.parse(encoded.text));
        assert.ok(result.success, `${type}: ${result.success ? "" : result.error.message}`);
      }
    }
    // ...and the schema refuses two starts at once, which the client therefore never sends.
    assert.ok(!schemas.history.safeParse(clientSamples.history).success);
    assert.ok(schemas.history.safeParse({ type: "history", withUserId: "bob" }).success);
  });

  it("keeps the client's runtime constants equal to the server's", () => {
    assert.deepEqual([...client.ERROR_CODES], [...SERVER_ERROR_CODES]);
    assert.equal(client.DEFAULT_ROOM, SERVER_DEFAULT_ROOM);
    assert.equal(client.KICK_DEFAULT_MINUTES, DEFAULT_KICK_MINUTES);
    assert.equal(client.KICK_MAX_MINUTES, MAX_KICK_MINUTES);
    const history = buildSchemas(4096).history;
    assert.ok(history.safeParse({ type: "history", roomId: "r", limit: client.HISTORY_MAX_LIMIT }).success);
    assert.ok(!history.safeParse({ type: "history", roomId: "r", limit: client.HISTORY_MAX_LIMIT + 1 }).success);
  });

  it("puts no server module (nor zod) in the web bundle: the server's types are imported as types only", async () => {
    const root = path.join(__dirname, "..", "..");
    const result = await esbuild.build({
      entryPoints: [path.join(root, "clients", "web", "src", "app.ts")],
      bundle: true,
      write: false,
      metafile: true,
      format: "iife",
      platform: "browser",
      define: { __CHAT_CONFIG__: JSON.stringify({ endpoint: "", tokenUrl: "" }) },
      logLevel: "silent",
    });
    const inputs = Object.keys(result.metafile.inputs);
    assert.ok(
      inputs.some((i) => i.endsWith("clients/shared/protocol.ts")),
      inputs.join(", "),
    );
    assert.deepEqual(
      inputs.filter((i) => i.includes("handlers/") || i.includes("node_modules/")),
      [],
    );
  });
});
