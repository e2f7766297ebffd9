/**
 * The stack lifecycle users go through on AWS and cannot try here: several stacks in one account,
 * one stack in several regions, the account-wide API Gateway logging setting, the order in which
 * traffic is allowed, what `pulumi destroy` keeps on prod and how to really tear it down.
 * (AWS-FACTS: Stack lifecycle facts.)
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { ROUTE_FUNCTIONS } from "../../handlers/routes";
import { TABLE_NAMES } from "../../handlers/tables";
import {
  accountLoggingProvider,
  ensureAccountLogging,
  loggingRoleName,
  type AccountLoggingInputs,
  type AccountLoggingPort,
} from "../../infra/apiGatewayAccount";
import { runStack, stackRun, type RecordedResource, type StackRun } from "./support/stack";

/** Where AWS enforces a resource's name to be unique (AWS-FACTS: physical names). */
type Scope = "account" | "region" | "parent" | "none";

/**
 * Every resource type the program registers, with the input holding its explicit physical name and
 * the scope in which AWS keeps that name unique. A type missing here fails the test: whoever adds a
 * resource decides how its name stays unique across stacks and regions.
 */
const NAMES: Readonly<Record<string, { readonly field?: string; readonly scope: Scope }>> = {
  "aws:dynamodb/table:Table": { field: "name", scope: "region" },
  "aws:lambda/function:Function": { field: "name", scope: "region" },
  "aws:cloudwatch/logGroup:LogGroup": { field: "name", scope: "region" },
  "aws:cloudwatch/metricAlarm:MetricAlarm": { field: "name", scope: "region" },
  "aws:sns/topic:Topic": { field: "name", scope: "region" },
  "aws:kms/alias:Alias": { field: "name", scope: "region" },
  "aws:secretsmanager/secret:Secret": { field: "name", scope: "region" },
  // The delivery queue and its dead-letter queue (infra/deliveryQueue.ts).
  "aws:sqs/queue:Queue": { field: "name", scope: "region" },
  // API Gateway accepts duplicate API names, but two stacks sharing one would be unreadable in the console.
  "aws:apigatewayv2/api:Api": { field: "name", scope: "region" },
  "aws:iam/policy:Policy": { field: "name", scope: "account" },
  "aws:cloudwatch/dashboard:Dashboard": { field: "dashboardName", scope: "account" },
  // Names unique inside their API or function only.
  "aws:apigatewayv2/authorizer:Authorizer": { field: "name", scope: "parent" },
  "aws:apigatewayv2/stage:Stage": { field: "name", scope: "parent" },
  "aws:lambda/alias:Alias": { field: "name", scope: "parent" },
  "aws:iam/rolePolicy:RolePolicy": { scope: "parent" },
  // Autonamed by Pulumi (a random suffix) or nameless.
  "aws:iam/role:Role": { scope: "none" },
  "aws:kms/key:Key": { scope: "none" },
  "aws:apigatewayv2/integration:Integration": { scope: "none" },
  "aws:apigatewayv2/route:Route": { scope: "none" },
  "aws:apigatewayv2/routeResponse:RouteResponse": { scope: "none" },
  "aws:lambda/permission:Permission": { scope: "none" },
  // Nameless: identified by a UUID Lambda assigns.
  "aws:lambda/eventSourceMapping:EventSourceMapping": { scope: "none" },
  "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig": { scope: "none" },
  "aws:secretsmanager/secretVersion:SecretVersion": { scope: "none" },
  "aws:sns/topicSubscription:TopicSubscription": { scope: "none" },
  // The account logging step: its role name is per account and region on purpose (shared, never duplicated).
  "pulumi-nodejs:dynamic:Resource": { scope: "none" },
};

interface PhysicalName {
  readonly stack: string;
  readonly region: string;
  readonly type: string;
  readonly name: string;
  readonly scope: "account" | "region";
}

function physicalNames(run: StackRun): PhysicalName[] {
  const out: PhysicalName[] = [];
  for (const r of run.resources) {
    if (!r.custom) continue;
    const spec = NAMES[r.type];
    assert.ok(spec, `${r.type} (${r.name}) is not classified: say where AWS keeps its name unique`);
    if (spec.scope === "none") {
      // Nameless or autonamed: an explicit name here would have to be classified.
      assert.equal(r.inputs.name, undefined, `${r.type} ${r.name} has an explicit name`);
      continue;
    }
    if (spec.scope === "parent") continue;
    const name = r.inputs[spec.field!];
    assert.equal(typeof name, "string", `${r.type} ${r.name}: ${spec.field}`);
    out.push({ stack: run.stack, region: run.region, type: r.type, name: name as string, scope: spec.scope });
  }
  return out;
}

