/**
 * Runs the Pulumi program (index.ts) under `pulumi.runtime.setMocks` with a stack's real config
 * (read from Pulumi.<stack>.yaml, so the tests follow the files) and records every resource the
 * program registers, every invoke it makes and the stack outputs.
 */
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";

// js-yaml ships with mocha (a devDependency); only the one function used here is typed.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const yaml = require("js-yaml") as { load(text: string): unknown };

export const ROOT = path.resolve(__dirname, "..", "..", "..");
export const PROJECT = "websocket-chat";
export const ACCOUNT = "123456789012";

export type StackName = "dev" | "prod";

export interface RecordedResource {
  readonly type: string;
  readonly name: string;
  readonly custom: boolean;
  readonly inputs: Record<string, unknown>;
  readonly id: string;
  readonly state: Record<string, unknown>;
}

export interface StackRun {
  readonly stack: StackName;
  readonly region: string;
  readonly config: Record<string, string>;
  readonly resources: readonly RecordedResource[];
  readonly calls: readonly string[];
  readonly outputs: Record<string, unknown>;
  /** Custom resources of a type. */
  ofType(type: string): RecordedResource[];
  /** The one custom resource of a type whose logical name is `name`. */
  named(type: string, name: string): RecordedResource;
}

export function readYaml(file: string): unknown {
  return yaml.load(fs.readFileSync(path.join(ROOT, file), "utf8"));
}

/** The stack file's config as the Pulumi CLI hands it to the program: every value a string. */
export function stackConfig(stack: StackName): Record<string, string> {
  const doc = readYaml(`Pulumi.${stack}.yaml`) as { config?: Record<string, unknown> };
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(doc.config ?? {})) {
    out[key] = typeof value === "string" ? value : JSON.stringify(value);
  }
  return out;
}

function outputsFor(type: string, name: string, inputs: Record<string, unknown>, region: string): { id: string; state: Record<string, unknown> } {
  const physical = typeof inputs.name === "string" ? inputs.name : `${name}-physical`;
  const arn = (service: string, resource: string) => `arn:aws:${service}:${region}:${ACCOUNT}:${resource}`;
  switch (type) {
    case "aws:apigatewayv2/api:Api": {
      const id = "a1b2c3d4e5";
      return { id, state: { ...inputs, apiEndpoint: `wss://${id}.execute-api.${region}.amazonaws.com`, executionArn: arn("execute-api", id), arn: `arn:aws:apigateway:${region}::/apis/${id}` } };
    }
    case "aws:lambda/function:Function": {
      const fnArn = arn("lambda", `function:${physical}`);
      return { id: physical, state: { ...inputs, name: physical, arn: fnArn, version: inputs.publish ? "1" : "$LATEST", invokeArn: `arn:aws:apigateway:${region}:lambda:path/2015-03-31/functions/${fnArn}/invocations` } };
    }
    case "aws:lambda/alias:Alias": {
      const aliasArn = arn("lambda", `function:${String(inputs.functionName)}:${physical}`);
      return { id: aliasArn, state: { ...inputs, arn: aliasArn, invokeArn: `arn:aws:apigateway:${region}:lambda:path/2015-03-31/functions/${aliasArn}/invocations` } };
    }
    case "aws:dynamodb/table:Table":
      return { id: physical, state: { ...inputs, name: physical, arn: arn("dynamodb", `table/${physical}`) } };
    case "aws:cloudwatch/logGroup:LogGroup":
      return { id: physical, state: { ...inputs, name: physical, arn: arn("logs", `log-group:${physical}`) } };
    case "aws:iam/role:Role":
      return { id: `${name}-role`, state: { ...inputs, name: `${name}-role`, arn: `arn:aws:iam::${ACCOUNT}:role/${name}` } };
    case "aws:iam/policy:Policy":
      return { id: `arn:aws:iam::${ACCOUNT}:policy/${physical}`, state: { ...inputs, name: physical, arn: `arn:aws:iam::${ACCOUNT}:policy/${physical}` } };
    case "aws:kms/key:Key":
      return { id: "key-1234", state: { ...inputs, keyId: "key-1234", arn: arn("kms", "key/key-1234") } };
    case "aws:sns/topic:Topic":
      return { id: arn("sns", physical), state: { ...inputs, arn: arn("sns", physical) } };
    case "aws:secretsmanager/secret:Secret":
      return { id: arn("secretsmanager", `secret:${physical}-AbCdEf`), state: { ...inputs, arn: arn("secretsmanager", `secret:${physical}-AbCdEf`) } };
    case "aws:cloudwatch/metricAlarm:MetricAlarm":
      return { id: physical, state: { ...inputs, arn: arn("cloudwatch", `alarm:${physical}`) } };
    case "aws:cloudwatch/dashboard:Dashboard":
      return { id: String(inputs.dashboardName), state: { ...inputs, dashboardArn: `arn:aws:cloudwatch::${ACCOUNT}:dashboard/${String(inputs.dashboardName)}` } };
    default:
      return { id: `${name}-id`, state: { ...inputs, ...(inputs.name === undefined ? {} : { name: physical }) } };
  }
}

