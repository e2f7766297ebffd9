/** Turns the runtime's per-invocation stats (EMF records, durations, log bytes) into OperationUsage figures. */
import { METRICS } from "../../handlers/metrics";
import type { OperationUsage } from "./results";
import type { RuntimeProcess } from "./runtimeProcess";
import type { HostStats } from "./runtimeProtocol";

/** Polls the runtime until `fn` has emitted at least `count` EMF lines (they are written when an invocation ends). */
export async function waitForEmf(rt: RuntimeProcess, fn: string, count: number, timeoutMs = 30_000): Promise<HostStats> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stats = await rt.stats();
    if (stats.emf.filter((r) => r.function === fn).length >= count) return stats;
    if (Date.now() > deadline)
      throw new Error(`${fn} emitted ${stats.emf.filter((r) => r.function === fn).length} of ${count} EMF lines within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Mean usage per invocation of `fn` over what the stats hold (since the last reset). */
export function usageOf(stats: HostStats, fn: string): OperationUsage {
  const records = stats.emf.filter((r) => r.function === fn);
  const n = records.length;
  if (n === 0) throw new Error(`no EMF record for ${fn}`);
  const sum = (metric: string) => records.reduce((s, r) => s + (r.values[metric] ?? 0), 0) / n;
  const durations = stats.functions[fn]?.durationsMs ?? [];
  const invocations = Math.max(1, stats.functions[fn]?.invocations ?? n);
  return {
    readUnits: sum(METRICS.dynamoReadUnits),
    writeUnits: sum(METRICS.dynamoWriteUnits),
    itemsRead: sum(METRICS.dynamoItemsRead),
    managementCalls: sum(METRICS.managementCalls),
    durationMs: durations.length ? durations.reduce((s, d) => s + d, 0) / durations.length : Number.NaN,
    logBytes: (stats.logBytes[fn] ?? 0) / invocations,
  };
}

/** Element-wise median of several usage samples (robust to one slow invocation). */
export function medianUsage(samples: readonly OperationUsage[]): OperationUsage {
  if (samples.length === 0) throw new Error("medianUsage needs samples");
  const med = (k: keyof OperationUsage) => {
    const v = samples.map((s) => s[k]).sort((a, b) => a - b);
    return v[Math.floor((v.length - 1) / 2)];
  };
  return {
    readUnits: med("readUnits"),
    writeUnits: med("writeUnits"),
    itemsRead: med("itemsRead"),
    managementCalls: med("managementCalls"),
    durationMs: med("durationMs"),
    logBytes: med("logBytes"),
  };
}
