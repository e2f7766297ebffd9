/**
 * `npm run rotate-secret -- --stack <name>`: rotates the HS256 secret of a deployed stack with no
 * downtime (docs/deploy.md, Rotating the secret).
 *
 * PutSecretValue stores a new 64-character random value as a new version: Secrets Manager makes it
 * AWSCURRENT and moves the old one to AWSPREVIOUS. The authorizer signs nothing; it verifies with
 * AWSCURRENT, and with AWSPREVIOUS for PREVIOUS_KEY_GRACE_SECONDS (1 h) after the rotation, and
 * picks up the new key within KEY_CACHE_TTL_MS (5 min), or at once for a token signed with it.
 * Pulumi wrote only the first value and never touches it again (ignoreChanges in infra/websocketApi.ts),
 * so `pulumi up` after a rotation changes nothing.
 *
 * A second rotation inside the grace period would end the previous key's grace at once (tokens
 * signed with it stop working before they expire), so it is refused unless --force.
 *
 * Exit codes: 0 rotated, 1 failure (AWS error, unreadable outputs), 2 bad usage or refused.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { GetSecretValueCommand, PutSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { PREVIOUS_KEY_GRACE_SECONDS } from "../handlers/functions/authorizer";
import { outputsError, readOutputs } from "./push";

export const USAGE = `Usage: npm run rotate-secret -- (--stack <name> | --outputs <file> | --secret-arn <arn>) [--force]

Rotates the stack's HS256 token-signing secret in Secrets Manager with no downtime: the new value
becomes AWSCURRENT, the old one AWSPREVIOUS, and the authorizer accepts tokens signed with the old
one for ${PREVIOUS_KEY_GRACE_SECONDS / 60} minutes more. Backends that mint tokens read AWSCURRENT again.

Options:
  --stack <name>       read authSecretArn with \`pulumi stack output --json --stack <name>\`
  --outputs <file>     stack outputs as JSON (pulumi stack output --json > file)
  --secret-arn <arn>   the secret's ARN itself
  --force              rotate even though the last rotation is less than ${PREVIOUS_KEY_GRACE_SECONDS / 60} minutes old
                       (tokens signed before it stop working at once)
  -h, --help           this text

Exit codes: 0 rotated, 1 failure, 2 bad usage or refused.
`;

export interface RotateArgs {
  readonly stack?: string;
  readonly outputs?: string;
  readonly secretArn?: string;
  readonly force: boolean;
}

/** A usage error (exit 2): made by a factory like the handlers' errors, one style everywhere. */
export function usageError(message: string): Error {
  const err = new Error(message);
  err.name = "UsageError";
  return err;
}

/** Parses the command line with util.parseArgs; undefined means --help. */
export function parseRotateArgs(argv: readonly string[]): RotateArgs | undefined {
  let v: { stack?: string; outputs?: string; "secret-arn"?: string; force?: boolean; help?: boolean };
  try {
    v = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw usageError((err as Error).message);
  }
  if (v.help) return undefined;
  const sources = [v.stack, v.outputs, v["secret-arn"]].filter((x) => x !== undefined);
  if (sources.length !== 1) throw usageError("give exactly one of --stack, --outputs and --secret-arn");
  return {
    ...(v.stack !== undefined ? { stack: v.stack } : {}),
    ...(v.outputs !== undefined ? { outputs: v.outputs } : {}),
    ...(v["secret-arn"] !== undefined ? { secretArn: v["secret-arn"] } : {}),
    force: v.force ?? false,
  };
}

