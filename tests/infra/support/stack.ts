/**
 * Runs the Pulumi program (index.ts) under `pulumi.runtime.setMocks` with a stack's real config
 * (read from Pulumi.<stack>.yaml, so the tests follow the files) and records every resource the
 * program registers, every invoke it makes and the stack outputs.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";

// js-yaml ships with mocha (a devDependency); only the one function used here is typed.
const yaml = require("js-yaml") as { load(text: string): unknown };

export const ROOT = path.resolve(__dirname, "..", "..", "..");
export const PROJECT = "websocket-chat";
export const ACCOUNT = "123456789012";

/** A stack name: dev and prod have stack files; any other runs on Pulumi.yaml's defaults plus overrides. */
export type StackName = string;

/** The resource options the engine received with a registration (what `pulumi up` would act on). */
export interface RecordedOptions {
  /**
   * The URN the mock monitor answered (what `parent`, `dependencies` and `propertyDependencies` name).
   * The mock qualifies a type with its parent's type only; the engine uses the whole chain: see `engineUrn`.
   */
  readonly urn: string;
  /** The URN `pulumi up` gives the resource and keeps in the stack's state: every ancestor's type, outermost first. */
  readonly engineUrn: string;
  readonly parent: string;
  readonly protect: boolean;
  readonly retainOnDelete: boolean;
  /** URNs of explicit `dependsOn` resources (data dependencies are in `propertyDependencies`). */
  readonly dependencies: readonly string[];
  /** URNs each input property depends on. */
  readonly propertyDependencies: Readonly<Record<string, readonly string[]>>;
  /** The `aliases` as the engine resolves them: URNs (engine form) the resource may have had in the state. */
  readonly aliases: readonly string[];
  readonly ignoreChanges: readonly string[];
}

export interface RecordedResource {
  readonly type: string;
  readonly name: string;
  readonly custom: boolean;
  readonly inputs: Record<string, unknown>;
  readonly id: string;
  readonly state: Record<string, unknown>;
  readonly options: RecordedOptions;
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

/** The stack file's config as the Pulumi CLI hands it to the program: every value a string ({} without a file). */
export function stackConfig(stack: StackName): Record<string, string> {
  if (!fs.existsSync(path.join(ROOT, `Pulumi.${stack}.yaml`))) return {};
  const doc = readYaml(`Pulumi.${stack}.yaml`) as { config?: Record<string, unknown> };
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(doc.config ?? {})) {
    out[key] = typeof value === "string" ? value : JSON.stringify(value);
  }
  return out;
}

/** The partition and DNS suffix of a region, as AWS has them (China regions are `aws-cn`, `amazonaws.com.cn`). */
export function partitionOf(region: string): { partition: string; dnsSuffix: string } {
  if (region.startsWith("cn-")) return { partition: "aws-cn", dnsSuffix: "amazonaws.com.cn" };
  if (region.startsWith("us-gov-")) return { partition: "aws-us-gov", dnsSuffix: "amazonaws.com" };
  return { partition: "aws", dnsSuffix: "amazonaws.com" };
}

