/** Pure helpers of the handlers: configuration, cursors, frames, EMF, usage accounting, names, tokens, the local secret. */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { jwtVerify } from "jose";
import { isConfigurationError } from "../../handlers/env";
import { FACTORIES } from "../../handlers";
import { FUNCTIONS } from "../../handlers/routes";
import { withEnv } from "../support/handlerHarness";
import { MAX_USERNAME_LENGTH, cleanUsername } from "../../handlers/functions/authorizer";
import { readAuthConfig, readHandlerConfig } from "../../handlers/lib/config";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { batchDelete, dmConversation, messageSortKey, messageSortKeyOf, uuidV7, uuidV7Ms, type MessageItem } from "../../handlers/lib/data";
import {
  decodeHistoryCursor,
  decodeRoomsCursor,
  encodeHistoryCursor,
  encodeRoomsCursor,
  fitByBytes,
  forwardNewerSk,
  jsonBytes,
  readHistoryForward,
} from "../../handlers/lib/pages";
import { emfDocument } from "../../handlers/lib/emf";
import { backoffDelay, isGone, isNotSent, isThrottled, mapPool } from "../../handlers/lib/fanout";
import {
  MAX_CURSOR_LENGTH,
  MAX_EMOJI_LENGTH,
  MAX_REACTION_EMOJI,
  assertDeliverable,
  buildSchemas,
  parseFrame,
} from "../../handlers/lib/frames";
import { historyEntry } from "../../handlers/functions/history";
import { callsOf, emptyUsage, recordResponse } from "../../handlers/lib/usage";
import { localSecret } from "../../local/secret";
import { isUsageError } from "../../scripts/commandLine";
import { parseArgs, signLocalToken } from "../../scripts/token";
import { USAGE as PUSH_USAGE, parseIsoTime, parsePushArgs } from "../../scripts/push";

const needs = { tables: ["connections" as const], management: false };

