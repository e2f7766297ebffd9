/**
 * The Python snippet of docs/local.md, extracted from the doc and run as users would run it, with
 * Debian's python3-websockets, against a runtime started here.
 */
import * as assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { startLocalRuntime, type LocalRuntime } from "../../local/runtime";
import { sharedDynamo, uniquePrefix } from "../support/globalFixtures";
import { withTimeout } from "./wsClient";

const PYTHON = "/usr/bin/python3";
const DOC = path.resolve(__dirname, "..", "..", "docs", "local.md");

/** The fenced python block between the snippet markers of docs/local.md. */
function pythonSnippet(markdown: string): string {
  const m = /<!-- python-snippet:start -->\s*```python\n([\s\S]*?)```\s*<!-- python-snippet:end -->/.exec(markdown);
  if (!m) throw new Error("docs/local.md has no python snippet between the markers");
  return m[1];
}

function hasWebsockets(): boolean {
  if (!fs.existsSync(PYTHON)) return false;
  return spawnSync(PYTHON, ["-c", "import websockets"], { encoding: "utf8" }).status === 0;
}

describe("docs/local.md Python snippet", function () {
  this.timeout(90_000);
  let rt: LocalRuntime | undefined;

  before(function () {
    if (!hasWebsockets()) {
      // CI installs it (apt-get install -y python3-websockets): missing there is a failure; a
      // developer machine may not have it.
      if (process.env.CI) throw new Error(`${PYTHON} lacks the websockets module: apt-get install -y python3-websockets`);
      process.stderr.write(`    skipped: ${PYTHON} lacks the websockets module (apt-get install -y python3-websockets)\n`);
      this.skip();
    }
  });
  after(async () => {
    await rt?.stop();
  });

  it("connects with userId, username, roomId and token, sends Hello WebSocket! and receives it back", async () => {
    const dynamo = await sharedDynamo();
    rt = await startLocalRuntime({ dynamodbEndpoint: dynamo.endpoint, tablePrefix: uniquePrefix("python"), quiet: true });
    const code = pythonSnippet(fs.readFileSync(DOC, "utf8"));
    const child = spawn(PYTHON, ["-c", code], {
      env: { PATH: process.env.PATH ?? "", CHAT_ENDPOINT: rt.endpoint },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const status = await withTimeout(new Promise<number | null>((r) => child.once("exit", (c) => r(c))), 60_000, "the Python client");
    assert.equal(status, 0, `python failed: ${err}`);
    const frames = out
      .split("\n")
      .filter((l) => l.startsWith("received: "))
      .map((l) => JSON.parse(l.slice("received: ".length)) as Record<string, unknown>);
    const own = frames.find((f) => f.type === "chat");
    assert.ok(own, `no chat frame received: ${out}`);
    assert.equal(own.message, "Hello WebSocket!");
    assert.equal(own.userId, "py-user");
    assert.equal(own.username, "Python");
    assert.equal(own.roomId, "general");
  });
});
