import { strict as assert } from "node:assert";
import { FUNCTIONS, ROUTE_FUNCTIONS, ROUTE_SELECTION_EXPRESSION } from "../../handlers/routes";
import { TABLES, TABLE_NAMES } from "../../handlers/tables";
import { validateConfig } from "../../infra/config";
import { functionPolicy } from "../../infra/policies";
import { ACCESS_LOG_FORMAT, AUTHORIZER_IDENTITY_SOURCE, isConnectPath, isMessageHandler } from "../../infra/websocketApi";
import { ACCOUNT, PROJECT, json, runStack, stackRun, type RecordedResource, type StackName, type StackRun } from "./support/stack";

const T = {
  api: "aws:apigatewayv2/api:Api",
  route: "aws:apigatewayv2/route:Route",
  integration: "aws:apigatewayv2/integration:Integration",
  routeResponse: "aws:apigatewayv2/routeResponse:RouteResponse",
  authorizer: "aws:apigatewayv2/authorizer:Authorizer",
  stage: "aws:apigatewayv2/stage:Stage",
  fn: "aws:lambda/function:Function",
  permission: "aws:lambda/permission:Permission",
  role: "aws:iam/role:Role",
  rolePolicy: "aws:iam/rolePolicy:RolePolicy",
  logGroup: "aws:cloudwatch/logGroup:LogGroup",
  table: "aws:dynamodb/table:Table",
} as const;

function settingsOf(run: StackRun) {
  const raw: Record<string, string> = {};
  for (const [k, v] of Object.entries(run.config)) if (k.startsWith(`${PROJECT}:`)) raw[k.slice(PROJECT.length + 1)] = v;
  return validateConfig(raw, run.stack);
}

/** What the stack must contain, derived from the route table and the stack's config. */
function expectedCounts(run: StackRun): Record<string, number> {
  const c = settingsOf(run);
  const n = FUNCTIONS.length;
  const routes = ROUTE_FUNCTIONS.length;
  const twoWay = ROUTE_FUNCTIONS.filter((f) => f.twoWay).length;
  const sharedSecret = c.auth.mode === "shared-secret" ? 1 : 0;
  const account = c.manageApiGatewayAccount ? 1 : 0;
  const warm = c.provisionedConcurrency > 0 ? FUNCTIONS.filter(isConnectPath).length : 0;
  // Queue-triggered functions (the delivery worker): an event source mapping, no route, no invoke permission.
  const triggered = FUNCTIONS.filter((f) => f.trigger !== undefined).length;
  return {
    "websocket-chat:infra:EncryptionKey": 1,
    "websocket-chat:infra:ChatTables": 1,
    "websocket-chat:infra:WebSocketApi": 1,
    "websocket-chat:infra:ChatFunction": n,
    // One per route: its permission, integration, route and route response (infra/webSocketRoute.ts).
    "websocket-chat:infra:WebSocketRoute": routes,
    "websocket-chat:infra:Monitoring": 1,
    // The large rooms' delivery queue and its dead-letter queue (infra/deliveryQueue.ts).
    "websocket-chat:infra:DeliveryQueue": 1,
    "aws:sqs/queue:Queue": 2,
    "aws:lambda/eventSourceMapping:EventSourceMapping": triggered,
    // The backends' push policy (infra/pushPolicy.ts): created, attached to nothing in the stack.
    "websocket-chat:infra:PushPolicy": 1,
    "aws:iam/policy:Policy": 1,
    "aws:kms/key:Key": 1,
    "aws:kms/alias:Alias": 1,
    [T.table]: TABLE_NAMES.length,
    [T.api]: 1,
    [T.authorizer]: 1,
    [T.integration]: routes,
    [T.route]: routes,
    [T.routeResponse]: twoWay,
    [T.stage]: 1,
    [T.fn]: n,
    [T.permission]: n - triggered,
    "aws:lambda/alias:Alias": warm,
    "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig": warm,
    [T.role]: n,
    [T.rolePolicy]: n,
    [T.logGroup]: n + 1,
    // Never aws.apigateway.Account: deleting it resets the region's setting (infra/apiGatewayAccount.ts).
    "aws:apigateway/account:Account": 0,
    // The account logging step (a dynamic resource that only ensures the setting).
    "pulumi-nodejs:dynamic:Resource": account,
    "aws:secretsmanager/secret:Secret": sharedSecret,
    "aws:secretsmanager/secretVersion:SecretVersion": sharedSecret,
    "aws:sns/topic:Topic": 1,
    "aws:sns/topicSubscription:TopicSubscription": c.alarmEmail ? 1 : 0,
    // One error-rate alarm per function, one throttling alarm per table, 4XX, 5XX, rejected connects,
    // failed deliveries, the delivery queue's oldest job and its dead letters.
    "aws:cloudwatch/metricAlarm:MetricAlarm": n + TABLE_NAMES.length + 6,
    "aws:cloudwatch/dashboard:Dashboard": 1,
  };
}

