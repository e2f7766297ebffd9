/**
 * The clients and `system` frames (docs/protocol.md "system", docs/push.md): parsing, the terminal
 * format, the web page's conversation store, and the terminal client receiving a real push from
 * push/index.ts through the local runtime (live, and again from history after a reconnect).
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import { parseServerFrame } from "../../clients/shared/protocol";
import { formatFrame, formatHistoryMessage } from "../../clients/terminal/format";
import { ConversationStore, roomKey, type MessageEntry } from "../../clients/web/src/conversations";
import type { Logger } from "../../handlers/lib/logger";
import type { LocalRuntime } from "../../local/runtime";
import { createPusher, type Pusher } from "../../push";
import { pusherOptionsFrom } from "../../scripts/push";
import { startTestRuntime, TerminalClient } from "./support";

const at = new Date(2026, 10, 26, 9, 5, 7);
const ctx = { now: () => at };

describe("clients: system frames (pure)", () => {
  it("parses a room notice and a user notice, keeping data", () => {
    assert.deepEqual(
      parseServerFrame(
        '{"type":"system","from":"system","roomId":"general","messageId":"m1","message":"hi","sentAt":"2026-11-26T09:05:07.000Z","data":{"a":1}}',
      ),
      { type: "system", messageId: "m1", message: "hi", sentAt: "2026-11-26T09:05:07.000Z", roomId: "general", data: { a: 1 } },
    );
    assert.deepEqual(
      parseServerFrame(
        '{"type":"system","from":"system","toUserId":"alice","messageId":"m2","message":"yo","sentAt":"2026-11-26T09:05:07.000Z"}',
      ),
      {
        type: "system",
        messageId: "m2",
        message: "yo",
        sentAt: "2026-11-26T09:05:07.000Z",
        toUserId: "alice",
      },
    );
  });

  it("reports a system frame without its message as invalid, never throws", () => {
    const parsed = parseServerFrame('{"type":"system","messageId":"m1","sentAt":"2026-11-26T09:05:07.000Z"}');
    assert.equal(parsed.type, "invalid");
  });

  it("keeps kind and data of history items pushed by a backend, and nothing of the kind on users' messages", () => {
    const parsed = parseServerFrame(
      JSON.stringify({
        type: "history",
        roomId: "general",
        messages: [
          {
            messageId: "a",
            userId: "system",
            username: "System",
            message: "notice",
            sentAt: "2026-11-26T09:00:00.000Z",
            kind: "system",
            data: { k: "v" },
          },
          { messageId: "b", userId: "system", username: "A user called system", message: "hello", sentAt: "2026-11-26T09:01:00.000Z" },
        ],
      }),
    );
    assert.equal(parsed.type, "history");
    if (parsed.type !== "history") return;
    assert.deepEqual([parsed.messages[0].kind, parsed.messages[0].data], ["system", { k: "v" }]);
    assert.deepEqual([parsed.messages[1].kind, parsed.messages[1].data], [undefined, undefined]);
  });

  it("prints notices with a [system] tag, live and from history, without control characters", () => {
    const live = parseServerFrame(
      '{"type":"system","roomId":"ops","messageId":"m","message":"deploy \\u001b[31mdone","sentAt":"2026-11-26T09:05:07.000Z"}',
    );
    assert.notEqual(live.type, "invalid");
    if (live.type === "invalid") return;
    assert.match(formatFrame(live, ctx)[0], /^\d\d:\d\d:\d\d \[system #ops\] deploy �\[31mdone$/);
    const toMe = parseServerFrame(
      '{"type":"system","toUserId":"alice","messageId":"m","message":"order shipped","sentAt":"2026-11-26T09:05:07.000Z"}',
    );
    if (toMe.type === "invalid") throw new Error("invalid");
    assert.match(formatFrame(toMe, ctx)[0], /\[system\] order shipped$/);
    const line = formatHistoryMessage(
      { messageId: "x", userId: "system", username: "System", message: "old notice", sentAt: "2026-11-26T08:00:00.000Z", kind: "system" },
      "#ops",
      ctx,
    );
    assert.match(line, /\[history #ops\] \d\d:\d\d:\d\d \[system\] old notice$/);
  });

  it("stores a notice once in the web page's conversation, marked as system, whether it came live or from history", () => {
    const store = new ConversationStore();
    const key = roomKey("ops");
    assert.equal(
      store.addMessage(key, {
        messageId: "n1",
        userId: "system",
        username: "System",
        message: "hi",
        sentAt: "2026-11-26T09:00:00.000Z",
        kind: "system",
      }),
      true,
    );
    store.addHistory(
      key,
      [{ messageId: "n1", userId: "system", username: "System", message: "hi", sentAt: "2026-11-26T09:00:00.000Z", kind: "system" }],
      undefined,
    );
    store.addHistory(
      key,
      [{ messageId: "u1", userId: "system", username: "Sys", message: "a user", sentAt: "2026-11-26T09:01:00.000Z" }],
      undefined,
    );
    const entries = store.get(key).entries as MessageEntry[];
    assert.deepEqual(
      entries.map((e) => [e.id, e.system ?? false]),
      [
        ["n1", true],
        ["u1", false],
      ],
    );
  });
});

describe("clients: the terminal client shows a backend's push", function () {
  this.timeout(120_000);
  const T = 20_000;
  let rt: LocalRuntime;
  let dir: string;
  let pusher: Pusher;
  const clients: TerminalClient[] = [];

  before(async () => {
    ({ rt, dir } = await startTestRuntime("system", { warm: true }));
    pusher = createPusher({ ...pusherOptionsFrom(rt.outputs()), logger: quiet });
  });
  after(async () => {
    for (const c of clients) c.kill();
    pusher?.close();
    await rt?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("prints a room notice and a notice to the user as they arrive, and the room notice again in /history", async () => {
    const c = new TerminalClient([rt.endpoint, "--user", "sys-alice", "--name", "Alice", "--room", "ops", "--no-color"]);
    clients.push(c);
    await c.expect(/\[joined #ops\]/, 0, T);

    await pusher.toRoom("ops", { message: "deploy finished", data: { build: 7 } });
    await c.expect(/\[system #ops\] \^\d+ deploy finished$/, 0, T);
    await pusher.toUser("sys-alice", "your export is ready");
    await c.expect(/\[system\] your export is ready$/, 0, T);

    const mark = c.mark();
    c.send("/history ops");
    await c.expect(/\[history #ops\] \d\d:\d\d:\d\d \^\d+ \[system\] deploy finished$/, mark, T);
  });
});

/** The pusher's logs are not what this test reads. */
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };
