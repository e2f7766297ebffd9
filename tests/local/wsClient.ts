/**
 * A small test client over the real `ws` package: opens a connection (or reports the handshake's
 * HTTP status), queues incoming frames and waits for a frame matching a predicate, or for the close.
 * Every wait is bounded so a broken server fails the test instead of hanging it.
 */
import WebSocket from "ws";

export interface Frame {
  readonly text: string;
  readonly json: Record<string, unknown> | undefined;
}

export class TestClient {
  readonly frames: Frame[] = [];
  private waiters: Array<{ match: (f: Frame) => boolean; resolve: (f: Frame) => void }> = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(readonly ws: WebSocket) {
    ws.on("message", (data, isBinary) => {
      const text = isBinary ? Buffer.from(data as Buffer).toString("base64") : data.toString();
      let json: Record<string, unknown> | undefined;
      try {
        const parsed: unknown = JSON.parse(text);
        if (parsed && typeof parsed === "object") json = parsed as Record<string, unknown>;
      } catch {
        json = undefined;
      }
      const frame = { text, json };
      const i = this.waiters.findIndex((w) => w.match(frame));
      if (i >= 0) {
        const [w] = this.waiters.splice(i, 1);
        w.resolve(frame);
      } else this.frames.push(frame);
    });
    this.closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on("error", () => undefined);
  }

  send(data: unknown): void {
    this.ws.send(typeof data === "string" ? data : JSON.stringify(data));
  }

  /** The first queued or future frame matching `match` (removed from the queue). */
  next(match: (f: Frame) => boolean = () => true, timeoutMs = 10_000, what = "a frame"): Promise<Frame> {
    const i = this.frames.findIndex(match);
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (f: Frame) => {
          clearTimeout(timer);
          resolve(f);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}; queued: ${this.frames.map((f) => f.text.slice(0, 200)).join(" | ")}`,
          ),
        );
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** The next frame whose JSON has `type` (or `message` for API Gateway's own frames) equal to `value`. */
  nextOf(value: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    return this.next((f) => f.json?.type === value || f.json?.message === value, timeoutMs, `a "${value}" frame`).then((f) => f.json!);
  }

  /** Sends and waits for the frame answering it. */
  async request(data: Record<string, unknown>, answerType: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const p = this.nextOf(answerType, timeoutMs);
    this.send(data);
    return p;
  }

  /** Fails if a frame matching `match` arrives within `ms`. */
  async expectNone(match: (f: Frame) => boolean, ms: number): Promise<void> {
    const found = await this.next(match, ms).then(
      (f) => f,
      () => undefined,
    );
    if (found) throw new Error(`unexpected frame: ${found.text}`);
  }

  async close(code = 1000, reason = ""): Promise<{ code: number; reason: string }> {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, reason);
    return withTimeout(this.closed, 5000, "close");
  }

  waitClosed(timeoutMs = 10_000): Promise<{ code: number; reason: string }> {
    return withTimeout(this.closed, timeoutMs, "the connection to close");
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** Opens a connection; rejects with the handshake's HTTP status when the server refuses it. */
export function connect(url: string, options: WebSocket.ClientOptions = {}, timeoutMs = 20_000): Promise<TestClient> {
  return withTimeout(
    new Promise<TestClient>((resolve, reject) => {
      const ws = new WebSocket(url, options);
      const client = new TestClient(ws);
      ws.once("open", () => resolve(client));
      ws.once("unexpected-response", (_req, res) => {
        reject(new HandshakeRejected(res.statusCode ?? 0));
        ws.terminate();
      });
      ws.once("error", (err) => reject(err));
    }),
    timeoutMs,
    `a connection to ${url.replace(/token=[^&]+/, "token=…")}`,
  );
}

export class HandshakeRejected extends Error {
  constructor(readonly status: number) {
    super(`handshake rejected with HTTP ${status}`);
    this.name = "HandshakeRejected";
  }
}

/** The HTTP status of a refused handshake (fails if the connection opens). */
export async function handshakeStatus(url: string): Promise<number> {
  try {
    const c = await connect(url);
    await c.close();
  } catch (err) {
    if (err instanceof HandshakeRejected) return err.status;
    throw err;
  }
  throw new Error("the handshake was accepted");
}

/** Polls `check` until it returns a value (not undefined) or the time is up. */
export async function eventually<T>(
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
  what = "a condition",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