const SIDE_BY_SIDE: ReadonlyArray<{ stack: string; region: string }> = [
  { stack: "dev", region: "eu-west-1" },
  { stack: "prod", region: "eu-west-1" },
  // No stack file: Pulumi.yaml's defaults (environment dev), in the same region.
  { stack: "staging", region: "eu-west-1" },
  { stack: "feature-x", region: "eu-west-1" },
  // The same stack's configuration in a second region.
  { stack: "dev", region: "us-east-1" },
];

describe("infra: stacks side by side", function () {
  this.timeout(300_000);
  const runs: StackRun[] = [];

  before(async () => {
    for (const { stack, region } of SIDE_BY_SIDE) {
      // dev and prod's files say eu-west-1: the runs every infra test shares serve for those.
      runs.push(
        (stack === "dev" || stack === "prod") && region === "eu-west-1"
          ? await stackRun(stack)
          : await runStack(stack, { "aws:region": region }),
      );
      assert.equal(runs[runs.length - 1].region, region);
    }
  });

  it("no explicit physical name collides: dev, prod, staging and feature-x in one region, dev in a second", () => {
    const owners = new Map<string, string>();
    let counted = 0;
    for (const run of runs) {
      for (const n of physicalNames(run)) {
        const key = n.scope === "account" ? `${n.type} ${n.name} (account-wide)` : `${n.type} ${n.name} in ${n.region}`;
        const owner = `${n.stack}@${n.region}`;
        const seen = owners.get(key);
        assert.ok(seen === undefined || seen === owner, `${key} is used by ${seen} and ${owner}`);
        owners.set(key, owner);
        counted++;
      }
    }
    // Every stack names its tables, functions, log groups, alarms, topic, alias, secret, API, policy and dashboard.
    assert.ok(counted >= runs.length * (TABLE_NAMES.length + 11 + 12 + 18 + 5), `${counted} names checked`);
  });

  it("names account-wide resources (IAM policy, dashboard) with the region as well as the stack", () => {
    for (const run of runs) {
      for (const n of physicalNames(run).filter((p) => p.scope === "account"))
        assert.ok(n.name.includes(run.region), `${n.type} ${n.name}`);
    }
  });

  it("never declares aws.apigateway.Account (its deletion resets the region's logging role); every stack only ensures it", () => {
    for (const run of runs) {
      assert.equal(run.ofType("aws:apigateway/account:Account").length, 0, run.stack);
      const [ensure] = run.ofType("pulumi-nodejs:dynamic:Resource");
      assert.ok(ensure, `${run.stack}@${run.region}`);
      assert.equal(ensure.inputs.region, run.region);
      assert.equal(ensure.inputs.roleName, loggingRoleName(run.region));
      // The stage waits for it: access logs are on from the first deploy.
      const [stage] = run.ofType("aws:apigatewayv2/stage:Stage");
      assert.ok(stage.options.dependencies.includes(ensure.options.urn), "stage depends on the logging setting");
    }
  });
});

