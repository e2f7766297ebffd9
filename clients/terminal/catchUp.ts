/**
 * Catching up after a reconnection: room messages sent while the client was disconnected were not
 * delivered to it, but they are in history (the server stores a message before delivering it,
 * docs/protocol.md). After a reconnection the terminal client asks each rejoined room for its latest
 * history page and prints only what it has not shown yet, newer than what it had seen.
 */
import type { ChatFrame, HistoryFrame, HistoryMessage } from "../shared/protocol";

/** Message ids remembered per room to avoid printing a message twice (live and from history). */
const SEEN_PER_ROOM = 500;

export class CatchUp {
  private readonly since = new Map<string, string>();
  private readonly seen = new Map<string, Set<string>>();
  /** Per room awaiting a catch-up: the newest `sentAt` seen before the connection dropped. */
  private readonly awaitingJoin = new Map<string, string>();
  private readonly awaitingHistory = new Map<string, string>();
  private readonly now: () => Date;

  constructor(now: () => Date = () => new Date()) {
    this.now = now;
  }

  /** After a reconnection: these rooms are caught up once their `joined` reply arrives. */
  expect(rooms: readonly string[]): void {
    for (const r of rooms) {
      const since = this.since.get(r);
      if (since !== undefined) this.awaitingJoin.set(r, since);
    }
  }

  /** A `joined` reply. Returns true when the room's history should now be requested for a catch-up. */
  onJoined(roomId: string): boolean {
    // Until a message from the room gives the server's clock, this machine's clock bounds what is
    // "new": a few seconds of skew can only add or drop messages from just before the first join.
    if (!this.since.has(roomId)) this.since.set(roomId, this.now().toISOString());
    const bound = this.awaitingJoin.get(roomId);
    if (bound === undefined) return false;
    this.awaitingJoin.delete(roomId);
    this.awaitingHistory.set(roomId, bound);
    return true;
  }

  /** A live chat frame. Returns false when it was already printed (it came from a catch-up first). */
  onChat(frame: ChatFrame): boolean {
    return this.remember(frame.roomId, frame.messageId, frame.sentAt);
  }

  /** True when this history reply answers a catch-up request (and so is not printed as a listing). */
  isCatchUpReply(frame: HistoryFrame): boolean {
    return frame.roomId !== undefined && this.awaitingHistory.has(frame.roomId);
  }

  /** The messages of a catch-up reply not shown yet and newer than what was seen; they become seen. */
  missed(frame: HistoryFrame): HistoryMessage[] {
    const roomId = frame.roomId;
    // Bounded by what was seen before the drop: live messages that arrived since then are newer
    // still, and must not hide the ones missed in between.
    const bound = roomId === undefined ? undefined : this.awaitingHistory.get(roomId);
    if (roomId === undefined || bound === undefined) return [];
    this.awaitingHistory.delete(roomId);
    const out: HistoryMessage[] = [];
    for (const m of frame.messages) {
      if (m.sentAt < bound) continue;
      if (this.remember(roomId, m.messageId, m.sentAt)) out.push(m);
    }
    return out;
  }

  /** Records a message; false if it was already recorded. */
  private remember(roomId: string, messageId: string, sentAt: string): boolean {
    let ids = this.seen.get(roomId);
    if (!ids) {
      ids = new Set();
      this.seen.set(roomId, ids);
    }
    if (ids.has(messageId)) return false;
    ids.add(messageId);
    if (ids.size > SEEN_PER_ROOM) ids.delete(ids.values().next().value as string);
    const since = this.since.get(roomId);
    if (since === undefined || sentAt > since) this.since.set(roomId, sentAt);
    return true;
  }
}
