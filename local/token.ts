/**
 * Local tokens: HS256 JWTs signed with the local secret (local/secret.ts), with the issuer and
 * audience the local runtime gives the authorizer. Deployed stacks verify the same claims with the
 * secret from Secrets Manager (shared-secret mode) or an identity provider's keys (oidc mode).
 */
import { SignJWT } from "jose";
import { LOCAL_AUDIENCE, LOCAL_ISSUER } from "./secret";

export const LOCAL_TOKEN_ISSUER = LOCAL_ISSUER;
export const LOCAL_TOKEN_AUDIENCE = LOCAL_AUDIENCE;
/** 2 hours: a connection cannot outlive API Gateway's maximum duration anyway. */
export const LOCAL_TOKEN_TTL_SECONDS = 2 * 60 * 60;

/** The access claims of a local token (handlers/lib/access.ts): each absent when not given. */
export interface LocalTokenAccess {
  readonly rooms?: readonly string[];
  readonly moderates?: readonly string[];
}

export interface LocalTokenClaims extends LocalTokenAccess {
  /** Becomes the token's `sub`: the user id the authorizer passes on. */
  readonly userId: string;
  /** Display name (`name` claim). */
  readonly username: string;
  readonly ttlSeconds?: number;
}

export async function mintLocalToken(secret: string, claims: LocalTokenClaims): Promise<string> {
  const ttl = claims.ttlSeconds ?? LOCAL_TOKEN_TTL_SECONDS;
  return new SignJWT({
    name: claims.username,
    ...(claims.rooms !== undefined ? { rooms: [...claims.rooms] } : {}),
    ...(claims.moderates !== undefined ? { moderates: [...claims.moderates] } : {}),
  })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(claims.userId)
    .setIssuer(LOCAL_TOKEN_ISSUER)
    .setAudience(LOCAL_TOKEN_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttl)
    .sign(new TextEncoder().encode(secret));
}
