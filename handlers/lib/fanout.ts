/**
 * Delivery of one frame to many connections through `@connections` (AWS-FACTS: Management API).
 *
 * - Bounded concurrency (FANOUT_CONCURRENCY) over one reused management client: a broadcast to N
 *   members spends N of the account's 10,000 req/s API Gateway throttle, so it must not burst
 *   without bound.
 * - GoneException (name, or HTTP 410) marks the TARGET connection stale, unless its item says the
 *   handshake may still be in progress: API Gateway answers 410 before a handshake completes too, and
 *   deleting such a connection would break a client that is about to be connected. Still inside
 *   `$connect` (`connecting`, younger than CONNECT_GRACE_MS): kept, not delivered. Its `$connect`
 *   finished less than OPEN_SETTLE_MS ago: posted again once OPEN_SETTLE_MS after it, then delivered
 *   or, on a second 410, removed. After the fan-out the stale ids are removed: BatchGetItem of their
 *   connection items (handshake state), then per id a DeleteItem of the connection item (its
 *   `rooms` set comes back) and per room one transaction that deletes the member item and
 *   uncounts it from the user's presence (data.ts removeMembershipOfGone): the users whose last
 *   connection in a room this removed come back as `departed`, for the caller to announce `left`
 *   exactly once (a `$disconnect` or another broadcast racing it finds the member item gone).
 * - LimitExceededException (429) is a rate limit or a full client buffer: retried with exponential
 *   backoff and equal jitter, never treated as gone. A post that was never sent (no connection could
 *   be made in time: isNotSent) is retried the same way; one that may have arrived is not.
 * - Anything else is logged and counted (FailedDeliveries); delivery to the others continues.
 */
import { ApiGatewayManagementApiClient, DeleteConnectionCommand, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import { BatchGetCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { TableName } from "../tables";
import { localCredentials, SDK_TIMEOUTS, traced, type SdkCredentials } from "./clients";
import type { HandlerConfig } from "./config";
import {
  backoffDelay,
  CONNECT_GRACE_MS,
  deleteConnection,
  OPEN_SETTLE_MS,
  removeMembershipOfGone,
  shardOfConnection,
  type TablesContext,
} from "./data";
import { configurationError } from "../env";
import { errorName, httpStatus } from "./errors";
import type { Logger } from "./logger";
import type { UsageScope } from "./usage";

export interface FanoutResult {
  /** Connections the frame reached. */
  readonly delivered: readonly string[];
  /** Connections that no longer exist (410); cleaned up before `deliver` returns. */
  readonly gone: readonly string[];
  /** 410 from connections still inside their `$connect`: not delivered (not open yet), not removed. */
  readonly connecting: readonly string[];
  /** Connections that could not be reached for another reason (after retries). */
  readonly failed: readonly string[];
  /** Users whose last connection in a room the clean-up of `gone` removed: the caller announces `left`. */
  readonly departed: readonly Departure[];
  /** Targets not posted to because `options.stop` said so (a delivery worker near its timeout). */
  readonly unattempted?: readonly string[];
}

/** A user no longer in a room because the clean-up removed their last connection there. */
export interface Departure {
  readonly roomId: string;
  readonly userId: string;
  readonly username: string;
}

export interface DeliverOptions {
  /** The room the targets were read from: its `c#<id>` items are removed for gone ids even if their connection item is already gone. */
  readonly roomId?: string;
  /** The members read with the room (who each gone id belongs to, without another read). */
  readonly members?: ReadonlyArray<{
    readonly connectionId: string;
    readonly userId: string;
    readonly username: string;
    /** The member's shard, as the room read returned it (data.ts readShard; absent: 0). */
    readonly shard?: number;
  }>;
  /**
   * removeGone only: the connections may still be open (their items expired with their token) and
   * are closed through `@connections` DELETE before their data is removed.
   */
  readonly close?: boolean;
  /**
   * Awaited before each post (a delivery worker's token bucket): the posts keep a sliding window of
   * `concurrency` in flight, each started when its token is there, rather than slices that wait for
   * their slowest post (bench/model: slices reached about 870 of 2,000 posts a second asked for).
   * May throw (the fan-out then rejects: a worker's test fault).
   */
  readonly pace?: () => Promise<void>;
  /** Checked before each post: once true, the remaining targets are left `unattempted`. */
  readonly stop?: () => boolean;
}

export interface Fanout {
  deliver(targets: readonly string[], payload: string, log: Logger, options?: DeliverOptions): Promise<FanoutResult>;
  /** Removes connections known to be gone (e.g. members past their expiry) as a 410 would. */
  removeGone(ids: readonly string[], log: Logger, options?: DeliverOptions): Promise<Departure[]>;
  /**
   * Closes a connection through `@connections` DELETE (API Gateway closes it with code 1000 and
   * runs its `$disconnect`), posting `farewell` to it first when given: "closed", "gone" when it
   * answered 410 (already closed, or its handshake not completed yet: the caller judges which),
   * "failed" when the close failed (logged).
   */
  close(connectionId: string, log: Logger, farewell?: string): Promise<CloseOutcome>;
}

/** What a `@connections` DELETE found: see Fanout.close. */
export type CloseOutcome = "closed" | "gone" | "failed";

export interface FanoutDeps {
  readonly management: ApiGatewayManagementApiClient;
  readonly doc: DynamoDBDocumentClient;
  readonly tables: Readonly<Partial<Record<TableName, string>>>;
  readonly concurrency: number;
  readonly usage: UsageScope;
  /** Retries after a LimitExceededException (at least 3). */
  readonly throttleRetries?: number;
  /** Base of the exponential backoff in ms. */
  readonly backoffBaseMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** Failed posts logged individually per fan-out; the rest are summarized in one line. */
export const MAX_FAILURE_LOGS = 10;

export function isGone(err: unknown): boolean {
  return errorName(err) === "GoneException" || httpStatus(err) === 410;
}

export function isThrottled(err: unknown): boolean {
  return errorName(err) === "LimitExceededException" || httpStatus(err) === 429;
}

/** Socket-level codes meaning the request never reached the service. */
const NOT_SENT_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN"]);

/**
 * The post failed before it was sent: no connection could be made (refused, DNS), or none within
 * the SDK's connectionTimeout (which includes waiting for a free socket of the pool). Retrying it
 * cannot deliver twice. A request timeout AFTER sending is not retried: the frame may have arrived.
 */
export function isNotSent(err: unknown): boolean {
  const code = typeof err === "object" && err !== null ? (err as { code?: unknown }).code : undefined;
  if (typeof code === "string" && NOT_SENT_CODES.has(code)) return true;
  // @smithy/node-http-handler's connectionTimeout error ("the request socket did not establish a
  // connection with the server within the configured timeout"; older releases: "without establishing").
  return (
    errorName(err) === "TimeoutError" && err instanceof Error && /(did not establish|without establishing) a connection/i.test(err.message)
  );
}

/** Runs `work` over `items` with at most `limit` in flight. */
export async function mapPool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++];
      try {
        await work(item);
      } catch (err) {
        // The pool has failed: the other lanes finish the item they hold and take no more.
        next = items.length;
        throw err;
      }
    }
  });
  await Promise.all(lanes);
}

