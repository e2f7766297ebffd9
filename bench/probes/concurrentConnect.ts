/**
 * Reproduces the concurrent-$connect clean-up (docs/performance.md, "Found while benchmarking"):
 * 30 users connect into one room, 10 handshakes at a time, through the local runtime with 20 ms per
 * @connections call; then each sends a chat message to the room. Prints how many connections the
 * fan-out cleaned as stale during the set-up and how many senders were refused.
 *
 *   node --disable-warning=NodeVersionSupportWarning -r ts-node/register/transpile-only bench/probes/concurrentConnect.ts
 */
import { broadcastAndWait, closeClients, openClients, type ClientSpec } from "../lib/clients";
import { startRuntimeProcess } from "../lib/runtimeProcess";
(async () => {
  const rt = await startRuntimeProcess({ port: 0, inMemory: true, managementLatencyMs: 20, warm: true });
  try {
    const specs = Array.from({ length: 30 }, (_, i) => ({ userId: `r${i}`, username: `r${i}`, roomId: "race" }));
    const tokens = await rt.mintTokens(specs);
    const clients = await openClients(
      rt.endpoint,
      specs.map((s, i): ClientSpec => ({ ...s, token: tokens[i] })),
      10,
    );
    await new Promise((r) => setTimeout(r, 1000));
    const s = await rt.stats();
    console.log(
      "connected",
      clients.length,
      "gone during set-up:",
      s.management.gone,
      "stale cleaned:",
      s.emf.reduce((a, r) => a + (r.values.StaleConnectionsCleaned ?? 0), 0),
    );
    let errs = 0;
    for (const c of clients) {
      try {
        await broadcastAndWait(c, clients, "race", 5000);
      } catch (e) {
        errs++;
        if (errs === 1) console.log((e as Error).message.slice(0, 200));
      }
    }
    console.log("senders failing:", errs, "of", clients.length);
    closeClients(clients);
  } finally {
    await rt.stop();
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
