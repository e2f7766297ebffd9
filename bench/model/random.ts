/**
 * The model's randomness: a seeded PRNG (mulberry32, 32-bit state) so that a run is a pure function
 * of its parameters and seed, and latency distributions described by their median and p99.
 */

export type Random = () => number;

/** mulberry32: a small, fast, well-mixed 32-bit generator; uniform in [0, 1). */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A latency in ms, lognormal with the given median and 99th percentile (p99 <= median: a constant,
 * as the local gateway's fixed managementLatencyMs is).
 */
export interface LatencyDist {
  readonly medianMs: number;
  readonly p99Ms: number;
}

/** z of the standard normal's 99th percentile. */
const Z99 = 2.3263478740408408;

export function constant(ms: number): LatencyDist {
  return { medianMs: ms, p99Ms: ms };
}

/** The lognormal's sigma for a median and p99: ln(p99 / median) / z99. */
export function sigmaOf(d: LatencyDist): number {
  return d.p99Ms > d.medianMs && d.medianMs > 0 ? Math.log(d.p99Ms / d.medianMs) / Z99 : 0;
}

/** The distribution's mean: median * exp(sigma^2 / 2). */
export function meanOf(d: LatencyDist): number {
  const s = sigmaOf(d);
  return d.medianMs * Math.exp((s * s) / 2);
}

/** A sampler of `d` drawing from `rng` (Box-Muller; one uniform pair per sample keeps runs reproducible). */
export function sampler(d: LatencyDist, rng: Random): () => number {
  const s = sigmaOf(d);
  if (s === 0) return () => d.medianMs;
  const mu = Math.log(d.medianMs);
  return () => {
    const u1 = 1 - rng();
    const u2 = rng();
    const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    return Math.exp(mu + s * z);
  };
}
