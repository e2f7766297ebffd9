/**
 * The WebSocket API: API Gateway v2 `WEBSOCKET` API, one WebSocketRoute (infra/webSocketRoute.ts:
 * permission, AWS_PROXY integration, route, route response) per entry of the route table
 * (handlers/routes.ts), the REQUEST authorizer on `$connect`, a throttled stage with JSON access
 * logs, and the functions behind it (infra/chatFunction.ts). The constructor lists the steps; each is
 * a function below it.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { functionEnvironment, takesDeliveryQueueUrl, type DeploymentSettings } from "../handlers/env";
import type { SettingValues } from "../handlers/settings";
import type { HandlerFactory } from "../handlers/events";
import { FUNCTIONS, ROUTE_SELECTION_EXPRESSION, type FunctionName, type FunctionSpec } from "../handlers/routes";
import type { TableName } from "../handlers/tables";
import { ApiGatewayAccountLogging } from "./apiGatewayAccount";
import { ChatFunction } from "./chatFunction";
import { invokePermission, WebSocketRoute } from "./webSocketRoute";

/** Identity source of the authorizer: browsers cannot set headers on a WebSocket (AWS-FACTS: Routing). */
export const AUTHORIZER_IDENTITY_SOURCE = "route.request.querystring.token";

/**
 * Access-log line, one JSON object per request. Deliberately no `$context.identity.*` query data
 * and no request parameters: the token travels in the query string and must never be logged.
 * Variables: API Gateway developer guide, websocket-api-logging.
 */
export const ACCESS_LOG_FORMAT: Readonly<Record<string, string>> = {
  requestId: "$context.requestId",
  extendedRequestId: "$context.extendedRequestId",
  requestTime: "$context.requestTimeEpoch",
  connectionId: "$context.connectionId",
  routeKey: "$context.routeKey",
  eventType: "$context.eventType",
  messageId: "$context.messageId",
  status: "$context.status",
  error: "$context.error.message",
  errorType: "$context.error.responseType",
  integrationError: "$context.integration.error",
  integrationStatus: "$context.integration.status",
  integrationLatency: "$context.integration.latency",
  authorizerError: "$context.authorizer.error",
  authorizeStatus: "$context.authorize.status",
  principalId: "$context.authorizer.principalId",
};

/** Deployment settings the API hands to every function (the rest is resolved from resources). */
export type FunctionSettings = Omit<
  DeploymentSettings & SettingValues,
  "tableNames" | "managementEndpoint" | "stage" | "tracing" | "auth" | "dynamodbEndpoint" | "deliveryQueueUrl" | "sqsEndpoint"
> & {
  readonly auth: Omit<DeploymentSettings["auth"], "secretArn" | "sharedSecret">;
};

/** Functions that serve messages (not the handshake or its end): what reservedConcurrency applies to. */
export function isMessageHandler(spec: FunctionSpec): boolean {
  return spec.routeKey !== undefined && spec.routeKey !== "$connect" && spec.routeKey !== "$disconnect";
}

/** The function behind the REQUEST authorizer: the one with neither a route nor a trigger. */
export function isAuthorizer(spec: FunctionSpec): boolean {
  return spec.routeKey === undefined && spec.trigger === undefined;
}

/** The functions a handshake waits for: the authorizer, then $connect. */
export function isConnectPath(spec: FunctionSpec): boolean {
  return isAuthorizer(spec) || spec.routeKey === "$connect";
}

/** Lambda's batch size for the delivery worker: one job (one shard) per invocation (contract 4). */
export const DELIVERY_BATCH_SIZE = 1;

/** What the functions need of the delivery queue (infra/deliveryQueue.ts). */
export interface DeliveryQueueRef {
  readonly queueArn: pulumi.Input<string>;
  /** What producers send to (env DELIVERY_QUEUE_URL). */
  readonly queueUrl: pulumi.Input<string>;
  /** The event source mapping's scalingConfig.maximumConcurrency (deliveryWorkerConcurrency, 2-1000). */
  readonly maximumConcurrency: number;
  /** Timeout of the function the queue triggers, in seconds (infra/config.ts deliveryWorkerTimeoutSeconds). */
  readonly workerTimeoutSeconds: number;
}