function countByType(resources: readonly RecordedResource[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of resources) counts[r.type] = (counts[r.type] ?? 0) + 1;
  return counts;
}

function withoutZeros(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).filter(([, v]) => v > 0));
}

/** What API Gateway invokes for a function: its `live` alias on a warm $connect path, else the function. */
function invokeTarget(run: StackRun, name: string): { invokeArn: unknown; qualifier: unknown } {
  const fn = functionResource(run, name);
  const aliases = run.ofType("aws:lambda/alias:Alias").filter((a) => a.inputs.functionName === fn.state.name);
  if (aliases.length === 0) return { invokeArn: fn.state.invokeArn, qualifier: undefined };
  assert.equal(aliases.length, 1);
  return { invokeArn: aliases[0].state.invokeArn, qualifier: aliases[0].inputs.name };
}

function functionResource(run: StackRun, name: string): RecordedResource {
  const physical = `${settingsOf(run).resourcePrefix}-${name}`;
  const found = run.ofType(T.fn).filter((r) => r.inputs.name === physical);
  assert.equal(found.length, 1, `function ${physical}`);
  return found[0];
}

for (const stack of ["dev", "prod"] as StackName[]) {
  describe(`infra: ${stack} stack under mocks`, function () {
    this.timeout(300_000);
    let run: StackRun;
    before(async () => {
      run = await stackRun(stack);
    });

    it("registers exactly the expected resources, by type and count (and nothing else)", () => {
      assert.deepEqual(countByType(run.resources), withoutZeros(expectedCounts(run)));
    });

    it("creates a WEBSOCKET API selecting routes on $request.body.type", () => {
      const [api] = run.ofType(T.api);
      assert.equal(api.inputs.protocolType, "WEBSOCKET");
      assert.equal(api.inputs.routeSelectionExpression, ROUTE_SELECTION_EXPRESSION);
      assert.equal(ROUTE_SELECTION_EXPRESSION, "$request.body.type");
    });

    it("wires every route of the route table to its own AWS_PROXY integration of its own function", () => {
      const routes = run.ofType(T.route);
      assert.deepEqual(routes.map((r) => r.inputs.routeKey).sort(), ROUTE_FUNCTIONS.map((f) => f.routeKey).sort());
      const integrations = run.ofType(T.integration);
      for (const spec of ROUTE_FUNCTIONS) {
        const route = routes.find((r) => r.inputs.routeKey === spec.routeKey)!;
        const target = String(route.inputs.target);
        assert.match(target, /^integrations\/.+/);
        const integration = integrations.find((i) => `integrations/${i.id}` === target);
        assert.ok(integration, `${spec.routeKey} targets an existing integration`);
        assert.equal(integration.inputs.integrationType, "AWS_PROXY");
        assert.equal(integration.inputs.integrationUri, invokeTarget(run, spec.name).invokeArn);
        assert.equal(integration.inputs.apiId, "a1b2c3d4e5");
      }
      assert.equal(new Set(routes.map((r) => r.inputs.target)).size, routes.length, "one integration per route");
    });

    it("returns the integration's body on two-way routes only ($default route response)", () => {
      const routes = run.ofType(T.route);
      const responses = run.ofType(T.routeResponse);
      for (const spec of ROUTE_FUNCTIONS) {
        const route = routes.find((r) => r.inputs.routeKey === spec.routeKey)!;
        const response = responses.filter((r) => r.inputs.routeId === route.id);
        if (spec.twoWay) {
          assert.equal(route.inputs.routeResponseSelectionExpression, "$default", spec.name);
          assert.equal(response.length, 1, spec.name);
          assert.equal(response[0].inputs.routeResponseKey, "$default");
        } else {
          assert.equal(route.inputs.routeResponseSelectionExpression, undefined, spec.name);
          assert.equal(response.length, 0, spec.name);
        }
      }
    });

    it("attaches the REQUEST authorizer (token query string) to $connect only", () => {
      const [authorizer] = run.ofType(T.authorizer);
      assert.equal(authorizer.inputs.authorizerType, "REQUEST");
      assert.deepEqual(authorizer.inputs.identitySources, [AUTHORIZER_IDENTITY_SOURCE]);
      assert.equal(authorizer.inputs.authorizerUri, invokeTarget(run, "authorizer").invokeArn);
      assert.equal(authorizer.inputs.authorizerResultTtlInSeconds, undefined, "WebSocket APIs do not cache authorizer results");
      for (const route of run.ofType(T.route)) {
        if (route.inputs.routeKey === "$connect") {
          assert.equal(route.inputs.authorizationType, "CUSTOM");
          assert.equal(route.inputs.authorizerId, authorizer.id);
        } else {
          assert.equal(route.inputs.authorizationType, "NONE", String(route.inputs.routeKey));
          assert.equal(route.inputs.authorizerId, undefined, String(route.inputs.routeKey));
        }
      }
    });

    it("lets API Gateway invoke each function from its own route (or the authorizer) only, and no queue-triggered function", () => {
      const exec = `arn:aws:execute-api:${run.region}:${ACCOUNT}:a1b2c3d4e5`;
      const permissions = run.ofType(T.permission);
      for (const spec of FUNCTIONS) {
        const fn = functionResource(run, spec.name);
        const mine = permissions.filter((p) => p.inputs.function === fn.state.name);
        if (spec.trigger !== undefined) {
          assert.equal(mine.length, 0, spec.name);
          continue;
        }
        assert.equal(mine.length, 1, spec.name);
        assert.equal(mine[0].inputs.principal, "apigateway.amazonaws.com");
        assert.equal(mine[0].inputs.action, "lambda:InvokeFunction");
        assert.equal(
          mine[0].inputs.qualifier,
          invokeTarget(run, spec.name).qualifier,
          `${spec.name}: permission on what API Gateway invokes`,
        );
        assert.equal(
          mine[0].inputs.sourceArn,
          spec.routeKey ? `${exec}/${run.outputs.stage as string}/${spec.routeKey}` : `${exec}/authorizers/*`,
        );
      }
    });

    it("creates each table from handlers/tables.ts: keys, indexes, on-demand, TTL, SSE, PITR and deletion protection from config", () => {
      const c = settingsOf(run);
      for (const name of TABLE_NAMES) {
        const schema = TABLES[name];
        const table = run.ofType(T.table).find((t) => t.inputs.name === `${c.resourcePrefix}-${name}`);
        assert.ok(table, name);
        const i = table.inputs as Record<string, unknown> & { attributes: { name: string; type: string }[] };
        assert.equal(i.billingMode, "PAY_PER_REQUEST");
        assert.equal(i.hashKey, schema.partitionKey.name);
        assert.equal(i.rangeKey, schema.sortKey?.name);
        const expectedAttributes = new Map<string, string>();
        for (const k of [schema.partitionKey, schema.sortKey, ...schema.indexes.flatMap((x) => [x.partitionKey, x.sortKey])])
          if (k) expectedAttributes.set(k.name, k.type);
        assert.deepEqual(
          [...i.attributes].sort((a, b) => a.name.localeCompare(b.name)),
          [...expectedAttributes].map(([n, t]) => ({ name: n, type: t })).sort((a, b) => a.name.localeCompare(b.name)),
        );
        const gsis = (i.globalSecondaryIndexes ?? []) as Record<string, unknown>[];
        assert.deepEqual(
          gsis.map((g) => ({
            name: g.name,
            hashKey: g.hashKey,
            rangeKey: g.rangeKey,
            projectionType: g.projectionType,
            nonKeyAttributes: g.nonKeyAttributes,
          })),
          schema.indexes.map((x) => ({
            name: x.name,
            hashKey: x.partitionKey.name,
            rangeKey: x.sortKey?.name,
            projectionType: x.projection.type,
            nonKeyAttributes: x.projection.nonKeyAttributes,
          })),
        );
        assert.deepEqual(i.ttl, { attributeName: schema.ttlAttribute, enabled: true });
        assert.deepEqual(i.serverSideEncryption, { enabled: true });
        assert.deepEqual(i.pointInTimeRecovery, { enabled: c.pointInTimeRecovery });
        assert.equal(i.deletionProtectionEnabled, c.deletionProtection);
      }
      assert.equal(c.deletionProtection, stack === "prod");
      assert.equal(c.pointInTimeRecovery, stack === "prod");
    });

    it("gives every function its own role whose only policy equals policies.ts' document for its spec", () => {
      const c = settingsOf(run);
      const tableArns = Object.fromEntries(
        TABLE_NAMES.map((t) => [t, `arn:aws:dynamodb:${run.region}:${ACCOUNT}:table/${c.resourcePrefix}-${t}`]),
      );
      const secretArn = run.ofType("aws:secretsmanager/secret:Secret")[0]?.state.arn as string | undefined;
      const roleArns = new Set<string>();
      for (const spec of FUNCTIONS) {
        const fn = functionResource(run, spec.name);
        const roleArn = String(fn.inputs.role);
        roleArns.add(roleArn);
        const role = run.ofType(T.role).find((r) => r.state.arn === roleArn);
        assert.ok(role, `${spec.name} role`);
        assert.deepEqual(json(role.inputs.assumeRolePolicy), {
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" }],
        });
        assert.equal(role.inputs.managedPolicyArns, undefined, "no managed policies on the role");
        const policies = run.ofType(T.rolePolicy).filter((p) => p.inputs.role === role.id);
        assert.equal(policies.length, 1, `${spec.name} has one inline policy`);
        const expected = functionPolicy(spec, {
          tableArns: tableArns as Record<(typeof TABLE_NAMES)[number], string>,
          executionArn: `arn:aws:execute-api:${run.region}:${ACCOUNT}:a1b2c3d4e5`,
          stage: c.stageName,
          logGroupArn: `arn:aws:logs:${run.region}:${ACCOUNT}:log-group:/aws/lambda/${c.resourcePrefix}-${spec.name}`,
          ...(spec.readsAuthSecret && secretArn ? { authSecretArn: secretArn } : {}),
          deliveryQueueArn: `arn:aws:sqs:${run.region}:${ACCOUNT}:${c.resourcePrefix}-deliveries.fifo`,
          tracing: c.enableXrayTracing,
        });
        assert.deepEqual(json(policies[0].inputs.policy), expected, spec.name);
      }
      assert.equal(roleArns.size, FUNCTIONS.length, "one role per function");
    });

    it("uses no '*' action anywhere and no '*' resource except X-Ray's, in every IAM policy", () => {
      for (const p of run.ofType(T.rolePolicy)) {
        const doc = json<{ Statement: { Action: string | string[]; Resource: string | string[] }[] }>(p.inputs.policy);
        for (const s of doc.Statement) {
          const actions = ([] as string[]).concat(s.Action);
          const resources = ([] as string[]).concat(s.Resource);
          for (const a of actions) assert.ok(!a.includes("*"), `${p.name}: ${a}`);
          if (resources.includes("*")) assert.deepEqual(actions, ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], p.name);
        }
      }
    });

    it("attaches no managed policy anywhere (no RolePolicyAttachment, no managedPolicyArns); the only managed policy is the push policy", () => {
      assert.equal(run.resources.filter((r) => /PolicyAttachment/.test(r.type)).length, 0);
      assert.deepEqual(
        run.ofType("aws:iam/policy:Policy").map((p) => p.inputs.name),
        [`${settingsOf(run).resourcePrefix}-${run.region}-push`],
      );
      for (const role of run.ofType(T.role)) assert.equal(role.inputs.managedPolicyArns, undefined, role.name);
    });

    it("configures every function: nodejs22.x on arm64, memory, timeout, environment, tracing and its own log group", () => {
      const c = settingsOf(run);
      for (const spec of FUNCTIONS) {
        const fn = functionResource(run, spec.name);
        const i = fn.inputs as Record<string, unknown>;
        assert.equal(i.runtime, "nodejs22.x");
        assert.deepEqual(i.architectures, ["arm64"]);
        assert.equal(i.memorySize, c.lambdaMemoryMb);
        // The queue's worker is not behind API Gateway: it gets the time a shard takes (infra/config.ts).
        assert.equal(i.timeout, spec.trigger ? c.deliveryWorkerTimeoutSeconds : c.lambdaTimeoutSeconds, spec.name);
        assert.equal(i.handler, "__index.handler");
        assert.deepEqual(i.tracingConfig, { mode: c.enableXrayTracing ? "Active" : "PassThrough" });
        assert.deepEqual(i.loggingConfig, { logFormat: "Text", logGroup: `/aws/lambda/${c.resourcePrefix}-${spec.name}` });
        const env = (i.environment as { variables: Record<string, string> }).variables;
        assert.equal(env.STAGE, c.stageName);
        assert.equal(env.TRACING_ENABLED, String(c.enableXrayTracing));
        for (const access of spec.tables) assert.equal(env[TABLES[access.table].envVar], `${c.resourcePrefix}-${access.table}`, spec.name);
        if (spec.manageConnections.length > 0)
          assert.equal(env.MANAGEMENT_ENDPOINT, `https://a1b2c3d4e5.execute-api.${run.region}.amazonaws.com/${c.stageName}`);
        else assert.equal(env.MANAGEMENT_ENDPOINT, undefined, spec.name);
        for (const value of Object.values(env))
          assert.ok(!value.startsWith("rrrr"), "the shared secret is never in an environment variable");
      }
      const authEnv = (functionResource(run, "authorizer").inputs.environment as { variables: Record<string, string> }).variables;
      assert.equal(authEnv.AUTH_MODE, c.auth.mode);
      assert.equal(authEnv.AUTH_SECRET_ARN, run.ofType("aws:secretsmanager/secret:Secret")[0]?.state.arn);
      assert.equal(authEnv.AUTH_SHARED_SECRET, undefined);
    });

    it("reserves concurrency for message handlers and keeps the $connect path warm, per config", () => {
      const c = settingsOf(run);
      const configs = run.ofType("aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig");
      for (const spec of FUNCTIONS) {
        const fn = functionResource(run, spec.name);
        assert.equal(fn.inputs.reservedConcurrentExecutions, isMessageHandler(spec) ? c.reservedConcurrency : -1, spec.name);
        const warm = isConnectPath(spec) && c.provisionedConcurrency > 0;
        assert.equal(fn.inputs.publish, warm, `${spec.name}: versions published only for provisioned concurrency`);
        const mine = configs.filter((p) => p.inputs.functionName === fn.state.name);
        if (warm) {
          const [alias] = run.ofType("aws:lambda/alias:Alias").filter((a) => a.inputs.functionName === fn.state.name);
          assert.equal(alias.inputs.name, "live");
          assert.equal(alias.inputs.functionVersion, fn.state.version);
          assert.equal(mine.length, 1, spec.name);
          assert.equal(mine[0].inputs.qualifier, "live");
          assert.equal(mine[0].inputs.provisionedConcurrentExecutions, c.provisionedConcurrency);
        } else {
          assert.equal(mine.length, 0, spec.name);
        }
      }
      assert.equal(c.provisionedConcurrency > 0, stack === "prod");
    });

    it("generates the HS256 secret in Secrets Manager (marked secret, kept across deployments)", () => {
      const c = settingsOf(run);
      const [secret] = run.ofType("aws:secretsmanager/secret:Secret");
      assert.equal(secret.inputs.name, `${c.resourcePrefix}/auth/hs256`);
      const [version] = run.ofType("aws:secretsmanager/secretVersion:SecretVersion");
      assert.equal(version.inputs.secretId, secret.id);
      // Pulumi's wire form of a secret: the value travels (and is stored in state) encrypted.
      const wire = version.inputs.secretString as Record<string, unknown>;
      assert.equal(wire["4dabf18193072939515e22adb298388d"], "1b47061264138c4ac30d75fd1eb44270", "secretString is a Pulumi secret");
      assert.equal(String(wire.value).length, 64);
      assert.ok(run.calls.includes("aws:secretsmanager/getRandomPassword:getRandomPassword"));
    });

    it("throttles the stage's default route from config and writes JSON access logs without the token", () => {
      const c = settingsOf(run);
      const [stage] = run.ofType(T.stage);
      assert.equal(stage.inputs.name, c.stageName);
      assert.equal(stage.inputs.autoDeploy, true);
      const settings = stage.inputs.defaultRouteSettings as Record<string, unknown>;
      assert.equal(settings.throttlingBurstLimit, c.throttlingBurstLimit);
      assert.equal(settings.throttlingRateLimit, c.throttlingRateLimit);
      assert.equal(settings.detailedMetricsEnabled, c.enableDetailedMonitoring);
      assert.equal(settings.dataTraceEnabled, false);
      const access = stage.inputs.accessLogSettings as { destinationArn: string; format: string };
      const accessGroup = run.ofType(T.logGroup).find((g) => g.state.arn === access.destinationArn);
      assert.ok(accessGroup);
      assert.equal(accessGroup.inputs.name, `/aws/apigateway/${c.resourcePrefix}-access`);
      const format = JSON.parse(access.format) as Record<string, string>;
      assert.deepEqual(format, ACCESS_LOG_FORMAT);
      for (const field of ["requestId", "connectionId", "routeKey", "eventType", "status", "error"])
        assert.ok(format[field]?.startsWith("$context."), field);
      assert.equal(format.error, "$context.error.message");
      assert.doesNotMatch(access.format, /token|querystring|identity|header|\$input|\$request/i);
    });

    it("exports the endpoint (wss://…/<stage>), management endpoint, API id, stage and table names", () => {
      const c = settingsOf(run);
      assert.equal(run.outputs.endpoint, `wss://a1b2c3d4e5.execute-api.${run.region}.amazonaws.com/${c.stageName}`);
      assert.ok(String(run.outputs.endpoint).endsWith(`/${c.stageName}`));
      assert.equal(run.outputs.managementEndpoint, `https://a1b2c3d4e5.execute-api.${run.region}.amazonaws.com/${c.stageName}`);
      assert.equal(run.outputs.apiId, "a1b2c3d4e5");
      assert.equal(run.outputs.stage, c.stageName);
      assert.equal(run.outputs.connectionsTable, `${c.resourcePrefix}-connections`);
      assert.equal(run.outputs.roomsTable, `${c.resourcePrefix}-rooms`);
      assert.equal(run.outputs.messagesTable, `${c.resourcePrefix}-messages`);
      assert.match(
        String(run.outputs.dashboardUrl),
        new RegExp(
          `^https://${run.region}\\.console\\.aws\\.amazon\\.com/cloudwatch/home\\?region=${run.region}#dashboards:name=${c.resourcePrefix}-${run.region}$`,
        ),
      );
      assert.equal(run.outputs.alarmTopicArn, `arn:aws:sns:${run.region}:${ACCOUNT}:${c.resourcePrefix}-alarms`);
      assert.equal(run.outputs.pushPolicyArn, `arn:aws:iam::${ACCOUNT}:policy/${c.resourcePrefix}-${run.region}-push`);
      assert.equal(typeof run.outputs.pushPolicyJson, "string");
      assert.equal(run.outputs.maxMessageBytes, c.maxMessageBytes);
      assert.equal(run.outputs.messageRetentionHours, c.messageRetentionHours);
    });

    it("exports exactly the documented outputs", () => {
      assert.deepEqual(Object.keys(run.outputs).sort(), [
        "alarmTopicArn",
        "apiId",
        "authSecretArn",
        "connectionsTable",
        "dashboardUrl",
        "deliveryDlqUrl",
        "deliveryQueueUrl",
        "endpoint",
        "managementEndpoint",
        "maxMessageBytes",
        "messageRetentionHours",
        "messagesTable",
        "pushPolicyArn",
        "pushPolicyJson",
        "roomsTable",
        "stage",
      ]);
    });
  });
}

