/**
 * A refactor of the program must not make `pulumi up` delete and re-create what a deployed stack
 * holds. The engine matches a resource with the state by its URN (every ancestor's type, its type and
 * its logical name), or by one of its `aliases`: a URN neither kept nor aliased is a delete, a new one
 * a create. tests/infra/fixtures/urns-<stack>.json holds the URNs of the WebSocketApi and everything
 * below it as the program at `generatedFrom` registered them (tests/infra/support/urnSnapshot.ts),
 * that is, what a stack deployed before infra/webSocketRoute.ts has in its state.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import { FUNCTIONS } from "../../handlers/routes";
import { stackRun, type RecordedResource, type StackRun } from "./support/stack";
import { fixturePath, underApi, type UrnSnapshot } from "./support/urnSnapshot";

function snapshot(stack: string): UrnSnapshot {
  return JSON.parse(fs.readFileSync(fixturePath(stack), "utf8")) as UrnSnapshot;
}

/** The resources of the run that lie below the WebSocketApi (custom or component). */
function apiResources(run: StackRun, custom: boolean): RecordedResource[] {
  return run.resources.filter((r) => r.custom === custom && underApi(r.options.engineUrn));
}

/**
 * Routes added after the snapshot: their functions (ChatFunction components matched by no old URN)
 * and everything named after them. Such a route is created on `pulumi up`, as it should be; it has
 * no old state to keep, so the "nothing is created" and "aliases name old resources" checks leave it
 * out, and one check says that those resources are exactly the new routes' and nothing else.
 */
function addedRoutes(run: StackRun, old: UrnSnapshot): { functions: string[]; owns(r: RecordedResource): boolean } {
  const oldComponents = new Set(old.components);
  const functions = apiResources(run, false)
    .filter(
      (r) =>
        r.type === "websocket-chat:infra:ChatFunction" && ![r.options.engineUrn, ...r.options.aliases].some((u) => oldComponents.has(u)),
    )
    .map((r) => r.name);
  return { functions, owns: (r) => functions.some((f) => r.name === f || r.name.startsWith(`${f}-`)) };
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
      for (const t of [
        "aws:apigatewayv2/api:Api",
        "aws:apigatewayv2/route:Route",
        "aws:apigatewayv2/integration:Integration",
        "aws:apigatewayv2/routeResponse:RouteResponse",
        "aws:lambda/permission:Permission",
        "aws:apigatewayv2/stage:Stage",
        "aws:lambda/function:Function",
      ]) {
        assert.ok(types.has(t), t);
      }
    });

    it("every resource of the old state is still there, under its URN or an alias (nothing is deleted)", () => {
      const custom = matches(apiResources(run, true));
      const components = matches(apiResources(run, false));
      assert.deepEqual(
        old.custom.filter((urn) => !custom.has(urn)),
        [],
        "custom resources the update would delete",
      );
      assert.deepEqual(
        old.components.filter((urn) => !components.has(urn)),
        [],
        "components whose state would be dropped",
      );
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

    it("no custom resource is new (nothing is created) but a route added since: each has an old URN, as its own or an alias", () => {
      const oldUrns = new Set(old.custom);
      const added = addedRoutes(run, old);
      const created = apiResources(run, true).filter(
        (r) => !added.owns(r) && !oldUrns.has(r.options.engineUrn) && !r.options.aliases.some((a) => oldUrns.has(a)),
      );
      assert.deepEqual(
        created.map((r) => r.options.engineUrn),
        [],
      );
    });

    it("every alias names a resource of the old state (no alias that can never match), a route added since aside", () => {
      const oldUrns = new Set([...old.custom, ...old.components]);
      const added = addedRoutes(run, old);
      const stray = apiResources(run, true)
        .concat(apiResources(run, false))
        .filter((r) => !added.owns(r))
        .flatMap((r) => r.options.aliases.filter((a) => !oldUrns.has(a)).map((a) => `${r.options.engineUrn} -> ${a}`));
      assert.deepEqual(stray, []);
    });

    it("a route added since the snapshot is a whole new route: its function, role, policy, log group and, with a route key, its integration, route, permission", () => {
      const added = addedRoutes(run, old);
      const oldUrns = new Set([...old.custom, ...old.components]);
      for (const f of added.functions) {
        const own = apiResources(run, true).filter((r) => added.owns(r) && (r.name === f || r.name.startsWith(`${f}-`)));
        const types = new Set(own.map((r) => r.type));
        const spec = FUNCTIONS.find((x) => f.endsWith(`-${x.name}`));
        assert.ok(spec, `${f} is a function of handlers/routes.ts`);
        const expected = ["aws:lambda/function:Function", "aws:iam/role:Role", "aws:cloudwatch/logGroup:LogGroup"];
        if (spec.routeKey)
          expected.push("aws:apigatewayv2/integration:Integration", "aws:apigatewayv2/route:Route", "aws:lambda/permission:Permission");
        for (const t of expected) assert.ok(types.has(t), `${f}: ${t}`);
        // None of it claims an old resource: adding a route replaces nothing.
        for (const r of own)
          assert.equal(
            [r.options.engineUrn, ...r.options.aliases].some((u) => oldUrns.has(u)),
            false,
            r.options.engineUrn,
          );
      }
      // Exactly the functions of routes.ts that the snapshot does not hold.
      const inSnapshot = (name: string) =>
        old.components.some((u) =>
          u.endsWith(
            `ChatFunction::${run.resources.find((r) => r.type === "websocket-chat:infra:ChatFunction" && r.name.endsWith(`-${name}`))?.name}`,
          ),
        );
      assert.deepEqual(
        added.functions.map((f) => FUNCTIONS.find((x) => f.endsWith(`-${x.name}`))?.name).sort(),
        FUNCTIONS.map((x) => x.name)
          .filter((n) => !inSnapshot(n))
          .sort(),
      );
    });
  });
}
