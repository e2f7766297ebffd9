/** Pure helpers of the benchmarks: percentiles, the linear fit, the ZIP writer, the SVG chart, the room plan, the options. */
import * as assert from "node:assert/strict";
import * as zlib from "node:zlib";
import { parseBenchArgs, BenchUsageError } from "../../bench/run";
import { planPopulation } from "../../bench/lib/population";
import { linearFit, percentileSorted, summarize } from "../../bench/lib/stats";
import { lineChart } from "../../bench/lib/svg";
import { writeZip } from "../../bench/lib/zip";

/** Reads a ZIP back from its central directory (independent of the writer's bookkeeping). */
function readZip(buf: Buffer): Map<string, Buffer> {
  const eocd = buf.length - 22;
  assert.equal(buf.readUInt32LE(eocd), 0x06054b50);
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const out = new Map<string, Buffer>();
  for (let i = 0; i < count; i++) {
    assert.equal(buf.readUInt32LE(p), 0x02014b50);
    const crc = buf.readUInt32LE(p + 16);
    const csize = buf.readUInt32LE(p + 20);
    const nameLen = buf.readUInt16LE(p + 28);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.subarray(p + 46, p + 46 + nameLen).toString("utf8");
    assert.equal(buf.readUInt32LE(local), 0x04034b50);
    const dataStart = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const data = zlib.inflateRawSync(buf.subarray(dataStart, dataStart + csize));
    assert.equal(zlib.crc32(data) >>> 0, crc, `crc of ${name}`);
    out.set(name, data);
    p += 46 + nameLen;
  }
  return out;
}

describe("bench helpers", () => {
  it("takes nearest-rank percentiles, so p99 is a value somebody observed", () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentileSorted(values, 50), 50);
    assert.equal(percentileSorted(values, 99), 99);
    assert.equal(percentileSorted([7], 99), 7);
    assert.ok(Number.isNaN(percentileSorted([], 50)));
    assert.deepEqual(summarize([3, 1, 2]), { count: 3, min: 1, p50: 2, p95: 3, p99: 3, max: 3, mean: 2 });
    assert.throws(() => percentileSorted(values, 101), RangeError);
  });

  it("fits a line through per-room-size figures", () => {
    const f = linearFit([
      { x: 10, y: 12 },
      { x: 100, y: 102 },
      { x: 1000, y: 1002 },
    ]);
    assert.ok(Math.abs(f.slope - 1) < 1e-12 && Math.abs(f.intercept - 2) < 1e-9);
    assert.deepEqual(linearFit([{ x: 5, y: 3 }]), { intercept: 3, slope: 0 });
  });

  it("writes a ZIP whose entries inflate back to the input", () => {
    const files = [
      { name: "__index.js", data: Buffer.from("exports.handler = () => 1;\n".repeat(50)) },
      { name: "node_modules/a/package.json", data: Buffer.from('{"name":"a"}') },
      { name: "node_modules/é/x.txt", data: Buffer.alloc(0) },
    ];
    const zip = writeZip(files);
    const back = readZip(zip);
    assert.equal(back.size, 3);
    for (const f of files) assert.deepEqual(back.get(f.name), f.data);
    assert.ok(zip.length < files.reduce((s, f) => s + f.data.length, 0), "deflate shrinks the repetitive file");
  });

  it("draws an SVG with one polyline per series and the target line", () => {
    const svg = lineChart({
      title: "t <&>",
      xLabel: "x",
      yLabel: "y",
      xLog: true,
      yLog: true,
      target: { y: 1000, label: "1 s" },
      series: [
        {
          name: "a",
          color: "#000",
          points: [
            { x: 10, y: 40 },
            { x: 100, y: 90 },
            { x: 1000, y: 500 },
          ],
        },
        {
          name: "b",
          color: "#f00",
          dashed: true,
          points: [
            { x: 10, y: 200 },
            { x: 1000, y: 20000 },
          ],
        },
      ],
    });
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.equal((svg.match(/<polyline /g) ?? []).length, 2);
    assert.match(svg, /t &lt;&amp;&gt;/);
    assert.match(svg, /stroke-dasharray="2 4"/);
    assert.throws(
      () => lineChart({ title: "", xLabel: "", yLabel: "", yLog: true, series: [{ name: "z", color: "#000", points: [{ x: 1, y: 0 }] }] }),
      RangeError,
    );
  });

  it("plans rooms of the measured sizes, fills up with rooms of 10 and connects first devices first", () => {
    const p = planPopulation(2000, [10, 100, 1000], 20);
    assert.equal(p.byRoom.flat().length, 2000);
    const big = p.byRoom.find((r) => r[0].roomId === "bench-1000")!;
    assert.equal(big.length, 1000);
    assert.equal(new Set(big.map((s) => s.userId)).size, 20);
    assert.equal(new Set(big.slice(0, 20).map((s) => s.userId)).size, 20, "each user's first device connects before any second device");
    assert.equal(p.rooms.filter((r) => !r.measured).length, 89);
    assert.throws(() => planPopulation(100, [10, 100]), RangeError);
  });

  it("parses the bench options and rejects bad ones with a usage error", () => {
    const full = parseBenchArgs([]);
    assert.equal(full.connections, 2000);
    assert.deepEqual(full.sizes, [10, 100, 1000]);
    const q = parseBenchArgs(["--quick", "--cases", "coldstart", "--cold-functions", "ping,chat"]);
    assert.ok(q.quick);
    assert.deepEqual(q.cases, ["coldstart"]);
    assert.deepEqual(q.coldFunctions, ["ping", "chat"]);
    assert.throws(() => parseBenchArgs(["--cases", "nope"]), BenchUsageError);
    assert.throws(() => parseBenchArgs(["--sizes", "10,x"]), BenchUsageError);
    assert.throws(() => parseBenchArgs(["--connections", "50", "--sizes", "10,100"]), /add up to 110/);
    assert.throws(() => parseBenchArgs(["--frobnicate"]), /unknown option/);
  });
});
