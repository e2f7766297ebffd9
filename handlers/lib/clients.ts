/**
 * AWS SDK v3 clients, built once per cold start by a factory and reused by every invocation.
 * Short timeouts and few attempts: a DynamoDB or `@connections` outage must turn into an INTERNAL
 * error frame well inside API Gateway's 29 s integration timeout (AWS-FACTS: Limits), never a hang.
 */
import { DynamoDBClient, type DynamoDBClientConfig } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { HandlerConfig } from "./config";
import { attachUsageMiddleware, type UsageScope } from "./usage";

/** Timeouts of every SDK client: connect within 1 s, answer within 5 s. */
export const SDK_TIMEOUTS = { connectionTimeout: 1000, requestTimeout: 5000 } as const;

/**
 * The access key id a function signs with locally: its own, as each deployed function signs with
 * its own role's keys, so whatever sits in front of DynamoDB Local or `@connections` can tell the
 * callers apart (tests/infra/iamSimulation.ts evaluates each one's calls against its own policy).
 */
export function localAccessKeyId(functionName: string): string {
  // DynamoDB Local accepts only letters and digits in an access key id: "localChat", "localPush".
  const name = functionName.replace(/[^A-Za-z0-9]/g, "");
  return `local${name.charAt(0).toUpperCase()}${name.slice(1)}`;
}

/**
 * Credentials when running against DynamoDB Local / the local runtime without AWS credentials in
 * the environment (both accept any signature). Deployed functions use the execution role.
 */
export function localCredentials(config: HandlerConfig): { accessKeyId: string; secretAccessKey: string } | undefined {
  if (config.dynamodbEndpoint === undefined || process.env.AWS_ACCESS_KEY_ID) return undefined;
  return { accessKeyId: localAccessKeyId(config.functionName), secretAccessKey: "local" };
}

/** Wraps a client with X-Ray subsegments when tracing is on; the SDK is loaded only then. */
export function traced<T>(config: HandlerConfig, client: T): T {
  if (!config.tracing) return client;
  const xray = require("aws-xray-sdk-core") as { captureAWSv3Client<C>(c: C): C };
  return xray.captureAWSv3Client(client);
}

/** AWS credentials as the SDK clients take them: static keys or a provider. */
export type SdkCredentials = DynamoDBClientConfig["credentials"];

/**
 * The DynamoDB client (destroy it to close its sockets: the document client's destroy() does not).
 * Credentials default to the execution role's, or to localCredentials() locally.
 */
export function createDynamoClient(config: HandlerConfig, credentials: SdkCredentials = localCredentials(config)): DynamoDBClient {
  return new DynamoDBClient({
    region: config.region,
    maxAttempts: 3,
    requestHandler: { ...SDK_TIMEOUTS },
    ...(config.dynamodbEndpoint ? { endpoint: config.dynamodbEndpoint } : {}),
    ...(credentials ? { credentials } : {}),
  });
}

export function createDocumentClient(
  config: HandlerConfig,
  usage: UsageScope,
  base: DynamoDBClient = createDynamoClient(config),
): DynamoDBDocumentClient {
  const doc = DynamoDBDocumentClient.from(traced(config, base), {
    marshallOptions: { removeUndefinedValues: true },
  });
  attachUsageMiddleware(doc, usage, config.tables);
  return doc;
}
