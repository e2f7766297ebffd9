/**
 * The web page's build: static files pointed at any endpoint, small, with no source map or
 * framework, and a clear error for a wrong endpoint.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { BuildWebError, buildWeb } from "../../clients/web/build";

describe("clients: web build", () => {
  let out: string;
  beforeEach(() => {
    out = fs.mkdtempSync(path.join(os.tmpdir(), "chat-web-build-"));
  });
  afterEach(() => fs.rmSync(out, { recursive: true, force: true }));

  it("writes index.html, styles.css and one app.js with the endpoint baked in", async () => {
    const result = await buildWeb({ endpoint: "wss://abc123.execute-api.eu-west-1.amazonaws.com/dev", outDir: out, tokenUrl: "" });
    assert.deepEqual(fs.readdirSync(out).sort(), ["app.js", "index.html", "styles.css"]);
    assert.deepEqual(
      result.files.map((f) => f.name),
      ["app.js", "index.html", "styles.css"],
    );
    const js = fs.readFileSync(path.join(out, "app.js"), "utf8");
    assert.ok(js.includes("wss://abc123.execute-api.eu-west-1.amazonaws.com/dev"));
    assert.ok(!js.includes("__CHAT_CONFIG__"), "the configuration is substituted at build time");
    const html = fs.readFileSync(path.join(out, "index.html"), "utf8");
    assert.match(html, /<script src="app\.js"><\/script>/);
    assert.match(html, /<link rel="stylesheet" href="styles\.css">/);
    assert.equal(
      result.totalBytes,
      result.files.reduce((n, f) => n + fs.statSync(path.join(out, f.name)).size, 0),
    );
  });

  // gzip is what a browser downloads and stays the budget; the raw size grew with issue 18 (typing,
  // reactions, read positions: about 78 KB minified, 22 KB gzip) and was already 66 KB before it.
  it("stays a small page: under 96 KB in all, 24 KB gzip (no framework)", async () => {
    const result = await buildWeb({ outDir: out });
    assert.ok(result.totalBytes < 96 * 1024, `${result.totalBytes} bytes`);
    assert.ok(result.totalGzipBytes < 24 * 1024, `${result.totalGzipBytes} bytes gzip`);
  });

  it("refuses an endpoint that is not a WebSocket URL", async () => {
    await assert.rejects(
      buildWeb({ endpoint: "https://example.com/dev", outDir: out }),
      (err: unknown) => err instanceof BuildWebError && /ws:\/\/ or wss:\/\//.test(err.message),
    );
    await assert.rejects(buildWeb({ endpoint: "not a url", outDir: out }), BuildWebError);
  });
});
