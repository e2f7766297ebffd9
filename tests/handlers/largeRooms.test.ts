/**
 * Issue 17, end to end on the local runtime: a room of more users than largeRoomUsers is delivered by
 * the `deliver` workers through the delivery queue (the local SQS, FIFO, its dead-letter queue and
 * the event source mapping), with real WebSocket clients. Members sit in several shards (their items
 * written into the shard partitions, as sharded joins place them). Each case ends when every member
 * has the frame and the queue is empty; duplicates are allowed only where docs/protocol.md says
 * ("Delivery in large rooms": a retried shard is posted again). No timed assertion: bounded waits.
 * A throttled @connections and a worker that stops at its time margin run here; a worker killed mid-shard, a shard that fails twice and a worker
 * past its timeout run in `npm run test:long` (tests/long/largeRoomFaults.long.ts).
 */
import * as assert from "node:assert/strict";
import { DELIVERY_MAX_RECEIVE_COUNT } from "../../handlers/lib/deliveries";
import type { LocalRuntime } from "../../local/runtime";
import {
  closeAll,
  copies,
  drained,
  everyoneGets,
  fixture,
  largeRoom,
  type Member,
  ROOM,
  runtime,
  SHARDS,
  survives,
} from "../support/largeRooms";

describe("large rooms: delivery through the queue (local runtime, real sockets)", function () {
  this.timeout(180_000);

  describe("without faults", () => {
    let rt: LocalRuntime;
    let sender: Member;
    let members: Member[];
    before(async () => {
      rt = await runtime("large");
      ({ sender, members } = await largeRoom(rt));
    });
    after(async () => closeAll(rt, [sender, ...members]));

    it("chat reaches every member exactly once; the sender's route answers with the frame", async () => {
      const reply = await sender.client.request({ type: "chat", roomId: ROOM, message: "hello crowd", clientMessageId: "lr-1" }, "chat");
      assert.equal(reply.message, "hello crowd");
      const messageId = String(reply.messageId);
      await everyoneGets(members, "chat", messageId);
      await drained(rt);
      for (const m of members) assert.equal(copies(m, "chat", messageId), 0, `${m.userId}: once`);
      assert.equal(copies(sender, "chat", messageId), 0, "the sender had its answer, not a second copy");
      assert.equal(rt.stats.deliveryQueue().deadLetter.approximateNumberOfMessages, 0);
      assert.equal(rt.stats.deliveryQueue().queue.sent, SHARDS, "one job per shard");
    });

    it("one sender's messages reach every member in the order they were sent", async () => {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const reply = await sender.client.request({ type: "chat", roomId: ROOM, message: `n${i}` }, "chat");
        ids.push(String(reply.messageId));
      }
      for (const m of members) {
        const got: string[] = [];
        for (let i = 0; i < 3; i++) got.push(String((await m.client.nextOf("chat", 60_000)).messageId));
        assert.deepEqual(got, ids, m.userId);
      }
      await drained(rt);
    });

    it("edit, react and delete reach every member exactly once", async () => {
      const chat = await sender.client.request({ type: "chat", roomId: ROOM, message: "to change" }, "chat");
      const messageId = String(chat.messageId);
      await everyoneGets(members, "chat", messageId);
      for (const [frame, type] of [
        [{ type: "edit", roomId: ROOM, messageId, message: "changed" }, "edited"],
        [{ type: "react", roomId: ROOM, messageId, emoji: "🎉" }, "reaction"],
        [{ type: "delete", roomId: ROOM, messageId }, "deleted"],
      ] as const) {
        const reply = await sender.client.request(frame, type);
        assert.equal(reply.messageId, messageId);
        await everyoneGets(members, type, messageId);
        await drained(rt);
        for (const m of members) assert.equal(copies(m, type, messageId), 0, `${type} ${m.userId}: once`);
      }
    });
  });

  it("a worker that reaches its time margin mid-shard: the rest of the shard goes on at once, and nobody gets the message twice", async () => {
    await survives(
      "resume",
      // At most one copy each: the stopped worker recorded whom it had reached (handlers/lib/deliveryProgress.ts).
      1,
      {
        // A visibility timeout far beyond this test's wait: the retry must not wait for it (the worker
        // makes its stopped job visible again itself). Before it did, this case timed out.
        deliveryVisibilityTimeoutSeconds: 600,
        functionOverrides: { deliver: fixture("slow") },
        // A margin of 2 s (a third of it) to record the progress and hand the job back, on a busy machine too.
        functionTimeoutMs: { deliver: 6000 },
      },
      (rt) => {
        const { mapping } = rt.stats.deliveryQueue();
        assert.ok(mapping.recordsReportedFailed >= 1, "a worker stopped at its margin and handed its job back");
        assert.equal(mapping.failedInvocations, 0, "no invocation ran past its timeout");
      },
    );
  });

  it("a throttled @connections (429 for a while): retried with backoff, then by the queue; every member gets the message", async () => {
    let throttled = 0;
    await survives(
      "throttle",
      DELIVERY_MAX_RECEIVE_COUNT,
      {
        // The first 40 posts answer LimitExceededException: more than the fan-out's own retries, so
        // some shards are also handed back to the queue.
        managementFault: (call) => (call.method === "POST" && throttled++ < 40 ? "LimitExceededException" : undefined),
      },
      () => assert.ok(throttled >= 40),
    );
  });
});