describe("infra: stack variants under mocks", function () {
  this.timeout(300_000);

  it("rejects bad config before creating anything, with the key and its allowed values", async () => {
    await assert.rejects(
      runStack("dev", { environment: "production" }),
      /config environment: "production" is not allowed; allowed values: dev, staging, prod/,
    );
    await assert.rejects(
      runStack("prod", { lambdaTimeoutSeconds: "60" }),
      /config lambdaTimeoutSeconds: "60" is not allowed; allowed values: an integer from 1 to 29/,
    );
    await assert.rejects(runStack("dev", { logRetentionDay: "7" }), /config logRetentionDay: unknown key/);
  });

  it("in oidc mode creates no secret and grants the authorizer no Secrets Manager access; alarmEmail subscribes; account role can be left alone; reserved concurrency applies to message handlers", async () => {
    const run = await runStack("dev", {
      authMode: "oidc",
      authIssuer: "https://idp.example.com/",
      authJwksUrl: "https://idp.example.com/.well-known/jwks.json",
      alarmEmail: "ops@example.com",
      manageApiGatewayAccount: "false",
      reservedConcurrency: "50",
    });
    assert.deepEqual(countByType(run.resources), withoutZeros(expectedCounts(run)));
    assert.equal(run.ofType("aws:secretsmanager/secret:Secret").length, 0);
    assert.equal(run.ofType("aws:apigateway/account:Account").length, 0);
    const [sub] = run.ofType("aws:sns/topicSubscription:TopicSubscription");
    assert.equal(sub.inputs.protocol, "email");
    assert.equal(sub.inputs.endpoint, "ops@example.com");
    assert.equal(sub.inputs.topic, run.outputs.alarmTopicArn);
    for (const p of run.ofType(T.rolePolicy)) assert.doesNotMatch(String(p.inputs.policy), /secretsmanager/);
    const authorizer = run.ofType(T.fn).find((f) => f.inputs.name === "chat-dev-authorizer")!;
    const env = (authorizer.inputs.environment as { variables: Record<string, string> }).variables;
    assert.equal(env.AUTH_MODE, "oidc");
    assert.equal(env.AUTH_JWKS_URL, "https://idp.example.com/.well-known/jwks.json");
    assert.equal(env.AUTH_SECRET_ARN, undefined);
    assert.equal(run.outputs.authSecretArn, undefined);
    for (const fn of run.ofType(T.fn)) {
      const spec = FUNCTIONS.find((f) => fn.inputs.name === `chat-dev-${f.name}`)!;
      assert.equal(fn.inputs.reservedConcurrentExecutions, isMessageHandler(spec) ? 50 : -1, spec.name);
    }
  });
});
