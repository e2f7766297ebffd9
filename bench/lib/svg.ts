/**
 * A hand-written SVG line chart (no chart library): logarithmic or linear axes, one polyline per
 * series, a legend, and an optional horizontal target line. Enough for "delivery latency against
 * room size" in bench/REPORT.md, rendered inline by GitHub and any browser.
 */

export interface ChartPoint {
  readonly x: number;
  readonly y: number;
}

export interface ChartSeries {
  readonly name: string;
  readonly points: readonly ChartPoint[];
  readonly color: string;
  readonly dashed?: boolean;
}

export interface ChartOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly ChartSeries[];
  readonly xLog?: boolean;
  readonly yLog?: boolean;
  /** A horizontal reference line (e.g. the 1 s target). */
  readonly target?: { readonly y: number; readonly label: string };
  readonly width?: number;
  readonly height?: number;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** Tick values: powers of ten (and 2x, 5x when the range is short) for log axes, 5 steps otherwise. */
export function ticks(min: number, max: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    const lo = Math.floor(Math.log10(min));
    const hi = Math.ceil(Math.log10(max));
    const fine = hi - lo <= 2;
    for (let e = lo; e <= hi; e++) {
      for (const m of fine ? [1, 2, 5] : [1]) {
        const v = m * 10 ** e;
        if (v >= min * 0.999 && v <= max * 1.001) out.push(v);
      }
    }
    return out;
  }
  const step = niceStep((max - min) / 5);
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function niceStep(raw: number): number {
  if (!(raw > 0)) return 1;
  const e = 10 ** Math.floor(Math.log10(raw));
  const f = raw / e;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * e;
}

function formatTick(v: number): string {
  if (v >= 1000 && v % 1000 === 0) return `${v / 1000}k`;
  return Number(v.toPrecision(3)).toString();
}

export function lineChart(options: ChartOptions): string {
  const width = options.width ?? 720;
  const height = options.height ?? 420;
  const m = { left: 70, right: 200, top: 40, bottom: 55 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const all = options.series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const ys = all.map((p) => p.y).concat(options.target ? [options.target.y] : []);
  const xs = all.map((p) => p.x);
  if (xs.length === 0) throw new RangeError("lineChart needs at least one finite point");
  const xLog = options.xLog ?? false;
  const yLog = options.yLog ?? false;
  if ((xLog && xs.some((x) => x <= 0)) || (yLog && ys.some((y) => y <= 0))) throw new RangeError("log axes need positive values");
  let xMin = Math.min(...xs);
  let xMax = Math.max(...xs);
  let yMin = yLog ? Math.min(...ys) : 0;
  let yMax = Math.max(...ys);
  if (xLog) {
    xMin = 10 ** Math.floor(Math.log10(xMin));
    xMax = 10 ** Math.ceil(Math.log10(xMax));
  }
  if (yLog) {
    yMin = 10 ** Math.floor(Math.log10(yMin));
    yMax = 10 ** Math.ceil(Math.log10(yMax));
  } else {
    yMax = yMax * 1.1 || 1;
  }
  if (xMax === xMin) xMax = xMin + 1;
  const tx = (x: number) =>
    m.left + (xLog ? (Math.log10(x) - Math.log10(xMin)) / (Math.log10(xMax) - Math.log10(xMin)) : (x - xMin) / (xMax - xMin)) * plotW;
  const ty = (y: number) =>
    m.top +
    plotH -
    (yLog ? (Math.log10(y) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin)) : (y - yMin) / (yMax - yMin)) * plotH;
  const f = (n: number) => n.toFixed(1);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(
    `<text x="${width / 2 - m.right / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(options.title)}</text>`,
  );
  for (const v of ticks(xMin, xMax, xLog)) {
    const x = tx(v);
    parts.push(`<line x1="${f(x)}" y1="${m.top}" x2="${f(x)}" y2="${m.top + plotH}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${f(x)}" y="${m.top + plotH + 18}" text-anchor="middle">${formatTick(v)}</text>`);
  }
  for (const v of ticks(yMin, yMax, yLog)) {
    const y = ty(v);
    parts.push(`<line x1="${m.left}" y1="${f(y)}" x2="${m.left + plotW}" y2="${f(y)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${m.left - 8}" y="${f(y + 4)}" text-anchor="end">${formatTick(v)}</text>`);
  }
  parts.push(`<rect x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`);
  parts.push(`<text x="${m.left + plotW / 2}" y="${height - 12}" text-anchor="middle">${escapeXml(options.xLabel)}</text>`);
  parts.push(`<text transform="translate(18 ${m.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(options.yLabel)}</text>`);
  if (options.target) {
    const y = ty(options.target.y);
    parts.push(`<line x1="${m.left}" y1="${f(y)}" x2="${m.left + plotW}" y2="${f(y)}" stroke="#d62728" stroke-dasharray="2 4"/>`);
    parts.push(
      `<text x="${m.left + plotW - 4}" y="${f(y - 5)}" text-anchor="end" fill="#d62728">${escapeXml(options.target.label)}</text>`,
    );
  }
  options.series.forEach((s, i) => {
    const pts = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
    const dash = s.dashed ? ` stroke-dasharray="6 4"` : "";
    if (pts.length > 1) {
      parts.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="2"${dash} points="${pts.map((p) => `${f(tx(p.x))},${f(ty(p.y))}`).join(" ")}"/>`,
      );
    }
    for (const p of pts)
      parts.push(
        `<circle cx="${f(tx(p.x))}" cy="${f(ty(p.y))}" r="3.5" fill="${s.color}"><title>${escapeXml(`${s.name}: ${p.y} at ${p.x}`)}</title></circle>`,
      );
    const ly = m.top + 10 + i * 20;
    const lx = m.left + plotW + 15;
    parts.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${s.color}" stroke-width="2"${dash}/>`);
    parts.push(`<text x="${lx + 30}" y="${ly + 4}">${escapeXml(s.name)}</text>`);
  });
  parts.push(`</svg>`);
  return `${parts.join("\n")}\n`;
}
