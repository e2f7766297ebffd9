/**
 * Per-invocation accounting: the custom metrics of handlers/metrics.ts plus every DynamoDB call
 * made, as (table, action) pairs. A DynamoDB SDK middleware (`attachUsageMiddleware`) asks for
 * ReturnConsumedCapacity "TOTAL" on every call that accepts it and adds the read/write units
 * DynamoDB reports and the items it evaluated (ScannedCount for Query/Scan, one per item returned
 * by GetItem/BatchGetItem), so benchmarks see what each route really costs.
 *
 * The current invocation's record lives in an AsyncLocalStorage created by the factory, so
 * concurrent invocations in one process (the local runtime, tests) never mix their counts.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { MetricName } from "../metrics";
import type { DynamoAction } from "../routes";
import type { TableName } from "../tables";

export interface DynamoCall {
  /** Logical table name when known (connections, rooms, messages), else the physical name. */
  readonly table: TableName | string;
  readonly action: DynamoAction | string;
  readonly index?: string;
}

export interface InvocationUsage {
  readonly metrics: Record<MetricName, number>;
  readonly dynamoCalls: DynamoCall[];
}

export function emptyUsage(): InvocationUsage {
  return {
    metrics: {
      MessagesSent: 0,
      Deliveries: 0,
      FailedDeliveries: 0,
      StaleConnectionsCleaned: 0,
      RateLimited: 0,
      RejectedConnects: 0,
      ClientErrors: 0,
      DynamoReadUnits: 0,
      DynamoWriteUnits: 0,
      DynamoItemsRead: 0,
      ManagementCalls: 0,
      DeliveryJobAge: 0,
    },
    dynamoCalls: [],
  };
}

export interface UsageScope {
  run<T>(usage: InvocationUsage, fn: () => Promise<T>): Promise<T>;
  /** The running invocation's record; a throwaway one outside of `run` (e.g. cold-start calls). */
  current(): InvocationUsage;
  count(metric: MetricName, n?: number): void;
}

export function createUsageScope(): UsageScope {
  const storage = new AsyncLocalStorage<InvocationUsage>();
  const current = () => storage.getStore() ?? emptyUsage();
  return {
    run: (usage, fn) => storage.run(usage, fn),
    current,
    count: (metric, n = 1) => {
      current().metrics[metric] += n;
    },
  };
}

/** Operations whose input accepts ReturnConsumedCapacity (DynamoDB API reference). */
function acceptsConsumedCapacity(action: string): boolean {
  return [
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactGetItems",
    "TransactWriteItems",
  ].includes(action);
}

function isReadAction(action: string): boolean {
  return ["GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"].includes(action);
}

interface CapacityLike {
  readonly CapacityUnits?: number;
  readonly ReadCapacityUnits?: number;
  readonly WriteCapacityUnits?: number;
}

/** Physical table name -> logical name, for recording calls the way routes.ts declares them. */
function logicalName(tables: Readonly<Partial<Record<TableName, string>>>, physical: string): string {
  for (const [logical, name] of Object.entries(tables)) if (name === physical) return logical;
  return physical;
}

/** The (table, action) pairs one call needs IAM permission for. TransactWriteItems needs its parts' actions. */
export function callsOf(
  action: string,
  input: Record<string, unknown>,
  tables: Readonly<Partial<Record<TableName, string>>>,
): DynamoCall[] {
  const name = (t: unknown) => logicalName(tables, String(t));
  if (action === "BatchGetItem" || action === "BatchWriteItem") {
    const items = (input.RequestItems ?? {}) as Record<string, unknown>;
    return Object.keys(items).map((t) => ({ table: name(t), action: `dynamodb:${action}` }));
  }
  if (action === "TransactWriteItems" || action === "TransactGetItems") {
    const parts = (input.TransactItems ?? []) as Array<Record<string, { TableName?: string } | undefined>>;
    const partAction: Record<string, string> = {
      Put: "PutItem",
      Update: "UpdateItem",
      Delete: "DeleteItem",
      ConditionCheck: "ConditionCheckItem",
      Get: "GetItem",
    };
    const out: DynamoCall[] = [];
    for (const part of parts) {
      for (const [kind, body] of Object.entries(part)) {
        if (body && partAction[kind]) out.push({ table: name(body.TableName), action: `dynamodb:${partAction[kind]}` });
      }
    }
    return out;
  }
  const index = typeof input.IndexName === "string" ? input.IndexName : undefined;
  return [{ table: name(input.TableName), action: `dynamodb:${action}`, ...(index ? { index } : {}) }];
}

/** What one response adds to the invocation's counters. */
export function recordResponse(usage: InvocationUsage, action: string, output: Record<string, unknown>): void {
  const capacity = output.ConsumedCapacity as CapacityLike | CapacityLike[] | undefined;
  const list = capacity === undefined ? [] : Array.isArray(capacity) ? capacity : [capacity];
  for (const c of list) {
    const units = c.CapacityUnits ?? (c.ReadCapacityUnits ?? 0) + (c.WriteCapacityUnits ?? 0);
    if (isReadAction(action)) usage.metrics.DynamoReadUnits += units;
    else usage.metrics.DynamoWriteUnits += units;
  }
  if (action === "Query" || action === "Scan") usage.metrics.DynamoItemsRead += Number(output.ScannedCount ?? 0);
  else if (action === "GetItem") usage.metrics.DynamoItemsRead += output.Item ? 1 : 0;
  else if (action === "BatchGetItem" || action === "TransactGetItems") {
    const responses = output.Responses;
    if (Array.isArray(responses)) usage.metrics.DynamoItemsRead += responses.filter((r) => r && (r as { Item?: unknown }).Item).length;
    else if (responses && typeof responses === "object") {
      for (const items of Object.values(responses as Record<string, unknown[]>)) usage.metrics.DynamoItemsRead += items.length;
    }
  }
}

interface MiddlewareStackLike {
  add(middleware: unknown, options: { step: "initialize"; name: string; override?: boolean }): void;
}

/**
 * Adds the accounting middleware to a DynamoDB client (the DynamoDBDocumentClient shares its
 * client's stack, and the document commands run it before marshalling, with the command name of
 * the underlying low-level command).
 */
export function attachUsageMiddleware(
  client: { middlewareStack: MiddlewareStackLike },
  scope: UsageScope,
  tables: Readonly<Partial<Record<TableName, string>>>,
): void {
  type Next = (args: { input: Record<string, unknown> }) => Promise<{ output: Record<string, unknown> }>;
  const middleware = (next: Next, context: { commandName?: string }) => async (args: { input: Record<string, unknown> }) => {
    const action = (context.commandName ?? "Unknown").replace(/Command$/, "");
    const input =
      acceptsConsumedCapacity(action) && args.input.ReturnConsumedCapacity === undefined
        ? { ...args.input, ReturnConsumedCapacity: "TOTAL" }
        : args.input;
    const usage = scope.current();
    usage.dynamoCalls.push(...callsOf(action, input, tables));
    const result = await next({ ...args, input });
    recordResponse(usage, action, result.output);
    return result;
  };
  client.middlewareStack.add(middleware, { step: "initialize", name: "chatUsageAccounting", override: true });
}