function outputsFor(
  type: string,
  name: string,
  inputs: Record<string, unknown>,
  region: string,
): { id: string; state: Record<string, unknown> } {
  const physical = typeof inputs.name === "string" ? inputs.name : `${name}-physical`;
  const { partition, dnsSuffix } = partitionOf(region);
  const arn = (service: string, resource: string) => `arn:${partition}:${service}:${region}:${ACCOUNT}:${resource}`;
  switch (type) {
    case "aws:apigatewayv2/api:Api": {
      const id = "a1b2c3d4e5";
      return {
        id,
        state: {
          ...inputs,
          apiEndpoint: `wss://${id}.execute-api.${region}.${dnsSuffix}`,
          executionArn: arn("execute-api", id),
          arn: `arn:${partition}:apigateway:${region}::/apis/${id}`,
        },
      };
    }
    case "pulumi-nodejs:dynamic:Resource":
      // The API Gateway account logging step (infra/apiGatewayAccount.ts): as if the region had no role yet.
      return {
        id: `apigateway-account-logging-${region}`,
        state: { ...inputs, cloudwatchRoleArn: `arn:${partition}:iam::${ACCOUNT}:role/${String(inputs.roleName)}`, created: true },
      };
    case "aws:lambda/function:Function": {
      const fnArn = arn("lambda", `function:${physical}`);
      return {
        id: physical,
        state: {
          ...inputs,
          name: physical,
          arn: fnArn,
          version: inputs.publish ? "1" : "$LATEST",
          invokeArn: `arn:aws:apigateway:${region}:lambda:path/2015-03-31/functions/${fnArn}/invocations`,
        },
      };
    }
    case "aws:lambda/alias:Alias": {
      const aliasArn = arn("lambda", `function:${String(inputs.functionName)}:${physical}`);
      return {
        id: aliasArn,
        state: {
          ...inputs,
          arn: aliasArn,
          invokeArn: `arn:aws:apigateway:${region}:lambda:path/2015-03-31/functions/${aliasArn}/invocations`,
        },
      };
    }
    case "aws:dynamodb/table:Table":
      return { id: physical, state: { ...inputs, name: physical, arn: arn("dynamodb", `table/${physical}`) } };
    case "aws:cloudwatch/logGroup:LogGroup":
      return { id: physical, state: { ...inputs, name: physical, arn: arn("logs", `log-group:${physical}`) } };
    case "aws:iam/role:Role":
      return { id: `${name}-role`, state: { ...inputs, name: `${name}-role`, arn: `arn:aws:iam::${ACCOUNT}:role/${name}` } };
    case "aws:iam/policy:Policy":
      return {
        id: `arn:aws:iam::${ACCOUNT}:policy/${physical}`,
        state: { ...inputs, name: physical, arn: `arn:aws:iam::${ACCOUNT}:policy/${physical}` },
      };
    case "aws:kms/key:Key":
      return { id: "key-1234", state: { ...inputs, keyId: "key-1234", arn: arn("kms", "key/key-1234") } };
    case "aws:sqs/queue:Queue": {
      // SQS's queue URL is its id: https://sqs.{region}.{dnsSuffix}/{account}/{name}.
      const url = `https://sqs.${region}.${dnsSuffix}/${ACCOUNT}/${physical}`;
      return { id: url, state: { ...inputs, name: physical, arn: arn("sqs", physical), url } };
    }
    case "aws:lambda/eventSourceMapping:EventSourceMapping":
      return { id: `${name}-uuid`, state: { ...inputs, uuid: `${name}-uuid`, arn: arn("lambda", `event-source-mapping:${name}-uuid`) } };
    case "aws:sns/topic:Topic":
      return { id: arn("sns", physical), state: { ...inputs, arn: arn("sns", physical) } };
    case "aws:secretsmanager/secret:Secret":
      return {
        id: arn("secretsmanager", `secret:${physical}-AbCdEf`),
        state: { ...inputs, arn: arn("secretsmanager", `secret:${physical}-AbCdEf`) },
      };
    case "aws:cloudwatch/metricAlarm:MetricAlarm":
      return { id: physical, state: { ...inputs, arn: arn("cloudwatch", `alarm:${physical}`) } };
    case "aws:cloudwatch/dashboard:Dashboard":
      return {
        id: String(inputs.dashboardName),
        state: { ...inputs, dashboardArn: `arn:aws:cloudwatch::${ACCOUNT}:dashboard/${String(inputs.dashboardName)}` },
      };
    default:
      return { id: `${name}-id`, state: { ...inputs, ...(inputs.name === undefined ? {} : { name: physical }) } };
  }
}

/** The registration request the mock monitor receives (a protobuf message; only the getters used here). */
interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getProtect(): boolean;
  getRetainondelete(): boolean;
  getDependenciesList(): string[];
  getPropertydependenciesMap(): { forEach(fn: (value: { getUrnsList(): string[] }, key: string) => void): void };
  getAliasesList(): Array<{ getUrn(): string; getSpec(): AliasSpec | undefined }>;
  getIgnorechangesList(): string[];
}

