/**
 * `--user <userId>`: a token minted by the local runtime itself, through its `GET /_local/token`
 * endpoint on the same host and port as the WebSocket endpoint.
 *
 * Asking the running runtime (rather than signing with local/secret.ts here) guarantees the token
 * is signed with the secret *that* runtime verifies, whatever its `secretDir`, and keeps the client
 * free of any secret. Deployed stacks have no such endpoint: there, pass `--token`.
 */

export class LocalTokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LocalTokenError";
  }
}

/** `ws://127.0.0.1:3001/local` → `http://127.0.0.1:3001/_local/token`. */
export function localTokenUrl(endpoint: string, userId: string, name?: string): string {
  const ws = new URL(endpoint);
  const url = new URL("/_local/token", `${ws.protocol === "wss:" ? "https:" : "http:"}//${ws.host}`);
  url.searchParams.set("userId", userId);
  if (name) url.searchParams.set("name", name);
  return url.toString();
}

export async function mintLocalToken(endpoint: string, userId: string, name?: string, timeoutMs = 10_000): Promise<string> {
  const url = localTokenUrl(endpoint, userId, name);
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new LocalTokenError(
      `no local runtime answers at ${new URL(url).origin} (${(err as Error).message}); start it with npm run local, or pass --token`,
    );
  }
  const text = await res.text();
  let body: { token?: unknown; message?: unknown } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    // Not JSON: reported below.
  }
  if (res.status === 404) {
    throw new LocalTokenError(
      `${new URL(url).origin} has no local token endpoint (a deployed API?): --user works only with the local runtime; pass --token`,
    );
  }
  if (!res.ok)
    throw new LocalTokenError(
      `the local runtime refused to mint a token (HTTP ${res.status}): ${typeof body.message === "string" ? body.message : text.slice(0, 200)}`,
    );
  if (typeof body.token !== "string") throw new LocalTokenError(`the local runtime answered without a token: ${text.slice(0, 200)}`);
  return body.token;
}