describe("handlers: pure helpers", () => {
  describe("readHandlerConfig", () => {
    it("applies the declared defaults, the stack's: 168 h retention, 16384 bytes, 60 frames/min, 50 parallel posts", () => {
      const c = readHandlerConfig({ CONNECTIONS_TABLE: "c" }, "ping", needs);
      assert.deepEqual(
        [c.messageRetentionHours, c.maxMessageBytes, c.rateLimitPerMinute, c.fanoutConcurrency, c.logLevel, c.tracing],
        [168, 16384, 60, 50, "info", false],
      );
      assert.equal(c.tables.connections, "c");
    });

    it("throws ConfigurationError at cold start for missing or malformed variables", () => {
      assert.throws(() => readHandlerConfig({}, "ping", needs), isConfigurationError);
      assert.throws(
        () => readHandlerConfig({ CONNECTIONS_TABLE: "c", RATE_LIMIT_PER_MINUTE: "lots" }, "ping", needs),
        /RATE_LIMIT_PER_MINUTE/,
      );
      assert.throws(() => readHandlerConfig({ CONNECTIONS_TABLE: "c", FANOUT_CONCURRENCY: "0" }, "ping", needs), isConfigurationError);
      assert.throws(() => readHandlerConfig({ CONNECTIONS_TABLE: "c", MAX_MESSAGE_BYTES: "131073" }, "ping", needs), /MAX_MESSAGE_BYTES/);
      assert.equal(readHandlerConfig({ CONNECTIONS_TABLE: "c", MAX_MESSAGE_BYTES: "131072" }, "ping", needs).maxMessageBytes, 131072);
      assert.throws(() => readHandlerConfig({ CONNECTIONS_TABLE: "c", LOG_LEVEL: "loud" }, "ping", needs), /LOG_LEVEL/);
      assert.throws(() => readHandlerConfig({ CONNECTIONS_TABLE: "c", TRACING_ENABLED: "yes" }, "ping", needs), /TRACING_ENABLED/);
      assert.throws(
        () => readHandlerConfig({ CONNECTIONS_TABLE: "c" }, "chat", { tables: ["connections"], management: true }),
        /MANAGEMENT_ENDPOINT/,
      );
      assert.throws(
        () =>
          readHandlerConfig({ CONNECTIONS_TABLE: "c", MANAGEMENT_ENDPOINT: "not a url" }, "chat", {
            tables: ["connections"],
            management: true,
          }),
        /not a URL/,
      );
    });

    it("every factory fails at cold start with ConfigurationError when its environment is missing", () => {
      const cleared = Object.fromEntries(
        [
          "CONNECTIONS_TABLE",
          "ROOMS_TABLE",
          "MESSAGES_TABLE",
          "MANAGEMENT_ENDPOINT",
          "AUTH_SHARED_SECRET",
          "AUTH_SECRET_ARN",
          "AUTH_MODE",
        ].map((k) => [k, undefined]),
      );
      for (const spec of FUNCTIONS) {
        assert.throws(() => withEnv(cleared, () => FACTORIES[spec.name]()), isConfigurationError, spec.name);
      }
    });

    it("readAuthConfig requires the mode's variables and a 256-bit HS256 secret", () => {
      assert.throws(() => readAuthConfig({}), /AUTH_SHARED_SECRET or AUTH_SECRET_ARN/);
      assert.throws(() => readAuthConfig({ AUTH_SHARED_SECRET: "short" }), /32 bytes/);
      assert.throws(() => readAuthConfig({ AUTH_MODE: "oidc", AUTH_ISSUER: "https://i" }), isConfigurationError);
      assert.throws(() => readAuthConfig({ AUTH_MODE: "magic" }), /AUTH_MODE/);
      const ok = readAuthConfig({ AUTH_SECRET_ARN: "arn:x", ALLOWED_ORIGINS: " https://a.example , ,https://b.example" });
      assert.deepEqual(ok.allowedOrigins, ["https://a.example", "https://b.example"]);
    });
  });

  describe("keys and cursors", () => {
    it("one conversation per pair of users, whoever writes", () => {
      assert.equal(dmConversation("bob", "alice"), "dm#alice#bob");
      assert.equal(dmConversation("alice", "bob"), "dm#alice#bob");
    });

    it("message sort keys sort by time as strings", () => {
      assert.equal(messageSortKey(5, "m"), "0000000000005#m");
      assert.ok(messageSortKey(999, "z") < messageSortKey(1000, "a"));
    });

    it("message ids are UUIDv7 (RFC 9562): 48-bit ms, version 7, variant 10, the rest random", () => {
      const ms = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
      const id = uuidV7(ms, new Uint8Array(10).fill(0xff));
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      assert.equal(id.slice(0, 13).replace("-", ""), ms.toString(16).padStart(12, "0"), "the first 48 bits are the ms, big-endian");
      assert.equal(id[14], "7", "version nibble");
      assert.equal(id[19], "b", "variant bits 10 (0xff & 0x3f | 0x80 = 0xbf)");
      assert.equal(uuidV7(ms, new Uint8Array(10))[19], "8", "variant bits 10 with zero random bits");
      assert.equal(uuidV7(ms, new Uint8Array(10)).slice(14, 18), "7000", "random bits come only from `random`");
      const fresh = new Set(Array.from({ length: 100 }, () => uuidV7(ms)));
      assert.equal(fresh.size, 100, "74 random bits: no two ids of the same ms alike");
      for (const f of fresh) assert.ok(["8", "9", "a", "b"].includes(f[19]), f);
      assert.throws(() => uuidV7(2 ** 48));
      assert.throws(() => uuidV7(-1));
    });

    it("the send time round-trips through the id, so the sort key follows from it", () => {
      for (const ms of [0, 1, 999, Date.now(), Date.UTC(2026, 11, 31, 23, 59, 59, 999), 2 ** 32, 2 ** 48 - 1]) {
        const id = uuidV7(ms);
        assert.equal(uuidV7Ms(id), ms, `${ms}`);
        assert.equal(messageSortKeyOf(id), messageSortKey(ms, id));
      }
      // Ids of later milliseconds sort after earlier ones, like their keys.
      assert.ok(uuidV7(1_000_001) > uuidV7(1_000_000));
    });

    it("a message id that is not a UUIDv7 has no sort key (messages stored before v7 ids: NOT_FOUND)", () => {
      const v7 = uuidV7(Date.now());
      for (const id of [
        "3f1c2a9e-1111-4bbb-8ccc-0123456789ab", // v4
        `${v7.slice(0, 14)}4${v7.slice(15)}`, // version 4 nibble
        `${v7.slice(0, 19)}c${v7.slice(20)}`, // variant 110 (Microsoft)
        `${v7.slice(0, 19)}7${v7.slice(20)}`, // variant 0 (NCS)
        v7.toUpperCase(),
        v7.replace(/-/g, ""),
        `${v7}0`,
        "",
        "hello",
        "00000000-0000-0000-0000-000000000000",
      ]) {
        assert.equal(uuidV7Ms(id), undefined, id);
        assert.equal(messageSortKeyOf(id), undefined, id);
      }
    });

    it("cursors round-trip for their own conversation and anything else is BAD_REQUEST", () => {
      const sk = messageSortKey(Date.now(), "3f1c2a9e-1111-4bbb-8ccc-0123456789ab");
      const conv = dmConversation("a".repeat(128), "b".repeat(128));
      assert.equal(decodeHistoryCursor(encodeHistoryCursor(conv, sk), conv), sk);
      assert.ok(encodeHistoryCursor(conv, sk).length <= 600, "the longest cursor fits the schema's bound");
      const bad = [
        "",
        "!!",
        encodeHistoryCursor(conv, "x"),
        encodeHistoryCursor(conv, "9999999999999#forged"),
        encodeHistoryCursor("room#other", sk),
        Buffer.from(JSON.stringify({ sk })).toString("base64url"),
        Buffer.from("null").toString("base64url"),
        "a".repeat(700),
      ];
      for (const b of bad)
        assert.throws(
          () => decodeHistoryCursor(b, conv),
          (e: Error & { code?: string }) => e.code === "BAD_REQUEST",
          b,
        );
      assert.equal(decodeRoomsCursor(encodeRoomsCursor("room-1")), "room-1");
      assert.throws(
        () => decodeRoomsCursor(encodeRoomsCursor("a b")),
        (e: Error & { code?: string }) => e.code === "BAD_REQUEST",
      );
    });

    it("pages are cut by bytes, never below one item", () => {
      assert.equal(
        fitByBytes([5, 5, 5], 10, 21, (n) => n),
        2,
      ); // 10 + 5 + (1 + 5) = 21
      assert.equal(
        fitByBytes([5, 5, 5], 10, 20, (n) => n),
        1,
      );
      assert.equal(
        fitByBytes([50], 10, 20, (n) => n),
        1,
      );
      assert.equal(
        fitByBytes([], 10, 20, (n) => n),
        0,
      );
    });
  });

  describe("frame schemas", () => {
    const s = buildSchemas(8);
    it("counts the message size in UTF-8 bytes: over the limit is TOO_LARGE", () => {
      assert.equal(parseFrame(s.chat, { type: "chat", message: "12345678" }).message, "12345678");
      assert.throws(
        () => parseFrame(s.chat, { type: "chat", message: "€€€" }),
        (e: Error & { code?: string }) => e.code === "TOO_LARGE",
      );
    });
    it("strips unknown fields into a fresh object", () => {
      const parsed = parseFrame(s.join, JSON.parse('{"type":"join","roomId":"r","__proto__":{"x":1},"extra":2}'));
      assert.deepEqual(Object.keys(parsed), ["type", "roomId"]);
      assert.equal(Object.getPrototypeOf(parsed), Object.prototype);
    });
    it("a frame that would not fit in one 128 KB WebSocket message is TOO_LARGE, counting JSON escapes", () => {
      const limit = 128 * 1024;
      assertDeliverable({ type: "chat", message: "a".repeat(120 * 1024) }, limit);
      assert.throws(
        () => assertDeliverable({ type: "chat", message: "\u0001".repeat(30 * 1024) }, limit),
        (e: Error & { code?: string }) => e.code === "TOO_LARGE",
      );
    });
    it("the largest message assertDeliverable accepts, with reactions of MAX_REACTIONS_BYTES, fits a forward history page (next, newer, readMessageId)", () => {
      const limit = 128 * 1024;
      const fromUserId = "a".repeat(128);
      const toUserId = "b".repeat(128);
      const username = "\u{1F600}".repeat(MAX_USERNAME_LENGTH);
      const clientMessageId = "c".repeat(64);
      const fits = (n: number) => {
        try {
          const frame = { type: "private", fromUserId, fromUsername: username, toUserId, message: "m".repeat(n), clientMessageId };
          assertDeliverable(frame, limit);
          return true;
        } catch {
          return false;
        }
      };
      let lo = 0;
      let hi = limit;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (fits(mid)) lo = mid;
        else hi = mid;
      }
      // Reactions as MAX_REACTIONS_BYTES allows: 20 emoji of 16 three-byte code units, 16-digit counts, all `me`.
      const emoji = Array.from({ length: MAX_REACTION_EMOJI }, (_, i) => String.fromCharCode(0x2600 + i).repeat(MAX_EMOJI_LENGTH));
      const sentMs = Date.now();
      const messageId = uuidV7(sentMs);
      const sk = messageSortKey(sentMs, messageId);
      const item = {
        conversationId: dmConversation(fromUserId, toUserId),
        sk,
        messageId,
        userId: fromUserId,
        username,
        message: "m".repeat(lo),
        sentAt: new Date(sentMs).toISOString(),
        expiresAt: 9_999_999_999,
        toUserId,
        clientMessageId,
        reactionEmoji: new Set(emoji),
        reactionVersion: Number.MAX_SAFE_INTEGER,
        ...Object.fromEntries(emoji.map((e) => [`r:${e}`, Number.MAX_SAFE_INTEGER])),
      } as unknown as MessageItem;
      const entry = historyEntry(item, new Set(emoji.map((e) => `${sk}#${e}`)));
      assert.equal(entry.reactions?.length, MAX_REACTION_EMOJI);
      // The envelope history.ts budgets for a forward page: both cursors at their longest, and readMessageId.
      const cursor = "x".repeat(MAX_CURSOR_LENGTH);
      const page = { type: "history", withUserId: toUserId, messages: [entry], next: cursor, newer: cursor, readMessageId: messageId };
      // Before: 131,429 bytes (the reserve covered one cursor): a page that API Gateway refuses.
      assert.ok(jsonBytes(page) <= limit, `a forward page of ${jsonBytes(page)} bytes`);
    });
    it("a forward read that met only expired messages still says where the next page continues (the last item examined)", async () => {
      const nowSec = Math.floor(Date.now() / 1000);
      const item = (ms: number, expiresAt: number) => {
        const messageId = uuidV7(ms);
        return { conversationId: "room#r", sk: messageSortKey(ms, messageId), messageId, expiresAt };
      };
      const cursor = item(1_000, nowSec - 60);
      // Sent after the cursor but expired first (as after messageRetentionHours was lowered): TTL has not removed them yet.
      const examined = [item(2_000, nowSec - 1), item(3_000, nowSec - 1), item(4_000, nowSec - 1)];
      const queries: unknown[] = [];
      const ctx = {
        config: { tables: { messages: "m" } },
        doc: {
          send: async (command: { input: unknown }) => {
            queries.push(command.input);
            return { Items: [cursor, ...examined] };
          },
        },
      } as unknown as Parameters<typeof readHistoryForward>[0];
      const page = await readHistoryForward(ctx, "room#r", 2, { afterCursorSk: cursor.sk }, nowSec);
      assert.deepEqual([page.items.length, page.more], [0, true]);
      // Before: no position was returned, and the page had no `newer`: the live messages after them were never reached.
      assert.equal(page.lastSk, examined[2].sk);
      assert.equal(forwardNewerSk(page, 0), examined[2].sk);
      assert.equal(queries.length, 1);
      // When the read returned live messages, `newer` follows the newest one kept.
      const live = [item(5_000, nowSec + 60), item(6_000, nowSec + 60), item(7_000, nowSec + 60)] as unknown as MessageItem[];
      assert.equal(forwardNewerSk({ items: live, lastSk: live[2].sk }, 2), live[1].sk);
      assert.equal(forwardNewerSk({ items: live, lastSk: "later" }, 3), "later");
    });
    it("history defaults limit to 50 and needs exactly one target", () => {
      assert.equal(parseFrame(s.history, { type: "history", roomId: "r" }).limit, 50);
      assert.throws(() => parseFrame(s.history, { type: "history" }), /exactly one/);
    });
  });

  describe("usage accounting", () => {
    it("maps each call to the IAM (table, action) pairs it needs, transactions by their parts", () => {
      const tables = { messages: "phys-messages", rooms: "phys-rooms" };
      assert.deepEqual(
        callsOf(
          "TransactWriteItems",
          { TransactItems: [{ Put: { TableName: "phys-messages" } }, { Put: { TableName: "phys-messages" } }] },
          tables,
        ),
        [
          { table: "messages", action: "dynamodb:PutItem" },
          { table: "messages", action: "dynamodb:PutItem" },
        ],
      );
      assert.deepEqual(callsOf("BatchWriteItem", { RequestItems: { "phys-rooms": [], other: [] } }, tables), [
        { table: "rooms", action: "dynamodb:BatchWriteItem" },
        { table: "other", action: "dynamodb:BatchWriteItem" },
      ]);
      assert.deepEqual(callsOf("Query", { TableName: "phys-rooms", IndexName: "directory" }, tables), [
        { table: "rooms", action: "dynamodb:Query", index: "directory" },
      ]);
    });

    it("adds consumed capacity and items read (ScannedCount, one per item returned)", () => {
      const u = emptyUsage();
      recordResponse(u, "Query", { ConsumedCapacity: { CapacityUnits: 1.5 }, ScannedCount: 7 });
      recordResponse(u, "GetItem", { ConsumedCapacity: { CapacityUnits: 0.5 }, Item: {} });
      recordResponse(u, "GetItem", { ConsumedCapacity: { CapacityUnits: 0.5 } });
      recordResponse(u, "BatchGetItem", { ConsumedCapacity: [{ CapacityUnits: 1 }], Responses: { t: [{}, {}, {}] } });
      recordResponse(u, "TransactWriteItems", { ConsumedCapacity: [{ CapacityUnits: 4 }] });
      recordResponse(u, "UpdateItem", { ConsumedCapacity: { CapacityUnits: 1 } });
      assert.equal(u.metrics.DynamoReadUnits, 3.5);
      assert.equal(u.metrics.DynamoWriteUnits, 5);
      assert.equal(u.metrics.DynamoItemsRead, 11);
    });

    it("emits one EMF document naming only the metrics the invocation counted, under [Stage] by default", () => {
      const u = emptyUsage();
      u.metrics.Deliveries = 3;
      u.metrics.DynamoReadUnits = 1.5;
      const doc = emfDocument(
        "NS",
        { function: "chat", stage: "dev", requestId: "r", metrics: u.metrics, dynamoCalls: [{ table: "rooms", action: "dynamodb:Query" }] },
        1,
      );
      const aws = doc._aws as {
        Timestamp: number;
        CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string }> }>;
      };
      assert.equal(aws.CloudWatchMetrics[0].Namespace, "NS");
      assert.deepEqual(aws.CloudWatchMetrics[0].Dimensions, [["Stage"]]);
      assert.deepEqual(
        aws.CloudWatchMetrics[0].Metrics.map((m) => m.Name),
        ["Deliveries", "DynamoReadUnits"],
      );
      assert.equal(doc.Deliveries, 3);
      assert.equal(doc.DynamoReadUnits, 1.5);
      assert.equal("MessagesSent" in doc, false, "a zero counter is not in the line (no data point, no billed hour)");
      assert.equal(doc.Stage, "dev");
      assert.equal(doc.Function, "chat", "the function stays a plain field, for Logs Insights");
      assert.deepEqual(doc.dynamoCalls, ["rooms:Query"]);
    });

    it("adds the [Stage, Function] dimension set only when detailed monitoring asks for it", () => {
      const u = emptyUsage();
      u.metrics.MessagesSent = 1;
      const doc = emfDocument("NS", { function: "chat", stage: "dev", requestId: "r", metrics: u.metrics, dynamoCalls: [] }, 1, {
        perFunction: true,
      });
      const aws = doc._aws as { CloudWatchMetrics: Array<{ Dimensions: string[][]; Metrics: Array<{ Name: string }> }> };
      assert.deepEqual(aws.CloudWatchMetrics[0].Dimensions, [["Stage", "Function"], ["Stage"]]);
      assert.deepEqual(
        aws.CloudWatchMetrics[0].Metrics.map((m) => m.Name),
        ["MessagesSent"],
      );
    });

    it("never names a metric the function's route cannot produce, even if counted", () => {
      const u = emptyUsage();
      u.metrics.RejectedConnects = 1; // only the authorizer can reject a handshake
      u.metrics.DynamoWriteUnits = 1;
      const doc = emfDocument("NS", { function: "ping", stage: "dev", requestId: "r", metrics: u.metrics, dynamoCalls: [] }, 1);
      const aws = doc._aws as { CloudWatchMetrics: Array<{ Metrics: Array<{ Name: string }> }> };
      assert.deepEqual(
        aws.CloudWatchMetrics[0].Metrics.map((m) => m.Name),
        ["DynamoWriteUnits"],
      );
      assert.equal("RejectedConnects" in doc, false);
    });
  });

  describe("fan-out helpers", () => {
    it("recognizes SDK v3 errors by name or HTTP status", () => {
      assert.ok(isGone(Object.assign(new Error("x"), { name: "GoneException" })));
      assert.ok(isGone({ name: "Other", $metadata: { httpStatusCode: 410 } }));
      assert.ok(!isGone({ statusCode: 410 }), "an SDK v2 style statusCode is not how v3 reports it");
      assert.ok(isThrottled({ name: "LimitExceededException" }));
      assert.ok(isThrottled({ $metadata: { httpStatusCode: 429 } }));
    });
    it("tells a post that was never sent (safe to retry) from one that may have arrived", () => {
      const connectTimeout = Object.assign(
        new Error(
          "@smithy/node-http-handler - the request socket did not establish a connection with the server within the configured timeout of 1000 ms.",
        ),
        { name: "TimeoutError" },
      );
      assert.ok(isNotSent(connectTimeout));
      assert.ok(isNotSent(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" })));
      const requestTimeout = Object.assign(
        new Error("@smithy/node-http-handler - [ERROR] a request has exceeded the configured 5000 ms requestTimeout."),
        {
          name: "TimeoutError",
          code: "ETIMEDOUT",
        },
      );
      assert.ok(!isNotSent(requestTimeout), "sent, maybe delivered: not retried");
      assert.ok(!isNotSent(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })));
      assert.ok(!isNotSent({ name: "InternalServerErrorException", $metadata: { httpStatusCode: 500 } }));
    });
    it("backs off exponentially with jitter, capped", () => {
      for (let attempt = 0; attempt < 10; attempt++) {
        const d = backoffDelay(attempt, 25, 2000);
        const ceiling = Math.min(2000, 25 * 2 ** attempt);
        assert.ok(d >= ceiling / 2 - 1 && d <= ceiling, `${attempt}: ${d}`);
      }
    });
    it("mapPool never runs more than the limit at once and runs everything", async () => {
      let running = 0;
      let peak = 0;
      const done: number[] = [];
      await mapPool([...Array(20).keys()], 3, async (i) => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 1));
        running--;
        done.push(i);
      });
      assert.equal(peak, 3);
      assert.equal(done.length, 20);
    });
  });

  describe("batchDelete", () => {
    it("sends at most 25 deletes per BatchWriteItem and retries exactly the UnprocessedItems", async () => {
      const sent: Array<Record<string, Array<{ DeleteRequest: { Key: Record<string, string> } }>>> = [];
      let first = true;
      // A stand-in for the SDK client: DynamoDB Local never returns UnprocessedItems.
      const doc = {
        send: async (command: { input: { RequestItems: (typeof sent)[number] } }) => {
          sent.push(command.input.RequestItems);
          if (first) {
            first = false;
            return { UnprocessedItems: { t: command.input.RequestItems.t.slice(0, 2) } };
          }
          return { UnprocessedItems: {} };
        },
      } as unknown as DynamoDBDocumentClient;
      const requests = [...Array(60).keys()].map((i) => ({ table: "t", key: { id: String(i) } }));
      assert.equal(await batchDelete(doc, requests, 1), 0);
      assert.deepEqual(
        sent.map((r) => r.t.length),
        [25, 2, 25, 10],
      );
      assert.deepEqual(
        sent[1].t.map((r) => r.DeleteRequest.Key.id),
        ["0", "1"],
      );
    });

    it("gives up after 8 attempts and reports what is left (TTL removes it)", async () => {
      const doc = {
        send: async (command: { input: { RequestItems: Record<string, unknown[]> } }) => ({ UnprocessedItems: command.input.RequestItems }),
      } as unknown as DynamoDBDocumentClient;
      assert.equal(await batchDelete(doc, [{ table: "t", key: { id: "x" } }], 0), 1);
    });
  });

  describe("display names", () => {
    it("trims, strips control characters, keeps 64 characters (not UTF-16 units)", () => {
      assert.equal(cleanUsername("  Zoë\u0000 \u0085"), "Zoë");
      assert.equal(cleanUsername("\t\n"), undefined);
      assert.equal(cleanUsername(42), undefined);
      assert.equal(cleanUsername("😀".repeat(70)), "😀".repeat(64));
    });
  });

  describe("local secret and token script", () => {
    let dir: string;
    before(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "chat-secret-"));
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("creates a 32-byte hex secret with mode 0600 once, then reads it back", () => {
      const first = localSecret(path.join(dir, ".local"));
      assert.match(first, /^[0-9a-f]{64}$/);
      assert.equal(fs.statSync(path.join(dir, ".local", "secret")).mode & 0o777, 0o600);
      assert.equal(localSecret(path.join(dir, ".local")), first);
    });

    it("refuses a secret file that is not a hex secret", () => {
      fs.mkdirSync(path.join(dir, "bad"));
      fs.writeFileSync(path.join(dir, "bad", "secret"), "password\n");
      assert.throws(() => localSecret(path.join(dir, "bad")), /hex secret/);
    });

    it("signs HS256 tokens with iss chat-local, aud chat-api, 12 h by default", async () => {
      const secret = localSecret(path.join(dir, ".local"));
      const token = await signLocalToken({ userId: "u1", name: "U One", secret });
      const { payload, protectedHeader } = await jwtVerify(token, new TextEncoder().encode(secret), {
        issuer: "chat-local",
        audience: "chat-api",
      });
      assert.equal(protectedHeader.alg, "HS256");
      assert.equal(payload.sub, "u1");
      assert.equal(payload.name, "U One");
      assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 12 * 3600);
      await assert.rejects(() => signLocalToken({ userId: "bad#id", secret }), /invalid userId/);
    });

    it("parses `<userId> [--name <n>] [--ttl <s>]`", () => {
      assert.deepEqual(parseArgs(["alice", "--name", "Alice", "--ttl", "60"]), {
        userId: "alice",
        name: "Alice",
        ttlSeconds: 60,
        dir: undefined,
      });
      assert.throws(() => parseArgs([]), /usage/);
      assert.throws(() => parseArgs(["a", "--ttl", "-1"]), /--ttl/);
      assert.throws(() => parseArgs(["a", "--bogus"]), /unknown option/);
    });

    it("parses --rooms and --moderates into the access claims, and refuses an invalid pattern as a usage error (exit 2)", async () => {
      const args = parseArgs(["alice", "--rooms", "support, team-*", "--moderates", "team-*"]);
      assert.deepEqual([args.rooms, args.moderates], [["support", "team-*"], ["team-*"]]);
      assert.deepEqual(parseArgs(["alice", "--rooms", ""]).rooms, []);
      assert.equal(parseArgs(["alice"]).rooms, undefined);
      for (const bad of [
        ["--rooms", "a*b"],
        ["--rooms", ".."],
        ["--moderates", "tеam-*"],
        ["--rooms", Array.from({ length: 51 }, (_, i) => `r${i}`).join(",")],
      ]) {
        assert.throws(
          () => parseArgs(["alice", ...bad]),
          (e: unknown) => isUsageError(e) && e.message.startsWith(`${bad[0]}: `),
          bad.join(" "),
        );
      }
      const secret = localSecret(path.join(dir, ".local"));
      const token = await signLocalToken({ ...args, userId: "u1", secret });
      const { payload } = await jwtVerify(token, new TextEncoder().encode(secret));
      assert.deepEqual([payload.rooms, payload.moderates], [["support", "team-*"], ["team-*"]]);
      // The command exits 2 with the problem and the usage.
      const run = spawnSync(
        process.execPath,
        [
          "-r",
          "ts-node/register/transpile-only",
          path.join(__dirname, "..", "..", "scripts", "token.ts"),
          "alice",
          "--rooms",
          "a*b",
          "--dir",
          dir,
        ],
        { encoding: "utf8" },
      );
      assert.equal(run.status, 2, run.stderr);
      assert.match(run.stderr, /^token: --rooms: rooms holds an invalid pattern/);
      assert.equal(run.stdout, "");
    });
  });

  describe("npm run push's disconnect, ban and unban (scripts/push.ts)", () => {
    const now = Date.UTC(2030, 0, 15, 12, 0, 0);
    const usage = (argv: string[], message: RegExp) =>
      assert.throws(
        () => parsePushArgs(argv, now),
        (e: unknown) => isUsageError(e) && message.test(e.message),
        argv.join(" "),
      );

    it("parses disconnect and unban <userId> with the common options", () => {
      assert.deepEqual(parsePushArgs(["disconnect", "alice"], now), { command: "disconnect", userId: "alice", json: false });
      assert.deepEqual(parsePushArgs(["unban", "alice", "--outputs", "o.json", "--json"], now), {
        command: "unban",
        userId: "alice",
        outputs: "o.json",
        json: true,
      });
      assert.equal(parsePushArgs(["ban", "--help"], now), undefined);
    });

    it("parses ban's end from --minutes (from now) or --until (ISO 8601 with a zone)", () => {
      assert.deepEqual(parsePushArgs(["ban", "alice", "--minutes", "90"], now), {
        command: "ban",
        userId: "alice",
        until: new Date(now + 90 * 60_000),
        json: false,
      });
      const at = (until: string) => (parsePushArgs(["ban", "bob", "--until", until], now) as { until: Date }).until.toISOString();
      assert.equal(at("2030-01-31T18:00:00Z"), "2030-01-31T18:00:00.000Z");
      assert.equal(at("2030-01-31T18:00+02:00"), "2030-01-31T16:00:00.000Z");
      assert.equal(at("2030-02-01T00:30:15.5-01:30"), "2030-02-01T02:00:15.500Z");
      assert.equal(parseIsoTime("2030-02-31T00:00:00Z"), undefined, "a day February does not have is not rolled over into March");
    });

    it("refuses a missing or extra userId, options of another command, and a ban without exactly one valid end (exit 2)", () => {
      usage(["disconnect"], /disconnect needs a <userId>/);
      usage(["unban", "a", "b"], /unexpected argument b/);
      usage(["disconnect", "a", "--minutes", "5"], /unknown option --minutes/);
      usage(["disconnect", "a", "--data", "{}"], /unknown option --data/);
      usage(["ban", "a"], /exactly one of --until <time> or --minutes <n>/);
      usage(["ban", "a", "--minutes", "5", "--until", "2030-02-01T00:00:00Z"], /exactly one of/);
      usage(["ban", "a", "--minutes", "0"], /--minutes must be an integer from 1 to 527040/);
      usage(["ban", "a", "--minutes", "1.5"], /--minutes must be an integer/);
      usage(["ban", "a", "--minutes", String(366 * 1440 + 1)], /--minutes must be/);
      usage(["ban", "a", "--until", "2030-01-31"], /ISO 8601 time with a zone/);
      usage(["ban", "a", "--until", "2030-01-31T18:00:00"], /ISO 8601 time with a zone/);
      usage(["ban", "a", "--until", "2030-13-01T00:00:00Z"], /ISO 8601/);
      usage(["ban", "a", "--until", "2030-01-15T11:59:59Z"], /not in the future/);
      usage(["ban", "a", "--until", "2031-01-17T12:00:00Z"], /more than 366 days ahead/);
      usage(["ban", "a", "--minutes", "5", "--outputs", "o", "--stack", "dev"], /at most one of --outputs and --stack/);
    });

    it("finds the command after leading options; with --user or --room the words stay a message (today's lines); --help names every form", () => {
      assert.deepEqual(parsePushArgs(["--outputs", "o.json", "--json", "ban", "alice", "--minutes", "5"], now), {
        command: "ban",
        userId: "alice",
        until: new Date(now + 5 * 60_000),
        outputs: "o.json",
        json: true,
      });
      assert.deepEqual(parsePushArgs(["--outputs=o.json", "disconnect", "alice"], now), {
        command: "disconnect",
        userId: "alice",
        outputs: "o.json",
        json: false,
      });
      for (const argv of [
        ["--user", "alice", "ban", "is", "lifted"],
        ["ban", "is", "lifted", "--user", "alice"],
        ["--user=alice", "--", "ban", "is", "lifted"],
      ]) {
        assert.deepEqual(
          parsePushArgs(argv, now),
          { command: "send", target: { kind: "user", id: "alice" }, message: "ban is lifted", json: false },
          argv.join(" "),
        );
      }
      for (const form of [
        "disconnect <userId>",
        "ban <userId> (--until <time> | --minutes <n>)",
        "unban <userId>",
        "(--user <userId> | --room <roomId>)",
      ])
        assert.ok(PUSH_USAGE.includes(form), form);
    });
  });

  describe("npm run push's delete and kick (scripts/push.ts)", () => {
    const usage = (argv: string[], message: RegExp) =>
      assert.throws(
        () => parsePushArgs(argv),
        (e: unknown) => isUsageError(e) && message.test(e.message),
        argv.join(" "),
      );

    it("parses delete of a room message (<roomId> <messageId>) and of a private one (--between <a>,<b> <messageId>)", () => {
      assert.deepEqual(parsePushArgs(["delete", "general", "019abf3e-0000-7000-8000-000000000000"]), {
        command: "delete",
        target: { roomId: "general" },
        messageId: "019abf3e-0000-7000-8000-000000000000",
        json: false,
      });
      assert.deepEqual(parsePushArgs(["--outputs", "o.json", "delete", "--between", "alice,bob", "m-1", "--json"]), {
        command: "delete",
        target: { between: ["alice", "bob"] },
        messageId: "m-1",
        outputs: "o.json",
        json: true,
      });
      assert.deepEqual(parsePushArgs(["--between=alice,bob", "delete", "m-1"]), {
        command: "delete",
        target: { between: ["alice", "bob"] },
        messageId: "m-1",
        json: false,
      });
    });

    it("parses kick <roomId> <userId> with an optional --minutes (absent: the pusher's default)", () => {
      assert.deepEqual(parsePushArgs(["kick", "general", "mallory"]), {
        command: "kick",
        roomId: "general",
        userId: "mallory",
        json: false,
      });
      assert.deepEqual(parsePushArgs(["kick", "general", "mallory", "--minutes", "10080", "--stack", "prod"]), {
        command: "kick",
        roomId: "general",
        userId: "mallory",
        minutes: 10080,
        stack: "prod",
        json: false,
      });
      assert.equal(parsePushArgs(["kick", "--help"]), undefined);
      assert.equal(parsePushArgs(["delete", "-h"]), undefined);
    });

    it("refuses missing or extra words, a malformed --between, options of another command and minutes out of range (exit 2)", () => {
      usage(["delete", "general"], /delete needs a <roomId> and a <messageId>/);
      usage(["delete", "general", "m-1", "m-2"], /unexpected argument m-2/);
      usage(["delete", "--between", "alice,bob"], /delete needs a <messageId>/);
      usage(["delete", "--between", "alice,bob", "general", "m-1"], /unexpected argument m-1/);
      for (const between of ["alice", "alice,bob,carol", "alice,", ",bob"])
        usage(["delete", "--between", between, "m-1"], /--between takes two user ids separated by a comma/);
      usage(["delete", "general", "m-1", "--minutes", "5"], /unknown option --minutes/);
      usage(["kick", "general"], /kick needs a <roomId> and a <userId>/);
      usage(["kick", "general", "a", "b"], /unexpected argument b/);
      usage(["kick", "general", "a", "--between", "a,b"], /unknown option --between/);
      usage(["kick", "general", "a", "--until", "2030-01-01T00:00:00Z"], /unknown option --until/);
      for (const minutes of ["0", "10081", "1.5", "ten"])
        usage(["kick", "general", "a", "--minutes", minutes], /--minutes must be an integer from 1 to 10080/);
      usage(["ban", "a", "--between", "a,b"], /unknown option --between/);
    });

    it("keeps --user and --room lines messages (delete and kick are words then); --help names both forms", () => {
      assert.deepEqual(parsePushArgs(["--room", "general", "delete", "this", "later"]), {
        command: "send",
        target: { kind: "room", id: "general" },
        message: "delete this later",
        json: false,
      });
      assert.deepEqual(parsePushArgs(["kick", "off", "at", "nine", "--room", "general"]), {
        command: "send",
        target: { kind: "room", id: "general" },
        message: "kick off at nine",
        json: false,
      });
      for (const form of ["delete (<roomId> | --between <userA>,<userB>) <messageId>", "kick <roomId> <userId> [--minutes <n>]"])
        assert.ok(PUSH_USAGE.includes(form), form);
    });
  });
});