describe("infra: traffic waits for invoke permissions", function () {
  this.timeout(300_000);
  for (const variant of [
    { label: "dev (no provisioned concurrency)", stack: "dev" },
    { label: "prod (the $connect path behind a live alias)", stack: "prod" },
  ]) {
    it(`${variant.label}: each integration and the authorizer are created after the permission for their target`, async () => {
      const run = await stackRun(variant.stack);
      const permissions = run.ofType("aws:lambda/permission:Permission");
      const targetOf = (p: RecordedResource) => `${String(p.inputs.function)}:${String(p.inputs.qualifier ?? "")}`;
      const functionsByInvokeArn = new Map<string, RecordedResource>();
      for (const fn of run.ofType("aws:lambda/function:Function")) functionsByInvokeArn.set(String(fn.state.invokeArn), fn);
      for (const alias of run.ofType("aws:lambda/alias:Alias")) functionsByInvokeArn.set(String(alias.state.invokeArn), alias);
      const integrations = run.ofType("aws:apigatewayv2/integration:Integration");
      assert.equal(integrations.length, ROUTE_FUNCTIONS.length);
      for (const target of [...integrations, ...run.ofType("aws:apigatewayv2/authorizer:Authorizer")]) {
        const uri = String(target.inputs.integrationUri ?? target.inputs.authorizerUri);
        const invoked = functionsByInvokeArn.get(uri);
        assert.ok(invoked, `${target.name}: ${uri}`);
        // The function (and alias) this target invokes, and the permission letting API Gateway do it.
        const fnName = String(invoked.type === "aws:lambda/alias:Alias" ? invoked.inputs.functionName : invoked.inputs.name);
        const qualifier = invoked.type === "aws:lambda/alias:Alias" ? String(invoked.inputs.name) : "";
        const permission = permissions.filter((p) => targetOf(p) === `${fnName}:${qualifier}`);
        assert.equal(permission.length, 1, `${target.name}: permission for ${fnName}:${qualifier}`);
        assert.ok(target.options.dependencies.includes(permission[0].options.urn), `${target.name} depends on ${permission[0].name}`);
      }
      const [stage] = run.ofType("aws:apigatewayv2/stage:Stage");
      for (const p of permissions) assert.ok(stage.options.dependencies.includes(p.options.urn), `stage depends on ${p.name}`);
    });
  }
});

describe("infra: what pulumi destroy keeps", function () {
  this.timeout(300_000);
  const KEPT = [
    "aws:dynamodb/table:Table",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:secretsmanager/secret:Secret",
    "aws:secretsmanager/secretVersion:SecretVersion",
    "aws:kms/key:Key",
  ];

  it("prod protects tables, log groups, the secret and the key by Pulumi option and by AWS flag", async () => {
    const run = await stackRun("prod");
    for (const type of KEPT) {
      const found = run.ofType(type);
      assert.ok(found.length > 0, type);
      for (const r of found) assert.equal(r.options.protect, true, `${type} ${r.name} protected`);
    }
    for (const t of run.ofType("aws:dynamodb/table:Table")) assert.equal(t.inputs.deletionProtectionEnabled, true, t.name);
    for (const g of run.ofType("aws:cloudwatch/logGroup:LogGroup")) assert.equal(g.inputs.deletionProtectionEnabled, true, g.name);
    const [secret] = run.ofType("aws:secretsmanager/secret:Secret");
    assert.equal(secret.inputs.recoveryWindowInDays, 30);
    const [key] = run.ofType("aws:kms/key:Key");
    assert.equal(key.inputs.deletionWindowInDays, 30);
    // Nothing else is protected: `pulumi destroy --exclude-protected` removes the API and functions.
    for (const r of run.resources.filter((x) => x.custom && !KEPT.includes(x.type)))
      assert.equal(r.options.protect, false, `${r.type} ${r.name}`);
    // Nothing is silently left behind by retainOnDelete.
    for (const r of run.resources) assert.equal(r.options.retainOnDelete, false, `${r.type} ${r.name}`);
  });

  it("dev protects nothing and deletes the secret at once (a destroyed dev stack can be re-created)", async () => {
    const run = await stackRun("dev");
    for (const r of run.resources) assert.equal(r.options.protect, false, `${r.type} ${r.name}`);
    const [secret] = run.ofType("aws:secretsmanager/secret:Secret");
    assert.equal(secret.inputs.recoveryWindowInDays, 0);
    for (const t of run.ofType("aws:dynamodb/table:Table")) assert.equal(t.inputs.deletionProtectionEnabled, false);
    for (const g of run.ofType("aws:cloudwatch/logGroup:LogGroup")) assert.equal(g.inputs.deletionProtectionEnabled, false);
  });

  it("tearing prod down (docs/deploy.md): after `pulumi config set deletionProtection false` and `pulumi up`, nothing is protected", async () => {
    const run = await runStack("prod", { deletionProtection: "false" });
    for (const r of run.resources) assert.equal(r.options.protect, false, `${r.type} ${r.name}`);
    for (const t of run.ofType("aws:dynamodb/table:Table")) assert.equal(t.inputs.deletionProtectionEnabled, false);
    for (const g of run.ofType("aws:cloudwatch/logGroup:LogGroup")) assert.equal(g.inputs.deletionProtectionEnabled, false);
    const [secret] = run.ofType("aws:secretsmanager/secret:Secret");
    assert.equal(secret.inputs.recoveryWindowInDays, 0);
    // The same resources as before (only flags change): the `pulumi up` of step 2 replaces nothing.
    const before = await stackRun("prod");
    assert.deepEqual(run.resources.map((r) => r.options.urn).sort(), before.resources.map((r) => r.options.urn).sort());
  });

  it("the first secret value is Pulumi's; later ones are rotations it must never undo (secretString and versionStages ignored)", async () => {
    const run = await stackRun("dev");
    const [version] = run.ofType("aws:secretsmanager/secretVersion:SecretVersion");
    assert.deepEqual([...version.options.ignoreChanges].sort(), ["secretString", "versionStages"]);
  });
});

