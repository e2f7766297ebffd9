/**
 * The URNs a stack's WebSocketApi holds (the component, its functions and every resource below it),
 * as `pulumi up` would record them in the stack's state. tests/infra/urns.test.ts compares the
 * program with a snapshot of these taken before a refactor: a resource whose URN changes without an
 * alias would be deleted and created again.
 *
 * Writes tests/infra/fixtures/urns-<stack>.json for each stack named on the command line:
 *   node -r ts-node/register/transpile-only tests/infra/support/urnSnapshot.ts dev prod
 * Run it only on the program whose deployed state the snapshot stands for (see `generatedFrom`).
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { ROOT, runStack, type StackRun, type StackName } from "./stack";

export const API_COMPONENT = "websocket-chat:infra:WebSocketApi";

export interface UrnSnapshot {
  /** The commit whose program the URNs were computed from. */
  readonly generatedFrom: string;
  readonly stack: StackName;
  /** URNs of custom resources (what AWS holds), sorted. */
  readonly custom: readonly string[];
  /** URNs of component resources (state only), sorted. */
  readonly components: readonly string[];
}

/** The type chain of a URN (`urn:pulumi:<stack>::<project>::<parent types$...$type>::<name>`). */
export function urnTypes(urn: string): string[] {
  const parts = urn.split("::");
  return parts[2].split("$");
}

/** Whether a URN is the WebSocketApi component or lies below it. */
export function underApi(urn: string): boolean {
  return urnTypes(urn).includes(API_COMPONENT);
}

export function snapshotOf(run: StackRun, generatedFrom: string): UrnSnapshot {
  const pick = (custom: boolean) =>
    run.resources
      .filter((r) => r.custom === custom && underApi(r.options.engineUrn))
      .map((r) => r.options.engineUrn)
      .sort();
  return { generatedFrom, stack: run.stack, custom: pick(true), components: pick(false) };
}

export function fixturePath(stack: StackName): string {
  return path.join(ROOT, "tests", "infra", "fixtures", `urns-${stack}.json`);
}

async function main(stacks: string[]): Promise<void> {
  const commit = execFileSync("git", ["rev-parse", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
  for (const stack of stacks) {
    const run = await runStack(stack);
    const file = fixturePath(stack);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, `${JSON.stringify(snapshotOf(run, commit), null, 2)}\n`);
    process.stdout.write(`${file}: ${snapshotOf(run, commit).custom.length} custom resources\n`);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${String(err instanceof Error ? err.stack : err)}\n`);
    process.exit(1);
  });
}
