/**
 * A Secrets Manager endpoint on loopback, driven by the unchanged AWS SDK v3 client
 * (AWS_ENDPOINT_URL_SECRETS_MANAGER): the subset the authorizer and `npm run rotate-secret` use,
 * with the staging-label behaviour Secrets Manager documents:
 *  - GetSecretValue {SecretId, VersionStage?} (default AWSCURRENT); ResourceNotFoundException when
 *    no version carries the label (a secret never rotated has no AWSPREVIOUS);
 *  - PutSecretValue {SecretId, SecretString, ClientRequestToken}: the new version becomes
 *    AWSCURRENT, the old AWSCURRENT becomes AWSPREVIOUS, the old AWSPREVIOUS loses its label; the
 *    same ClientRequestToken with the same value is idempotent (Secrets Manager API reference);
 *  - DescribeSecret: VersionIdsToStages.
 * JSON 1.1 protocol: `X-Amz-Target: secretsmanager.<Operation>`, errors as `{"__type", "message"}`.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { sigV4AccessKeyId } from "../../local/gateway";
import { recordSecretsManagerCall } from "./awsCalls";
import { readAwsJsonRequest } from "./awsRequest";

export interface FakeVersion {
  readonly versionId: string;
  readonly value: string;
  /** Epoch ms. */
  createdAtMs: number;
  stages: string[];
}

export interface FakeSecretsManager {
  readonly endpoint: string;
  readonly arn: string;
  /** Every request: `<Operation> <VersionStage or ->`. */
  readonly requests: string[];
  readonly versions: FakeVersion[];
  /** Makes the next `n` requests fail with a 500 (InternalServiceError). */
  failNext(n: number): void;
  /** The version holding a label. */
  staged(stage: string): FakeVersion | undefined;
  /** Rotates as PutSecretValue does, from the test's side. */
  rotate(value: string, createdAtMs?: number): FakeVersion;
  close(): Promise<void>;
}

export async function startFakeSecretsManager(initial: { value: string; createdAtMs?: number; arn?: string }): Promise<FakeSecretsManager> {
  const arn = initial.arn ?? "arn:aws:secretsmanager:us-east-1:123456789012:secret:chat-dev/auth/hs256-AbCdEf";
  const versions: FakeVersion[] = [
    { versionId: "v-0000", value: initial.value, createdAtMs: initial.createdAtMs ?? Date.now(), stages: ["AWSCURRENT"] },
  ];
  const tokens = new Map<string, FakeVersion>();
  const requests: string[] = [];
  let failures = 0;
  const staged = (stage: string) => versions.find((v) => v.stages.includes(stage));
  const put = (value: string, versionId: string, createdAtMs: number): FakeVersion => {
    const previous = staged("AWSPREVIOUS");
    const current = staged("AWSCURRENT");
    if (previous) previous.stages = previous.stages.filter((s) => s !== "AWSPREVIOUS");
    if (current) current.stages = [...current.stages.filter((s) => s !== "AWSCURRENT"), "AWSPREVIOUS"];
    const v: FakeVersion = { versionId, value, createdAtMs, stages: ["AWSCURRENT"] };
    versions.push(v);
    return v;
  };
  const server = http.createServer((req, res) => {
    readAwsJsonRequest(req, ({ operation: op, body }) => {
      const input = JSON.parse(body.toString("utf8") || "{}") as {
        SecretId?: string;
        VersionStage?: string;
        SecretString?: string;
        ClientRequestToken?: string;
      };
      requests.push(`${op} ${input.VersionStage ?? "-"}`);
      // Who called, for tests/infra/iamSimulation.ts (the authorizer signs with its own key id).
      recordSecretsManagerCall(sigV4AccessKeyId(req.headers.authorization), op, String(input.SecretId));
      const reply = (status: number, payload: unknown) => {
        res.writeHead(status, { "content-type": "application/x-amz-json-1.1" });
        res.end(JSON.stringify(payload));
      };
      const error = (status: number, type: string, message: string) => reply(status, { __type: type, message });
      if (failures > 0) {
        failures--;
        return error(500, "InternalServiceError", "injected failure");
      }
      if (input.SecretId !== arn) return error(400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.");
      switch (op) {
        case "GetSecretValue": {
          const v = staged(input.VersionStage ?? "AWSCURRENT");
          if (!v)
            return error(
              400,
              "ResourceNotFoundException",
              `Secrets Manager can't find the specified secret value for staging label: ${input.VersionStage}`,
            );
          return reply(200, {
            ARN: arn,
            Name: "chat-dev/auth/hs256",
            VersionId: v.versionId,
            SecretString: v.value,
            VersionStages: v.stages,
            CreatedDate: v.createdAtMs / 1000,
          });
        }
        case "PutSecretValue": {
          if (!input.SecretString || !input.ClientRequestToken)
            return error(400, "InvalidParameterException", "SecretString and ClientRequestToken are required here");
          const seen = tokens.get(input.ClientRequestToken);
          if (seen) {
            if (seen.value !== input.SecretString)
              return error(400, "ResourceExistsException", "A version with this ClientRequestToken already exists with a different value.");
            return reply(200, { ARN: arn, Name: "chat-dev/auth/hs256", VersionId: seen.versionId, VersionStages: seen.stages });
          }
          const v = put(input.SecretString, `v-${input.ClientRequestToken}`, Date.now());
          tokens.set(input.ClientRequestToken, v);
          return reply(200, { ARN: arn, Name: "chat-dev/auth/hs256", VersionId: v.versionId, VersionStages: v.stages });
        }
        case "DescribeSecret":
          return reply(200, {
            ARN: arn,
            Name: "chat-dev/auth/hs256",
            VersionIdsToStages: Object.fromEntries(versions.filter((v) => v.stages.length > 0).map((v) => [v.versionId, v.stages])),
          });
        default:
          return error(400, "InvalidRequestException", `operation ${op} is not emulated`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  let rotations = 0;
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arn,
    requests,
    versions,
    failNext: (n) => (failures = n),
    staged,
    rotate: (value, createdAtMs = Date.now()) => put(value, `v-test-${++rotations}`, createdAtMs),
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