const OPTIONS = {
  stack: { type: "string" },
  outputs: { type: "string" },
  "secret-arn": { type: "string" },
  force: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** The secret's region, from its ARN (arn:{partition}:secretsmanager:{region}:{account}:secret:{name}). */
export function regionOf(secretArn: string): string {
  const m = /^arn:[^:]+:secretsmanager:([a-z0-9-]+):\d{12}:secret:.+$/.exec(secretArn);
  if (!m) throw usageError(`"${secretArn}" is not a Secrets Manager secret ARN`);
  return m[1];
}

/** A new secret value: 48 random bytes, 64 URL-safe characters (HS256 needs at least 32 bytes). */
export function newSecretValue(): string {
  return randomBytes(48).toString("base64url");
}

export interface RotationResult {
  readonly versionId: string;
  /** When the previous key stops being accepted (epoch ms). */
  readonly previousValidUntilMs: number;
}

export interface RotationDeps {
  readonly client: Pick<SecretsManagerClient, "send">;
  readonly now?: () => number;
  readonly value?: () => string;
}

/** Refused: the last rotation is inside the grace period (exit 2 unless --force). */
export function tooSoonError(ageMs: number): Error {
  const err = new Error(
    `the current key is ${Math.round(ageMs / 60_000)} minute(s) old: tokens signed with the key before it are still in their ` +
      `${PREVIOUS_KEY_GRACE_SECONDS / 60}-minute grace period and would stop working at once. Wait, or pass --force.`,
  );
  err.name = "TooSoonError";
  return err;
}

export async function rotateSecret(secretArn: string, force: boolean, deps: RotationDeps): Promise<RotationResult> {
  const now = deps.now ?? Date.now;
  const current = await deps.client.send(new GetSecretValueCommand({ SecretId: secretArn, VersionStage: "AWSCURRENT" }));
  const ageMs = current.CreatedDate ? now() - new Date(current.CreatedDate).getTime() : Infinity;
  if (!force && ageMs < PREVIOUS_KEY_GRACE_SECONDS * 1000) throw tooSoonError(ageMs);
  // The token makes a retried call store one version, not two (PutSecretValue is idempotent per token).
  const out = await deps.client.send(
    new PutSecretValueCommand({ SecretId: secretArn, SecretString: (deps.value ?? newSecretValue)(), ClientRequestToken: randomUUID() }),
  );
  if (!out.VersionId || !(out.VersionStages ?? []).includes("AWSCURRENT")) {
    throw new Error(
      `Secrets Manager stored version ${out.VersionId ?? "?"} without making it AWSCURRENT (stages: ${(out.VersionStages ?? []).join(", ")})`,
    );
  }
  return { versionId: out.VersionId, previousValidUntilMs: now() + PREVIOUS_KEY_GRACE_SECONDS * 1000 };
}

function secretArnFrom(args: RotateArgs): string {
  if (args.secretArn !== undefined) return args.secretArn;
  const outputs = readOutputs(args);
  const arn = outputs.authSecretArn;
  if (typeof arn !== "string" || arn === "") {
    throw outputsError('the outputs have no "authSecretArn": the stack is in oidc mode (no secret to rotate) or these are not its outputs');
  }
  return arn;
}

/** Where the command writes (process.stdout / process.stderr, or a test's sink). */
export interface TextSink {
  write(text: string): unknown;
}

export async function main(
  argv: readonly string[],
  out: TextSink = process.stdout,
  err: TextSink = process.stderr,
  client?: Pick<SecretsManagerClient, "send">,
): Promise<number> {
  let args: RotateArgs | undefined;
  try {
    args = parseRotateArgs(argv);
  } catch (e) {
    err.write(`rotate-secret: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (!args) {
    out.write(USAGE);
    return 0;
  }
  try {
    const arn = secretArnFrom(args);
    const sm = client ?? new SecretsManagerClient({ region: regionOf(arn), maxAttempts: 3 });
    const r = await rotateSecret(arn, args.force, { client: sm });
    out.write(
      `rotated ${arn}: new AWSCURRENT version ${r.versionId}\n` +
        `tokens signed with the previous key are accepted until ${new Date(r.previousValidUntilMs).toISOString()}; ` +
        `warm authorizer instances read the new key within 5 minutes (at once for a token signed with it).\n` +
        `Backends that mint tokens: read AWSCURRENT again now.\n`,
    );
    return 0;
  } catch (e) {
    const name = (e as Error).name;
    err.write(`rotate-secret: ${(e as Error).message ?? String(e)}\n`);
    return name === "TooSoonError" || name === "UsageError" ? 2 : 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`rotate-secret: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