describe("infra: endpoints outside the aws partition", function () {
  this.timeout(300_000);
  it("builds the management endpoint from the API's own endpoint (amazonaws.com.cn in China regions)", async () => {
    const run = await runStack("dev", { "aws:region": "cn-north-1" });
    assert.equal(run.outputs.endpoint, "wss://a1b2c3d4e5.execute-api.cn-north-1.amazonaws.com.cn/dev");
    assert.equal(run.outputs.managementEndpoint, "https://a1b2c3d4e5.execute-api.cn-north-1.amazonaws.com.cn/dev");
    for (const fn of run.ofType("aws:lambda/function:Function")) {
      const env = (fn.inputs.environment as { variables: Record<string, string> }).variables;
      if (env.MANAGEMENT_ENDPOINT !== undefined)
        assert.equal(env.MANAGEMENT_ENDPOINT, run.outputs.managementEndpoint, String(fn.inputs.name));
    }
    const [ensure] = run.ofType("pulumi-nodejs:dynamic:Resource");
    assert.equal(ensure.inputs.partition, "aws-cn");
  });
});

/** A fake account: API Gateway's setting and IAM's roles, recording every call. */
function fakeAccount(initial: { setting?: string; roles?: string[]; propagationFailures?: number } = {}) {
  const calls: string[] = [];
  const roles = new Set(initial.roles ?? []);
  let setting = initial.setting;
  let failures = initial.propagationFailures ?? 0;
  const port: AccountLoggingPort = {
    async getCloudWatchRoleArn() {
      calls.push("GetAccount");
      return setting;
    },
    async setCloudWatchRoleArn(arn) {
      calls.push(`UpdateAccount ${arn}`);
      if (failures > 0) {
        failures--;
        throw Object.assign(new Error("The role ARN does not have required permissions set to API Gateway"), {
          name: "BadRequestException",
        });
      }
      setting = arn;
    },
    async getRoleArn(name) {
      calls.push(`GetRole ${name}`);
      return roles.has(name) ? `arn:aws:iam::123456789012:role/${name}` : undefined;
    },
    async createRole(name, trust, managed) {
      calls.push(`CreateRole ${name} ${JSON.parse(trust).Statement[0].Principal.Service} ${managed}`);
      roles.add(name);
      return `arn:aws:iam::123456789012:role/${name}`;
    },
    async sleep() {
      calls.push("sleep");
    },
  };
  return { port, calls, setting: () => setting };
}

