/**
 * Small statistics helpers for the benchmarks. Percentiles use the nearest-rank method (the value
 * at rank ceil(p/100 * n) of the sorted sample), so a reported p99 is always a latency that some
 * member really observed, never an interpolation between two.
 */

export interface Summary {
  readonly count: number;
  readonly min: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** Nearest-rank percentile of an ascending-sorted sample; NaN for an empty sample. */
export function percentileSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const sum = sorted.reduce((s, v) => s + v, 0);
  return {
    count: sorted.length,
    min: sorted.length ? sorted[0] : Number.NaN,
    p50: percentileSorted(sorted, 50),
    p95: percentileSorted(sorted, 95),
    p99: percentileSorted(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : Number.NaN,
    mean: sorted.length ? sum / sorted.length : Number.NaN,
  };
}

/** Median (nearest-rank p50). */
export function median(values: readonly number[]): number {
  return summarize(values).p50;
}

/** Rounds for display and for results.json (keeps the files readable and diffs small). */
export function round(value: number, digits = 1): number {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/**
 * Least-squares line y = intercept + slope * x through the points. With one point the slope is 0.
 * Used by the cost model to turn per-broadcast figures measured at a few room sizes into a
 * per-member rate (every figure here is linear in the number of members by construction).
 */
export function linearFit(points: ReadonlyArray<{ readonly x: number; readonly y: number }>): { intercept: number; slope: number } {
  if (points.length === 0) throw new RangeError("linearFit needs at least one point");
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (const p of points) {
    sxx += (p.x - mx) ** 2;
    sxy += (p.x - mx) * (p.y - my);
  }
  const slope = sxx === 0 ? 0 : sxy / sxx;
  return { intercept: my - slope * mx, slope };
}
