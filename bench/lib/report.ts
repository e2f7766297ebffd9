/** The console table and bench/REPORT.md (with the SVG chart) from a BenchResults. */
import { customMetricSeries } from "../../handlers/metrics";
import { FUNCTIONS } from "../../handlers/routes";
import type { BenchResults } from "./results";
import { round } from "./stats";
import { lineChart } from "./svg";

function table(rows: ReadonlyArray<readonly (string | number)[]>): string {
  const cells = rows.map((r) => r.map(String));
  const widths = cells[0].map((_, c) => Math.max(...cells.map((r) => (r[c] ?? "").length)));
  return cells.map((r) => r.map((v, c) => v.padEnd(widths[c])).join("  ")).join("\n");
}

function md(rows: ReadonlyArray<readonly (string | number)[]>): string {
  const [head, ...body] = rows.map((r) => r.map(String));
  return [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...body.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

const ok = (met: boolean | null | undefined) => (met === null || met === undefined ? "n/a" : met ? "met" : "MISSED");
const ms = (v: number | undefined) =>
  v === undefined || !Number.isFinite(v) ? "-" : v >= 1000 ? `${round(v / 1000, 2)} s` : `${round(v, 1)} ms`;

interface Section {
  readonly title: string;
  readonly intro?: string;
  readonly rows: ReadonlyArray<readonly (string | number)[]>;
  readonly notes?: string[];
}

function sections(r: BenchResults): Section[] {
  const out: Section[] = [];
  if (r.broadcast) {
    out.push({
      title: `1. Broadcast cost (${r.broadcast.connections} connections)`,
      intro: r.broadcast.method,
      rows: [
        [
          "members",
          "items read (ours)",
          "target <=",
          "read units",
          "write units",
          "@connections calls",
          "items read (Scan)",
          "read units (Scan)",
          "ratio",
          "target >=",
          "result",
        ],
        ...r.broadcast.rows.map((b) => [
          b.members,
          b.ours.itemsRead,
          b.targetItemsRead,
          round(b.ours.readUnits, 2),
          round(b.ours.writeUnits, 2),
          b.ours.managementCalls,
          b.scan.itemsRead,
          round(b.scan.readUnits, 2),
          round(b.itemsReadRatio, 1),
          round(b.targetRatio, 1),
          `${ok(b.itemsReadMet)} / ${ok(b.ratioMet)}`,
        ]),
      ],
    });
  }
  if (r.latency) {
    out.push({
      title: `2. Delivery latency (send to receipt at every member; @connections latency ${r.latency.managementLatencyMs} ms)`,
      intro: r.latency.method,
      rows: [
        [
          "members",
          "messages",
          `bounded (${r.latency.boundedConcurrency}) p50`,
          "p95",
          "p99",
          `sequential (${r.latency.sequentialConcurrency}) p50`,
          "p95",
          "p99",
          "speed-up (p99)",
          "p99 <= 1 s",
          ">= 10x",
        ],
        ...r.latency.rows.map((l) => [
          l.members,
          l.messages,
          ms(l.bounded.p50),
          ms(l.bounded.p95),
          ms(l.bounded.p99),
          ms(l.sequential?.p50),
          ms(l.sequential?.p95),
          ms(l.sequential?.p99),
          l.speedupP99 === null ? "-" : `${round(l.speedupP99, 1)}x`,
          ok(l.p99Met),
          ok(l.speedupMet),
        ]),
      ],
    });
  }
  if (r.coldStart) {
    out.push({
      title: `3. Cold start (median of ${r.coldStart.samples} fresh processes; target <= 150 ms)`,
      intro: r.coldStart.method,
      rows: [
        ["function", "zipped", "unzipped", "files", "init p50", "init max", "npm packages alone p50", "result"],
        ...r.coldStart.rows.map((c) => [
          c.function,
          `${round(c.zipBytes / 1024, 0)} KiB`,
          `${round(c.uncompressedBytes / 1024 / 1024, 1)} MiB`,
          c.files,
          c.error ? "-" : ms(c.initMs.p50),
          c.error ? "-" : ms(c.initMs.max),
          c.error ? "-" : ms(c.packagesLoadMedianMs),
          c.error ? `FAILS: ${c.error}` : ok(c.met),
        ]),
      ],
    });
  }
  if (r.throughput) {
    const t = r.throughput;
    out.push({
      title: `4. Throughput (${t.connections} connections in ${t.rooms} rooms, ${t.durationS} s)`,
      intro: t.method,
      rows: [
        [
          "messages/s",
          "deliveries/s",
          "in flight",
          "errors",
          "lost",
          "runtime CPU s",
          "runtime peak RSS",
          "DynamoDB Local CPU s",
          "DynamoDB Local peak RSS",
        ],
        [
          round(t.messagesPerSecond, 1),
          round(t.deliveriesPerSecond, 0),
          t.window,
          t.errors,
          t.lost,
          round(t.runtimeCpuSeconds, 1),
          `${round(t.runtimePeakRssMiB, 0)} MiB`,
          round(t.dynamoLocalCpuSeconds, 1),
          `${round(t.dynamoLocalPeakRssMiB, 0)} MiB`,
        ],
      ],
    });
  }
  if (r.largeRoom) {
    const l = r.largeRoom;
    out.push({
      title: `6. Large rooms (${l.managementLatencyMs} ms per @connections call; 10,000-member target: p99 <= 1.25 x members / posts per second)`,
      intro: l.method,
      rows: [
        [
          "members",
          "source",
          "path",
          "users",
          "messages",
          "p50",
          "p99",
          "max",
          "floor (budget)",
          "p99 / floor",
          "measured posts/s",
          "floor (measured rate)",
          "p99 / it",
          "workers",
          "posts/s",
          "shard size",
          "missing",
          "timeouts",
          "queue: jobs/msg, job age p50/max",
          "registered/s",
          "load",
        ],
        ...l.rows.map((x) => [
          x.members,
          x.source,
          x.path,
          x.users,
          x.messages,
          ms(x.p50Ms),
          ms(x.p99Ms),
          ms(x.maxMs),
          ms(x.floorMs),
          x.p99OverFloor,
          x.effectivePostsPerSecond,
          ms(x.effectiveFloorMs),
          x.p99OverEffectiveFloor,
          x.workers,
          x.postsPerSecond,
          x.shardSize,
          x.missing,
          x.functionTimeouts,
          x.queue ? `${x.queue.jobsPerMessage}, ${ms(x.queue.jobAgeP50Ms)}/${ms(x.queue.jobAgeMaxMs)}` : "-",
          x.registration.perSecond,
          x.loadAverage1m,
        ]),
      ],
    });
  }
  if (r.startup) {
    out.push({
      title: "5. Start-up (npm run local to the first accepted connection; target <= 10 s)",
      intro: r.startup.method,
      rows: [
        ["samples", "p50", "max", "result"],
        [r.startup.samples, ms(r.startup.ms.p50), ms(r.startup.ms.max), ok(r.startup.met)],
      ],
    });
  }
  return out;
}

export function consoleReport(r: BenchResults): string {
  const m = r.machine;
  const parts = [`Machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, load average ${m.loadAverage1m} at start`];
  for (const s of sections(r)) parts.push("", s.title, table(s.rows));
  if (r.notes.length) parts.push("", "Notes:", ...r.notes.map((n) => `- ${n}`));
  return parts.join("\n");
}

export function latencyChart(r: BenchResults): string | undefined {
  if (!r.latency || r.latency.rows.length === 0) return undefined;
  const rows = r.latency.rows;
  const seq = rows.filter((l) => l.sequential);
  return lineChart({
    title: "Delivery latency against room size",
    xLabel: "members in the room (log scale)",
    yLabel: "send to receipt at every member, ms (log scale)",
    xLog: true,
    yLog: true,
    target: { y: 1000, label: "target: p99 <= 1 s" },
    series: [
      {
        name: `bounded (${r.latency.boundedConcurrency}) p50`,
        color: "#1f77b4",
        points: rows.map((l) => ({ x: l.members, y: l.bounded.p50 })),
      },
      {
        name: `bounded (${r.latency.boundedConcurrency}) p99`,
        color: "#1f77b4",
        dashed: true,
        points: rows.map((l) => ({ x: l.members, y: l.bounded.p99 })),
      },
      { name: "sequential p50", color: "#ff7f0e", points: seq.map((l) => ({ x: l.members, y: l.sequential!.p50 })) },
      { name: "sequential p99", color: "#ff7f0e", dashed: true, points: seq.map((l) => ({ x: l.members, y: l.sequential!.p99 })) },
    ],
  });
}

export function markdownReport(r: BenchResults, chartFile: string | undefined): string {
  const m = r.machine;
  const parts = [
    "# Benchmark report",
    "",
    `Generated ${r.generatedAt} by \`${r.command}\`${r.quick ? " (quick run: small sizes, not the published figures)" : ""}.`,
    "",
    `Machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.platform}, Node ${m.node}; 1-minute load average ${m.loadAverage1m} when the run started ` +
      "(the machine was shared with other jobs: timings are upper bounds, counts are exact).",
  ];
  for (const s of sections(r)) {
    parts.push("", `## ${s.title}`, "");
    if (s.intro) parts.push(s.intro, "");
    parts.push(md(s.rows));
    if (s.title.startsWith("2.") && chartFile) parts.push("", `![Delivery latency against room size](${chartFile})`);
  }
  if (r.notes.length) parts.push("", "## Notes", "", ...r.notes.map((n) => `- ${n}`));
  if (r.costInputs) {
    const c = r.costInputs;
    const f = (u: { fixed: Record<string, number>; perMember: Record<string, number> }, k: string) =>
      `${round(u.fixed[k], 2)} + ${round(u.perMember[k], 4)} x members`;
    parts.push(
      "",
      "## Per-operation figures for the cost model (`npm run cost`)",
      "",
      md([
        ["operation", "read units", "write units", "items read", "@connections calls", "duration ms", "log bytes"],
        [
          "chat (per message)",
          f(c.chat as never, "readUnits"),
          f(c.chat as never, "writeUnits"),
          f(c.chat as never, "itemsRead"),
          f(c.chat as never, "managementCalls"),
          f(c.chat as never, "durationMs"),
          f(c.chat as never, "logBytes"),
        ],
        [
          "$connect",
          f(c.connect as never, "readUnits"),
          f(c.connect as never, "writeUnits"),
          f(c.connect as never, "itemsRead"),
          f(c.connect as never, "managementCalls"),
          f(c.connect as never, "durationMs"),
          f(c.connect as never, "logBytes"),
        ],
        [
          "$disconnect",
          f(c.disconnect as never, "readUnits"),
          f(c.disconnect as never, "writeUnits"),
          f(c.disconnect as never, "itemsRead"),
          f(c.disconnect as never, "managementCalls"),
          f(c.disconnect as never, "durationMs"),
          f(c.disconnect as never, "logBytes"),
        ],
        [
          "authorizer",
          round(c.authorizer.readUnits, 2),
          round(c.authorizer.writeUnits, 2),
          round(c.authorizer.itemsRead, 2),
          round(c.authorizer.managementCalls, 2),
          round(c.authorizer.durationMs, 1),
          round(c.authorizer.logBytes, 0),
        ],
        [
          "ping",
          round(c.ping.readUnits, 2),
          round(c.ping.writeUnits, 2),
          round(c.ping.itemsRead, 2),
          round(c.ping.managementCalls, 2),
          round(c.ping.durationMs, 1),
          round(c.ping.logBytes, 0),
        ],
      ]),
      "",
      `Scan reference: ${round(c.scanReadUnitsPerConnection, 4)} read units per connection item scanned. Custom metric series per stage (from the code, handlers/metrics.ts): ${customMetricSeries(FUNCTIONS, false)}, ${customMetricSeries(FUNCTIONS, true)} with detailed monitoring. ` +
        `Durations measured with fan-out concurrency ${c.fanoutConcurrency} and ${c.managementLatencyMs} ms per @connections call.`,
    );
  }
  return `${parts.join("\n")}\n`;
}
