/**
 * Issue 8, browser origin: with an allow-list (the stack's allowedOrigins, `npm run local
 * --allowed-origin`), the authorizer refuses at the handshake a browser whose Origin is not on
 * it (403), as OWASP's WebSocket guidance advises against cross-site WebSocket hijacking. Clients
 * that send no Origin (terminal client, SDKs, curl) are not browsers and are accepted: Origin
 * protects browser users; it is not an authentication (any non-browser client can set it).
 */
import * as assert from "node:assert/strict";
import { SignJWT } from "jose";
import { isUsageError, parseCliArgs } from "../../local/cli";
import { startLocalRuntime, type LocalRuntime } from "../../local/runtime";
import { sharedDynamo, uniquePrefix } from "../support/globalFixtures";
import { HandshakeRejected, connect } from "../local/wsClient";

const ALLOWED = "https://chat.example.com";

describe("reliability: browser Origin allow-list at the handshake", function () {
  this.timeout(60_000);
  let rt: LocalRuntime;
  let token: string;

  before(async () => {
    const dynamo = await sharedDynamo();
    rt = await startLocalRuntime({
      dynamodbEndpoint: dynamo.endpoint,
      tablePrefix: uniquePrefix("origin"),
      quiet: true,
      settings: { allowedOrigins: [ALLOWED], rateLimitPerMinute: 10_000 },
    });
    token = await rt.mintToken("olga", "Olga");
  });
  after(async () => {
    await rt?.stop();
  });

  /** "accepted" (and the connection answers ping) or the refused handshake's HTTP status. */
  async function handshake(origin: string | undefined, query: Record<string, string> = { token }): Promise<number | "accepted"> {
    const headers: Record<string, string> = origin === undefined ? {} : { Origin: origin };
    try {
      const client = await connect(`${rt.endpoint}?${new URLSearchParams({ roomId: "origins", ...query })}`, { headers });
      assert.deepEqual(await client.request({ type: "ping" }, "pong"), { type: "pong" });
      await client.close();
      return "accepted";
    } catch (err) {
      if (err instanceof HandshakeRejected) return err.status;
      throw err;
    }
  }

  it(`accepts a browser on the allowed origin ${ALLOWED}`, async () => {
    assert.equal(await handshake(ALLOWED), "accepted");
  });

  it("accepts a client that sends no Origin (not a browser)", async () => {
    assert.equal(await handshake(undefined), "accepted");
  });

  it("refuses every other origin with 403, including look-alikes", async () => {
    const others = [
      "https://evil.example.com",
      "http://chat.example.com",
      "https://chat.example.com:8443",
      "https://chat.example.com.evil.com",
      "https://evilchat.example.com",
      "https://chat.example.co",
      `${ALLOWED}/`,
      "https://CHAT.EXAMPLE.COM",
      "null",
      "file://",
      "http://127.0.0.1:3001",
    ];
    const results = await Promise.all(others.map(async (o) => [o, await handshake(o)] as const));
    assert.deepEqual(
      results.filter(([, status]) => status !== 403),
      [],
    );
  });

  it("checks the token first as API Gateway does: no token is 401 whatever the Origin; a forged token is 403 even from the allowed origin", async () => {
    assert.equal(await handshake("https://evil.example.com", {}), 401);
    const forged = await new SignJWT({ sub: "olga" })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer("chat-local")
      .setAudience("chat-api")
      .setExpirationTime("10m")
      .sign(new TextEncoder().encode("f".repeat(64)));
    assert.equal(await handshake(ALLOWED, { token: forged }), 403);
  });

  it("npm run local takes --read-receipt-rooms <patterns> (default none, as the stack) and refuses a bad pattern", () => {
    assert.equal(parseCliArgs([]).readReceiptRooms, "");
    assert.equal(parseCliArgs(["--read-receipt-rooms", "lobby,team-*"]).readReceiptRooms, "lobby,team-*");
    assert.throws(
      () => parseCliArgs(["--read-receipt-rooms", "a b"]),
      (err: unknown) => isUsageError(err) && /--read-receipt-rooms must be comma-separated room patterns/.test((err as Error).message),
    );
  });

  it("npm run local takes --room-access open|token (default open, as the stack) and refuses anything else", () => {
    assert.equal(parseCliArgs([]).roomAccess, "open");
    assert.equal(parseCliArgs(["--room-access", "token"]).roomAccess, "token");
    assert.equal(parseCliArgs(["--room-access=open"]).roomAccess, "open");
    assert.throws(
      () => parseCliArgs(["--room-access", "closed"]),
      (err: unknown) => isUsageError(err) && /--room-access must be open or token, got "closed"/.test((err as Error).message),
    );
    assert.throws(() => parseCliArgs(["--room-access"]), /needs a value/);
  });

  it("npm run local takes --allowed-origin (repeatable) and refuses what is not an origin", () => {
    assert.deepEqual(parseCliArgs([]).allowedOrigins, []);
    assert.deepEqual(parseCliArgs(["--allowed-origin", ALLOWED, "--allowed-origin=http://localhost:5173"]).allowedOrigins, [
      ALLOWED,
      "http://localhost:5173",
    ]);
    for (const bad of ["https://chat.example.com/app", "*", "chat.example.com", "ftp://chat.example.com"]) {
      assert.throws(
        () => parseCliArgs(["--allowed-origin", bad]),
        (err: Error) => isUsageError(err) && /--allowed-origin must be an origin/.test(err.message),
        bad,
      );
    }
    assert.throws(() => parseCliArgs(["--allowed-origin"]), /needs a value/);
  });
});
