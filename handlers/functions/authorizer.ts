/**
 * REQUEST authorizer on `$connect` (identity source: the `token` query parameter; browsers cannot
 * set headers on a WebSocket). Verifies the JWT with jose, never hand-written crypto:
 *  - AUTH_MODE=shared-secret: HS256 only; secret from AUTH_SHARED_SECRET (local runtime, tests) or
 *    from Secrets Manager (AUTH_SECRET_ARN): the AWSCURRENT version, and the AWSPREVIOUS one for
 *    PREVIOUS_KEY_GRACE_SECONDS after the current one was created (zero-downtime rotation,
 *    `npm run rotate-secret`). Keys are re-read every KEY_CACHE_TTL_MS, and at once (at most every
 *    KEY_REFRESH_MIN_INTERVAL_MS) when a token's signature matches none of them, so a warm instance
 *    accepts tokens signed with a new key within seconds. iss/aud checked when set.
 *  - AUTH_MODE=oidc: RS256 only, keys from AUTH_JWKS_URL (jose caches the key set), iss and aud checked.
 * Rejected (Deny policy, API Gateway answers 403): bad signature, `alg: none` or any other
 * algorithm, expired or without `exp`, not yet valid, wrong issuer or audience, a sub that is not a valid user id
 * or is "system" (reserved: it names a backend in `by`, `deletedBy` and `from`),
 * a `userId` query parameter that differs from `sub`, an Origin not in ALLOWED_ORIGINS, a `rooms` or
 * `moderates` claim that is not an array of at most 50 valid room patterns (lib/access.ts).
 * On Allow, the context carries userId, username, exp and the claims' patterns (rooms, moderates).
 * A missing token throws "Unauthorized" (API Gateway's 401; it normally answers that itself).
 * If the verification key cannot be obtained (Secrets Manager or JWKS unreachable) it throws, so
 * API Gateway answers 500 rather than blaming the client with a 403.
 * Authorizer caching is not supported for WebSocket APIs, so this runs on every handshake.
 */
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyOptions } from "jose";
import type { AuthorizerEvent, AuthorizerHandler, AuthorizerResult } from "../events";
import { configurationError } from "../env";
import { traced } from "../lib/clients";
import { accessContext, isAccessClaimProblem, parseAccessClaims, type Access } from "../lib/access";
import { readAuthConfig, type AuthConfig } from "../lib/config";
import { internalError, unauthorizedError } from "../lib/errors";
import { SYSTEM_USER_ID, USER_ID_PATTERN } from "../lib/frames";
import { createHost, withInvocation } from "../lib/runtime";

/** Leeway for clock skew between the token issuer and Lambda, in seconds. */
export const CLOCK_TOLERANCE_SECONDS = 5;
/**
 * How long after a rotation tokens signed with the previous key are still accepted: one hour, the
 * longest lifetime a backend should give a chat token (docs/deploy.md, Rotating the secret).
 */
export const PREVIOUS_KEY_GRACE_SECONDS = 3600;
/** How long an instance trusts the keys it read (a rotation reaches every warm instance within this). */
export const KEY_CACHE_TTL_MS = 5 * 60_000;
/** Least time between two reads caused by tokens that match no key (a flood of forged tokens costs one read per interval). */
export const KEY_REFRESH_MIN_INTERVAL_MS = 5_000;

/** The HS256 keys an instance verifies with. */
export interface KeyRing {
  readonly current: Uint8Array;
  /** The key before the last rotation, while its grace period lasts. */
  readonly previous?: Uint8Array;
  /** Epoch ms until which `previous` is accepted. */
  readonly previousUntilMs?: number;
  /** Epoch ms when these keys were read. */
  readonly readAtMs: number;
}

/** What the authorizer needs from its environment beyond process.env: replaceable in tests. */
export interface AuthorizerDeps {
  readonly now?: () => number;
}
export const MAX_USERNAME_LENGTH = 64;

/** Display name: trimmed, control characters removed, at most 64 characters; undefined if nothing is left. */
export function cleanUsername(raw: unknown): string | undefined {
  if (typeof raw !== "string") return undefined;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is removed
  const cleaned = [...raw.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, "").trim()].slice(0, MAX_USERNAME_LENGTH).join("").trim();
  return cleaned === "" ? undefined : cleaned;
}