describe("infra: API Gateway's account-wide logging role", () => {
  const inputs: AccountLoggingInputs = { region: "eu-west-1", partition: "aws", roleName: loggingRoleName("eu-west-1") };
  const managed = "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs";

  it("leaves a region's existing role exactly as it is (never replaces what other APIs log with)", async () => {
    const existing = "arn:aws:iam::123456789012:role/org-apigw-logs";
    const a = fakeAccount({ setting: existing, roles: ["org-apigw-logs"] });
    const state = await ensureAccountLogging(a.port, inputs);
    assert.deepEqual(state, { ...inputs, cloudwatchRoleArn: existing, created: false });
    assert.deepEqual(a.calls, ["GetAccount", "GetRole org-apigw-logs"]);
    assert.equal(a.setting(), existing);
  });

  it("in a fresh account creates the role with the AWS managed policy (logs:CreateLogGroup included) and sets it", async () => {
    const a = fakeAccount();
    const state = await ensureAccountLogging(a.port, inputs);
    assert.equal(state.created, true);
    assert.equal(a.setting(), "arn:aws:iam::123456789012:role/apigateway-cloudwatch-logs-eu-west-1");
    assert.deepEqual(a.calls, [
      "GetAccount",
      "GetRole apigateway-cloudwatch-logs-eu-west-1",
      `CreateRole apigateway-cloudwatch-logs-eu-west-1 apigateway.amazonaws.com ${managed}`,
      "UpdateAccount arn:aws:iam::123456789012:role/apigateway-cloudwatch-logs-eu-west-1",
    ]);
  });

  it("waits for IAM to propagate a new role before API Gateway accepts it", async () => {
    const a = fakeAccount({ propagationFailures: 3 });
    await ensureAccountLogging(a.port, inputs);
    assert.equal(a.calls.filter((c) => c === "sleep").length, 3);
    assert.equal(a.setting(), "arn:aws:iam::123456789012:role/apigateway-cloudwatch-logs-eu-west-1");
  });

  it("replaces a setting that names a deleted role (every stage's logging would fail), reusing this project's role if another stack made it", async () => {
    const a = fakeAccount({ setting: "arn:aws:iam::123456789012:role/deleted-role", roles: ["apigateway-cloudwatch-logs-eu-west-1"] });
    const state = await ensureAccountLogging(a.port, inputs);
    assert.equal(state.created, true);
    assert.ok(!a.calls.some((c) => c.startsWith("CreateRole")), "no second role");
    assert.equal(a.setting(), "arn:aws:iam::123456789012:role/apigateway-cloudwatch-logs-eu-west-1");
  });

  it("uses the partition's managed policy ARN", async () => {
    const a = fakeAccount();
    await ensureAccountLogging(a.port, { ...inputs, region: "cn-north-1", partition: "aws-cn", roleName: loggingRoleName("cn-north-1") });
    assert.ok(a.calls.some((c) => c.endsWith("arn:aws-cn:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs")));
  });

  it("reports an error that is not IAM propagation at once", async () => {
    const a = fakeAccount();
    a.port.setCloudWatchRoleArn = async () => {
      throw Object.assign(new Error("User is not authorized to perform apigateway:PATCH"), { name: "AccessDeniedException" });
    };
    await assert.rejects(ensureAccountLogging(a.port, inputs), /not authorized/);
  });

  it("pulumi destroy of any stack leaves the setting and the role alone (the provider's delete does nothing)", async () => {
    // No SDK client exists in this process: a delete that called AWS would fail for want of credentials.
    assert.equal(
      await accountLoggingProvider.delete!("apigateway-account-logging-eu-west-1", { ...inputs, cloudwatchRoleArn: "x", created: true }),
      undefined,
    );
    const diff = await accountLoggingProvider.diff!("id", { ...inputs, cloudwatchRoleArn: "x", created: true }, inputs);
    assert.deepEqual(diff.changes, false);
  });
});

/**
 * API Gateway's account settings (REST-JSON: GET/PATCH /account) and IAM (Query protocol, XML) on
 * loopback, as the unchanged SDK clients of the serialized dynamic provider reach them through
 * AWS_ENDPOINT_URL_API_GATEWAY and AWS_ENDPOINT_URL_IAM.
 */
