/**
 * Issue 14 item 11, web page: with tokens that live 2 s (localTokenTtlSeconds), a message typed
 * after the token expired is refused by the server (TOKEN_EXPIRED); the page renews its token,
 * reconnects, rejoins and resends it, and everyone gets it exactly once. No duration is asserted.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { chromium, type Browser } from "playwright-core";
import { buildWeb } from "../../clients/web/build";
import { TOKEN_EXPIRY_LEEWAY_SECONDS } from "../../handlers/lib/runtime";
import type { LocalRuntime } from "../../local/runtime";
import { connect, eventually } from "../local/wsClient";
import { startTestRuntime } from "./support";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const TTL_SECONDS = 2;
const T = 30_000;

describe("web page: token expiry", function () {
  this.timeout(180_000);
  let rt: LocalRuntime;
  let dir: string;
  let webDir: string | undefined;
  let browser: Browser | undefined;

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) {
      if (process.env.CI) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
      this.skip();
    }
    webDir = fs.mkdtempSync(path.join(os.tmpdir(), "chat-web-expiry-"));
    ({ rt, dir } = await startTestRuntime("webexpiry", { webDir, warm: true, localTokenTtlSeconds: TTL_SECONDS }));
    await buildWeb({ endpoint: rt.endpoint, outDir: webDir });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
    });
  });

  after(async () => {
    await browser?.close();
    await rt?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (webDir) fs.rmSync(webDir, { recursive: true, force: true });
  });

  it("resends a message typed after the token expired on a new connection with a new token", async () => {
    const watcher = await connect(
      `${rt.endpoint}?${new URLSearchParams({ roomId: "general", token: await rt.mintToken("web-watcher", "Watcher", 3600) })}`,
    );
    try {
      const context = await browser!.newContext({ locale: "en-GB", timezoneId: "UTC" });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on("pageerror", (err) => errors.push(err.message));
      const others = new Set(rt.connectionIds());
      await page.goto(rt.webUrl);
      await page.getByLabel("Display name").fill("Dora");
      await page.keyboard.press("Enter");
      await page.locator("#status", { hasText: "Connected" }).waitFor({ timeout: T });
      await page.locator('#people li[data-user="dora"]').waitFor({ timeout: T });
      const first = rt.connectionIds().filter((id) => !others.has(id));
      assert.equal(first.length, 1, "the page's connection");
      // The page's token was minted before it connected, hence before now: wait past exp + leeway.
      const refusedFrom = (Math.floor(Date.now() / 1000) + TTL_SECONDS + TOKEN_EXPIRY_LEEWAY_SECONDS + 1) * 1000;
      await eventually(
        () => (Date.now() > refusedFrom ? true : undefined),
        (TTL_SECONDS + TOKEN_EXPIRY_LEEWAY_SECONDS + 5) * 1000,
        "the token to expire",
      );
      const box = page.locator("#composer-input");
      await box.fill("typed after expiry");
      await box.press("Enter");
      const got = await watcher.next((f) => f.json?.type === "chat", T, "the resent chat");
      assert.equal(got.json?.message, "typed after expiry");
      await page.locator("#messages li", { hasText: "typed after expiry" }).first().waitFor({ timeout: T });
      await page.locator("#status", { hasText: "Connected" }).waitFor({ timeout: T });
      await watcher.expectNone((f) => f.json?.type === "chat", 500);
      // It came over a new connection: the expired one was closed by the page.
      await eventually(() => (rt.connectionIds().includes(first[0]) ? undefined : true), T, "the expired connection to be closed");
      assert.equal(rt.connectionIds().filter((id) => !others.has(id)).length, 1, "one connection of the page");
      assert.equal(await page.locator("#messages li", { hasText: "typed after expiry" }).count(), 1, "shown once");
      assert.deepEqual(errors, []);
      await context.close();
    } finally {
      await watcher.close().catch(() => undefined);
    }
  });
});