export interface WebSocketApiArgs {
  /** Prefix of physical names (`<prefix>-<function>`, `/aws/apigateway/<prefix>-access`). */
  readonly namePrefix: string;
  /** Stage name; the endpoint is `wss://{apiId}.execute-api.{region}.amazonaws.com/<stageName>`. */
  readonly stageName: string;
  /** The AWS region the API is deployed in (API Gateway's account logging setting is per region). */
  readonly region: pulumi.Input<string>;
  /** The account's partition (`aws`, `aws-cn`, ...): ARNs of AWS managed policies. */
  readonly partition: pulumi.Input<string>;
  /** Named AWS profile of the stack's provider (`aws:profile`), used by the account logging step. */
  readonly awsProfile?: string;
  /** Handler factories by function name (handlers/index.ts FACTORIES). */
  readonly factories: Readonly<Record<FunctionName, HandlerFactory>>;
  /** Route table (default handlers/routes.ts FUNCTIONS). */
  readonly functions?: readonly FunctionSpec[];
  /** Physical table names by logical name. */
  readonly tableNames: pulumi.Input<Record<TableName, string>>;
  /** Table ARNs by logical name. */
  readonly tableArns: pulumi.Input<Record<TableName, string>>;
  /** Behaviour settings passed to the functions' environment. */
  readonly settings: FunctionSettings;
  /** Active X-Ray tracing on every function (default false). */
  readonly tracing?: boolean;
  /** Lambda memory in MB (default 256). */
  readonly memoryMb?: number;
  /** Lambda timeout in seconds (default 10; the integration itself times out at 29 s). */
  readonly timeoutSeconds?: number;
  /** Reserved concurrency of each message-handling function: every route but $connect and $disconnect (default -1: unreserved). */
  readonly reservedConcurrency?: number;
  /** Provisioned concurrency of the $connect path, the authorizer and connect (default 0: none). */
  readonly provisionedConcurrency?: number;
  /** Stage default route burst limit (default 100). */
  readonly throttlingBurstLimit?: number;
  /** Stage default route rate limit, requests per second (default 50). */
  readonly throttlingRateLimit?: number;
  /** Per-route CloudWatch metrics (default false). */
  readonly detailedMetrics?: boolean;
  /** Retention of every log group in days (default 7). */
  readonly logRetentionDays?: number;
  /** KMS key encrypting every log group. */
  readonly logKmsKeyArn: pulumi.Input<string>;
  /**
   * Ensure API Gateway's account-wide CloudWatch Logs role is set in the region, creating one only if
   * none is (never replaced, never reset on destroy: infra/apiGatewayAccount.ts). Default true.
   */
  readonly manageApiGatewayAccount?: boolean;
  /**
   * Keep data on `pulumi destroy`: the secret (30-day recovery window) and the access log group
   * (CloudWatch Logs deletion protection) are protected by AWS and by Pulumi's `protect`. Default false.
   */
  readonly protectData?: boolean;
  /**
   * The delivery queue of large rooms: its URL and SendMessage go to the functions that enqueue
   * deliveries, its event source mapping triggers the function whose spec names it. Required when the
   * route table has either.
   */
  readonly deliveryQueue?: DeliveryQueueRef;
  /** Tags (default none). */
  readonly tags?: Record<string, string>;
}

export class WebSocketApi extends pulumi.ComponentResource {
  /** `wss://{apiId}.execute-api.{region}.amazonaws.com/{stage}`: exactly what a client connects to. */
  public readonly endpoint: pulumi.Output<string>;
  /** `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}`: the `@connections` API. */
  public readonly managementEndpoint: pulumi.Output<string>;
  public readonly apiId: pulumi.Output<string>;
  public readonly executionArn: pulumi.Output<string>;
  public readonly stage: pulumi.Output<string>;
  public readonly accessLogGroupName: pulumi.Output<string>;
  /** Secrets Manager ARN of the HS256 secret (shared-secret mode), else undefined. */
  public readonly authSecretArn: pulumi.Output<string | undefined>;
  /** The functions by logical name. */
  public readonly functions: Readonly<Record<string, ChatFunction>>;
  /** Route keys served, in route-table order. */
  public readonly routeKeys: readonly string[];
  /** The event source mappings of the queue-triggered functions, by function name. */
  public readonly triggers: Readonly<Record<string, aws.lambda.EventSourceMapping>>;