export { backoffDelay };

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export function createFanout(deps: FanoutDeps): Fanout {
  const retries = Math.max(3, deps.throttleRetries ?? 4);
  const base = deps.backoffBaseMs ?? 25;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const connectionsTable = deps.tables.connections;
  const roomsTable = deps.tables.rooms;

  async function postOne(connectionId: string, data: Uint8Array): Promise<"delivered" | "gone" | unknown> {
    for (let attempt = 0; ; attempt++) {
      deps.usage.count("ManagementCalls");
      try {
        await deps.management.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: data }));
        return "delivered";
      } catch (err) {
        if (isGone(err)) return "gone";
        if ((isThrottled(err) || isNotSent(err)) && attempt < retries) {
          await sleep(backoffDelay(attempt, base));
          continue;
        }
        return err;
      }
    }
  }

  interface ItemView {
    readonly connecting: boolean;
    readonly connectedAt: number;
    readonly openedAt?: number;
  }

  async function readItems(ids: readonly string[], log: Logger): Promise<Map<string, ItemView>> {
    const items = new Map<string, ItemView>();
    if (!connectionsTable) return items;
    // BatchGetItem reads at most 100 keys per call.
    for (const part of chunk(ids, 100)) {
      let keys: Record<string, unknown>[] | undefined = part.map((connectionId) => ({ connectionId }));
      for (let attempt = 0; keys && keys.length > 0; attempt++) {
        const out = await deps.doc.send(
          new BatchGetCommand({
            RequestItems: {
              [connectionsTable]: {
                Keys: keys,
                ProjectionExpression: "connectionId, connecting, connectedAt, openedAt",
              },
            },
          }),
        );
        for (const item of out.Responses?.[connectionsTable] ?? []) {
          items.set(String(item.connectionId), {
            connecting: item.connecting === true,
            connectedAt: Number(item.connectedAt ?? 0),
            ...(item.openedAt !== undefined ? { openedAt: Number(item.openedAt) } : {}),
          });
        }
        keys = out.UnprocessedKeys?.[connectionsTable]?.Keys as Record<string, unknown>[] | undefined;
        if (keys && keys.length > 0) {
          if (attempt >= 5) {
            log.warn("stale connection lookup left unprocessed keys", { count: keys.length });
            break;
          }
          await sleep(backoffDelay(attempt, base));
        }
      }
    }
    return items;
  }

  const data: TablesContext = { doc: deps.doc, config: { tables: deps.tables, functionName: "fanout" } };

  /** Fanout.close: the farewell post (if any), then `@connections` DELETE, retried like a post. */
  async function close(connectionId: string, log: Logger, farewell?: string): Promise<CloseOutcome> {
    if (farewell !== undefined) {
      const posted = await postOne(connectionId, new TextEncoder().encode(farewell));
      if (posted === "gone") return "gone";
      if (posted !== "delivered") log.warn("farewell post failed", { connectionId, error: errorName(posted) });
    }
    for (let attempt = 0; ; attempt++) {
      deps.usage.count("ManagementCalls");
      try {
        await deps.management.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
        return "closed";
      } catch (err) {
        if (isGone(err)) return "gone";
        if ((isThrottled(err) || isNotSent(err)) && attempt < retries) {
          await sleep(backoffDelay(attempt, base));
          continue;
        }
        log.warn("closing a connection failed", { connectionId, error: errorName(err) });
        return "failed";
      }
    }
  }

  /**
   * Removes gone connections (closing them first with `options.close`): the connection item
   * (DeleteItem, ALL_OLD: its rooms and user), then each membership with its presence bookkeeping
   * (one transaction per room). Returns the users whose last connection in a room was among them.
   */
  async function removeGone(ids: readonly string[], log: Logger, options: DeliverOptions = {}): Promise<Departure[]> {
    if (ids.length === 0 || !connectionsTable || !roomsTable) return [];
    const departed: Departure[] = [];
    const nowMs = Date.now();
    await mapPool(ids, Math.min(deps.concurrency, 8), async (id) => {
      if (options.close) await close(id, log);
      const old = await deleteConnection(data, id);
      const read = options.members?.find((m) => m.connectionId === id);
      const user: { userId: string; username: string } | undefined = old ? { userId: old.userId, username: old.username } : read;
      // Neither its item nor the room read says who it was: its item was deleted by a `$disconnect`
      // (or another clean-up) that removes its memberships from that item's rooms set itself.
      if (!user) return;
      const rooms = new Set([...(old?.rooms ?? []), ...(options.roomId ? [options.roomId] : [])]);
      for (const roomId of rooms) {
        // The shard its item records for the room; a room its item no longer lists: as the room read found it.
        const shard = old?.rooms?.has(roomId) ? shardOfConnection(old, roomId) : (read?.shard ?? 0);
        const out = await removeMembershipOfGone(
          data,
          roomId,
          { connectionId: id, userId: user.userId, username: user.username, shard },
          nowMs,
        );
        if (out.lastOfUser) departed.push({ roomId, userId: user.userId, username: user.username });
      }
    });
    deps.usage.count("StaleConnectionsCleaned", ids.length);
    log.info("stale connections removed", { count: ids.length, connectionIds: ids });
    return departed;
  }

  async function settleGone(
    gone: readonly string[],
    goneAt: ReadonlyMap<string, number>,
    data: Uint8Array,
    log: Logger,
    options: DeliverOptions,
  ): Promise<{
    stale: string[];
    connecting: string[];
    delivered: string[];
    failed: Array<{ id: string; err: unknown }>;
    departed: Departure[];
  }> {
    const items = await readItems(gone, log);
    const nowMs = Date.now();
    const stale: string[] = [];
    const connecting: string[] = [];
    const opening: string[] = [];
    let retryAt = 0;
    for (const id of gone) {
      const item = items.get(id);
      // Judged by when the 410 came back, not by when this read answered: on a loaded instance the
      // read can come more than OPEN_SETTLE_MS after a 410 that the handshake explained.
      const at = goneAt.get(id) ?? nowMs;
      if (item?.connecting && nowMs - item.connectedAt < CONNECT_GRACE_MS) connecting.push(id);
      else if (item?.openedAt !== undefined && at - item.openedAt < OPEN_SETTLE_MS) {
        opening.push(id);
        retryAt = Math.max(retryAt, item.openedAt + OPEN_SETTLE_MS);
      } else stale.push(id);
    }
    if (connecting.length > 0)
      log.info("410 from connections still in $connect; kept", { count: connecting.length, connectionIds: connecting });
    const delivered: string[] = [];
    const failed: Array<{ id: string; err: unknown }> = [];
    if (opening.length > 0) {
      await sleep(Math.max(0, retryAt - Date.now()));
      await mapPool(opening, deps.concurrency, async (id) => {
        const outcome = await postOne(id, data);
        if (outcome === "delivered") delivered.push(id);
        else if (outcome === "gone") stale.push(id);
        else failed.push({ id, err: outcome });
      });
    }
    const departed = await removeGone(stale, log, options);
    return { stale, connecting, delivered, failed, departed };
  }

  async function deliver(targets: readonly string[], payload: string, log: Logger, options: DeliverOptions = {}): Promise<FanoutResult> {
    const unique = [...new Set(targets)];
    const bytes = new TextEncoder().encode(payload);
    const delivered: string[] = [];
    let gone: string[] = [];
    const goneAt = new Map<string, number>();
    let connecting: string[] = [];
    let departed: Departure[] = [];
    const failed: string[] = [];
    const fail = (connectionId: string, err: unknown) => {
      failed.push(connectionId);
      // Log the first few failures in full; a systematic failure (e.g. 403 from a wrong endpoint)
      // in a large room must not write thousands of lines (CloudWatch Logs bills per byte).
      if (failed.length <= MAX_FAILURE_LOGS) log.error("delivery failed", { targetConnectionId: connectionId }, err);
    };
    const unattempted: string[] = [];
    await mapPool(unique, deps.concurrency, async (connectionId) => {
      if (options.stop?.()) {
        unattempted.push(connectionId);
        return;
      }
      await options.pace?.();
      // Checked again after the wait for a token, which can be long at a low budget.
      if (options.stop?.()) {
        unattempted.push(connectionId);
        return;
      }
      const outcome = await postOne(connectionId, bytes);
      if (outcome === "delivered") delivered.push(connectionId);
      else if (outcome === "gone") {
        gone.push(connectionId);
        goneAt.set(connectionId, Date.now());
      } else fail(connectionId, outcome);
    });
    if (gone.length > 0) {
      try {
        const settled = await settleGone(gone, goneAt, bytes, log, options);
        delivered.push(...settled.delivered);
        for (const f of settled.failed) fail(f.id, f.err);
        gone = settled.stale;
        connecting = settled.connecting;
        departed = settled.departed;
      } catch (err) {
        // Clean-up is an optimisation (TTL and read-time filtering cover it): never fail the route for it.
        log.error("stale connection clean-up failed", { count: gone.length }, err);
      }
    }
    if (failed.length > MAX_FAILURE_LOGS) log.error("more deliveries failed", { count: failed.length - MAX_FAILURE_LOGS });
    deps.usage.count("Deliveries", delivered.length);
    deps.usage.count("FailedDeliveries", failed.length);
    return { delivered, gone, connecting, failed, departed, ...(unattempted.length > 0 ? { unattempted } : {}) };
  }

  return { deliver, removeGone, close };
}

