/**
 * Bans and backend disconnects (issue 16): shared by `$connect` (the check) and push/index.ts (ban,
 * unban, disconnect), so both read and write the same item.
 *
 * A ban is one item in the connections table, key `connectionId = "ban#<userId>"` (API Gateway
 * connection ids never contain `#`; it has no `userId` attribute, so the byUser index never sees
 * it), with `until` (epoch ms) and `expiresAt` (the TTL, `until` in seconds rounded up). TTL deletes
 * lazily, so a reader compares `until` with the clock itself.
 *
 * Why no banned connection stays open (docs/architecture.md, "Races"): a ban is written BEFORE the
 * user's connections are looked up and closed, and `$connect` checks it (strongly consistent)
 * AFTER writing its connection item. Either the check sees the ban (refused, 403), or the
 * connection item was written before the ban and so before the lookup, which finds it; a
 * connection found while its handshake is still running (a DELETE answers 410 then, as a post does)
 * is waited for rather than counted as gone (closeUserConnections).
 */
import { BatchGetCommand, DeleteCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import {
  CONNECT_GRACE_MS,
  type DataContext,
  epochSeconds,
  liveConnectionsOfUser,
  OPEN_SETTLE_MS,
  readConnectionsItem,
  sleep,
  tableName,
  type TablesContext,
} from "./data";
import { mapPool, type Fanout } from "./fanout";
import type { Logger } from "./logger";
import { announceDepartures } from "./presence";

/** Key of a user's ban item in the connections table. */
export function banKey(userId: string): string {
  return `ban#${userId}`;
}

/** The longest ban a backend can set (push/index.ts refuses a later `until`): a year, leap day included. */
export const MAX_BAN_DAYS = 366;

/**
 * How long after a first close pass a ban looks again (push/index.ts banUser): changes reach a
 * global secondary index "within a fraction of a second" under normal conditions (DynamoDB
 * developer guide, "Global secondary indexes"), so a connection the first byUser Query was too
 * early to see is found by the second.
 */
export const INDEX_SETTLE_MS = 1_000;

/** Closes of one user's connections in flight at once (each is a DELETE, maybe a read and a wait). */
const CLOSE_CONCURRENCY = 8;

/** First wait before asking again about a connection whose handshake is running; doubles up to POLL_CAP_MS. */
const POLL_BASE_MS = 50;
const POLL_CAP_MS = 1_000;

/** Writes (or replaces) the user's ban until `untilMs` (epoch ms). One PutItem. */
export async function banUser(ctx: TablesContext, userId: string, untilMs: number, nowMs = Date.now()): Promise<void> {
  await ctx.doc.send(
    new PutCommand({
      TableName: tableName(ctx, "connections"),
      Item: { connectionId: banKey(userId), until: untilMs, bannedAt: nowMs, expiresAt: Math.ceil(untilMs / 1000) },
    }),
  );
}

/** Deletes the user's ban. Returns whether a ban in force was removed (an expired one TTL had not deleted yet does not count). */
export async function unbanUser(ctx: TablesContext, userId: string, nowMs = Date.now()): Promise<boolean> {
  const out = await ctx.doc.send(
    new DeleteCommand({ TableName: tableName(ctx, "connections"), Key: { connectionId: banKey(userId) }, ReturnValues: "ALL_OLD" }),
  );
  return Number(out.Attributes?.until ?? 0) > nowMs;
}

/**
 * The end of the user's ban in force (epoch ms), or undefined. Strongly consistent: `$connect` must
 * see a ban written a moment ago (1 RCU, item or not; data.ts readConnectionsItem, a BatchGetItem of
 * one key, so `$connect` needs no GetItem grant).
 */
export async function activeBan(ctx: TablesContext, userId: string, nowMs: number): Promise<number | undefined> {
  const until = Number((await readConnectionsItem(ctx, banKey(userId)))?.until ?? 0);
  return until > nowMs ? until : undefined;
}

export interface CloseUserResult {
  /** Live connections of the user the byUser index listed. */
  readonly targets: number;
  /** Connections closed through `@connections` DELETE (API Gateway closes them with 1000 and runs their `$disconnect`). */
  readonly closed: number;
  /** Connections that no longer existed: closed meanwhile, refused at the handshake, or stale items (removed with their memberships). */
  readonly gone: number;
  /** Connections that could not be closed after retries (logged). */
  readonly failed: number;
}

type ItemState = { readonly connecting: boolean; readonly connectedAt: number; readonly openedAt?: number } | undefined;

/**
 * A connection item's handshake state, read strongly consistently (a `$connect` that just refused
 * or finished must be seen). BatchGetItem of one key, not GetItem: the fan-out's clean-up already
 * needs BatchGetItem on the connections table, so closing adds no permission.
 */
async function readState(ctx: TablesContext, connectionId: string): Promise<ItemState> {
  const table = tableName(ctx, "connections");
  for (let attempt = 0; ; attempt++) {
    const out = await ctx.doc.send(
      new BatchGetCommand({
        RequestItems: {
          [table]: {
            Keys: [{ connectionId }],
            ConsistentRead: true,
            ProjectionExpression: "connectionId, connecting, connectedAt, openedAt",
          },
        },
      }),
    );
    const item = out.Responses?.[table]?.[0];
    if (item) {
      return {
        connecting: item.connecting === true,
        connectedAt: Number(item.connectedAt ?? 0),
        ...(item.openedAt !== undefined ? { openedAt: Number(item.openedAt) } : {}),
      };
    }
    // An unprocessed key (throttling) is not an answer: ask again, a few times.
    if ((out.UnprocessedKeys?.[table]?.Keys?.length ?? 0) === 0 || attempt >= 4) return undefined;
    await sleep(POLL_BASE_MS * 2 ** attempt);
  }
}

/**
 * Closes every live connection of a user: the byUser index's Query, then per connection
 * `@connections` DELETE through the fan-out (their `$disconnect` removes their data and announces
 * `left`). A 410 is judged as the fan-out judges a post's (fanout.ts): the connection item is read;
 * no item: gone; a handshake still running (`connecting`, younger than CONNECT_GRACE_MS) or
 * completed less than OPEN_SETTLE_MS ago: asked again until it has either been refused (its item
 * deleted) or opened, then closed; otherwise a stale item, removed with its memberships (`left`
 * announced where due) as a broadcast removes one.
 *
 * The index is eventually consistent (a GSI cannot be read consistently): a connection whose item
 * was written a moment before the Query may be missing from it (docs/architecture.md, "Races").
 * `skip`: connections already handled by an earlier pass, not counted again.
 */
export async function closeUserConnections(
  ctx: DataContext,
  fanout: Fanout,
  log: Logger,
  userId: string,
  skip: ReadonlySet<string> = new Set(),
): Promise<CloseUserResult & { readonly ids: readonly string[] }> {
  const ids = (await liveConnectionsOfUser(ctx, userId, epochSeconds(Date.now()))).filter((id) => !skip.has(id));
  let closed = 0;
  let gone = 0;
  let failed = 0;
  const userLog = log.child({ userId });
  await mapPool(ids, CLOSE_CONCURRENCY, async (id) => {
    const outcome = await closeOne(ctx, fanout, userLog, id);
    if (outcome === "closed") closed++;
    else if (outcome === "gone") gone++;
    else failed++;
  });
  if (ids.length > 0) userLog.info("user's connections closed", { targets: ids.length, closed, gone, failed });
  return { ids, targets: ids.length, closed, gone, failed };
}

async function closeOne(ctx: DataContext, fanout: Fanout, log: Logger, connectionId: string): Promise<"closed" | "gone" | "failed"> {
  // Bounded by the handshake's own bounds: a `connecting` item is waited for at most CONNECT_GRACE_MS
  // after it was written, an opened one OPEN_SETTLE_MS; this cap only guards against a clock gone wrong.
  const deadline = Date.now() + CONNECT_GRACE_MS + OPEN_SETTLE_MS;
  for (let attempt = 0; ; attempt++) {
    const outcome = await fanout.close(connectionId, log);
    if (outcome !== "gone") return outcome;
    const state = await readState(ctx, connectionId);
    if (!state) return "gone";
    const nowMs = Date.now();
    let waitMs: number | undefined;
    if (state.connecting && nowMs - state.connectedAt < CONNECT_GRACE_MS) waitMs = Math.min(POLL_CAP_MS, POLL_BASE_MS * 2 ** attempt);
    else if (state.openedAt !== undefined && nowMs - state.openedAt < OPEN_SETTLE_MS) waitMs = state.openedAt + OPEN_SETTLE_MS - nowMs;
    if (waitMs === undefined || nowMs + waitMs > deadline) {
      if (waitMs !== undefined) {
        log.warn("a connection's handshake did not settle; not closed", { connectionId });
        return "failed";
      }
      // A stale item (its socket is gone and no `$disconnect` removed it): removed as a broadcast removes one.
      const departed = await fanout.removeGone([connectionId], log);
      await announceDepartures(ctx, fanout, log, departed);
      return "gone";
    }
    await sleep(waitMs);
  }
}
