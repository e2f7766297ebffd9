/**
 * Mocha global fixtures: one DynamoDB Local for the whole run, started only if a test file asks for
 * it through `sharedDynamo()`. Test files create their own tables under a unique prefix, so they never
 * see each other's data. Tests that stop and restart DynamoDB (fault tests) start their own.
 */
import "./asyncLocalStorage"; // first: what it installs applies to every instance created after it
import * as fs from "node:fs";
import { startDynamoLocal, type DynamoLocal } from "../../local/dynamoLocal";
import { RECORDED_CALLS, startDynamoRecorder, type RecordingRelay } from "./awsCalls";

/** Where a run writes RECORDED_CALLS at its end, when set. */
export const RECORDED_CALLS_FILE_ENV = "CHAT_TEST_RECORDED_CALLS_FILE";

let shared: Promise<DynamoLocal> | undefined;

/** The run's shared DynamoDB Local, started on first use. */
export function sharedDynamo(): Promise<DynamoLocal> {
  shared ??= startDynamoLocal();
  return shared;
}

let recorded: Promise<RecordingRelay> | undefined;
/**
 * The shared DynamoDB Local behind a relay that records every request with its caller
 * (tests/support/awsCalls.ts): what the suites whose calls tests/infra/iamSimulation.ts evaluates use.
 */
export function recordedDynamo(): Promise<{ readonly endpoint: string }> {
  recorded ??= sharedDynamo().then((d) => startDynamoRecorder(d.endpoint));
  return recorded;
}

export async function mochaGlobalTeardown(): Promise<void> {
  // A child run started by tests/infra/iamSimulation.ts hands its recorded calls back in a file.
  if (process.env[RECORDED_CALLS_FILE_ENV]) fs.writeFileSync(process.env[RECORDED_CALLS_FILE_ENV], JSON.stringify(RECORDED_CALLS));
  if (recorded) await (await recorded).stop();
  if (shared) await (await shared).stop();
}

let counter = 0;
/** A table-name prefix unique to this run and call. */
export function uniquePrefix(label: string): string {
  counter += 1;
  return `t${process.pid}-${Date.now().toString(36)}-${counter}-${label}`.slice(0, 200);
}