/** An alias the SDK leaves for the engine to resolve (proto/alias.proto Alias.Spec; empty strings mean "the resource's own"). */
interface AliasSpec {
  getName(): string;
  getType(): string;
  getStack(): string;
  getProject(): string;
  getParenturn(): string;
  hasParenturn(): boolean;
  getNoparent(): boolean;
}

/**
 * A URN as the engine builds it (sdk createUrn, pkg/resource/urn.go): the parent's qualified type
 * (every ancestor's type, the root stack's left out), `$`, the type, `::`, the name.
 */
function urnFor(parentEngineUrn: string, type: string, name: string, stack = pulumi.getStack(), project = pulumi.getProject()): string {
  let prefix = `urn:pulumi:${stack}::${project}::`;
  if (parentEngineUrn && !parentEngineUrn.includes("::pulumi:pulumi:Stack::"))
    prefix = `${parentEngineUrn.substring(0, parentEngineUrn.lastIndexOf("::"))}$`;
  return `${prefix}${type}::${name}`;
}

/**
 * Pulumi's mocks hand `newResource` the type, name and inputs only. The options the engine would act
 * on (protect, retainOnDelete, dependsOn, aliases) are on the registration request: the mock
 * monitor's registerResource is wrapped to record them, keyed by type and name.
 */
function recordOptions(into: Map<string, RecordedOptions>): void {
  // getMonitor is internal to @pulumi/pulumi (runtime/settings): the MockMonitor setMocks installed.
  const settings = require("@pulumi/pulumi/runtime/settings") as {
    getMonitor(): { registerResource(req: RegisterRequest, cb: unknown): unknown };
  };
  const monitor = settings.getMonitor() as {
    registerResource(req: RegisterRequest, cb: unknown): unknown;
    newUrn(parent: string, type: string, name: string): string;
  };
  const register = monitor.registerResource.bind(monitor);
  // Mock URN -> engine URN of every resource registered so far (a parent registers before its children).
  const engineUrns = new Map<string, string>();
  const engineOf = (mockUrn: string) => (mockUrn ? (engineUrns.get(mockUrn) ?? mockUrn) : "");
  monitor.registerResource = (req: RegisterRequest, cb: unknown) => {
    const propertyDependencies: Record<string, string[]> = {};
    req.getPropertydependenciesMap().forEach((value, key) => {
      propertyDependencies[key] = value.getUrnsList();
    });
    const urn = monitor.newUrn(req.getParent(), req.getType(), req.getName());
    const engineUrn = urnFor(engineOf(req.getParent()), req.getType(), req.getName());
    engineUrns.set(urn, engineUrn);
    // The engine's alias resolution (step generator): unset parts are the resource's own.
    const aliasUrn = (spec: AliasSpec) =>
      urnFor(
        spec.getNoparent() ? "" : engineOf(spec.hasParenturn() ? spec.getParenturn() : req.getParent()),
        spec.getType() || req.getType(),
        spec.getName() || req.getName(),
        spec.getStack() || undefined,
        spec.getProject() || undefined,
      );
    into.set(`${req.getType()}::${req.getName()}`, {
      urn,
      engineUrn,
      parent: req.getParent(),
      protect: req.getProtect(),
      retainOnDelete: req.getRetainondelete(),
      dependencies: req.getDependenciesList(),
      propertyDependencies,
      aliases: req.getAliasesList().map((a) => {
        const spec = a.getSpec();
        return a.getUrn() || (spec ? aliasUrn(spec) : "");
      }),
      ignoreChanges: req.getIgnorechangesList(),
    });
    return register(req, cb);
  };
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
 * Every run builds the same CallbackFunctions (one per function) from the same factories: serializing a factory
 * and computing the packages of an archive give the same result each time in one process, and are
 * most of a run's time. Both are memoized here (by the factory's identity and the options), so the
 * many stack runs of the infra suites cost one serialization each; what the program registers is
 * unchanged (tests/infra/archive.test.ts checks the archives themselves).
 */
