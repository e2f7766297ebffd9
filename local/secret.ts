/**
 * The HS256 secret the local runtime's authorizer verifies tokens with, and that `npm run token`
 * signs them with. Created on first use: 32 random bytes as hex (a 256-bit key, RFC 7518 3.2),
 * in `<dir>/secret`, readable by the owner only (0600).
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

export const LOCAL_ISSUER = "chat-local";
export const LOCAL_AUDIENCE = "chat-api";

/** Reads `<dir>/secret`, creating the directory and the file if missing. */
export function localSecret(dir = ".local"): string {
  const file = path.join(dir, "secret");
  try {
    const existing = fs.readFileSync(file, "utf8").trim();
    if (/^[0-9a-f]{64,}$/i.test(existing)) return existing;
    throw new Error(`${file} does not hold a hex secret of at least 32 bytes; delete it to create a new one`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const secret = randomBytes(32).toString("hex");
  try {
    // "wx": fail if another process created it first; then read theirs.
    fs.writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: "wx" });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return localSecret(dir);
    throw err;
  }
  fs.chmodSync(file, 0o600);
  return secret;
}
