/**
 * Measures what each route costs in DynamoDB and `@connections` calls, per invocation, with the
 * real handlers on DynamoDB Local (the usage middleware's counters, handlers/lib/usage.ts):
 *   node --disable-warning=NodeVersionSupportWarning -r ts-node/register/transpile-only tests/support/routeCosts.ts [roomSizes...]
 * Items read and call counts are exact; DynamoDB Local's consumed-capacity figures are not the
 * service's (AWS-FACTS), so read/write units are printed for comparison only.
 */
import type { InvocationReport } from "../../handlers";
import { uuidV7 } from "../../handlers/lib/data";
import { mochaGlobalTeardown } from "./globalFixtures";
import { createHarness, type Harness, type TestConnection } from "./handlerHarness";

function row(route: string, size: number, r: InvocationReport | undefined): string {
  if (!r) return `${route}\t${size}\t(no report)`;
  const m = r.metrics;
  const calls = new Map<string, number>();
  for (const c of r.dynamoCalls) {
    const k = `${c.table}.${c.action.replace("dynamodb:", "")}`;
    calls.set(k, (calls.get(k) ?? 0) + 1);
  }
  const callText = [...calls].map(([k, n]) => (n > 1 ? `${k}x${n}` : k)).join(" ");
  return [route, size, m.DynamoItemsRead, m.DynamoReadUnits, m.DynamoWriteUnits, m.ManagementCalls, callText].join("\t");
}

