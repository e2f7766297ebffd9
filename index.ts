/**
 * The chat API stack: config, encryption key, tables, the large rooms' delivery queue, WebSocket
 * API (with its functions and the queue's worker), monitoring and the backends' push policy, composed; nothing else lives here (../shared/STYLE.md).
 */
import * as aws from "@pulumi/aws";
import { FACTORIES } from "./handlers";
import { DEFAULT_METRICS_NAMESPACE } from "./handlers/metrics";
import { settingsFromConfig } from "./handlers/settings";
import { TABLE_NAMES } from "./handlers/tables";
import { ChatTables } from "./infra/chatTables";
import { loadConfig } from "./infra/config";
import { DeliveryQueue } from "./infra/deliveryQueue";
import { EncryptionKey } from "./infra/encryptionKey";
import { Monitoring } from "./infra/monitoring";
import { PushPolicy } from "./infra/pushPolicy";
import { WebSocketApi } from "./infra/websocketApi";

const config = loadConfig();
const prefix = config.resourcePrefix;
const tags = { Project: config.projectName, Environment: config.environment, Stack: config.stack, ManagedBy: "pulumi" };
const region = aws.getRegionOutput().region;
const partition = aws.getPartitionOutput().partition;
// What a stack keeps on `pulumi destroy` (tables, logs, secret, key): docs/deploy.md, "Tearing prod down".
const protectData = config.deletionProtection;

const key = new EncryptionKey(prefix, { namePrefix: prefix, deletionWindowInDays: protectData ? 30 : 7, protect: protectData });

const tables = new ChatTables(prefix, {
  namePrefix: prefix,
  deletionProtection: config.deletionProtection,
  pointInTimeRecovery: config.pointInTimeRecovery,
  tags,
});

// Large rooms' broadcasts, one job per shard, read by the `deliver` worker (docs/deploy.md, "The delivery queue").
const deliveries = new DeliveryQueue(prefix, { namePrefix: prefix, workerTimeoutSeconds: config.deliveryWorkerTimeoutSeconds, tags });

const api = new WebSocketApi(prefix, {
  namePrefix: prefix,
  stageName: config.stageName,
  region,
  partition,
  awsProfile: config.awsProfile,
  factories: FACTORIES,
  tableNames: tables.names,
  tableArns: tables.arns,
  settings: {
    environment: config.environment,
    // Every behaviour setting, from its config key (handlers/settings.ts): per-function EMF metrics
    // only with enableDetailedMonitoring, since each series is billed monthly (docs/cost.md).
    ...settingsFromConfig(config),
    metricsNamespace: DEFAULT_METRICS_NAMESPACE,
    auth: config.auth,
    allowedOrigins: config.allowedOrigins,
  },
  tracing: config.enableXrayTracing,
  memoryMb: config.lambdaMemoryMb,
  timeoutSeconds: config.lambdaTimeoutSeconds,
  reservedConcurrency: config.reservedConcurrency,
  provisionedConcurrency: config.provisionedConcurrency,
  throttlingBurstLimit: config.throttlingBurstLimit,
  throttlingRateLimit: config.throttlingRateLimit,
  detailedMetrics: config.enableDetailedMonitoring,
  logRetentionDays: config.logRetentionDays,
  logKmsKeyArn: key.keyArn,
  manageApiGatewayAccount: config.manageApiGatewayAccount,
  protectData,
  deliveryQueue: {
    queueArn: deliveries.queueArn,
    queueUrl: deliveries.queueUrl,
    maximumConcurrency: config.deliveryWorkerConcurrency,
    workerTimeoutSeconds: config.deliveryWorkerTimeoutSeconds,
  },
  tags,
});

const monitoring = new Monitoring(prefix, {
  namePrefix: prefix,
  region,
  apiId: api.apiId,
  stage: config.stageName,
  routeKeys: api.routeKeys,
  functions: Object.entries(api.functions).map(([name, fn]) => ({ name, lambda: fn.lambda, logGroupName: fn.logGroupName })),
  tables: TABLE_NAMES.map((name) => ({ name, table: tables.tables[name] })),
  deliveryQueue: { queueName: deliveries.queueName, dlqName: deliveries.dlqName, workerName: Object.keys(api.triggers)[0] },
  accessLogGroupName: api.accessLogGroupName,
  metricsNamespace: DEFAULT_METRICS_NAMESPACE,
  detailedMonitoring: config.enableDetailedMonitoring,
  thresholds: config.alarms,
  alarmEmail: config.alarmEmail,
  kmsKeyArn: key.keyArn,
  tags,
});

// What a backend role attaches to push system frames (push/, docs/push.md).
const pushPolicy = new PushPolicy(prefix, {
  namePrefix: prefix,
  region,
  tableArns: tables.arns,
  executionArn: api.executionArn,
  stage: config.stageName,
  deliveryQueueArn: deliveries.queueArn,
  tags,
});

export const endpoint = api.endpoint;
export const managementEndpoint = api.managementEndpoint;
export const apiId = api.apiId;
export const stage = api.stage;
export const connectionsTable = tables.names.connections;
export const roomsTable = tables.names.rooms;
export const messagesTable = tables.names.messages;
export const authSecretArn = api.authSecretArn;
export const dashboardUrl = monitoring.dashboardUrl;
export const alarmTopicArn = monitoring.alarmTopicArn;
export const pushPolicyArn = pushPolicy.arn;
export const pushPolicyJson = pushPolicy.json;
// What producers send large rooms' jobs to, and where the jobs that failed 5 times wait (docs/deploy.md).
export const deliveryQueueUrl = deliveries.queueUrl;
export const deliveryDlqUrl = deliveries.dlqUrl;
// The push module and `npm run push` read these, so a push is validated like a chat message and kept as long.
export const maxMessageBytes = config.maxMessageBytes;
export const messageRetentionHours = config.messageRetentionHours;
