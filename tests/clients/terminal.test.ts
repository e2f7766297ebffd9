/**
 * The terminal client as a user runs it: spawned as a process against a local runtime, driven
 * through stdin, read from stdout. Covers join, chat, private message, rooms, history, errors, quit,
 * the exit codes, reconnection after the server cuts the connection, and pings that keep an idle
 * connection open.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import { ApiGatewayManagementApiClient, DeleteConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import { freePort } from "../../local/dynamoLocal";
import type { LocalRuntime } from "../../local/runtime";
import { ChatSession, type SessionEvent } from "../../clients/shared/session";
import { nodeSocketFactory } from "../../clients/terminal/cli";
import { mintLocalToken } from "../../clients/terminal/localToken";
import { startRelay, startTestRuntime, TerminalClient } from "./support";

const T = 30_000;

describe("terminal client against the local runtime", function () {
  this.timeout(180_000);
  let rt: LocalRuntime;
  let dir: string;
  const clients: TerminalClient[] = [];

  /** Starts a client and waits until it is connected and knows its first room's members. */
  async function connect(user: string, name: string, extra: string[] = []): Promise<TerminalClient> {
    const c = new TerminalClient([rt.endpoint, "--user", user, "--name", name, "--no-color", "--ping-interval", "2", ...extra]);
    clients.push(c);
    await c.expect(/\[info\] connected to ws:\/\/127\.0\.0\.1:\d+\/local\?token=%E2%80%A6/, 0, T);
    await c.expect(/\[joined #/, 0, T);
    return c;
  }

  before(async () => {
    // Idle timeout shortened to 5 s so that the ping test runs in seconds; clients ping every 2 s
    // (30 frames a minute, well under the default rate limit of 60, which counts pings too).
    ({ rt, dir } = await startTestRuntime("terminal", { idleTimeoutMs: 5000, warm: true }));
  });

  after(async () => {
    for (const c of clients) c.kill();
    await rt?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  let alice: TerminalClient;
  let bob: TerminalClient;
  let aliceConnectionId: string;

  it("connects with a minted local token and lists the first room's members", async () => {
    alice = await connect("alice", "Alice");
    assert.match(await alice.expect(/\[joined #general\]/), /\[joined #general\] 1 member: Alice \(alice\)$/);
    assert.match(alice.lines[0], /^\d\d:\d\d:\d\d \[info\] user alice as "Alice"/);
    assert.equal(rt.connectionIds().length, 1);
    aliceConnectionId = rt.connectionIds()[0];
  });

  it("shows presence when another user joins the room", async () => {
    const mark = alice.mark();
    bob = await connect("bob", "Bob");
    await alice.expect(/\[presence #general\] Bob \(bob\) joined$/, mark, T);
    assert.match(await bob.expect(/\[joined #general\]/), /2 members: Alice \(alice\), Bob \(bob\)$/);
  });

  it("sends plain text and /chat to the room, and both users see it", async () => {
    alice.send("hello from alice");
    bob.send("/chat hi alice, bob here");
    for (const c of [alice, bob]) {
      await c.expect(/\[chat #general\] \^\d+ Alice \(alice\): hello from alice$/, 0, T);
      await c.expect(/\[chat #general\] \^\d+ Bob \(bob\): hi alice, bob here$/, 0, T);
    }
  });

  it("joins a second room, which becomes the current room", async () => {
    const mark = bob.mark();
    alice.send("/join random");
    assert.match(await alice.expect(/\[joined #random\]/, 0, T), /1 member: Alice \(alice\)$/);
    alice.send("anyone in random?");
    await alice.expect(/\[chat #random\] \^\d+ Alice \(alice\): anyone in random\?$/, 0, T);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(
      bob.lines.slice(mark).some((l) => l.includes("anyone in random")),
      false,
      "bob is not in #random",
    );
  });

  it("delivers a private message to its recipient and confirms delivery to the sender", async () => {
    alice.send("/private bob psst, only for you");
    await bob.expect(/\[private from Alice \(alice\)\] \^\d+ psst, only for you$/, 0, T);
    assert.match(
      await alice.expect(/\[delivered\]/, 0, T),
      /\[delivered\] \^\d+ private message to bob reached 1 connection \(id [^)]+\)$/,
    );
  });

  it("lists active rooms with their number of users", async () => {
    const mark = bob.mark();
    bob.send("/rooms");
    await bob.expect(/\[rooms\] \d+ active rooms?:$/, mark, T);
    await bob.expect(/\[rooms\] {3}#general {2}2 users$/, mark, T);
    await bob.expect(/\[rooms\] {3}#random {2}1 user$/, mark, T);
  });

  it("shows a room's history and a private conversation's history", async () => {
    const mark = bob.mark();
    bob.send("/history general");
    await bob.expect(/\[history #general\] 2 messages$/, mark, T);
    await bob.expect(/\[history #general\] \d\d:\d\d:\d\d \^\d+ Alice \(alice\): hello from alice$/, mark, T);
    bob.send("/history @alice");
    await bob.expect(/\[history @alice\] 1 message$/, mark, T);
    await bob.expect(/\[history @alice\] \d\d:\d\d:\d\d \^\d+ Alice \(alice\) -> bob: psst, only for you$/, mark, T);
  });

  it("pages through history with /history <room> <n> and /more, and lists members with /who", async () => {
    const mark = bob.mark();
    bob.send("/history general 1");
    await bob.expect(/\[history #general\] 1 message \(older messages exist: \/more\)$/, mark, T);
    const first = await bob.expect(/\[history #general\] \d\d:\d\d:\d\d /, mark, T);
    bob.send("/more");
    // The two room messages were sent at the same moment: either may be the newer one.
    await bob.expect(/\[history #general\] \d\d:\d\d:\d\d \^\d+ Bob \(bob\): hi alice, bob here$/, mark, T);
    await bob.expect(/\[history #general\] \d\d:\d\d:\d\d \^\d+ Alice \(alice\): hello from alice$/, mark, T);
    assert.equal(bob.lines.slice(mark).filter((l) => l === first).length, 1, "the second page is a different message");
    bob.send("/who");
    await bob.expect(/\[who #general\] 2 members: Alice \(alice\), Bob \(bob\)$/, mark, T);
  });

  it("prints the server's typed errors and its own usage errors", async () => {
    const mark = bob.mark();
    bob.send("/history random");
    await bob.expect(/\[error NOT_A_MEMBER\] .*\(request history\)$/, mark, T);
    bob.send("/join no/slashes");
    await bob.expect(/\[error BAD_REQUEST\] .*\(request join\)$/, mark, T);
    bob.send("/leave nowhere");
    await bob.expect(/\[error CLIENT\] you are not in #nowhere$/, mark, T);
    bob.send("/frobnicate");
    await bob.expect(/\[error CLIENT\] unknown command "\/frobnicate"; type \/help for the list$/, mark, T);
    bob.send("/help");
    await bob.expect(/^ {2}\/private <userId> <message> +send a private message$/, mark, T);
  });

  /** The reference (`^3`) a client printed for the first line matching `re` at or after `from`. */
  async function refOf(c: TerminalClient, re: RegExp, from: number): Promise<string> {
    const found = /\^(\d+) /.exec(await c.expect(re, from, T));
    assert.ok(found, `no reference in the line matching ${re}`);
    return `^${found[1]}`;
  }

  /** A moderator of the rooms `mod-*` (the next test), started here so that its start-up overlaps this test. */
  let mona: TerminalClient;

  it("edits and deletes its own room and private messages, by reference or the last one, and the others see the changes", async () => {
    const token = await rt.mintToken("mona", "Mona", undefined, { moderates: ["mod-*"] });
    mona = new TerminalClient([rt.endpoint, "--token", token, "--no-color", "--ping-interval", "2", "--room", "mod-room"]);
    clients.push(mona);
    const [aliceMark, bobMark] = [alice.mark(), bob.mark()];
    bob.send("/chat typo in genral");
    const ref = await refOf(bob, /\[chat #general\] \^\d+ Bob \(bob\): typo in genral$/, bobMark);
    bob.send(`/edit ${ref} typo fixed in general`);
    await alice.expect(/\[edited #general\] \^\d+ Bob \(bob\): typo fixed in general \(edited\)$/, aliceMark, T);
    await bob.expect(new RegExp(`\\[edited #general\\] \\${ref} Bob \\(bob\\): typo fixed in general \\(edited\\)$`), bobMark, T);
    // With no reference, /delete is the user's last message.
    bob.send("/delete");
    await alice.expect(/\[deleted #general\] \^\d+ Bob \(bob\): \[deleted\]$/, aliceMark, T);
    // Someone else's message: the server refuses, and says why.
    const other = await refOf(alice, /\[chat #general\] \^\d+ Bob \(bob\): hi alice, bob here$/, 0);
    alice.send(`/delete ${other}`);
    await alice.expect(
      /\[error FORBIDDEN\] only the author or a moderator of the room can delete a message \(request delete\)$/,
      aliceMark,
      T,
    );
    alice.send("/edit ^9999 nothing");
    await alice.expect(/\[error CLIENT\] no message \^9999: name a message by the \^number shown before it$/, aliceMark, T);
    // A private message: the sender's reference comes with its delivery.
    alice.send("/private bob see you at 5");
    const mine = await refOf(alice, /\[delivered\] \^\d+ private message to bob/, aliceMark);
    alice.send(`/edit ${mine} see you at 6`);
    await bob.expect(/\[edited @alice\] \^\d+ Alice \(alice\): see you at 6 \(edited\)$/, bobMark, T);
    alice.send(`/delete ${mine}`);
    await bob.expect(/\[deleted @alice\] \^\d+ Alice \(alice\): \[deleted\]$/, bobMark, T);
    // History shows the current state: a tombstone, and neither text.
    const historyMark = bob.mark();
    bob.send("/history @alice");
    await bob.expect(/\[history @alice\] \d\d:\d\d:\d\d \^\d+ Alice \(alice\) -> bob: \[deleted\]$/, historyMark, T);
    assert.equal(
      bob.lines.slice(historyMark).some((l) => /\[history @alice\].*see you at/.test(l)),
      false,
      bob.lines.slice(historyMark).join("\n"),
    );
  });

  it("lets a moderator delete another's message and kick a user, who is told by whom and until when and cannot rejoin yet", async () => {
    await mona.expect(/\[joined #mod-room\]/, 0, T);
    const bobMark = bob.mark();
    bob.send("/join mod-room");
    await mona.expect(/\[presence #mod-room\] Bob \(bob\) joined$/, 0, T);
    bob.send("buy cheap watches");
    const spam = await refOf(mona, /\[chat #mod-room\] \^\d+ Bob \(bob\): buy cheap watches$/, 0);
    mona.send(`/delete ${spam}`);
    await bob.expect(/\[deleted #mod-room\] \^\d+ Bob \(bob\): \[deleted by mona\]$/, bobMark, T);
    // A user who moderates nothing cannot kick.
    bob.send("/kick #mod-room mona");
    await bob.expect(/\[error FORBIDDEN\] you do not moderate room mod-room \(request kick\)$/, bobMark, T);
    mona.send("/kick bob 5");
    await mona.expect(/\[kicked #mod-room\] bob is kept out until \d\d:\d\d:\d\d \(1 connection removed\)$/, 0, T);
    await bob.expect(/\[kicked #mod-room\] you were removed from the room by mona; you can join it again at \d\d:\d\d:\d\d$/, bobMark, T);
    await mona.expect(/\[presence #mod-room\] Bob \(bob\) left$/, 0, T);
    bob.send("/join mod-room");
    await bob.expect(
      /\[error FORBIDDEN\] you were removed from room mod-room by a moderator; you can join it again from \S+ \(request join\)$/,
      bobMark,
      T,
    );
    // Still in #general, which is current again: plain text goes there.
    bob.send("still in general");
    await bob.expect(/\[chat #general\] \^\d+ Bob \(bob\): still in general$/, bobMark, T);
    mona.send("/quit");
    assert.equal((await mona.exit(T)).code, 0);
  });

  it("leaves a room and the others see it", async () => {
    const mark = alice.mark();
    bob.send("/join random");
    await bob.expect(/\[joined #random\] 2 members/, 0, T);
    await alice.expect(/\[presence #random\] Bob \(bob\) joined$/, mark, T);
    bob.send("/leave random");
    await bob.expect(/\[left #random\] you left the room$/, 0, T);
    await alice.expect(/\[presence #random\] Bob \(bob\) left$/, mark, T);
  });

  it("counts unread messages, shows them from the read position, reacts, tells other devices, and prints who is typing (issue 18)", async () => {
    const mark = alice.mark();
    const bobMark = bob.mark();
    // A second device of Bob's, in another room: it hears of his read positions.
    const bob2 = await connect("bob", "Bob", ["--room", "lobby"]);
    alice.send("/join signals");
    await alice.expect(/\[joined #signals\] 1 member: Alice \(alice\)$/, mark, T);
    alice.send("first signal");
    alice.send("second signal");
    await alice.expect(/\[chat #signals\] \^\d+ Alice \(alice\): second signal$/, mark, T);
    // Bob has no read position in #signals: everything in it is unread for him.
    bob.send("/join signals");
    await bob.expect(/\[joined #signals\] 2 members: Alice \(alice\), Bob \(bob\); 2 unread \(\/unread shows them\)$/, bobMark, T);
    bob.send("/unread");
    await bob.expect(/\[history #signals\] 2 messages$/, bobMark, T);
    const second = await bob.expect(/\[history #signals\] \d\d:\d\d:\d\d \^\d+ Alice \(alice\): second signal$/, bobMark, T);
    const ref = /\^(\d+) /.exec(second.slice(9))?.[1];
    // Shown, so read: his other device is told.
    await bob2.expect(/\[read #signals\] you read up to message [0-9a-f-]{36} on another device; 0 unread$/, 0, T);
    bob.send(`/react ^${ref} 👍`);
    await bob.expect(/\[reaction #signals\] \^\d+ you reacted 👍 {2}\[👍 1\*\]$/, bobMark, T);
    await alice.expect(/\[reaction #signals\] \^\d+ bob reacted 👍 {2}\[👍 1\]$/, mark, T);
    // Without ^n: the newest message of the current room.
    alice.send("/react 👍");
    await alice.expect(/\[reaction #signals\] \^\d+ you reacted 👍 {2}\[👍 2\*\]$/, mark, T);
    bob.send(`/unreact ^${ref} 👍`);
    await alice.expect(/\[reaction #signals\] \^\d+ bob took back 👍 {2}\[👍 1\*\]$/, mark, T);
    alice.send("/react ^999999 👍");
    await alice.expect(/\[error CLIENT\] no message \^999999/, mark, T);
    alice.send("/react hello");
    await alice.expect(/\[error BAD_REQUEST\] emoji: must be exactly one emoji .*\(request react\)$/, mark, T);
    alice.send("/history signals");
    await alice.expect(/\[history #signals\] \d\d:\d\d:\d\d \^\d+ Alice \(alice\): second signal {2}\[👍 1\*\]$/, mark, T);
    // Someone typing in the room (the shared session, as the web page uses it) is announced once.
    const events: SessionEvent[] = [];
    const tina = new ChatSession({
      endpoint: rt.endpoint,
      token: () => mintLocalToken(rt.endpoint, "tina", "Tina"),
      username: "Tina",
      userId: "tina",
      room: "signals",
      socketFactory: nodeSocketFactory,
      onEvent: (e) => events.push(e),
    });
    tina.start();
    await alice.expect(/\[presence #signals\] Tina \(tina\) joined$/, mark, T);
    for (let i = 0; i < 200 && !tina.rooms.includes("signals"); i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(tina.typing({ roomId: "signals" }), true);
    assert.equal(tina.typing({ roomId: "signals" }), false, "at most one per 3 s");
    await alice.expect(/\[typing #signals\] Tina \(tina\) is typing…$/, mark, T);
    await bob.expect(/\[typing #signals\] Tina \(tina\) is typing…$/, bobMark, T);
    await tina.close();
    bob2.send("/quit");
    assert.equal((await bob2.exit(T)).code, 0);
    for (const c of [alice, bob]) c.send("/leave signals");
  });

  it("keeps an idle connection open with pings; without them the idle timeout cuts it and the client reconnects", async () => {
    // Control: a client that pings every 60 s is cut by the 5-s idle timeout (1001 Going away)...
    const dave = await connect("dave", "Dave", ["--ping-interval", "60", "--room", "quiet"]);
    const mark = bob.mark();
    await dave.expect(/\[info\] connection lost \(code 1001 Going away\); reconnecting in \d+\.\ds \(attempt 1\)$/, 0, T);
    // ...and comes back by itself into its room.
    await dave.expect(/\[info\] reconnected; rejoining #quiet$/, 0, T);
    dave.send("/quit");
    assert.equal((await dave.exit(T)).code, 0);
    // Bob, pinging every 2 s, stayed connected all along (idle apart from pings for longer than 5 s).
    assert.equal(
      bob.lines.slice(mark).some((l) => /connection lost/.test(l)),
      false,
      bob.lines.slice(mark).join("\n"),
    );
    assert.equal(bob.saw(/connection lost/), false, bob.lines.join("\n"));
  });

  it("reconnects after the server closes the connection and rejoins its rooms", async () => {
    const mark = alice.mark();
    // Close alice's connection through the management API, as API Gateway does at the 2-hour limit.
    const management = new ApiGatewayManagementApiClient({
      endpoint: rt.managementEndpoint,
      region: rt.region,
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    });
    try {
      await management.send(new DeleteConnectionCommand({ ConnectionId: aliceConnectionId }));
    } finally {
      management.destroy();
    }
    await alice.expect(/\[info\] connection lost \(code 1000\); reconnecting in \d+\.\ds \(attempt 1\)$/, mark, T);
    await alice.expect(/\[info\] reconnected; rejoining (#general, #random|#random, #general)$/, mark, T);
    await alice.expect(/\[joined #random\]/, mark, T);
    // Still in #random (the current room) after the reconnection: plain text goes there.
    alice.send("back in random");
    await alice.expect(/\[chat #random\] \^\d+ Alice \(alice\): back in random$/, mark, T);
    // And in #general: bob's message reaches her.
    bob.send("/chat welcome back");
    await alice.expect(/\[chat #general\] \^\d+ Bob \(bob\): welcome back$/, mark, T);
    assert.equal(rt.connectionIds().includes(aliceConnectionId), false, "the old connection is gone");
  });

  it("quits with /quit (exit 0) and the others see the user leave", async () => {
    const mark = bob.mark();
    alice.send("/quit");
    const result = await alice.exit(T);
    assert.equal(result.code, 0);
    await alice.expect(/\[info\] disconnected$/);
    await bob.expect(/\[presence #general\] Alice \(alice\) left$/, mark, T);
  });

  it("prints, once, what was said while it was offline, after reconnecting", async () => {
    // Ivy reaches the API through a TCP relay the test can cut and hold down.
    const relay = await startRelay(rt.port);
    try {
      const ivy = new TerminalClient([`ws://127.0.0.1:${relay.port}/local`, "--user", "ivy", "--no-color", "--ping-interval", "2"]);
      clients.push(ivy);
      await ivy.expect(/\[joined #general\]/, 0, T);
      const mark = ivy.mark();
      relay.setOffline(true); // cuts open connections and refuses new ones
      await ivy.expect(/\[info\] connection lost \(code 1006\); reconnecting in/, mark, T);
      const bobMark = bob.mark();
      bob.send("/chat said while ivy was offline");
      await bob.expect(/\[chat #general\] \^\d+ Bob \(bob\): said while ivy was offline$/, bobMark, T);
      assert.equal(ivy.saw(/said while ivy was offline/), false);
      relay.setOffline(false);
      await ivy.expect(/\[info\] #general: 1 message sent while disconnected$/, mark, T);
      await ivy.expect(/\[chat #general\] \^\d+ Bob \(bob\): said while ivy was offline$/, mark, T);
      bob.send("/chat and now live");
      await ivy.expect(/\[chat #general\] \^\d+ Bob \(bob\): and now live$/, mark, T);
      assert.equal(ivy.lines.filter((l) => /said while ivy was offline/.test(l)).length, 1, ivy.lines.join("\n"));
      ivy.send("/quit");
      assert.equal((await ivy.exit(T)).code, 0);
    } finally {
      await relay.close();
    }
  });

  it("lets users who connect at the same moment all chat in their room", async () => {
    const names = ["erin", "frank", "grace"];
    const crowd = names.map((u) => {
      const c = new TerminalClient([rt.endpoint, "--user", u, "--no-color", "--ping-interval", "2", "--room", "crowd"]);
      clients.push(c);
      return c;
    });
    // Each waits for its member list, possibly after the client replaced a connection the server dropped.
    await Promise.all(crowd.map((c) => c.expect(/\[joined #crowd\]/, 0, T)));
    for (const [i, c] of crowd.entries()) c.send(`hi from ${names[i]}`);
    for (const c of crowd) {
      for (const u of names) await c.expect(new RegExp(`\\[chat #crowd\\] \\^\\d+ ${u}: hi from ${u}$`), 0, T);
    }
    for (const c of crowd) c.send("/quit");
    for (const c of crowd) assert.equal((await c.exit(T)).code, 0);
  });

  it("acts on commands piped with no delay in the order typed: /join x, text, /who, /leave x", async () => {
    // API Gateway (and the local runtime) runs each frame of a connection in its own invocation, so
    // without the session holding them the chat and the leave could overtake the join.
    for (const when of ["before the connection opens", "once connected"]) {
      const user = when === "once connected" ? "olga" : "oscar";
      const c = new TerminalClient([rt.endpoint, "--user", user, "--no-color", "--ping-interval", "2"]);
      clients.push(c);
      if (when === "once connected") await c.expect(/\[joined #general\]/, 0, T);
      const room = `ordered-${user}`;
      c.send(`/join ${room}`);
      c.send(`in ${room}`);
      c.send(`/who ${room}`);
      c.send(`/history ${room}`);
      c.send(`/leave ${room}`);
      c.send(`back in general`);
      c.endInput();
      assert.equal((await c.exit(T)).code, 0, c.lines.join("\n"));
      const out = c.lines.join("\n");
      assert.equal(c.saw(/\[error /), false, `${when}: no error at all, e.g. NOT_A_MEMBER:\n${out}`);
      const at = (re: RegExp): number => c.lines.findIndex((l) => re.test(l));
      const joined = at(new RegExp(`\\[joined #${room}\\] 1 member: ${user}$`));
      const chat = at(new RegExp(`\\[chat #${room}\\] \\^\\d+ ${user}: in ${room}$`));
      const who = at(new RegExp(`\\[who #${room}\\] 1 member: ${user}$`));
      const history = at(new RegExp(`\\[history #${room}\\] \\d\\d:\\d\\d:\\d\\d \\^\\d+ ${user}: in ${room}$`));
      const left = at(new RegExp(`\\[left #${room}\\] you left the room$`));
      const general = at(new RegExp(`\\[chat #general\\] \\^\\d+ ${user}: back in general$`));
      for (const [name, index] of Object.entries({ joined, chat, who, history, left, general }))
        assert.ok(index >= 0, `${when}: no ${name} line in:\n${out}`);
      assert.ok(joined < who && who < left, `${when}: /who answered after the join and before the leave:\n${out}`);
      assert.ok(joined < history && history < left, `${when}: the history (which includes the chat) came between join and leave:\n${out}`);
    }
  });

  it("ends cleanly at the end of piped input after the answers arrive (exit 0)", async () => {
    const carol = await connect("carol", "Carol", ["--room", "piped"]);
    carol.send("/rooms");
    carol.send("piped message");
    carol.endInput();
    const result = await carol.exit(T);
    assert.equal(result.code, 0);
    assert.ok(carol.saw(/\[rooms\] {3}#piped {2}1 user$/), carol.lines.join("\n"));
    assert.ok(carol.saw(/\[chat #piped\] \^\d+ Carol \(carol\): piped message$/), carol.lines.join("\n"));
  });
});

describe("terminal client exit codes", function () {
  this.timeout(60_000);

  it("exits 2 with the usage text on bad arguments", async () => {
    const c = new TerminalClient(["http://not-a-websocket/"]);
    const r = await c.exit();
    assert.equal(r.code, 2);
    assert.match(c.stderr.join(""), /the endpoint must start with ws:\/\/ or wss:\/\//);
    assert.match(c.stderr.join(""), /usage: npm run client/);
  });

  it("exits 3 when nothing listens at the endpoint", async () => {
    const port = await freePort();
    const c = new TerminalClient([`ws://127.0.0.1:${port}/local`, "--token", "a.b.c", "--no-color"]);
    const r = await c.exit();
    assert.equal(r.code, 3);
    assert.ok(c.saw(/\[error FATAL\] could not connect to ws:\/\/127\.0\.0\.1:\d+\/local/), c.lines.join("\n"));
  });

  it("exits 4 when no local runtime can mint a --user token", async () => {
    const port = await freePort();
    const c = new TerminalClient([`ws://127.0.0.1:${port}/local`, "--user", "dave", "--no-color"]);
    const r = await c.exit();
    assert.equal(r.code, 4);
    assert.ok(c.saw(/\[error FATAL\] could not obtain a token: no local runtime answers at http:\/\/127\.0\.0\.1:\d+/), c.lines.join("\n"));
  });
});

describe("terminal client and a refused token", function () {
  this.timeout(120_000);
  let rt: LocalRuntime;
  let dir: string;
  before(async () => {
    ({ rt, dir } = await startTestRuntime("terminal-auth"));
  });
  after(async () => {
    await rt?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("connects with a token given by --token, as against a deployed stack", async () => {
    const token = await rt.mintToken("henry", "Henry H");
    const c = new TerminalClient([rt.endpoint, "--token", token, "--no-color", "--room", "tokens"]);
    try {
      await c.expect(/\[info\] user henry as "Henry H"; \/help lists the commands$/, 0, T);
      assert.match(await c.expect(/\[joined #tokens\]/, 0, T), /1 member: Henry H \(henry\)$/);
      c.send("/quit");
      assert.equal((await c.exit(T)).code, 0);
    } finally {
      c.kill();
    }
  });

  it("exits 4 when the handshake is refused (forged token)", async () => {
    const header = Buffer.from(JSON.stringify({ alg: "HS256", typ: "JWT" })).toString("base64url");
    const payload = Buffer.from(
      JSON.stringify({ sub: "mallory", iss: "chat-local", aud: "chat-api", exp: Math.floor(Date.now() / 1000) + 600 }),
    ).toString("base64url");
    const c = new TerminalClient([
      rt.endpoint,
      "--token",
      `${header}.${payload}.${Buffer.from("not the signature").toString("base64url")}`,
      "--no-color",
    ]);
    const r = await c.exit(T);
    assert.equal(r.code, 4);
    assert.ok(c.saw(/\[error FATAL\] the server refused the connection \(HTTP 40[13]\)/), c.lines.join("\n"));
  });
});
