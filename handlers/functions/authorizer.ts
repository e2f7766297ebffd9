/**
 * REQUEST authorizer on `$connect` (identity source: the `token` query parameter; browsers cannot
 * set headers on a WebSocket). Verifies the JWT with jose, never hand-written crypto:
 *  - AUTH_MODE=shared-secret: HS256 only; secret from AUTH_SHARED_SECRET (local runtime, tests) or
 *    fetched once per cold start from Secrets Manager (AUTH_SECRET_ARN). iss/aud checked when set.
 *  - AUTH_MODE=oidc: RS256 only, keys from AUTH_JWKS_URL (jose caches the key set), iss and aud checked.
 * Rejected (Deny policy, API Gateway answers 403): bad signature, `alg: none` or any other
 * algorithm, expired or without `exp`, not yet valid, wrong issuer or audience, a sub that is not a valid user id,
 * a `userId` query parameter that differs from `sub`, an Origin not in ALLOWED_ORIGINS.
 * A missing token throws "Unauthorized" (API Gateway's 401; it normally answers that itself).
 * If the verification key cannot be obtained (Secrets Manager or JWKS unreachable) it throws, so
 * API Gateway answers 500 rather than blaming the client with a 403.
 * Authorizer caching is not supported for WebSocket APIs, so this runs on every handshake.
 */
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyOptions } from "jose";
import type { AuthorizerEvent, AuthorizerHandler, AuthorizerResult } from "../events";
import { traced } from "../lib/clients";
import { readAuthConfig, type AuthConfig } from "../lib/config";
import { USER_ID_PATTERN } from "../lib/frames";
import { createHost, withInvocation } from "../lib/runtime";

/** Leeway for clock skew between the token issuer and Lambda, in seconds. */
export const CLOCK_TOLERANCE_SECONDS = 5;
export const MAX_USERNAME_LENGTH = 64;

/** Display name: trimmed, control characters removed, at most 64 characters; undefined if nothing is left. */
export function cleanUsername(raw: unknown): string | undefined {
  if (typeof raw !== "string") return undefined;
  // eslint-disable-next-line no-control-regex
  const cleaned = [...raw.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, "").trim()].slice(0, MAX_USERNAME_LENGTH).join("").trim();
  return cleaned === "" ? undefined : cleaned;
}

export function policy(principalId: string, effect: "Allow" | "Deny", resource: string, context?: Record<string, string>): AuthorizerResult {
  return {
    principalId,
    policyDocument: { Version: "2012-10-17", Statement: [{ Action: "execute-api:Invoke", Effect: effect, Resource: resource }] },
    ...(context ? { context } : {}),
  };
}

/** Header lookup ignoring case (API Gateway keeps the client's spelling). */
function header(event: AuthorizerEvent, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(event.headers ?? {})) if (k.toLowerCase() === wanted) return v;
  return undefined;
}

/**
 * jose reports token problems with ERR_J* codes; a failure to fetch the JWKS (timeout, invalid
 * response, network error) or the Secrets Manager secret is not the client's fault.
 */
export function isServerSideFailure(code: string | undefined): boolean {
  return code === undefined || !code.startsWith("ERR_J") || code === "ERR_JWKS_TIMEOUT" || code === "ERR_JWKS_INVALID";
}

interface Rejection {
  readonly rejected: true;
  readonly reason: string;
}

function reject(reason: string): Rejection {
  return { rejected: true, reason };
}