/**
 * One management client for every post. maxAttempts 1: the fan-out retries LimitExceeded itself
 * (with backoff and equal jitter) so that every attempt is counted and a 410 is never retried.
 */
export function createManagementClient(
  config: HandlerConfig,
  credentials: SdkCredentials = localCredentials(config),
): ApiGatewayManagementApiClient {
  if (!config.managementEndpoint) throw configurationError("MANAGEMENT_ENDPOINT is not configured");
  return traced(
    config,
    new ApiGatewayManagementApiClient({
      region: config.region,
      endpoint: config.managementEndpoint,
      maxAttempts: 1,
      requestHandler: { ...SDK_TIMEOUTS },
      ...(credentials ? { credentials } : {}),
    }),
  );
}

/**
 * The fan-out of a function that posts to `@connections` (its factory passes this to
 * createRuntime). Functions that never post do not reference it, so their bundle never loads the
 * management client.
 */
export function managementFanout(rt: {
  readonly config: HandlerConfig;
  readonly doc: DynamoDBDocumentClient;
  readonly usage: UsageScope;
}): Fanout {
  return createFanout({
    management: createManagementClient(rt.config),
    doc: rt.doc,
    tables: rt.config.tables,
    concurrency: rt.config.fanoutConcurrency,
    usage: rt.usage,
  });
}
