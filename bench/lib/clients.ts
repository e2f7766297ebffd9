/**
 * Real `ws` clients for the benchmarks: opened over loopback with a bounded number of handshakes
 * in flight (API Gateway itself accepts 500 new connections a second per account: AWS-FACTS
 * Limits), each one a member of a room, each recording when frames carrying a marker arrive.
 */
import WebSocket from "ws";

export interface ClientSpec {
  readonly userId: string;
  readonly username: string;
  readonly roomId: string;
  readonly token: string;
}

export interface BenchClient {
  readonly spec: ClientSpec;
  readonly ws: WebSocket;
  /** Frames received. */
  frames: number;
  /** Called with the raw frame and its arrival time (performance.now()). */
  onFrame?: (data: string, at: number) => void;
}

export class HandshakeError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "HandshakeError";
  }
}

export function connectUrl(endpoint: string, spec: ClientSpec): string {
  const q = new URLSearchParams({ token: spec.token, roomId: spec.roomId, username: spec.username });
  return `${endpoint}?${q.toString()}`;
}

/** Opens one client; rejects with the HTTP status when the handshake is refused. */
export function openClient(endpoint: string, spec: ClientSpec, timeoutMs = 30_000): Promise<BenchClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(connectUrl(endpoint, spec), { perMessageDeflate: false });
    const client: BenchClient = { spec, ws, frames: 0 };
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new HandshakeError(`handshake for ${spec.userId} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    ws.on("message", (data) => {
      client.frames += 1;
      if (client.onFrame) client.onFrame(data.toString(), performance.now());
    });
    ws.once("open", () => {
      clearTimeout(timer);
      resolve(client);
    });
    ws.once("unexpected-response", (_req, res) => {
      clearTimeout(timer);
      reject(new HandshakeError(`handshake for ${spec.userId} refused with HTTP ${res.statusCode}`, res.statusCode));
      ws.terminate();
    });
    ws.once("error", (err) => {
      clearTimeout(timer);
      reject(new HandshakeError(`handshake for ${spec.userId} failed: ${err.message}`));
    });
  });
}

/** Opens every client, at most `concurrency` handshakes at a time, in the order given. */
export async function openClients(
  endpoint: string,
  specs: readonly ClientSpec[],
  concurrency: number,
  onProgress?: (done: number) => void,
): Promise<BenchClient[]> {
  const out: BenchClient[] = new Array(specs.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < specs.length) {
      const i = next++;
      out[i] = await openClient(endpoint, specs[i]);
      done += 1;
      if (onProgress && done % 250 === 0) onProgress(done);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, specs.length) }, worker));
  } catch (err) {
    closeClients(out.filter(Boolean));
    throw err;
  }
  return out;
}

/**
 * Opens every room's clients one handshake at a time per room, in the order given, with up to
 * `concurrency` rooms filling at once.
 */
export async function openRooms(
  endpoint: string,
  rooms: ReadonlyArray<readonly ClientSpec[]>,
  concurrency: number,
  onProgress?: (done: number) => void,
): Promise<BenchClient[]> {
  const all: BenchClient[] = [];
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (next < rooms.length && failed === undefined) {
      const room = rooms[next++];
      for (const spec of room) {
        if (failed !== undefined) return;
        all.push(await openClient(endpoint, spec));
        if (onProgress && all.length % 250 === 0) onProgress(all.length);
      }
    }
  };
  try {
    await Promise.all(
      Array.from({ length: Math.min(concurrency, rooms.length) }, () =>
        worker().catch((err) => {
          failed ??= err;
        }),
      ),
    );
  } finally {
    if (failed !== undefined) closeClients(all);
  }
  if (failed !== undefined) throw failed;
  return all;
}

export function closeClients(clients: readonly BenchClient[]): void {
  for (const c of clients) {
    if (c && c.ws.readyState !== WebSocket.CLOSED) c.ws.terminate();
  }
}

/** Closes clients gracefully (close frame 1000) and waits until each is closed. */
export async function closeClientsGracefully(clients: readonly BenchClient[], timeoutMs = 10_000): Promise<void> {
  await Promise.all(
    clients.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.ws.readyState === WebSocket.CLOSED) return resolve();
          const timer = setTimeout(() => {
            c.ws.terminate();
            resolve();
          }, timeoutMs);
          c.ws.once("close", () => {
            clearTimeout(timer);
            resolve();
          });
          c.ws.close(1000, "bench done");
        }),
    ),
  );
}

/**
 * Sends a chat message marked with a unique nonce from `sender` and resolves with each member's
 * receipt latency (ms since the send) once every member in `members` has it, or rejects after
 * `timeoutMs` naming how many are missing.
 */
export function broadcastAndWait(
  sender: BenchClient,
  members: readonly BenchClient[],
  roomId: string,
  timeoutMs: number,
): Promise<number[]> {
  const nonce = `bench-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
  return new Promise((resolve, reject) => {
    const latencies: number[] = [];
    let remaining = members.length;
    let sentAt = 0;
    const cleanup = () => {
      for (const m of members) m.onFrame = undefined;
      clearTimeout(timer);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${remaining} of ${members.length} members of ${roomId} did not receive the message within ${timeoutMs} ms`));
    }, timeoutMs);
    for (const m of members) {
      let got = false;
      m.onFrame = (data, at) => {
        if (m === sender && data.includes('"type":"error"')) {
          cleanup();
          reject(new Error(`the chat message to ${roomId} was answered with an error frame: ${data.slice(0, 300)}`));
          return;
        }
        if (got || !data.includes(nonce)) return;
        got = true;
        latencies.push(at - sentAt);
        remaining -= 1;
        if (remaining === 0) {
          cleanup();
          resolve(latencies);
        }
      };
    }
    sentAt = performance.now();
    sender.ws.send(JSON.stringify({ type: "chat", roomId, message: nonce }));
  });
}

/**
 * Like broadcastAndWait, but never rejects for members that do not receive it: resolves with the
 * latencies of those that did and the number missing, once every member has it, or once no member
 * received it for `stallMs` (the delivery has stopped: a function timed out, a member was removed),
 * or after `timeoutMs`. An error frame to the sender still rejects.
 */
export function broadcastAndCollect(
  sender: BenchClient,
  members: readonly BenchClient[],
  roomId: string,
  timeoutMs: number,
  stallMs: number,
): Promise<{ latencies: number[]; missing: number }> {
  const nonce = `bench-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
  return new Promise((resolve, reject) => {
    const latencies: number[] = [];
    let remaining = members.length;
    let sentAt = 0;
    let lastAt = 0;
    const finish = () => {
      for (const m of members) m.onFrame = undefined;
      clearTimeout(timer);
      clearInterval(stall);
      resolve({ latencies, missing: remaining });
    };
    const timer = setTimeout(finish, timeoutMs);
    const stall = setInterval(() => {
      if (performance.now() - lastAt > stallMs) finish();
    }, 250);
    for (const m of members) {
      let got = false;
      m.onFrame = (data, at) => {
        if (m === sender && data.includes('"type":"error"')) {
          for (const x of members) x.onFrame = undefined;
          clearTimeout(timer);
          clearInterval(stall);
          reject(new Error(`the chat message to ${roomId} was answered with an error frame: ${data.slice(0, 300)}`));
          return;
        }
        if (got || !data.includes(nonce)) return;
        got = true;
        lastAt = at;
        latencies.push(at - sentAt);
        remaining -= 1;
        if (remaining === 0) finish();
      };
    }
    sentAt = performance.now();
    lastAt = sentAt;
    sender.ws.send(JSON.stringify({ type: "chat", roomId, message: nonce }));
  });
}
