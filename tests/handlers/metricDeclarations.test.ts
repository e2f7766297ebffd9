/**
 * The metric declarations (handlers/metrics.ts canEmit) against the code that counts: every
 * `usage.count("<Metric>")` in the handlers must be declared for each function that can reach it,
 * or its EMF line would drop the metric (emf.ts emits declared metrics only) and the cost model
 * (scripts/cost.ts) would under-count the series. Read from the sources, as a reviewer would.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { canEmit, METRIC_NAMES, METRICS, type MetricName } from "../../handlers/metrics";
import { FUNCTIONS, functionSpec, type FunctionName } from "../../handlers/routes";

const HANDLERS = path.join(__dirname, "..", "..", "handlers");

function source(rel: string): string {
  return fs.readFileSync(path.join(HANDLERS, rel), "utf8");
}

/** Metric names passed to `.count("...")` in a file. */
function counted(text: string): MetricName[] {
  const names = [...text.matchAll(/\.count\(\s*"([A-Za-z]+)"/g)].map((m) => m[1]);
  for (const n of names) assert.ok((METRIC_NAMES as readonly string[]).includes(n), `unknown metric ${n}`);
  return [...new Set(names)] as MetricName[];
}

function libFiles(): string[] {
  return fs
    .readdirSync(path.join(HANDLERS, "lib"))
    .filter((f) => f.endsWith(".ts"))
    .map((f) => `lib/${f}`);
}

describe("metric declarations (handlers/metrics.ts) match the code that counts", () => {
  it("declares every metric a function file counts for that function", () => {
    for (const spec of FUNCTIONS) {
      for (const m of counted(source(`functions/${spec.name}.ts`)))
        assert.ok(canEmit(spec, m), `${spec.name} counts ${m} but does not declare it`);
    }
  });

  it("declares the fan-out's counters for every function built with the @connections fan-out, and only those post", () => {
    const fanoutMetrics = counted(source("lib/fanout.ts"));
    assert.ok(fanoutMetrics.length > 0);
    assert.ok(fanoutMetrics.includes(METRICS.managementCalls));
    for (const spec of FUNCTIONS) {
      const src = source(`functions/${spec.name}.ts`);
      const usesFanout = /management:\s*true/.test(src);
      assert.equal(usesFanout, spec.manageConnections.includes("POST"), `${spec.name}: fan-out built iff the route posts`);
      // Delivering to others goes through presence.ts (rooms), moderation.ts (kick: the kicked
      // connections and the room), messageChanges.ts announceChange (a room or both users of a
      // private conversation) or the fan-out itself (a user's devices); the other route functions
      // only close their caller's connection past its token's expiry.
      const delivers = /from "\.\.\/lib\/(presence|moderation)"|\bannounceChange\(|requireFanout\(/.test(src);
      assert.equal(delivers, spec.fansOut, `${spec.name}: fansOut iff it delivers to other connections`);
      for (const m of fanoutMetrics) {
        assert.equal(canEmit(spec, m), m === METRICS.managementCalls ? usesFanout : delivers, `${spec.name} / ${m}`);
      }
    }
  });

  it("declares the message wrapper's counters for every function that uses it", () => {
    const wrapperMetrics = counted(source("lib/runtime.ts"));
    assert.ok(wrapperMetrics.length > 0);
    for (const spec of FUNCTIONS) {
      if (!/\bmessageRoute\(/.test(source(`functions/${spec.name}.ts`))) continue;
      for (const m of wrapperMetrics) assert.ok(canEmit(spec, m), `${spec.name} uses messageRoute but does not declare ${m}`);
    }
  });

  it("counts metrics nowhere else in the handlers' library (a new place must be declared here first)", () => {
    for (const file of libFiles()) {
      if (file === "lib/fanout.ts" || file === "lib/runtime.ts" || file === "lib/usage.ts") continue;
      assert.deepEqual(counted(source(file)), [], file);
    }
  });

  it("declares DynamoDB counters exactly for the functions granted table access", () => {
    for (const name of ["authorizer", "default", "ping", "chat"] as FunctionName[]) {
      const spec = functionSpec(name);
      assert.equal(canEmit(spec, "DynamoWriteUnits"), spec.tables.length > 0, name);
    }
    // default and ping only update their connection item: no read is ever recorded for them.
    assert.equal(canEmit(functionSpec("default"), "DynamoReadUnits"), false);
    assert.equal(canEmit(functionSpec("chat"), "DynamoReadUnits"), true);
  });
});
