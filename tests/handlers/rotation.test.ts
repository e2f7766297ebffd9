/**
 * Rotating the HS256 secret on a deployed stack, with the unchanged AWS SDK client against a
 * Secrets Manager endpoint on loopback (tests/support/fakeSecretsManager.ts): the authorizer's key
 * ring (AWSCURRENT, AWSPREVIOUS during the grace period, re-read on a TTL and on a signature that
 * matches no key) and `npm run rotate-secret` (scripts/rotateSecret.ts).
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { SignJWT } from "jose";
import type { AuthorizerHandler } from "../../handlers/events";
import {
  createHandler,
  KEY_CACHE_TTL_MS,
  KEY_REFRESH_MIN_INTERVAL_MS,
  PREVIOUS_KEY_GRACE_SECONDS,
} from "../../handlers/functions/authorizer";
import { main as rotateMain, newSecretValue, parseRotateArgs, regionOf, rotateSecret } from "../../scripts/rotateSecret";
import { localAccessKeyId } from "../../handlers/lib/clients";
import { startFakeSecretsManager, type FakeSecretsManager } from "../support/fakeSecretsManager";
import { authorizerEvent, authorizerSecretsManagerEnvironment, captureStdout, TEST_AUDIENCE, TEST_ISSUER } from "../support/handlerHarness";

const KEY0 = "k0-".padEnd(64, "0");
const KEY1 = "k1-".padEnd(64, "1");
const KEY2 = "k2-".padEnd(64, "2");
const HOUR = 3600_000;

async function token(key: string, sub = "alice"): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setIssuer(TEST_ISSUER)
    .setAudience(TEST_AUDIENCE)
    .setExpirationTime(now + 600)
    .sign(new TextEncoder().encode(key));
}

describe("handlers: rotating the HS256 secret", function () {
  this.timeout(60_000);
  let sm: FakeSecretsManager;
  let saved: NodeJS.ProcessEnv;
  let out: ReturnType<typeof captureStdout>;
  let clock: number;
  const tick = (ms: number) => (clock += ms);

  beforeEach(async () => {
    clock = Date.now();
    // The stack's first value, created two days ago: never rotated, so there is no AWSPREVIOUS.
    sm = await startFakeSecretsManager({ value: KEY0, createdAtMs: clock - 48 * HOUR });
    saved = { ...process.env };
    Object.assign(process.env, {
      ...authorizerSecretsManagerEnvironment(sm.arn),
      AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.endpoint,
      AWS_REGION: "us-east-1",
      // The authorizer's own key id, so tests/infra/iamSimulation.ts attributes its calls (as a role's on AWS).
      AWS_ACCESS_KEY_ID: localAccessKeyId("authorizer"),
      AWS_SECRET_ACCESS_KEY: "test",
    });
    delete process.env.AUTH_SHARED_SECRET;
    out = captureStdout();
  });
  afterEach(async () => {
    out.restore();
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    await sm.close();
  });

  const authorizer = (): AuthorizerHandler => createHandler({ now: () => clock });
  const effect = async (authorize: AuthorizerHandler, key: string) =>
    (await authorize(authorizerEvent({ token: await token(key) }))).policyDocument.Statement[0].Effect;
  const reads = () => sm.requests.filter((r) => r.startsWith("GetSecretValue")).length;

  it("reads AWSCURRENT and AWSPREVIOUS once at cold start, then serves handshakes from memory", async () => {
    const authorize = authorizer();
    assert.equal(await effect(authorize, KEY0), "Allow");
    assert.equal(await effect(authorize, KEY0), "Allow");
    assert.deepEqual(sm.requests.sort(), ["GetSecretValue AWSCURRENT", "GetSecretValue AWSPREVIOUS"]);
  });

  it("a warm instance accepts a token signed with a key rotated in after its cold start, at once", async () => {
    const authorize = authorizer();
    assert.equal(await effect(authorize, KEY0), "Allow");
    sm.rotate(KEY1, clock);
    tick(KEY_REFRESH_MIN_INTERVAL_MS);
    // Signed with the new key: no cached key matches, so the instance reads again and verifies.
    assert.equal(await effect(authorize, KEY1), "Allow");
    // Signed with the old key, now AWSPREVIOUS, inside its grace period.
    assert.equal(await effect(authorize, KEY0), "Allow");
    assert.equal(reads(), 4);
  });

  it("accepts the previous key for the stated grace period after the rotation, and not after", async () => {
    sm.rotate(KEY1, clock);
    const authorize = authorizer();
    tick(PREVIOUS_KEY_GRACE_SECONDS * 1000 - 60_000);
    assert.equal(await effect(authorize, KEY0), "Allow", "59 minutes after the rotation");
    tick(2 * 60_000);
    assert.equal(await effect(authorize, KEY0), "Deny", "61 minutes after the rotation");
    assert.equal(await effect(authorize, KEY1), "Allow");
    // A fresh instance started after the grace period never trusts the previous key.
    const fresh = authorizer();
    assert.equal(await effect(fresh, KEY0), "Deny");
  });

  it("re-reads every 5 minutes without any failure (a key rotated out stops working on warm instances)", async () => {
    const authorize = authorizer();
    assert.equal(await effect(authorize, KEY0), "Allow");
    // Two rotations (the second one forced): KEY0 is neither AWSCURRENT nor AWSPREVIOUS any more.
    sm.rotate(KEY1, clock);
    sm.rotate(KEY2, clock);
    tick(60_000);
    assert.equal(await effect(authorize, KEY0), "Allow", "still cached: keys are trusted for up to KEY_CACHE_TTL_MS");
    tick(KEY_CACHE_TTL_MS);
    assert.equal(await effect(authorize, KEY0), "Deny");
    assert.equal(await effect(authorize, KEY2), "Allow");
    assert.equal(await effect(authorize, KEY1), "Allow", "AWSPREVIOUS in its grace period");
  });

  it("re-reads at most once per interval however many tokens match no key", async () => {
    const authorize = authorizer();
    assert.equal(await effect(authorize, KEY0), "Allow");
    tick(KEY_REFRESH_MIN_INTERVAL_MS);
    const forged = "f-".padEnd(64, "f");
    for (let i = 0; i < 20; i++) {
      assert.equal(await effect(authorize, forged), "Deny");
      tick(100);
    }
    assert.equal(reads(), 4, "one re-read (two versions) for 20 forged tokens within 2 s");
    tick(KEY_REFRESH_MIN_INTERVAL_MS);
    assert.equal(await effect(authorize, forged), "Deny");
    assert.equal(reads(), 6);
  });

  it("keeps the keys it has when Secrets Manager fails on a periodic re-read; fails (500) only without any key", async () => {
    const authorize = authorizer();
    assert.equal(await effect(authorize, KEY0), "Allow");
    tick(KEY_CACHE_TTL_MS);
    sm.failNext(100);
    assert.equal(await effect(authorize, KEY0), "Allow");
    const cold = authorizer();
    await assert.rejects(cold(authorizerEvent({ token: await token(KEY0) })), /verification key/);
    sm.failNext(0);
    assert.equal(await effect(cold, KEY0), "Allow", "the next handshake reads again");
  });

  describe("npm run rotate-secret", () => {
    const client = () =>
      new SecretsManagerClient({ region: "us-east-1", endpoint: sm.endpoint, credentials: { accessKeyId: "t", secretAccessKey: "t" } });

    it("stores a new random AWSCURRENT and keeps the old value as AWSPREVIOUS; the authorizer accepts both", async () => {
      const r = await rotateSecret(sm.arn, false, { client: client() });
      const current = sm.staged("AWSCURRENT")!;
      assert.equal(current.versionId, r.versionId);
      assert.equal(current.value.length, 64);
      assert.notEqual(current.value, KEY0);
      assert.equal(sm.staged("AWSPREVIOUS")?.value, KEY0);
      const authorize = authorizer();
      assert.equal(await effect(authorize, current.value), "Allow");
      assert.equal(await effect(authorize, KEY0), "Allow");
    });

    it("refuses a second rotation inside the grace period (exit 2) unless --force", async () => {
      const sink = () => {
        const chunks: string[] = [];
        return { chunks, stream: { write: (c: string) => chunks.push(c) } };
      };
      const [o1, e1] = [sink(), sink()];
      assert.equal(await rotateMain(["--secret-arn", sm.arn], o1.stream, e1.stream, client()), 0);
      assert.match(o1.chunks.join(""), /tokens signed with the previous key are accepted until/);
      const [o2, e2] = [sink(), sink()];
      assert.equal(await rotateMain(["--secret-arn", sm.arn], o2.stream, e2.stream, client()), 2);
      assert.match(e2.chunks.join(""), /grace period .* pass --force/);
      assert.equal(sm.versions.length, 2, "nothing stored");
      assert.equal(await rotateMain(["--secret-arn", sm.arn, "--force"], sink().stream, sink().stream, client()), 0);
      assert.equal(sm.versions.length, 3);
    });

    it("reads the secret's ARN from stack outputs and explains an oidc stack has none", async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rotate-"));
      try {
        fs.writeFileSync(path.join(dir, "ok.json"), JSON.stringify({ authSecretArn: sm.arn }));
        fs.writeFileSync(path.join(dir, "oidc.json"), JSON.stringify({ endpoint: "wss://x" }));
        const errs: string[] = [];
        const err = { write: (c: string) => errs.push(c) };
        const quiet = { write: () => true };
        assert.equal(await rotateMain(["--outputs", path.join(dir, "ok.json")], quiet, err, client()), 0);
        assert.equal(await rotateMain(["--outputs", path.join(dir, "oidc.json")], quiet, err, client()), 1);
        assert.match(errs.join(""), /no "authSecretArn": the stack is in oidc mode/);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it("parses its command line with clear usage errors", () => {
      assert.equal(parseRotateArgs(["--help"]), undefined);
      assert.deepEqual(parseRotateArgs(["--stack", "prod"]), { stack: "prod", force: false });
      assert.throws(() => parseRotateArgs([]), /exactly one of --stack, --outputs and --secret-arn/);
      assert.throws(() => parseRotateArgs(["--stack", "a", "--secret-arn", "b"]), /exactly one/);
      assert.throws(() => parseRotateArgs(["--stak", "prod"]), /Unknown option '--stak'/);
      assert.equal(regionOf("arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:chat-prod/auth/hs256-AbCdEf"), "cn-north-1");
      assert.throws(() => regionOf("arn:aws:s3:::bucket"), /not a Secrets Manager secret ARN/);
      assert.match(newSecretValue(), /^[A-Za-z0-9_-]{64}$/);
    });
  });
});