  constructor(name: string, args: WebSocketApiArgs, opts?: pulumi.ComponentResourceOptions) {
    super("websocket-chat:infra:WebSocketApi", name, {}, opts);
    const parent = this;
    const specs = args.functions ?? FUNCTIONS;
    const tracing = args.tracing ?? false;
    const stageName = args.stageName;
    const protect = args.protectData ?? false;

    const api = createApi();
    const managementEndpoint = managementEndpointOf(api);
    const secret = createAuthSecret();
    const functions = createFunctions();
    const authorizer = createAuthorizer();
    const routes = createRoutes();
    const triggers = createTriggers();
    const accessLogs = createAccessLogs();
    const accountLogging = ensureAccountLogging();
    const stage = createStage();

    this.apiId = api.id;
    this.executionArn = api.executionArn;
    this.managementEndpoint = managementEndpoint;
    this.authSecretArn = secret ? secret.arn.apply((a): string | undefined => a) : pulumi.output(undefined);
    this.stage = stage.name;
    this.endpoint = pulumi.interpolate`${api.apiEndpoint}/${stage.name}`;
    this.accessLogGroupName = accessLogs.name;
    this.functions = functions;
    this.routeKeys = routes.map((r) => r.routeKey);
    this.triggers = triggers;
    this.registerOutputs({
      endpoint: this.endpoint,
      managementEndpoint: this.managementEndpoint,
      apiId: this.apiId,
      stage: this.stage,
      accessLogGroupName: this.accessLogGroupName,
    });

    function createApi() {
      return new aws.apigatewayv2.Api(
        `${name}-api`,
        {
          name: `${args.namePrefix}-websocket`,
          protocolType: "WEBSOCKET",
          routeSelectionExpression: ROUTE_SELECTION_EXPRESSION,
          description: "Real-time chat WebSocket API",
          tags: args.tags,
        },
        { parent },
      );
    }

    // The functions need the management endpoint but exist before the stage: it is the API's own
    // endpoint (wss://{apiId}.execute-api.{region}.{dnsSuffix}, whatever the partition's DNS suffix)
    // over https, plus the stage name, so no cycle and nothing created inside apply().
    function managementEndpointOf(api: aws.apigatewayv2.Api) {
      return pulumi.interpolate`${api.apiEndpoint.apply((e) => e.replace(/^wss:\/\//, "https://"))}/${stageName}`;
    }

    // Shared-secret mode: the HS256 secret is generated here and kept in Secrets Manager, never in a
    // stack file. GetRandomPassword runs on every `pulumi up`; ignoreChanges keeps the first value,
    // so tokens stay valid across deployments. Pulumi writes only that first value: rotation is
    // `npm run rotate-secret` (scripts/rotateSecret.ts: PutSecretValue makes a new AWSCURRENT and
    // keeps the old one as AWSPREVIOUS, which the authorizer still accepts for a grace period), so
    // versionStages, which a rotation moves, is ignored too (the engine would otherwise move the
    // labels back to this first version).
    function createAuthSecret() {
      if (args.settings.auth.mode !== "shared-secret") return undefined;
      const secret = new aws.secretsmanager.Secret(
        `${name}-auth-secret`,
        {
          name: `${args.namePrefix}/auth/hs256`,
          description: "HS256 key signing and verifying chat access tokens",
          // Protected stacks get Secrets Manager's longest recovery window; others delete at once so a
          // destroyed dev stack can be re-created without waiting for the name (7+ days otherwise).
          recoveryWindowInDays: protect ? 30 : 0,
          tags: args.tags,
        },
        { parent, protect },
      );
      const random = aws.secretsmanager.getRandomPasswordOutput({ passwordLength: 64, excludePunctuation: true }, { parent });
      new aws.secretsmanager.SecretVersion(
        `${name}-auth-secret-value`,
        { secretId: secret.id, secretString: pulumi.secret(random.randomPassword) },
        { parent, protect, ignoreChanges: ["secretString", "versionStages"], additionalSecretOutputs: ["secretString"] },
      );
      return secret;
    }

    function deliveryQueueOf(spec: FunctionSpec): DeliveryQueueRef | undefined {
      if (!spec.enqueuesDeliveries && spec.trigger === undefined) return undefined;
      if (!args.deliveryQueue) throw new Error(`function ${spec.name} uses the delivery queue, but WebSocketApi was given none`);
      return args.deliveryQueue;
    }

    function createFunctions() {
      const secretArn = secret?.arn;
      const functions: Record<string, ChatFunction> = {};
      for (const spec of specs) {
        const queue = deliveryQueueOf(spec);
        const queueUrl = takesDeliveryQueueUrl(spec) ? queue?.queueUrl : undefined;
        const environment = pulumi
          .all([args.tableNames, managementEndpoint, secretArn ?? pulumi.output(undefined), queueUrl ?? pulumi.output(undefined)])
          .apply(([tableNames, managementEndpoint, authSecretArn, deliveryQueueUrl]) =>
            functionEnvironment(spec, {
              ...args.settings,
              tableNames,
              managementEndpoint,
              stage: stageName,
              tracing,
              auth: { ...args.settings.auth, ...(authSecretArn ? { secretArn: authSecretArn } : {}) },
              // DELIVERY_QUEUE_URL, for the functions that enqueue and for the worker (env.ts).
              ...(deliveryQueueUrl ? { deliveryQueueUrl } : {}),
            }),
          );
        functions[spec.name] = new ChatFunction(
          `${name}-${spec.name}`,
          {
            spec,
            factory: args.factories[spec.name],
            functionName: `${args.namePrefix}-${spec.name}`,
            environment,
            tableArns: args.tableArns,
            executionArn: api.executionArn,
            stage: stageName,
            authSecretArn: spec.readsAuthSecret ? secretArn : undefined,
            deliveryQueueArn: queue?.queueArn,
            tracing,
            memoryMb: args.memoryMb,
            // A queue-triggered worker is not bound by API Gateway's 29 s: it gets the time a shard takes.
            timeoutSeconds: spec.trigger === "deliveryQueue" && queue ? queue.workerTimeoutSeconds : args.timeoutSeconds,
            reservedConcurrency: isMessageHandler(spec) ? args.reservedConcurrency : undefined,
            // A handshake waits for a cold authorizer and then a cold $connect: that is the path to keep warm.
            provisionedConcurrency: isConnectPath(spec) ? args.provisionedConcurrency : undefined,
            logRetentionDays: args.logRetentionDays,
            logKmsKeyArn: args.logKmsKeyArn,
            protectLogs: protect,
            tags: args.tags,
          },
          { parent },
        );
      }
      return functions;
    }

    // Traffic must never reach a target before API Gateway may invoke it: each permission is created
    // before the authorizer or integration that points at its target (a stage with autoDeploy goes
    // live with every route or integration change, not when the Stage resource is updated), so
    // switching provisionedConcurrency on or off, or a first deploy, never answers 500s.
    function createAuthorizer() {
      const spec = specs.find(isAuthorizer);
      if (!spec) return undefined;
      const fn = functions[spec.name];
      // This API's authorizers: naming the authorizer's id would make the permission wait for the
      // authorizer, the wrong order (see above).
      const permission = invokePermission(`${name}-${spec.name}-invoke`, fn, pulumi.interpolate`${api.executionArn}/authorizers/*`, {
        parent,
      });
      const authorizer = new aws.apigatewayv2.Authorizer(
        `${name}-authorizer`,
        {
          apiId: api.id,
          name: `${args.namePrefix}-${spec.name}`,
          authorizerType: "REQUEST",
          authorizerUri: fn.invokeArn,
          // A missing token is answered 401 by API Gateway before the function runs. WebSocket APIs
          // support no authorizer result caching, so no TTL is set.
          identitySources: [AUTHORIZER_IDENTITY_SOURCE],
        },
        { parent, dependsOn: [permission] },
      );
      return { authorizer, permission };
    }

    // One WebSocketRoute per route-table entry (permission, integration, route, route response).
    function createRoutes() {
      return specs.flatMap((spec) =>
        spec.routeKey === undefined
          ? []
          : [
              new WebSocketRoute(
                `${name}-${spec.name}`,
                {
                  apiId: api.id,
                  executionArn: api.executionArn,
                  stage: stageName,
                  routeKey: spec.routeKey,
                  target: functions[spec.name],
                  description: spec.description,
                  // The REQUEST authorizer runs on $connect only (AWS-FACTS: Routing).
                  authorizerId: spec.routeKey === "$connect" ? authorizer?.authorizer.id : undefined,
                  twoWay: spec.twoWay,
                },
                { parent },
              ),
            ],
      );
    }

    // The queue-triggered functions: an event source mapping each, no route and no invoke permission
    // (Lambda polls the queue with the function's own role: its ConsumeDeliveries statement). Created
    // after the function, which waits for its role policy: Lambda checks the role's SQS permissions
    // when the mapping is created. The worker's reserved concurrency is left unset on purpose:
    // maximumConcurrency already caps how many workers the mapping runs, without taking that many
    // from the account's unreserved pool when the queue is empty (docs/deploy.md).
    function createTriggers() {
      const triggers: Record<string, aws.lambda.EventSourceMapping> = {};
      for (const spec of specs) {
        if (spec.trigger !== "deliveryQueue") continue;
        const queue = deliveryQueueOf(spec)!;
        triggers[spec.name] = new aws.lambda.EventSourceMapping(
          `${name}-${spec.name}-trigger`,
          {
            eventSourceArn: queue.queueArn,
            functionName: functions[spec.name].arn,
            enabled: true,
            batchSize: DELIVERY_BATCH_SIZE,
            // The worker answers { batchItemFailures }: only a failed job is retried (and, after
            // maxReceiveCount receives, moved to the dead-letter queue).
            functionResponseTypes: ["ReportBatchItemFailures"],
            scalingConfig: { maximumConcurrency: queue.maximumConcurrency },
            tags: args.tags,
          },
          { parent },
        );
      }
      return triggers;
    }

    function createAccessLogs() {
      return new aws.cloudwatch.LogGroup(
        `${name}-access-logs`,
        {
          name: `/aws/apigateway/${args.namePrefix}-access`,
          retentionInDays: args.logRetentionDays ?? 7,
          kmsKeyId: args.logKmsKeyArn,
          deletionProtectionEnabled: protect,
          tags: args.tags,
        },
        { parent, protect },
      );
    }

    // WebSocket (like REST) stages can only log once API Gateway's account settings name a
    // CloudWatch Logs role ("CloudWatch Logs role ARN must be set in account settings to enable logging").
    function ensureAccountLogging() {
      if (!(args.manageApiGatewayAccount ?? true)) return undefined;
      return new ApiGatewayAccountLogging(
        `${name}-apigateway-account-logging`,
        { region: args.region, partition: args.partition, profile: args.awsProfile },
        { parent },
      );
    }

    function createStage() {
      // Deploy once every route and invoke permission exists, and only after logging is allowed account-wide.
      const dependsOn: pulumi.Resource[] = [
        ...routes.map((r) => r.route),
        ...(authorizer ? [authorizer.permission] : []),
        ...routes.map((r) => r.permission),
        ...(accountLogging ? [accountLogging] : []),
      ];
      return new aws.apigatewayv2.Stage(
        `${name}-stage`,
        {
          apiId: api.id,
          name: stageName,
          autoDeploy: true,
          description: `${args.namePrefix} ${stageName}`,
          defaultRouteSettings: {
            // Per route, not per client (AWS-FACTS: Limits).
            throttlingBurstLimit: args.throttlingBurstLimit ?? 100,
            throttlingRateLimit: args.throttlingRateLimit ?? 50,
            detailedMetricsEnabled: args.detailedMetrics ?? false,
            // Execution logs would record message bodies; access logs are enough and carry no payload.
            dataTraceEnabled: false,
            loggingLevel: "OFF",
          },
          accessLogSettings: { destinationArn: accessLogs.arn, format: JSON.stringify(ACCESS_LOG_FORMAT) },
          tags: args.tags,
        },
        { parent, dependsOn },
      );
    }
  }
}
