/**
 * The REQUEST authorizer: every acceptance and rejection rule, in shared-secret (HS256) mode and in
 * OIDC mode (RS256 keys served by a local JWKS endpoint on 127.0.0.1), plus the secret fetched
 * from Secrets Manager (a local endpoint speaking its JSON protocol).
 */
import { strict as assert } from "node:assert";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT, UnsecuredJWT, exportJWK, exportSPKI, generateKeyPair, type KeyLike } from "jose";
import { FACTORIES } from "../../handlers";
import type { AuthorizerResult } from "../../handlers/events";
import {
  authorizerEvent,
  authorizerSecretsManagerEnvironment,
  captureStdout,
  createHarness,
  TEST_AUDIENCE,
  TEST_ISSUER,
  TEST_SECRET,
  withEnv,
  type Harness,
} from "../support/handlerHarness";
import { signLocalToken } from "../../scripts/token";

const secretKey = new TextEncoder().encode(TEST_SECRET);

function hs256(
  claims: Record<string, unknown> = {},
  o: { sub?: string; iss?: string; aud?: string; exp?: number; nbf?: number; key?: Uint8Array } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(o.sub ?? "alice")
    .setIssuer(o.iss ?? TEST_ISSUER)
    .setAudience(o.aud ?? TEST_AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(o.exp ?? now + 600);
  if (o.nbf !== undefined) jwt = jwt.setNotBefore(o.nbf);
  return jwt.sign(o.key ?? secretKey);
}

function assertDenied(result: AuthorizerResult): void {
  assert.equal(result.policyDocument.Statement[0].Effect, "Deny");
  assert.equal(result.policyDocument.Statement[0].Action, "execute-api:Invoke");
  assert.equal(result.context, undefined);
}

describe("handlers: authorizer", () => {
  describe("shared-secret mode (HS256)", () => {
    let h: Harness;
    before(async () => {
      h = await createHarness({ label: "auth", allowedOrigins: ["https://chat.example.com"] });
    });
    after(async () => {
      await h?.stop();
    });
    const authorize = (query: Record<string, string>, headers?: Record<string, string>) => h.authorizer()(authorizerEvent(query, headers));

    it("allows a valid token: Allow on the method ARN, principalId and context from sub", async () => {
      const token = await hs256({ name: "Alice A." });
      const result = await authorize({ token });
      // exp: the token's, for the message routes' TOKEN_EXPIRED check (issue 14 item 11).
      const exp = String(JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString()).exp);
      assert.deepEqual(result, {
        principalId: "alice",
        policyDocument: {
          Version: "2012-10-17",
          Statement: [
            { Action: "execute-api:Invoke", Effect: "Allow", Resource: "arn:aws:execute-api:us-east-1:123456789012:local/test/$connect" },
          ],
        },
        context: { userId: "alice", username: "Alice A.", exp },
      });
    });

    it("accepts the tokens `npm run token` prints", async () => {
      const token = await signLocalToken({ userId: "tok-user", name: "Tok", secret: TEST_SECRET });
      const result = await authorize({ token });
      assert.deepEqual({ ...result.context, exp: undefined }, { userId: "tok-user", username: "Tok", exp: undefined });
      assert.match(String(result.context?.exp), /^\d{10}$/);
    });

    it("takes the display name from `username`, else the name claim, else sub; trimmed, control characters removed, 64 characters at most", async () => {
      assert.equal(
        (await authorize({ token: await hs256({ name: "Claim" }), username: "  Query\u0007Name \n" })).context?.username,
        "QueryName",
      );
      assert.equal((await authorize({ token: await hs256({ name: "Claim" }), username: "\u0001\u0002 " })).context?.username, "Claim");
      assert.equal((await authorize({ token: await hs256() })).context?.username, "alice");
      assert.equal((await authorize({ token: await hs256(), username: "x".repeat(100) })).context?.username, "x".repeat(64));
    });

    it("allows a matching userId query parameter and a listed Origin", async () => {
      const result = await authorize({ token: await hs256(), userId: "alice" }, { Origin: "https://chat.example.com" });
      assert.equal(result.policyDocument.Statement[0].Effect, "Allow");
    });

    it("rejects a bad signature", async () => {
      assertDenied(await authorize({ token: await hs256({}, { key: new TextEncoder().encode("another-secret-of-at-least-32-bytes!!") }) }));
      const token = await hs256();
      assertDenied(await authorize({ token: token.slice(0, -3) + (token.endsWith("AAA") ? "BBB" : "AAA") }));
    });

    it("rejects alg none", async () => {
      const now = Math.floor(Date.now() / 1000);
      const token = new UnsecuredJWT({})
        .setSubject("alice")
        .setIssuer(TEST_ISSUER)
        .setAudience(TEST_AUDIENCE)
        .setExpirationTime(now + 600)
        .encode();
      assertDenied(await authorize({ token }));
    });

    it("rejects any algorithm but HS256 (an RS256 token with valid claims)", async () => {
      const { privateKey } = await generateKeyPair("RS256");
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: "RS256" })
        .setSubject("alice")
        .setIssuer(TEST_ISSUER)
        .setAudience(TEST_AUDIENCE)
        .setExpirationTime(now + 600)
        .sign(privateKey);
      assertDenied(await authorize({ token }));
    });

    it("rejects an expired token", async () => {
      const now = Math.floor(Date.now() / 1000);
      assertDenied(await authorize({ token: await hs256({}, { exp: now - 60 }) }));
    });

    it("rejects a token that is not valid yet (nbf in the future)", async () => {
      const now = Math.floor(Date.now() / 1000);
      assertDenied(await authorize({ token: await hs256({}, { nbf: now + 3600 }) }));
    });

    it("rejects a wrong issuer and a wrong audience", async () => {
      assertDenied(await authorize({ token: await hs256({}, { iss: "someone-else" }) }));
      assertDenied(await authorize({ token: await hs256({}, { aud: "another-api" }) }));
    });

    it("rejects a userId query parameter that differs from sub", async () => {
      assertDenied(await authorize({ token: await hs256(), userId: "mallory" }));
    });

    it("rejects an Origin that is not in ALLOWED_ORIGINS", async () => {
      assertDenied(await authorize({ token: await hs256() }, { origin: "https://evil.example.com" }));
    });

    it('rejects a sub that is not a valid user id or is the reserved "system", and garbage tokens', async () => {
      assertDenied(await authorize({ token: await hs256({}, { sub: "has#hash" }) }));
      // Reserved: `by: "system"` names a backend's kick or delete (push/index.ts), so no user may be "system".
      assertDenied(await authorize({ token: await hs256({}, { sub: "system" }) }));
      assertDenied(await authorize({ token: "not.a.jwt" }));
      assertDenied(await authorize({ token: "x" }));
    });

    it("throws Unauthorized without a token (API Gateway's 401), and counts every rejection", async () => {
      await assert.rejects(() => authorize({}), /^Error: Unauthorized$/);
      const reports = h.reports.filter((r) => r.function === "authorizer");
      assert.ok(reports.filter((r) => r.metrics.RejectedConnects === 1).length >= 10);
      assert.ok(!h.logs.some((l) => l.includes("eyJ")), "no token in the logs");
    });
  });

  describe("oidc mode (RS256 via JWKS)", () => {
    let h: Harness;
    let jwks: http.Server;
    let privateKey: KeyLike;
    let publicPem: string;
    const issuer = "https://issuer.test/pool";
    const audience = "client-123";
    before(async () => {
      const pair = await generateKeyPair("RS256");
      privateKey = pair.privateKey;
      publicPem = await exportSPKI(pair.publicKey);
      const jwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "RS256", use: "sig" };
      jwks = http.createServer((_req, res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ keys: [jwk] }));
      });
      await new Promise<void>((r) => jwks.listen(0, "127.0.0.1", r));
      const url = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
      h = await createHarness({ label: "oidc", auth: { mode: "oidc", issuer, audience, jwksUrl: url, sharedSecret: undefined } });
    });
    after(async () => {
      await h?.stop();
      jwks?.closeAllConnections();
      await new Promise((r) => jwks?.close(r));
    });
    const rs256 = (o: { iss?: string; aud?: string; exp?: number } = {}) => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ name: "Olive" })
        .setProtectedHeader({ alg: "RS256", kid: "k1" })
        .setSubject("3f1c2a9e-1111-4bbb-8ccc-0123456789ab")
        .setIssuer(o.iss ?? issuer)
        .setAudience(o.aud ?? audience)
        .setExpirationTime(o.exp ?? now + 600)
        .sign(privateKey);
    };
    const authorize = (query: Record<string, string>) => h.authorizer()(authorizerEvent(query));

    it("allows an RS256 token signed by a key of the JWKS, with the right issuer and audience", async () => {
      const result = await authorize({ token: await rs256() });
      assert.equal(result.policyDocument.Statement[0].Effect, "Allow");
      assert.deepEqual(
        { ...result.context, exp: undefined },
        { userId: "3f1c2a9e-1111-4bbb-8ccc-0123456789ab", username: "Olive", exp: undefined },
      );
      assert.match(String(result.context?.exp), /^\d{10}$/);
    });

    it("rejects a wrong issuer, a wrong audience and an expired token", async () => {
      assertDenied(await authorize({ token: await rs256({ iss: "https://other.test" }) }));
      assertDenied(await authorize({ token: await rs256({ aud: "other-client" }) }));
      assertDenied(await authorize({ token: await rs256({ exp: Math.floor(Date.now() / 1000) - 60 }) }));
    });

    it("rejects an HS256 token signed with the OIDC public key (algorithm confusion)", async () => {
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: "HS256", kid: "k1" })
        .setSubject("attacker")
        .setIssuer(issuer)
        .setAudience(audience)
        .setExpirationTime(now + 600)
        .sign(new TextEncoder().encode(publicPem));
      assertDenied(await authorize({ token }));
    });

    it("fails (API Gateway 500) instead of denying when the JWKS cannot be fetched", async () => {
      const down = await createHarness({
        label: "oidc-down",
        auth: { mode: "oidc", issuer, audience, jwksUrl: "http://127.0.0.1:9/jwks.json", sharedSecret: undefined },
      });
      try {
        assertDenied(await down.authorizer()(authorizerEvent({ token: "x.y.z" })));
        const token = await rs256();
        await assert.rejects(() => down.authorizer()(authorizerEvent({ token })), /verification key/);
        assert.equal(
          down.reports.filter((r) => r.metrics.RejectedConnects > 0).length,
          1,
          "an unreachable JWKS is not counted as a rejection",
        );
      } finally {
        await down.stop();
      }
    });

    it("rejects a token signed by a key that is not in the JWKS", async () => {
      const other = await generateKeyPair("RS256");
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: "RS256", kid: "k1" })
        .setSubject("x")
        .setIssuer(issuer)
        .setAudience(audience)
        .setExpirationTime(now + 600)
        .sign(other.privateKey);
      assertDenied(await authorize({ token }));
    });
  });

  describe("secret from Secrets Manager", () => {
    it("fetches the HS256 secret once per cold start from AUTH_SECRET_ARN (its current and previous versions)", async () => {
      const requests: string[] = [];
      const sm = http.createServer((req, res) => {
        let body = "";
        req.on("data", (c: Buffer) => (body += c.toString()));
        req.on("end", () => {
          requests.push(`${req.headers["x-amz-target"]} ${JSON.parse(body).SecretId}`);
          res.writeHead(200, { "content-type": "application/x-amz-json-1.1" });
          res.end(JSON.stringify({ ARN: "arn:aws:secretsmanager:us-east-1:1:secret:s", Name: "s", SecretString: TEST_SECRET }));
        });
      });
      await new Promise<void>((r) => sm.listen(0, "127.0.0.1", r));
      const arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:chat-hs256";
      const env = {
        ...authorizerSecretsManagerEnvironment(arn),
        AWS_ENDPOINT_URL_SECRETS_MANAGER: `http://127.0.0.1:${(sm.address() as AddressInfo).port}`,
        AWS_REGION: "us-east-1",
        AWS_ACCESS_KEY_ID: "test",
        AWS_SECRET_ACCESS_KEY: "test",
      };
      const saved = { ...process.env };
      Object.assign(process.env, env);
      const out = captureStdout();
      try {
        const authorize = withEnv({}, () => FACTORIES.authorizer());
        const r1 = await authorize(authorizerEvent({ token: await hs256() }));
        const r2 = await authorize(authorizerEvent({ token: await hs256({}, { sub: "bob" }) }));
        assert.equal(r1.policyDocument.Statement[0].Effect, "Allow");
        assert.equal(r2.context?.userId, "bob");
        // Once per cold start: the AWSCURRENT and AWSPREVIOUS versions (rotation: tests/handlers/rotation.test.ts).
        assert.deepEqual(requests, [`secretsmanager.GetSecretValue ${arn}`, `secretsmanager.GetSecretValue ${arn}`]);
      } finally {
        out.restore();
        for (const k of Object.keys(env)) if (!(k in saved)) delete process.env[k];
        Object.assign(process.env, saved);
        sm.closeAllConnections();
        await new Promise((r) => sm.close(r));
      }
    });
  });
});
