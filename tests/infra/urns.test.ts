/**
 * A refactor of the program must not make `pulumi up` delete and re-create what a deployed stack
 * holds. The engine matches a resource with the state by its URN (every ancestor's type, its type and
 * its logical name), or by one of its `aliases`: a URN neither kept nor aliased is a delete, a new one
 * a create. tests/infra/fixtures/urns-<stack>.json holds the URNs of the WebSocketApi and everything
 * below it as the program at `generatedFrom` registered them (tests/infra/support/urnSnapshot.ts),
 * that is, what a stack deployed before infra/webSocketRoute.ts has in its state.
 */
import { strict as assert } from "assert";
import * as fs from "fs";
import { stackRun, type RecordedResource, type StackRun } from "./support/stack";
import { fixturePath, underApi, type UrnSnapshot } from "./support/urnSnapshot";

function snapshot(stack: string): UrnSnapshot {
  return JSON.parse(fs.readFileSync(fixturePath(stack), "utf8")) as UrnSnapshot;
}

/** The resources of the run that lie below the WebSocketApi (custom or component). */
function apiResources(run: StackRun, custom: boolean): RecordedResource[] {
  return run.resources.filter((r) => r.custom === custom && underApi(r.options.engineUrn));
}

/** Which resource of the run the engine would match with a URN of the old state (its URN or an alias), by old URN. */
function matches(resources: readonly RecordedResource[]): Map<string, RecordedResource[]> {
  const byOld = new Map<string, RecordedResource[]>();
  for (const r of resources) {
    for (const urn of new Set([r.options.engineUrn, ...r.options.aliases])) byOld.set(urn, [...(byOld.get(urn) ?? []), r]);
  }
  return byOld;
}

for (const stack of ["dev", "prod"]) {
  describe(`infra: a ${stack} stack deployed before the refactor updates in place`, function () {
    this.timeout(300_000);
    let run: StackRun;
    let old: UrnSnapshot;
    before(async () => {
      run = await stackRun(stack);
      old = snapshot(stack);
    });

    it("the snapshot is the stack's: the API, its functions, routes, permissions and stage", () => {
      assert.equal(old.stack, stack);
      const types = new Set(old.custom.map((u) => u.split("::")[2].split("$").pop()));
      for (const t of ["aws:apigatewayv2/api:Api", "aws:apigatewayv2/route:Route", "aws:apigatewayv2/integration:Integration", "aws:apigatewayv2/routeResponse:RouteResponse", "aws:lambda/permission:Permission", "aws:apigatewayv2/stage:Stage", "aws:lambda/function:Function"]) {
        assert.ok(types.has(t), t);
      }
    });

    it("every resource of the old state is still there, under its URN or an alias (nothing is deleted)", () => {
      const custom = matches(apiResources(run, true));
      const components = matches(apiResources(run, false));
      assert.deepEqual(old.custom.filter((urn) => !custom.has(urn)), [], "custom resources the update would delete");
      assert.deepEqual(old.components.filter((urn) => !components.has(urn)), [], "components whose state would be dropped");
    });

    it("each old resource is claimed by exactly one new resource of the same type and name (nothing is replaced)", () => {
      const custom = matches(apiResources(run, true));
      for (const urn of old.custom) {
        const claimed = custom.get(urn) ?? [];
        assert.equal(claimed.length, 1, `${urn}: ${claimed.map((r) => r.options.engineUrn).join(", ")}`);
        // The URN ends in `<type>::<name>`: the same type and logical name, only the parent differs.
        assert.ok(urn.endsWith(`${claimed[0].type}::${claimed[0].name}`), urn);
      }
    });

    it("no custom resource is new (nothing is created): each has an old URN, as its own or an alias", () => {
      const oldUrns = new Set(old.custom);
      const created = apiResources(run, true).filter((r) => !oldUrns.has(r.options.engineUrn) && !r.options.aliases.some((a) => oldUrns.has(a)));
      assert.deepEqual(created.map((r) => r.options.engineUrn), []);
    });

    it("every alias names a resource of the old state (no alias that can never match)", () => {
      const oldUrns = new Set([...old.custom, ...old.components]);
      const stray = apiResources(run, true)
        .concat(apiResources(run, false))
        .flatMap((r) => r.options.aliases.filter((a) => !oldUrns.has(a)).map((a) => `${r.options.engineUrn} -> ${a}`));
      assert.deepEqual(stray, []);
    });
  });
}