async function measure(h: Harness, size: number): Promise<string[]> {
  const room = `cost-${size}`;
  const members: TestConnection[] = [];
  for (let i = 0; i < size; i++) members.push(await h.join(`u${size}-${i}`, room));
  const a = members[0];
  const last = () => h.reports[h.reports.length - 1];
  const out: string[] = [];
  await h.send(a, { type: "ping" }); // the first frame of a connection may open a new rate window
  await h.send(a, { type: "ping" });
  out.push(row("ping", size, last()));
  await h.send(a, { type: "chat", message: "x".repeat(100) });
  out.push(row("chat", size, last()));
  await h.send(a, { type: "chat", message: "x".repeat(100), clientMessageId: `c-${size}` });
  out.push(row("chat+clientMessageId", size, last()));
  await h.send(a, { type: "chat", message: "x".repeat(100), clientMessageId: `c-${size}` });
  out.push(row("chat retry (duplicate)", size, last()));
  const joiner = await h.join(`joiner-${size}`, `other-${size}`);
  out.push(row("$connect", size, last()));
  await h.send(joiner, { type: "ping" });
  await h.send(joiner, { type: "join", roomId: room });
  out.push(row("join", size, last()));
  await h.send(joiner, { type: "leave", roomId: room });
  out.push(row("leave", size, last()));
  await h.send(a, { type: "private", toUserId: `joiner-${size}`, message: "hi" });
  out.push(row("private (1 device)", size, last()));
  await h.send(a, { type: "rooms" });
  out.push(row("rooms", size, last()));
  await h.send(a, { type: "history", roomId: room, limit: 50 });
  out.push(row("history (2 stored)", size, last()));
  // read (issue 18): rooms cost-* share read positions (READ_RECEIPT_ROOMS below); other-* do not.
  const firstChat = String(h.frames(a).find((f) => f.type === "chat")?.messageId);
  await h.send(a, { type: "read", roomId: room, messageId: firstChat });
  out.push(row("read (shared room)", size, last()));
  await h.send(a, { type: "read", roomId: room, messageId: firstChat });
  out.push(row("read not moved", size, last()));
  await h.send(joiner, { type: "read", roomId: `other-${size}`, messageId: uuidV7(Date.now() - 1000) });
  out.push(row("read (not shared, no other device)", size, last()));
  await h.send(a, { type: "history", roomId: room, fromRead: true, limit: 50 });
  out.push(row("history fromRead", size, last()));
  const own = String(h.frames(a).find((f) => f.type === "chat")?.messageId);
  await h.send(a, { type: "edit", roomId: room, messageId: own, message: "y".repeat(100) });
  out.push(row("edit (room)", size, last()));
  await h.send(a, { type: "edit", roomId: room, messageId: own, message: "y".repeat(100) });
  out.push(row("edit repeated (same text)", size, last()));
  // react (issue 18), before the message is deleted: add, its repeat, a second user's, history with
  // reactions (the `me` Query), the removal that drops the emoji at 0.
  await h.send(a, { type: "react", roomId: room, messageId: own, emoji: "👍" });
  out.push(row("react (room)", size, last()));
  await h.send(a, { type: "react", roomId: room, messageId: own, emoji: "👍" });
  out.push(row("react repeated", size, last()));
  await h.send(a, { type: "history", roomId: room, limit: 50 });
  out.push(row("history (2 stored, 1 with reactions)", size, last()));
  await h.send(a, { type: "react", roomId: room, messageId: own, emoji: "👍", remove: true });
  out.push(row("react remove (count to 0)", size, last()));
  await h.send(a, { type: "react", roomId: room, messageId: own.replace(/^.{8}/, "00000000"), emoji: "👍" });
  out.push(row("react NOT_FOUND", size, last()));
  await h.send(a, { type: "delete", roomId: room, messageId: own });
  out.push(row("delete (room)", size, last()));
  await h.send(a, { type: "delete", roomId: room, messageId: own });
  out.push(row("delete repeated", size, last()));
  await h.send(a, { type: "delete", roomId: room, messageId: own.replace(/^.{8}/, "00000000") });
  out.push(row("delete NOT_FOUND", size, last()));
  const dm = (await h.send(a, { type: "private", toUserId: `joiner-${size}`, message: "to change" }))?.messageId;
  await h.send(a, { type: "edit", withUserId: `joiner-${size}`, messageId: dm, message: "changed" });
  out.push(row("edit (private, 1+1 devices)", size, last()));
  await h.send(a, { type: "react", withUserId: `joiner-${size}`, messageId: dm, emoji: "🎉" });
  out.push(row("react (private, 1+1 devices)", size, last()));
  await h.send(a, { type: "delete", withUserId: `joiner-${size}`, messageId: dm });
  out.push(row("delete (private, 1+1 devices)", size, last()));
  // kick (issue 16): a moderator takes a one-device user out of the room, then kicks a non-member.
  const { conn: mod } = await h.connect(`mod-${size}`, { roomId: `mod-home-${size}`, access: { moderates: "cost-*" } });
  await h.send(mod, { type: "ping" });
  await h.send(joiner, { type: "join", roomId: room });
  await h.send(mod, { type: "kick", roomId: room, userId: `joiner-${size}` });
  out.push(row("kick (1 device)", size, last()));
  await h.send(mod, { type: "kick", roomId: room, userId: `absent-${size}` });
  out.push(row("kick (not in the room)", size, last()));
  await h.send(joiner, { type: "join", roomId: room });
  out.push(row("join refused (kicked)", size, last()));
  await h.disconnect(joiner);
  out.push(row("$disconnect (1 room)", size, last()));
  // typing (issue 18): a passed one (throttle write, summary read, room Query, N-1 posts), one
  // absorbed within typingIntervalSeconds, one in private (the other user's devices).
  await h.send(a, { type: "typing", roomId: room });
  out.push(row("typing (room)", size, last()));
  await h.send(a, { type: "typing", roomId: room });
  out.push(row("typing absorbed (throttle)", size, last()));
  await h.send(a, { type: "typing", withUserId: `mod-${size}` });
  out.push(row("typing (private, 1 device)", size, last()));
  return out;
}

async function main(): Promise<void> {
  const sizes = process.argv
    .slice(2)
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0);
  const h = await createHarness({
    label: "costs",
    rateLimitPerMinute: 100_000,
    fanoutConcurrency: 50,
    extraEnv: { READ_RECEIPT_ROOMS: "cost-*" },
  });
  const lines = ["route\troom members\titems read\tRCU(local)\tWCU(local)\t@connections calls\tDynamoDB calls"];
  try {
    for (const size of sizes.length ? sizes : [1, 10, 100]) lines.push(...(await measure(h, size)));
  } finally {
    await h.stop();
    await mochaGlobalTeardown();
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
