/**
 * Mocha global fixtures: one DynamoDB Local for the whole run, started only if a test file asks for
 * it through `sharedDynamo()`. Test files create their own tables under a unique prefix, so they never
 * see each other's data. Tests that stop and restart DynamoDB (fault tests) start their own.
 */
import { startDynamoLocal, type DynamoLocal } from "../../local/dynamoLocal";

let shared: Promise<DynamoLocal> | undefined;

/** The run's shared DynamoDB Local, started on first use. */
export function sharedDynamo(): Promise<DynamoLocal> {
  shared ??= startDynamoLocal();
  return shared;
}

export async function mochaGlobalTeardown(): Promise<void> {
  if (shared) await (await shared).stop();
}

let counter = 0;
/** A table-name prefix unique to this run and call. */
export function uniquePrefix(label: string): string {
  counter += 1;
  return `t${process.pid}-${Date.now().toString(36)}-${counter}-${label}`.slice(0, 200);
}