async function startFakeAccountApis(initialSetting?: string) {
  const calls: string[] = [];
  const roles = new Map<string, string[]>();
  let setting = initialSetting;
  const xml = (res: http.ServerResponse, body: string) => {
    res.writeHead(200, { "content-type": "text/xml" });
    res.end(`<?xml version="1.0" encoding="UTF-8"?>${body}`);
  };
  const role = (name: string) =>
    `<Role><Path>/</Path><RoleName>${name}</RoleName><RoleId>AROAFAKE</RoleId><Arn>arn:aws:iam::123456789012:role/${name}</Arn><CreateDate>2026-12-04T00:00:00Z</CreateDate></Role>`;
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      if (req.url === "/account") {
        if (req.method === "PATCH") {
          const ops = (JSON.parse(body) as { patchOperations: Array<{ path: string; value: string }> }).patchOperations;
          setting = ops.find((o) => o.path === "/cloudwatchRoleArn")?.value;
          calls.push(`UpdateAccount ${setting}`);
        } else calls.push("GetAccount");
        res.writeHead(200, { "content-type": "application/json" });
        return res.end(JSON.stringify(setting ? { cloudwatchRoleArn: setting } : {}));
      }
      const form = new URLSearchParams(body);
      const action = form.get("Action");
      const name = form.get("RoleName") ?? "";
      calls.push(`${action} ${name}${action === "AttachRolePolicy" ? ` ${form.get("PolicyArn")}` : ""}`);
      if (action === "GetRole") {
        if (!roles.has(name)) {
          res.writeHead(404, { "content-type": "text/xml" });
          return res.end(
            `<ErrorResponse><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The role with name ${name} cannot be found.</Message></Error><RequestId>r</RequestId></ErrorResponse>`,
          );
        }
        return xml(
          res,
          `<GetRoleResponse><GetRoleResult>${role(name)}</GetRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetRoleResponse>`,
        );
      }
      if (action === "CreateRole") {
        roles.set(name, []);
        return xml(
          res,
          `<CreateRoleResponse><CreateRoleResult>${role(name)}</CreateRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></CreateRoleResponse>`,
        );
      }
      if (action === "AttachRolePolicy") {
        roles.get(name)?.push(form.get("PolicyArn") ?? "");
        return xml(
          res,
          `<AttachRolePolicyResponse><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AttachRolePolicyResponse>`,
        );
      }
      res.writeHead(400);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    roles,
    setting: () => setting,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe("infra: the account logging step as `pulumi up` runs it (serialized dynamic provider, real SDK clients)", function () {
  this.timeout(120_000);
  let dir: string;
  let saved: NodeJS.ProcessEnv;
  before(() => {
    fs.mkdirSync(path.join(process.cwd(), "test-artifacts"), { recursive: true });
    dir = fs.mkdtempSync(path.join(process.cwd(), "test-artifacts", "dynamic-"));
    saved = { ...process.env };
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });

  /** What Pulumi's dynamic provider host loads: the provider serialized with everything it captures. */
  async function loadSerializedProvider(name: string): Promise<pulumi.dynamic.ResourceProvider> {
    const s = await pulumi.runtime.serializeFunction(() => accountLoggingProvider, { isFactoryFunction: true, allowSecrets: true });
    assert.ok(!/@pulumi\/aws/.test(s.text), "the provider does not load @pulumi/aws");
    const file = path.join(dir, `${name}.js`);
    fs.writeFileSync(file, s.text);
    // A factory function's module runs it when loaded and exports what it returned.
    return (require(file) as Record<string, pulumi.dynamic.ResourceProvider>)[s.exportName];
  }

  for (const c of [
    { label: "a fresh account: creates and sets the role", setting: undefined, created: true },
    { label: "a region that already has a role: leaves it alone", setting: "arn:aws:iam::123456789012:role/org-logs", created: false },
  ]) {
    it(c.label, async () => {
      const fake = await startFakeAccountApis(c.setting);
      if (c.setting) fake.roles.set("org-logs", []);
      Object.assign(process.env, {
        AWS_ENDPOINT_URL_API_GATEWAY: fake.endpoint,
        AWS_ENDPOINT_URL_IAM: fake.endpoint,
        AWS_ACCESS_KEY_ID: "test",
        AWS_SECRET_ACCESS_KEY: "test",
      });
      try {
        const provider = await loadSerializedProvider(c.created ? "fresh" : "existing");
        const inputs = { region: "eu-west-1", partition: "aws", roleName: loggingRoleName("eu-west-1") };
        const result = await provider.create(inputs);
        assert.equal(result.id, "apigateway-account-logging-eu-west-1");
        assert.equal(result.outs.created, c.created);
        if (c.created) {
          assert.deepEqual(fake.calls, [
            "GetAccount",
            "GetRole apigateway-cloudwatch-logs-eu-west-1",
            "CreateRole apigateway-cloudwatch-logs-eu-west-1",
            "AttachRolePolicy apigateway-cloudwatch-logs-eu-west-1 arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
            "UpdateAccount arn:aws:iam::123456789012:role/apigateway-cloudwatch-logs-eu-west-1",
          ]);
        } else {
          assert.deepEqual(fake.calls, ["GetAccount", "GetRole org-logs"]);
          assert.equal(fake.setting(), c.setting);
        }
        // pulumi destroy: no call at all.
        const before = fake.calls.length;
        await provider.delete!(result.id, result.outs);
        assert.equal(fake.calls.length, before);
      } finally {
        await fake.close();
      }
    });
  }
});