export function createHandler(): AuthorizerHandler {
  const host = createHost("authorizer", { tables: [], management: false });
  const auth: AuthConfig = readAuthConfig(process.env);
  const verifyOptions: JWTVerifyOptions = {
    algorithms: auth.mode === "oidc" ? ["RS256"] : ["HS256"],
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    // jose checks exp only when it is present: without this, a correctly signed token with no exp
    // would open connections forever once leaked. Local tokens and OIDC ID/access tokens all carry exp.
    requiredClaims: ["exp"],
    ...(auth.issuer ? { issuer: auth.issuer } : {}),
    ...(auth.audience ? { audience: auth.audience } : {}),
  };
  const jwks = auth.mode === "oidc" && auth.jwksUrl ? createRemoteJWKSet(new URL(auth.jwksUrl)) : undefined;
  let secret: Promise<Uint8Array> | undefined;
  const sharedSecret = (): Promise<Uint8Array> => {
    if (auth.sharedSecret !== undefined) return Promise.resolve(new TextEncoder().encode(auth.sharedSecret));
    secret ??= (async () => {
      // Traced like every other SDK client when enableXrayTracing is on (the cold fetch shows in the trace).
      const client = traced(host.config, new SecretsManagerClient({ maxAttempts: 3, requestHandler: { connectionTimeout: 1000, requestTimeout: 3000 } }));
      const out = await client.send(new GetSecretValueCommand({ SecretId: auth.secretArn }));
      if (!out.SecretString || Buffer.byteLength(out.SecretString, "utf8") < 32) {
        throw new Error("the HS256 secret in Secrets Manager is missing or shorter than 32 bytes (RFC 7518 section 3.2)");
      }
      return new TextEncoder().encode(out.SecretString);
    })().catch((err: unknown) => {
      secret = undefined; // fetch again on the next handshake rather than failing until the next cold start
      throw err;
    });
    return secret;
  };

  async function verify(token: string): Promise<JWTPayload> {
    if (jwks) return (await jwtVerify(token, jwks, verifyOptions)).payload;
    return (await jwtVerify(token, await sharedSecret(), verifyOptions)).payload;
  }

  return (event, context) =>
    withInvocation(host, event, context, async (log): Promise<AuthorizerResult> => {
      const token = event.queryStringParameters?.token;
      if (!token) {
        host.usage.count("RejectedConnects");
        log.info("handshake without token");
        // The exact message API Gateway maps to 401 Unauthorized.
        throw new Error("Unauthorized");
      }
      const origin = header(event, "origin");
      let outcome: Rejection | { rejected: false; userId: string; username: string };
      if (origin !== undefined && auth.allowedOrigins.length > 0 && !auth.allowedOrigins.includes(origin)) {
        outcome = reject("origin not allowed");
      } else {
        let payload: JWTPayload | undefined;
        try {
          payload = await verify(token);
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (isServerSideFailure(code)) {
            // The secret or the key set could not be obtained: our failure, not the client's. Throwing
            // makes API Gateway answer 500 instead of a misleading 403, and it is not a rejection.
            log.error("cannot verify tokens", { errorCode: code ?? null }, err);
            throw new Error("authorizer failed to obtain its verification key");
          }
          // jose's error codes (ERR_JWS_SIGNATURE_VERIFICATION_FAILED, ERR_JWT_EXPIRED, ...) say why without the token.
          outcome = reject(code ?? "verification failed");
        }
        if (payload) {
          const sub = payload.sub;
          const claimedUserId = event.queryStringParameters?.userId;
          if (typeof sub !== "string" || !USER_ID_PATTERN.test(sub)) outcome = reject("sub is not a valid user id");
          else if (claimedUserId !== undefined && claimedUserId !== sub) outcome = reject("userId query parameter differs from sub");
          else {
            const username = cleanUsername(event.queryStringParameters?.username) ?? cleanUsername(payload.name) ?? sub;
            outcome = { rejected: false, userId: sub, username };
          }
        } else outcome ??= reject("verification failed");
      }
      if (outcome.rejected) {
        host.usage.count("RejectedConnects");
        log.info("handshake denied", { reason: outcome.reason, origin: origin ?? null });
        return policy("anonymous", "Deny", event.methodArn);
      }
      log.info("handshake allowed", { userId: outcome.userId });
      return policy(outcome.userId, "Allow", event.methodArn, { userId: outcome.userId, username: outcome.username });
    });
}