/**
 * The program's modules cached by require(): index.ts (which builds the stack when loaded) and
 * infra/**. Only those: handlers/ and local/ stay cached, so other test files in the same mocha
 * process keep the module instances (and classes) they already loaded.
 */
function clearProgramModules(): void {
  const infra = path.join(ROOT, "infra") + path.sep;
  for (const file of Object.keys(require.cache)) {
    if (file === path.join(ROOT, "index.ts") || file.startsWith(infra)) delete require.cache[file];
  }
}

async function settled(value: unknown): Promise<unknown> {
  if (pulumi.Output.isInstance(value)) {
    return new Promise((resolve) => (value as pulumi.Output<unknown>).apply((v) => resolve(v)));
  }
  return value;
}

/** Waits until every registration and invoke the program started has been answered. */
async function drain(): Promise<void> {
  // waitForRPCs is internal to @pulumi/pulumi (runtime/settings); it is what `disconnect` awaits.
  const settings = require("@pulumi/pulumi/runtime/settings") as { waitForRPCs(): Promise<void> };
  await settings.waitForRPCs();
}

/**
 * Runs index.ts for `stack` (its YAML config plus `overrides`, keys without the project prefix;
 * `undefined` removes a key). Rejects with the program's error if it throws.
 */
export async function runStack(stack: StackName, overrides: Record<string, string | undefined> = {}): Promise<StackRun> {
  const config = stackConfig(stack);
  for (const [key, value] of Object.entries(overrides)) {
    const full = key.includes(":") ? key : `${PROJECT}:${key}`;
    if (value === undefined) delete config[full];
    else config[full] = value;
  }
  const region = config["aws:region"] ?? "us-east-1";
  const resources: RecordedResource[] = [];
  const calls: string[] = [];

  pulumi.runtime.setAllConfig(config);
  await pulumi.runtime.setMocks(
    {
      newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, unknown> } {
        const inputs = (args.inputs ?? {}) as Record<string, unknown>;
        const { id, state } = args.custom === false ? { id: `${args.name}-component`, state: {} } : outputsFor(args.type, args.name, inputs, region);
        resources.push({ type: args.type, name: args.name, custom: args.custom !== false, inputs, id, state });
        return { id, state };
      },
      call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
        calls.push(args.token);
        switch (args.token) {
          case "aws:index/getCallerIdentity:getCallerIdentity":
            return { accountId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:user/test`, userId: "AIDATEST", id: ACCOUNT };
          case "aws:index/getPartition:getPartition":
            return { partition: "aws", dnsSuffix: "amazonaws.com", reverseDnsPrefix: "com.amazonaws", id: "aws" };
          case "aws:index/getRegion:getRegion":
            return { region, name: region, endpoint: `ec2.${region}.amazonaws.com`, description: region, id: region };
          case "aws:secretsmanager/getRandomPassword:getRandomPassword":
            return { ...args.inputs, randomPassword: "r".repeat(Number(args.inputs.passwordLength ?? 32)), id: "random" };
          default:
            throw new Error(`unmocked invoke ${args.token}`);
        }
      },
    },
    PROJECT,
    stack,
    false,
  );

  clearProgramModules();
  const program = (await import(path.join(ROOT, "index"))) as Record<string, unknown>;
  const outputs: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(program)) {
    if (key === "__esModule") continue;
    outputs[key] = await settled(value);
  }
  await drain();

  return {
    stack,
    region,
    config,
    resources,
    calls,
    outputs,
    ofType: (type) => resources.filter((r) => r.custom && r.type === type),
    named(type, name) {
      const found = resources.filter((r) => r.custom && r.type === type && r.name === name);
      if (found.length !== 1) throw new Error(`expected one ${type} named ${name}, found ${found.length}`);
      return found[0];
    },
  };
}

/** Resolves a recorded input that may still be an Output-like wrapper. */
export function json<T>(value: unknown): T {
  if (typeof value !== "string") throw new Error(`expected a JSON string, got ${typeof value}`);
  return JSON.parse(value) as T;
}

const runs = new Map<StackName, Promise<StackRun>>();
/** One run per stack for the whole mocha process (every infra test file reads the same run). */
export function stackRun(stack: StackName): Promise<StackRun> {
  let run = runs.get(stack);
  if (!run) {
    run = runStack(stack);
    runs.set(stack, run);
  }
  return run;
}
