/**
 * A counting sink for the benchmark's large rooms (issue 17): members that exist in the gateway
 * without a socket. Each one is registered through the real handshake (a real token, the
 * authorizer, `$connect`, its join), so what DynamoDB holds for it is exactly what a socket's
 * connection would leave; a POST to it is answered 200 as for an open socket (after the gateway's
 * managementLatencyMs and managementFault, like any other) and counted here: frames, bytes, and the
 * receipt time of each frame key (a frame's type and messageId). One 2-core machine cannot hold
 * 10,000+ real sockets and read their frames; a sink member costs the gateway one map entry.
 * `disconnect` closes one as its client would (close code 1000: `$disconnect` runs).
 */
import type { LocalGateway, SinkTarget } from "./gateway";

/** Who connects: the query string a WebSocket client would send (local/runtime.ts TOKEN_QUERY_PARAM). */
export interface SinkMemberSpec {
  readonly token: string;
  readonly roomId: string;
  readonly username: string;
}

export interface SinkRegistration {
  /** Per member in the order given: its connection id, or undefined when its handshake was refused. */
  readonly connectionIds: ReadonlyArray<string | undefined>;
  /** Members whose handshake was refused, with the HTTP status a socket would have got. */
  readonly refused: ReadonlyArray<{ readonly index: number; readonly status: number }>;
  readonly ms: number;
  /** Handshakes completed per second (registered and refused). */
  readonly perSecond: number;
  readonly concurrency: number;
}

/** What one sink connection received. */
export interface SinkConnectionStats {
  readonly frames: number;
  readonly bytes: number;
  /** The frames themselves, in order, when the sink keeps them (keepFrames). */
  readonly bodies?: readonly string[];
  readonly open: boolean;
}

/** Receipts of one frame key: the first receipt per connection and how many copies came after it. */
export interface KeyReceipts {
  /** Connection id → first receipt (epochMs: performance.timeOrigin + now, comparable across processes). */
  readonly first: ReadonlyMap<string, number>;
  /** Copies received by a connection that already had one (a retried delivery). */
  readonly duplicates: number;
}

export interface SinkTotals {
  readonly connections: number;
  readonly open: number;
  readonly frames: number;
  readonly bytes: number;
}

export interface LocalSinkOptions {
  /** Keep every frame's text per connection (tests); the benchmark keeps counts only. Default false. */
  readonly keepFrames?: boolean;
}

interface SinkConnection {
  frames: number;
  bytes: number;
  bodies?: string[];
  open: boolean;
}

/** `type:messageId` of a JSON frame that has both (chat, edit, delete, react frames), else undefined. */
export function frameKey(body: string): string | undefined {
  // Most frames the benchmark sees are chat frames; skip the parse for the others.
  if (!body.includes('"messageId"')) return undefined;
  try {
    const frame = JSON.parse(body) as { type?: unknown; messageId?: unknown };
    return typeof frame.type === "string" && typeof frame.messageId === "string" ? `${frame.type}:${frame.messageId}` : undefined;
  } catch {
    return undefined;
  }
}

export class LocalSink implements SinkTarget {
  private readonly connections = new Map<string, SinkConnection>();
  private readonly keys = new Map<string, { first: Map<string, number>; duplicates: number }>();
  private frames = 0;
  private bytes = 0;

  constructor(
    private readonly gateway: LocalGateway,
    private readonly options: LocalSinkOptions = {},
  ) {}

  /**
   * Registers members through the gateway's handshake, at most `concurrency` at once (handshakes
   * into one room may run concurrently: the handlers keep a connection still inside its `$connect`,
   * docs/architecture.md "Races"). Every member is tried; refusals are returned, not thrown.
   */
  async register(members: readonly SinkMemberSpec[], concurrency: number): Promise<SinkRegistration> {
    if (!Number.isInteger(concurrency) || concurrency < 1)
      throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
    const ids: Array<string | undefined> = new Array(members.length).fill(undefined);
    const refused: Array<{ index: number; status: number }> = [];
    const started = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < members.length) {
        const index = next++;
        const m = members[index];
        const query = new URLSearchParams({ token: m.token, roomId: m.roomId, username: m.username });
        const outcome = await this.gateway.openSink(query, this);
        if ("connectionId" in outcome) {
          ids[index] = outcome.connectionId;
          this.connection(outcome.connectionId);
        } else refused.push({ index, status: outcome.status });
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, members.length) }, worker));
    const ms = performance.now() - started;
    refused.sort((a, b) => a.index - b.index);
    return { connectionIds: ids, refused, ms, perSecond: ms > 0 ? (members.length * 1000) / ms : 0, concurrency };
  }

  /** Closes a sink connection as its client would (1000); resolves once `$disconnect` has run. */
  disconnect(connectionId: string): Promise<boolean> {
    return this.gateway.closeSink(connectionId);
  }

  /** SinkTarget: a POST the gateway answered 200. */
  receive(connectionId: string, body: Buffer, at: number): void {
    const c = this.connection(connectionId);
    c.frames += 1;
    c.bytes += body.length;
    this.frames += 1;
    this.bytes += body.length;
    const text = body.toString("utf8");
    if (c.bodies) c.bodies.push(text);
    const key = frameKey(text);
    if (key === undefined) return;
    let r = this.keys.get(key);
    if (!r) {
      r = { first: new Map(), duplicates: 0 };
      this.keys.set(key, r);
    }
    if (r.first.has(connectionId)) r.duplicates += 1;
    else r.first.set(connectionId, at);
  }

  /** SinkTarget: the gateway closed it (closeSink, a DELETE, the idle or duration timeout, stop). */
  closed(connectionId: string): void {
    this.connection(connectionId).open = false;
  }

  /** What one connection received (zeros for an id the sink never saw). */
  stats(connectionId: string): SinkConnectionStats {
    const c = this.connections.get(connectionId);
    if (!c) return { frames: 0, bytes: 0, open: false, ...(this.options.keepFrames ? { bodies: [] } : {}) };
    return { frames: c.frames, bytes: c.bytes, open: c.open, ...(c.bodies ? { bodies: [...c.bodies] } : {}) };
  }

  /** Receipts of one frame key (frameKey): empty when none arrived. */
  receipts(key: string): KeyReceipts {
    const r = this.keys.get(key);
    return { first: new Map(r?.first ?? []), duplicates: r?.duplicates ?? 0 };
  }

  /** How many connections have received `key` so far (cheap: for polling). */
  receivedCount(key: string): number {
    return this.keys.get(key)?.first.size ?? 0;
  }

  totals(): SinkTotals {
    let open = 0;
    for (const c of this.connections.values()) if (c.open) open += 1;
    return { connections: this.connections.size, open, frames: this.frames, bytes: this.bytes };
  }

  /** Forgets the per-key receipts and the counters (connections stay registered). */
  reset(): void {
    this.keys.clear();
    this.frames = 0;
    this.bytes = 0;
    for (const c of this.connections.values()) {
      c.frames = 0;
      c.bytes = 0;
      if (c.bodies) c.bodies = [];
    }
  }

  private connection(connectionId: string): SinkConnection {
    let c = this.connections.get(connectionId);
    if (!c) {
      c = { frames: 0, bytes: 0, open: true, ...(this.options.keepFrames ? { bodies: [] } : {}) };
      this.connections.set(connectionId, c);
    }
    return c;
  }
}
