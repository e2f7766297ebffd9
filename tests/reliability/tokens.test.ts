/**
 * Issue 8, forged and misused tokens: every forgery is tried as a real WebSocket handshake against
 * the local runtime's real authorizer, in both auth modes the code supports: shared-secret (HS256,
 * the local runtime's default) and OIDC (RS256 keys from a JWKS served on 127.0.0.1). The
 * handshake must be refused with the documented status (401 without a token in the query string,
 * 403 for a rejected token); the number of forgeries accepted must be 0.
 * Then misuse after a valid connect: posting to or reading a room not joined, a private message
 * claiming another sender. Issue 16: access claims tampered with, oversized, widening themselves or of
 * the wrong type are refused at the handshake, and a room the token does not grant is FORBIDDEN.
 */
import * as assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { SignJWT, UnsecuredJWT, exportJWK, exportSPKI, generateKeyPair, type JWK, type KeyLike } from "jose";
import { startLocalRuntime, type LocalRuntime } from "../../local/runtime";
import { localSecret } from "../../local/secret";
import { LOCAL_TOKEN_AUDIENCE, LOCAL_TOKEN_ISSUER } from "../../local/token";
import { sharedDynamo, uniquePrefix } from "../support/globalFixtures";
import { HandshakeRejected, connect, type TestClient } from "../local/wsClient";

const now = () => Math.floor(Date.now() / 1000);
const b64url = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

interface Attempt {
  readonly name: string;
  /** Query parameters (the token included, or not) and headers of the handshake. */
  readonly query: Record<string, string>;
  readonly headers?: Record<string, string>;
  /** The documented status: 401 (no token in the query string) or 403 (token rejected). */
  readonly status: 401 | 403;
}

interface Outcome {
  readonly name: string;
  readonly status: number | "accepted";
  readonly expected: number;
}

/** Tries one handshake; an accepted one is closed at once and reported as "accepted". */
async function attempt(endpoint: string, a: Attempt): Promise<Outcome> {
  const url = `${endpoint}?${new URLSearchParams(a.query)}`;
  try {
    const client = await connect(url, { headers: a.headers });
    await client.close();
    return { name: a.name, status: "accepted", expected: a.status };
  } catch (err) {
    if (err instanceof HandshakeRejected) return { name: a.name, status: err.status, expected: a.status };
    throw err;
  }
}

/** An HS256 token signed by hand (jose refuses to sign some of the headers a forger would send). */
function hmacToken(header: Record<string, unknown>, payload: Record<string, unknown>, key: Uint8Array): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${createHmac("sha256", key).update(input).digest("base64url")}`;
}

/** Replaces one character in the middle of a token part, so the decoded bytes surely change. */
function flipMiddle(part: string): string {
  const i = Math.floor(part.length / 2);
  return part.slice(0, i) + (part[i] === "A" ? "B" : "A") + part.slice(i + 1);
}

function jwksServer(keys: JWK[]): Promise<{ url: string; server: http.Server; fetches: () => number }> {
  let fetches = 0;
  const server = http.createServer((_req, res) => {
    fetches += 1;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ keys }));
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`, server, fetches: () => fetches }),
    ),
  );
}

async function closeServer(server: http.Server | undefined): Promise<void> {
  if (!server) return;
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
}