function memoizeArchiveWork(): void {
  const runtime = pulumi.runtime as unknown as {
    serializeFunction: (func: object, options?: object) => Promise<unknown>;
    computeCodePaths: (options?: object) => Promise<Map<string, unknown>>;
    __memoized?: boolean;
  };
  if (runtime.__memoized) return;
  runtime.__memoized = true;
  const serialize = runtime.serializeFunction;
  const closures = new WeakMap<object, Map<string, Promise<unknown>>>();
  runtime.serializeFunction = (func, options) => {
    const byOptions = closures.get(func) ?? new Map<string, Promise<unknown>>();
    closures.set(func, byOptions);
    const key = JSON.stringify(options ?? {});
    const out = byOptions.get(key) ?? serialize(func, options);
    byOptions.set(key, out);
    return out as ReturnType<typeof serialize>;
  };
  const codePaths = runtime.computeCodePaths;
  const paths = new Map<string, Promise<Map<string, unknown>>>();
  runtime.computeCodePaths = async (options) => {
    const key = JSON.stringify(options ?? {});
    const out = paths.get(key) ?? codePaths(options);
    paths.set(key, out);
    return new Map(await out);
  };
}

/**
 * Runs `fn` with V8's own stack trace format instead of the source-mapped one ts-node installs
 * (@cspotcode/source-map-support's Error.prepareStackTrace), restored after. The Pulumi SDK reads
 * `new Error().stack` several times per resource (debuggablePromise keeps one per RPC for its leak
 * report at exit, Resource.callsites parses one for the registration's source position), and
 * source-mapping every frame of those was about half of a stack run. The mock monitor ignores source
 * positions and nothing recorded comes from a stack trace, so every run records the same; an error
 * the program throws keeps its message (its stack names transpiled lines).
 */
async function withPlainStackTraces<T>(fn: () => Promise<T>): Promise<T> {
  const errors = Error as { prepareStackTrace?: unknown };
  const mapped = errors.prepareStackTrace;
  errors.prepareStackTrace = undefined;
  try {
    return await fn();
  } finally {
    errors.prepareStackTrace = mapped;
  }
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

  const options = new Map<string, RecordedOptions>();
  memoizeArchiveWork();
  pulumi.runtime.setAllConfig(config);
  await pulumi.runtime.setMocks(
    {
      newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, unknown> } {
        const inputs = (args.inputs ?? {}) as Record<string, unknown>;
        const { id, state } =
          args.custom === false ? { id: `${args.name}-component`, state: {} } : outputsFor(args.type, args.name, inputs, region);
        resources.push({
          type: args.type,
          name: args.name,
          custom: args.custom !== false,
          inputs,
          id,
          state,
          get options(): RecordedOptions {
            const o = options.get(`${args.type}::${args.name}`);
            if (!o) throw new Error(`no options recorded for ${args.type} ${args.name}`);
            return o;
          },
        });
        return { id, state };
      },
      call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
        calls.push(args.token);
        switch (args.token) {
          case "aws:index/getCallerIdentity:getCallerIdentity":
            return { accountId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:user/test`, userId: "AIDATEST", id: ACCOUNT };
          case "aws:index/getPartition:getPartition": {
            const { partition, dnsSuffix } = partitionOf(region);
            return { partition, dnsSuffix, reverseDnsPrefix: dnsSuffix.split(".").reverse().join("."), id: partition };
          }
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
  recordOptions(options);

  clearProgramModules();
  const outputs: Record<string, unknown> = {};
  await withPlainStackTraces(async () => {
    const program = (await import(path.join(ROOT, "index"))) as Record<string, unknown>;
    for (const [key, value] of Object.entries(program)) {
      if (key === "__esModule") continue;
      outputs[key] = await settled(value);
    }
    await drain();
  });

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