export function policy(
  principalId: string,
  effect: "Allow" | "Deny",
  resource: string,
  context?: Record<string, string>,
): AuthorizerResult {
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

function encodeKey(text: string | undefined, label: string): Uint8Array {
  if (!text || Buffer.byteLength(text, "utf8") < 32) {
    throw configurationError(
      `the HS256 secret's ${label} version in Secrets Manager is missing or shorter than 32 bytes (RFC 7518 section 3.2)`,
    );
  }
  return new TextEncoder().encode(text);
}

export function createHandler(deps: AuthorizerDeps = {}): AuthorizerHandler {
  const now = deps.now ?? Date.now;
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

  // Shared-secret mode with Secrets Manager: the key ring, re-read on a TTL or on a signature that
  // matches no key. One read at a time (concurrent handshakes share it).
  let client: SecretsManagerClient | undefined;
  let ring: KeyRing | undefined;
  let reading: Promise<KeyRing> | undefined;
  let lastReadStartMs = -Infinity;
  const readRing = (): Promise<KeyRing> => {
    reading ??= (async () => {
      lastReadStartMs = now();
      // Traced like every other SDK client when enableXrayTracing is on (the cold fetch shows in the trace).
      client ??= traced(
        host.config,
        new SecretsManagerClient({ maxAttempts: 3, requestHandler: { connectionTimeout: 1000, requestTimeout: 3000 } }),
      );
      const [current, previous] = await Promise.all([
        client.send(new GetSecretValueCommand({ SecretId: auth.secretArn, VersionStage: "AWSCURRENT" })),
        client.send(new GetSecretValueCommand({ SecretId: auth.secretArn, VersionStage: "AWSPREVIOUS" })).catch((err: unknown) => {
          // A secret never rotated has no AWSPREVIOUS version.
          if ((err as { name?: string }).name === "ResourceNotFoundException") return undefined;
          throw err;
        }),
      ]);
      const rotatedAtMs = current.CreatedDate ? new Date(current.CreatedDate).getTime() : 0;
      const previousUntilMs = rotatedAtMs + PREVIOUS_KEY_GRACE_SECONDS * 1000;
      const next: KeyRing = {
        current: encodeKey(current.SecretString, "AWSCURRENT"),
        ...(previous?.SecretString && previous.VersionId !== current.VersionId && now() < previousUntilMs
          ? { previous: encodeKey(previous.SecretString, "AWSPREVIOUS"), previousUntilMs }
          : {}),
        readAtMs: now(),
      };
      ring = next;
      return next;
    })().finally(() => {
      reading = undefined;
    });
    return reading;
  };
  const keys = async (): Promise<KeyRing> => {
    if (ring === undefined) return readRing();
    if (now() - ring.readAtMs >= KEY_CACHE_TTL_MS) {
      // A failed periodic re-read keeps the keys it has (Secrets Manager briefly unreachable must
      // not lock everyone out); the next handshake tries again after the minimum interval.
      if (now() - lastReadStartMs >= KEY_REFRESH_MIN_INTERVAL_MS) {
        try {
          return await readRing();
        } catch (err) {
          host.log.error("cannot re-read the HS256 keys; using the ones read before", {}, err);
        }
      }
    }
    return ring;
  };
  const isSignatureFailure = (err: unknown) => (err as { code?: string }).code === "ERR_JWS_SIGNATURE_VERIFICATION_FAILED";
  const verifyWithRing = async (token: string, r: KeyRing): Promise<JWTPayload> => {
    try {
      return (await jwtVerify(token, r.current, verifyOptions)).payload;
    } catch (err) {
      if (!isSignatureFailure(err) || !r.previous || now() >= (r.previousUntilMs ?? 0)) throw err;
      return (await jwtVerify(token, r.previous, verifyOptions)).payload;
    }
  };

  async function verify(token: string): Promise<JWTPayload> {
    if (jwks) return (await jwtVerify(token, jwks, verifyOptions)).payload;
    if (auth.sharedSecret !== undefined)
      return (await jwtVerify(token, new TextEncoder().encode(auth.sharedSecret), verifyOptions)).payload;
    const r = await keys();
    try {
      return await verifyWithRing(token, r);
    } catch (err) {
      // A signature no key matches may be a token signed with a key this instance has not read yet
      // (a rotation since it last looked): read again, at most once per interval, and retry once.
      if (!isSignatureFailure(err) || now() - lastReadStartMs < KEY_REFRESH_MIN_INTERVAL_MS) throw err;
      let fresh: KeyRing;
      try {
        fresh = await readRing();
      } catch (readErr) {
        host.log.error("cannot re-read the HS256 keys after a signature mismatch", {}, readErr);
        throw err;
      }
      return verifyWithRing(token, fresh);
    }
  }

  return (event, context) =>
    withInvocation(host, event, context, async (log): Promise<AuthorizerResult> => {
      const token = event.queryStringParameters?.token;
      if (!token) {
        host.usage.count("RejectedConnects");
        log.info("handshake without token");
        // The exact message API Gateway maps to 401 Unauthorized.
        throw unauthorizedError();
      }
      const origin = header(event, "origin");
      let outcome: Rejection | { rejected: false; userId: string; username: string; exp: number; access: Access };
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
            throw internalError("authorizer failed to obtain its verification key");
          }
          // jose's error codes (ERR_JWS_SIGNATURE_VERIFICATION_FAILED, ERR_JWT_EXPIRED, ...) say why without the token.
          outcome = reject(code ?? "verification failed");
        }
        if (payload) {
          const sub = payload.sub;
          const claimedUserId = event.queryStringParameters?.userId;
          if (typeof sub !== "string" || !USER_ID_PATTERN.test(sub)) outcome = reject("sub is not a valid user id");
          // "system" names a backend in `by`, `deletedBy` and `from` (push/index.ts): no user may be it.
          else if (sub === SYSTEM_USER_ID) outcome = reject('sub "system" is reserved for backends');
          else if (claimedUserId !== undefined && claimedUserId !== sub) outcome = reject("userId query parameter differs from sub");
          else {
            // The rooms and moderates claims (issue 16): validated like the rest of the token; a bad
            // one refuses the handshake, and the problem (never the token) is logged.
            const access = parseAccessClaims(payload);
            if (isAccessClaimProblem(access)) outcome = reject(access.problem);
            else {
              const username = cleanUsername(event.queryStringParameters?.username) ?? cleanUsername(payload.name) ?? sub;
              outcome = { rejected: false, userId: sub, username, exp: Number(payload.exp), access };
            }
          }
        } else outcome ??= reject("verification failed");
      }
      if (outcome.rejected) {
        host.usage.count("RejectedConnects");
        log.info("handshake denied", { reason: outcome.reason, origin: origin ?? null });
        return policy("anonymous", "Deny", event.methodArn);
      }
      log.info("handshake allowed", { userId: outcome.userId });
      // exp: the message routes refuse frames once the token has expired (runtime.ts messageRoute).
      return policy(outcome.userId, "Allow", event.methodArn, {
        userId: outcome.userId,
        username: outcome.username,
        exp: String(outcome.exp),
        // rooms/moderates: what the token grants, read back by every route (access.ts accessFromContext).
        ...accessContext(outcome.access),
      });
    });
}