describe("reliability: forged and misused tokens against the runtime's real authorizer", function () {
  this.timeout(120_000);
  const totals = { tried: 0, accepted: 0 };
  after(() => {
    console.log(`      forged tokens: ${totals.tried} forgeries tried in both auth modes, ${totals.accepted} accepted`);
  });

  /** Runs the attempts; the control (a valid token) must be accepted, every forgery refused as documented. */
  async function runForgeries(endpoint: string, control: Attempt["query"], forgeries: readonly Attempt[]): Promise<void> {
    const ok = await attempt(endpoint, { name: "control", query: control, status: 403 });
    assert.equal(ok.status, "accepted", "the control (a valid token) must be accepted, or the refusals below prove nothing");
    const outcomes: Outcome[] = [];
    for (const f of forgeries) outcomes.push(await attempt(endpoint, f));
    const accepted = outcomes.filter((o) => o.status === "accepted");
    totals.tried += outcomes.length;
    totals.accepted += accepted.length;
    assert.deepEqual(
      accepted.map((o) => o.name),
      [],
      "forgeries accepted",
    );
    assert.deepEqual(
      outcomes.filter((o) => o.status !== o.expected).map((o) => `${o.name}: ${o.status}, documented ${o.expected}`),
      [],
    );
  }

  describe("shared-secret mode (HS256)", () => {
    let rt: LocalRuntime;
    let secretDir: string;
    let key: Uint8Array;
    const opened: TestClient[] = [];

    const hs = (
      o: {
        alg?: string;
        sub?: string | null;
        iss?: string | null;
        aud?: string | null;
        exp?: number | null;
        nbf?: number;
        key?: Uint8Array;
      } = {},
    ) => {
      const claims: Record<string, unknown> = { name: "Mallory" };
      if (o.sub !== null) claims.sub = o.sub ?? "alice";
      if (o.iss !== null) claims.iss = o.iss ?? LOCAL_TOKEN_ISSUER;
      if (o.aud !== null) claims.aud = o.aud ?? LOCAL_TOKEN_AUDIENCE;
      if (o.exp !== null) claims.exp = o.exp ?? now() + 600;
      if (o.nbf !== undefined) claims.nbf = o.nbf;
      return new SignJWT(claims).setProtectedHeader({ alg: o.alg ?? "HS256" }).sign(o.key ?? key);
    };

    before(async () => {
      secretDir = fs.mkdtempSync(path.join(os.tmpdir(), "chat-tokens-"));
      const dynamo = await sharedDynamo();
      rt = await startLocalRuntime({
        dynamodbEndpoint: dynamo.endpoint,
        tablePrefix: uniquePrefix("tokens"),
        quiet: true,
        secretDir,
        settings: { rateLimitPerMinute: 10_000 },
      });
      // The runtime's own secret: forgeries that are correctly signed but wrong in another way.
      key = new TextEncoder().encode(localSecret(secretDir));
    });
    after(async () => {
      await Promise.all(opened.map((c) => c.close().catch(() => undefined)));
      await rt?.stop();
      fs.rmSync(secretDir, { recursive: true, force: true });
    });

    it("refuses every forged, expired, misdirected or misplaced token (0 accepted)", async () => {
      const valid = await rt.mintToken("alice", "Alice");
      const [h, p, s] = valid.split(".");
      const otherRsa = await generateKeyPair("RS256");
      const tokenOnly = (token: string) => ({ token, roomId: "tokens" });
      const forgeries: Attempt[] = [
        { name: "signed with another secret", query: tokenOnly(await hs({ key: new TextEncoder().encode("x".repeat(64)) })), status: 403 },
        { name: "signature altered", query: tokenOnly(`${h}.${p}.${flipMiddle(s)}`), status: 403 },
        { name: "signature removed", query: tokenOnly(`${h}.${p}.`), status: 403 },
        {
          name: "payload swapped for bob's, alice's signature kept",
          query: tokenOnly(`${h}.${b64url({ ...JSON.parse(Buffer.from(p, "base64url").toString()), sub: "bob" })}.${s}`),
          status: 403,
        },
        {
          name: "alg none (unsecured JWT)",
          query: tokenOnly(
            new UnsecuredJWT({ sub: "alice", iss: LOCAL_TOKEN_ISSUER, aud: LOCAL_TOKEN_AUDIENCE, exp: now() + 600 }).encode(),
          ),
          status: 403,
        },
        {
          name: 'alg "None" with the original signature',
          query: tokenOnly(`${b64url({ alg: "None", typ: "JWT" })}.${p}.${s}`),
          status: 403,
        },
        { name: 'alg "NONE" and no signature', query: tokenOnly(`${b64url({ alg: "NONE" })}.${p}.`), status: 403 },
        { name: "HS384 with the right secret", query: tokenOnly(await hs({ alg: "HS384" })), status: 403 },
        { name: "HS512 with the right secret", query: tokenOnly(await hs({ alg: "HS512" })), status: 403 },
        {
          name: "RS256 signed with an unknown RSA key",
          query: tokenOnly(
            await new SignJWT({ sub: "alice", iss: LOCAL_TOKEN_ISSUER, aud: LOCAL_TOKEN_AUDIENCE, exp: now() + 600 })
              .setProtectedHeader({ alg: "RS256" })
              .sign(otherRsa.privateKey),
          ),
          status: 403,
        },
        {
          name: "a critical header extension nobody understands",
          query: tokenOnly(
            hmacToken({ alg: "HS256", crit: ["x-unknown"], "x-unknown": true }, JSON.parse(Buffer.from(p, "base64url").toString()), key),
          ),
          status: 403,
        },
        { name: "expired a minute ago", query: tokenOnly(await hs({ exp: now() - 60 })), status: 403 },
        { name: "not valid for another minute (nbf)", query: tokenOnly(await hs({ nbf: now() + 60 })), status: 403 },
        { name: "no exp: a token that never expires", query: tokenOnly(await hs({ exp: null })), status: 403 },
        { name: "wrong issuer", query: tokenOnly(await hs({ iss: "https://evil.example.com" })), status: 403 },
        { name: "no issuer", query: tokenOnly(await hs({ iss: null })), status: 403 },
        { name: "wrong audience", query: tokenOnly(await hs({ aud: "another-api" })), status: 403 },
        { name: "no audience", query: tokenOnly(await hs({ aud: null })), status: 403 },
        { name: "no sub", query: tokenOnly(await hs({ sub: null })), status: 403 },
        { name: "sub with the key separator #", query: tokenOnly(await hs({ sub: "alice#admin" })), status: 403 },
        { name: "sub of 129 characters", query: tokenOnly(await hs({ sub: "a".repeat(129) })), status: 403 },
        { name: "a userId query parameter impersonating bob", query: { token: valid, userId: "bob", roomId: "tokens" }, status: 403 },
        { name: "truncated to half", query: tokenOnly(valid.slice(0, Math.floor(valid.length / 2))), status: 403 },
        { name: "truncated by one character", query: tokenOnly(valid.slice(0, -1)), status: 403 },
        { name: "an extra segment", query: tokenOnly(`${valid}.${s}`), status: 403 },
        { name: "garbage", query: tokenOnly("not-a-token"), status: 403 },
        { name: "three empty segments", query: tokenOnly(".."), status: 403 },
        { name: "4 KB of base64", query: tokenOnly(Buffer.alloc(3072, 7).toString("base64url")), status: 403 },
        { name: "a leading space", query: tokenOnly(` ${valid}`), status: 403 },
        { name: "no token at all", query: { roomId: "tokens" }, status: 401 },
        { name: "an empty token parameter", query: { token: "", roomId: "tokens" }, status: 401 },
        { name: "a userId parameter and no token", query: { userId: "alice", roomId: "tokens" }, status: 401 },
        // The identity source is the `token` query parameter (docs/protocol.md): a header is not read.
        {
          name: "the valid token in an Authorization: Bearer header only",
          query: { roomId: "tokens" },
          headers: { Authorization: `Bearer ${valid}` },
          status: 401,
        },
        { name: "the valid token in a `token` header only", query: { roomId: "tokens" }, headers: { token: valid }, status: 401 },
        { name: "the valid token as a Cookie only", query: { roomId: "tokens" }, headers: { Cookie: `token=${valid}` }, status: 401 },
      ];
      await runForgeries(rt.endpoint, tokenOnly(valid), forgeries);
    });

    it("refuses tokens whose access claims were tampered with, are oversized, try to widen themselves or have the wrong type (0 accepted)", async () => {
      // Issue 16. The control grants exactly the room it connects to; every forgery below is refused
      // by the authorizer (bad signature or malformed claim) or by $connect (the room is not granted).
      const granted = await rt.mintToken("alice", "Alice", undefined, { rooms: ["tokens"] });
      const [h, p, s] = granted.split(".");
      const payload = JSON.parse(Buffer.from(p, "base64url").toString()) as Record<string, unknown>;
      const resigned = (claims: Record<string, unknown>) => hmacToken({ alg: "HS256" }, { ...payload, ...claims }, key);
      const tampered = (claims: Record<string, unknown>) => `${h}.${b64url({ ...payload, ...claims })}.${s}`;
      const at = (token: string) => ({ token, roomId: "tokens" });
      const fifty = Array.from({ length: 50 }, (_, i) => `r${i}`);
      const forgeries: Attempt[] = [
        { name: "rooms widened to * after signing", query: at(tampered({ rooms: ["*"] })), status: 403 },
        { name: "a room added after signing", query: at(tampered({ rooms: ["tokens", "admin"] })), status: 403 },
        { name: "moderates added after signing", query: at(tampered({ moderates: ["*"] })), status: 403 },
        { name: "rooms removed after signing", query: at(tampered({ rooms: undefined })), status: 403 },
        { name: "51 room patterns", query: at(resigned({ rooms: ["tokens", ...fifty] })), status: 403 },
        { name: "51 moderated patterns", query: at(resigned({ moderates: ["tokens", ...fifty] })), status: 403 },
        { name: "* inside a name", query: at(resigned({ rooms: ["tok*ens"] })), status: 403 },
        { name: "* in front", query: at(resigned({ rooms: ["*tokens"] })), status: 403 },
        { name: "a double *", query: at(resigned({ rooms: ["**"] })), status: 403 },
        { name: "..", query: at(resigned({ rooms: [".."] })), status: 403 },
        { name: "a path that climbs", query: at(resigned({ rooms: ["../tokens"] })), status: 403 },
        { name: "a comma smuggling a second pattern", query: at(resigned({ rooms: ["tokens,*"] })), status: 403 },
        { name: "a Cyrillic look-alike", query: at(resigned({ rooms: ["tоkens"] })), status: 403 },
        { name: "a full-width look-alike", query: at(resigned({ rooms: ["ｔokens"] })), status: 403 },
        { name: "a zero-width space", query: at(resigned({ rooms: ["tokens\u200b"] })), status: 403 },
        { name: "rooms as a string", query: at(resigned({ rooms: "tokens" })), status: 403 },
        { name: "rooms as an object", query: at(resigned({ rooms: { 0: "tokens" } })), status: 403 },
        { name: "rooms as true", query: at(resigned({ rooms: true })), status: 403 },
        { name: "rooms null", query: at(resigned({ rooms: null })), status: 403 },
        { name: "a number among the rooms", query: at(resigned({ rooms: ["tokens", 7] })), status: 403 },
        { name: "moderates as a string", query: at(resigned({ moderates: "*" })), status: 403 },
        { name: "a valid claim that does not grant the room", query: at(resigned({ rooms: ["other", "tok-*"] })), status: 403 },
        { name: "an empty rooms claim", query: at(resigned({ rooms: [] })), status: 403 },
      ];
      await runForgeries(rt.endpoint, at(granted), forgeries);
    });

    describe("misuse after a valid connect", () => {
      let alice: TestClient;
      let alice2: TestClient;
      let bob: TestClient;
      let carol: TestClient;
      const user = async (userId: string, roomId: string) => {
        const c = await connect(
          `${rt.endpoint}?${new URLSearchParams({ token: await rt.mintToken(userId, userId.toUpperCase()), roomId })}`,
        );
        opened.push(c);
        return c;
      };
      const historyOf = async (c: TestClient, frame: Record<string, unknown>) =>
        (await c.request({ type: "history", limit: 100, ...frame }, "history")).messages as Array<Record<string, unknown>>;

      before(async () => {
        alice = await user("alice", "alice-room");
        alice2 = await user("alice", "alice-room");
        bob = await user("bob", "bob-room");
        carol = await user("carol", "bob-room");
        bob.send({ type: "chat", roomId: "bob-room", message: "members only" });
        await bob.next((f) => f.json?.type === "chat" && f.json.message === "members only");
        await carol.next((f) => f.json?.type === "chat" && f.json.message === "members only");
      });

      it("a chat to a room not joined is NOT_A_MEMBER: nothing stored, nobody receives it", async () => {
        const reply = await alice.request({ type: "chat", roomId: "bob-room", message: "intrusion", clientMessageId: "m1" }, "error");
        assert.deepEqual(reply, {
          type: "error",
          code: "NOT_A_MEMBER",
          message: "this connection has not joined room bob-room",
          requestType: "chat",
          clientMessageId: "m1",
        });
        await bob.expectNone((f) => f.json?.message === "intrusion", 300);
        assert.deepEqual(
          (await historyOf(bob, { roomId: "bob-room" })).map((m) => m.message),
          ["members only"],
        );
      });

      it("reading the history of a room not joined is NOT_A_MEMBER and reveals nothing", async () => {
        const reply = await alice.request({ type: "history", roomId: "bob-room" }, "error");
        assert.equal(reply.code, "NOT_A_MEMBER");
        assert.ok(!JSON.stringify(reply).includes("members only"));
        assert.equal((await alice.request({ type: "leave", roomId: "bob-room" }, "error")).code, "NOT_A_MEMBER");
      });

      it("membership is per connection: another device of the same user cannot post to a room only the first joined", async () => {
        await alice.request({ type: "join", roomId: "alice-side" }, "joined");
        const reply = await alice2.request({ type: "chat", roomId: "alice-side", message: "from device 2" }, "error");
        assert.equal(reply.code, "NOT_A_MEMBER");
        assert.deepEqual(await historyOf(alice, { roomId: "alice-side" }), []);
      });

      it("a private message claiming another sender is refused, and nothing is stored or delivered", async () => {
        for (const forged of [{ fromUserId: "carol" }, { fromUsername: "CAROL" }, { userId: "carol" }, { username: "CAROL" }]) {
          const reply = await alice.request({ type: "private", toUserId: "bob", message: "guess who", ...forged }, "error");
          assert.equal(reply.code, "BAD_REQUEST", JSON.stringify(forged));
          assert.match(String(reply.message), /cannot name another sender/);
        }
        // Naming oneself is harmless: delivered as usual.
        const delivered = await alice.request({ type: "private", toUserId: "bob", message: "it is me", fromUserId: "alice" }, "delivered");
        assert.equal(delivered.deliveredTo, 1);
        const stored = await historyOf(bob, { withUserId: "alice" });
        assert.deepEqual(
          stored.map((m) => [m.userId, m.toUserId, m.message]),
          [["alice", "bob", "it is me"]],
        );
        // Nothing landed in the conversation of the user it claimed to come from.
        assert.deepEqual(await historyOf(carol, { withUserId: "bob" }), []);
      });

      it("a chat claiming another sender is refused, and nothing is stored or broadcast", async () => {
        const reply = await alice.request(
          { type: "chat", roomId: "alice-room", message: "it was bob", userId: "bob", username: "BOB", fromUserId: "bob" },
          "error",
        );
        assert.equal(reply.code, "BAD_REQUEST");
        const stored = (await historyOf(alice, { roomId: "alice-room" })).filter((m) => m.message === "it was bob");
        assert.deepEqual(stored, []);
      });

      it("a token granting tok-* only: join, chat and history elsewhere are FORBIDDEN naming the room, rooms lists granted rooms only", async () => {
        // Issue 16 with real clients: the access travels from the token through the authorizer's context.
        const dora = await connect(
          `${rt.endpoint}?${new URLSearchParams({ token: await rt.mintToken("dora", "Dora", undefined, { rooms: ["tok-*"] }), roomId: "tok-a" })}`,
        );
        opened.push(dora);
        assert.deepEqual(await dora.request({ type: "join", roomId: "bob-room" }, "error"), {
          type: "error",
          code: "FORBIDDEN",
          message: "you do not have access to room bob-room",
          requestType: "join",
          roomId: "bob-room",
        });
        const chat = await dora.request({ type: "chat", roomId: "bob-room", message: "intrusion", clientMessageId: "d1" }, "error");
        assert.deepEqual([chat.code, chat.roomId, chat.clientMessageId], ["FORBIDDEN", "bob-room", "d1"]);
        const history = await dora.request({ type: "history", roomId: "bob-room" }, "error");
        assert.equal(history.code, "FORBIDDEN");
        assert.ok(!JSON.stringify(history).includes("members only"));
        assert.deepEqual(
          (await historyOf(bob, { roomId: "bob-room" })).map((m) => m.message),
          ["members only"],
        );
        // Granted but not joined: NOT_A_MEMBER, as before.
        assert.equal((await dora.request({ type: "chat", roomId: "tok-b", message: "early" }, "error")).code, "NOT_A_MEMBER");
        await dora.request({ type: "join", roomId: "tok-b" }, "joined");
        const listed = ((await dora.request({ type: "rooms" }, "rooms")).rooms as Array<{ roomId: string }>).map((r) => r.roomId);
        assert.deepEqual(listed, ["tok-a", "tok-b"]);
        // bob, without the claim on this open runtime, still sees every active room.
        const all = ((await bob.request({ type: "rooms" }, "rooms")).rooms as Array<{ roomId: string }>).map((r) => r.roomId);
        assert.ok(all.includes("bob-room") && all.includes("tok-a"), all.join(","));
      });

      it("a private conversation is readable by its two users only", async () => {
        const eve = await user("eve", "eve-room");
        const withBob = await historyOf(eve, { withUserId: "bob" });
        assert.deepEqual(withBob, []);
        const withAlice = await historyOf(eve, { withUserId: "alice" });
        assert.deepEqual(withAlice, []);
      });
    });
  });

  describe("OIDC mode (RS256, keys from a JWKS on 127.0.0.1)", () => {
    const issuer = "https://idp.example.test/pool";
    const audience = "chat-client";
    let rt: LocalRuntime;
    let jwks: Awaited<ReturnType<typeof jwksServer>> | undefined;
    let attackerJwks: Awaited<ReturnType<typeof jwksServer>> | undefined;
    let privateKey: KeyLike;
    let publicPem: string;
    let publicJwk: JWK;
    let attacker: { privateKey: KeyLike; publicJwk: JWK };

    const rs = (
      o: {
        alg?: string;
        kid?: string;
        key?: KeyLike;
        sub?: string;
        iss?: string;
        aud?: string;
        exp?: number;
        nbf?: number;
        header?: Record<string, unknown>;
      } = {},
    ) => {
      const claims: Record<string, unknown> = {
        name: "Olive",
        sub: o.sub ?? "3f1c2a9e-1111-4bbb-8ccc-0123456789ab",
        iss: o.iss ?? issuer,
        aud: o.aud ?? audience,
        exp: o.exp ?? now() + 600,
      };
      if (o.nbf !== undefined) claims.nbf = o.nbf;
      return new SignJWT(claims)
        .setProtectedHeader({ alg: o.alg ?? "RS256", kid: o.kid ?? "k1", ...(o.header ?? {}) })
        .sign(o.key ?? privateKey);
    };

    before(async () => {
      const pair = await generateKeyPair("RS256", { extractable: true });
      privateKey = pair.privateKey;
      publicPem = await exportSPKI(pair.publicKey);
      publicJwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "RS256", use: "sig" };
      const evil = await generateKeyPair("RS256", { extractable: true });
      attacker = {
        privateKey: evil.privateKey,
        publicJwk: { ...(await exportJWK(evil.publicKey)), kid: "evil", alg: "RS256", use: "sig" },
      };
      jwks = await jwksServer([publicJwk]);
      attackerJwks = await jwksServer([attacker.publicJwk]);
      const dynamo = await sharedDynamo();
      rt = await startLocalRuntime({
        dynamodbEndpoint: dynamo.endpoint,
        tablePrefix: uniquePrefix("oidc"),
        quiet: true,
        settings: { authMode: "oidc", oidc: { issuer, audience, jwksUrl: jwks.url }, rateLimitPerMinute: 10_000 },
      });
    });
    after(async () => {
      await rt?.stop();
      await closeServer(jwks?.server);
      await closeServer(attackerJwks?.server);
    });

    it("refuses every forged, expired, misdirected or misplaced token (0 accepted); keys come from the JWKS only", async () => {
      const valid = await rs();
      const [, p, s] = valid.split(".");
      const hmac = (secret: string) =>
        new SignJWT({ sub: "attacker", iss: issuer, aud: audience, exp: now() + 600 })
          .setProtectedHeader({ alg: "HS256", kid: "k1" })
          .sign(new TextEncoder().encode(secret));
      const tokenOnly = (token: string) => ({ token, roomId: "oidc" });
      const forgeries: Attempt[] = [
        { name: "signed by another RSA key under the JWKS's kid", query: tokenOnly(await rs({ key: attacker.privateKey })), status: 403 },
        { name: "signature altered", query: tokenOnly(`${valid.split(".")[0]}.${p}.${flipMiddle(s)}`), status: 403 },
        {
          name: "payload swapped, signature kept",
          query: tokenOnly(
            `${valid.split(".")[0]}.${b64url({ ...JSON.parse(Buffer.from(p, "base64url").toString()), sub: "admin" })}.${s}`,
          ),
          status: 403,
        },
        {
          name: "alg none (unsecured JWT)",
          query: tokenOnly(new UnsecuredJWT({ sub: "attacker", iss: issuer, aud: audience, exp: now() + 600 }).encode()),
          status: 403,
        },
        { name: "HS256 signed with the public key as PEM (algorithm confusion)", query: tokenOnly(await hmac(publicPem)), status: 403 },
        { name: "HS256 signed with the public key as JWK JSON", query: tokenOnly(await hmac(JSON.stringify(publicJwk))), status: 403 },
        { name: "HS256 signed with the public modulus", query: tokenOnly(await hmac(String(publicJwk.n))), status: 403 },
        { name: "a local shared-secret token (HS256)", query: tokenOnly(await rt.mintToken("alice", "Alice")), status: 403 },
        { name: "RS512 with the right key", query: tokenOnly(await rs({ alg: "RS512" })), status: 403 },
        { name: "PS256 with the right key", query: tokenOnly(await rs({ alg: "PS256" })), status: 403 },
        { name: "expired a minute ago", query: tokenOnly(await rs({ exp: now() - 60 })), status: 403 },
        { name: "not valid for another minute (nbf)", query: tokenOnly(await rs({ nbf: now() + 60 })), status: 403 },
        { name: "wrong issuer", query: tokenOnly(await rs({ iss: "https://evil.example.test/pool" })), status: 403 },
        { name: "wrong audience", query: tokenOnly(await rs({ aud: "another-client" })), status: 403 },
        { name: "an unknown kid", query: tokenOnly(await rs({ kid: "k2" })), status: 403 },
        {
          name: "a jku header pointing at the attacker's JWKS",
          query: tokenOnly(await rs({ key: attacker.privateKey, kid: "evil", header: { jku: attackerJwks!.url } })),
          status: 403,
        },
        {
          name: "the attacker's public key embedded as a jwk header",
          query: tokenOnly(
            await rs({
              key: attacker.privateKey,
              kid: "evil",
              header: { jwk: { kty: attacker.publicJwk.kty, n: attacker.publicJwk.n, e: attacker.publicJwk.e } },
            }),
          ),
          status: 403,
        },
        { name: "a sub that is not a valid user id", query: tokenOnly(await rs({ sub: "a b#c" })), status: 403 },
        {
          name: "a userId query parameter impersonating someone else",
          query: { token: valid, userId: "someone-else", roomId: "oidc" },
          status: 403,
        },
        { name: "garbage", query: tokenOnly("x.y.z"), status: 403 },
        { name: "no token at all", query: { roomId: "oidc" }, status: 401 },
        {
          name: "the valid token in an Authorization: Bearer header only",
          query: { roomId: "oidc" },
          headers: { Authorization: `Bearer ${valid}` },
          status: 401,
        },
      ];
      await runForgeries(rt.endpoint, tokenOnly(valid), forgeries);
      // jose never followed the jku header: the attacker's key server was never asked.
      assert.equal(attackerJwks!.fetches(), 0, "the attacker's JWKS was never fetched");
    });
  });
});
