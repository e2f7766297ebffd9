/**
 * `npm run build:push`: the push module as a package another service installs. Built into a temp
 * folder, then used from outside the repository the way a consumer would: required by plain Node
 * (nothing of this repository is reached at run time; only the AWS SDK packages it declares) and
 * type-checked through its declarations.
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildPush, PUSH_RUNTIME_PACKAGES } from "../../push/build";

const ROOT = path.resolve(__dirname, "..", "..");

describe("push: the installable package (npm run build:push)", function () {
  this.timeout(120_000);
  let tmp: string;
  let pkgDir: string;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "push-pkg-"));
    pkgDir = path.join(tmp, "websocket-chat-push");
    await buildPush(pkgDir);
    // What `npm install` of its dependencies would give the consumer.
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(pkgDir, "node_modules"), "dir");
    // The consumer's own dev dependencies (@types/node for the type-check).
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(tmp, "node_modules"), "dir");
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("declares exactly the AWS SDK clients it requires, and requires nothing from this repository", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8")) as {
      main: string;
      types: string;
      dependencies: Record<string, string>;
    };
    assert.equal(pkg.main, "index.js");
    assert.equal(pkg.types, "index.d.ts");
    assert.deepEqual(Object.keys(pkg.dependencies).sort(), [...PUSH_RUNTIME_PACKAGES].sort());
    const bundle = fs.readFileSync(path.join(pkgDir, "index.js"), "utf8");
    const required = new Set([...bundle.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]));
    for (const r of required) {
      const builtin = r.startsWith("node:") || require("node:module").builtinModules.includes(r);
      assert.ok(builtin || PUSH_RUNTIME_PACKAGES.some((p) => r === p) || r === "aws-xray-sdk-core", `unexpected require("${r}")`);
    }
  });

  it("loads in a plain Node process outside the repository and validates like the module", () => {
    const script = `
      const { createPusher, PushError } = require(${JSON.stringify(pkgDir)});
      if (typeof createPusher !== "function") throw new Error("no createPusher");
      try {
        createPusher({ connectionsTable: "chat-connections", roomsTable: "chat-rooms", messagesTable: "chat-messages", managementEndpoint: "ftp://x" });
        throw new Error("bad options accepted");
      } catch (err) {
        if (!(err instanceof PushError) || err.code !== "BAD_OPTIONS") throw err;
      }
      const pusher = createPusher({ connectionsTable: "chat-connections", roomsTable: "chat-rooms", messagesTable: "chat-messages", managementEndpoint: "https://abc.execute-api.eu-west-1.amazonaws.com/dev", region: "eu-west-1" });
      pusher.toRoom("not a valid room id!", "hi").then(
        () => { throw new Error("bad room accepted"); },
        (err) => { if (!(err instanceof PushError) || err.code !== "BAD_REQUEST") throw err; pusher.close(); console.log("ok"); },
      );`;
    const out = spawnSync(process.execPath, ["-e", script], { cwd: tmp, encoding: "utf8", env: { ...process.env, NODE_PATH: "" } });
    assert.equal(out.status, 0, out.stderr);
    assert.match(out.stdout, /^ok$/m);
  });

  it("type-checks a consumer through its declarations", () => {
    const consumer = path.join(tmp, "consumer.ts");
    fs.writeFileSync(
      consumer,
      `import { createPusher, PushError, type PushResult } from "./websocket-chat-push";
       async function notify(): Promise<PushResult> {
         const pusher = createPusher({ connectionsTable: "chat-connections", roomsTable: "chat-rooms", messagesTable: "chat-messages", managementEndpoint: "https://x/dev" });
         try { return await pusher.toUser("alice", { message: "Your order shipped", data: { orderId: "o-42" } }); }
         catch (err) { if (err instanceof PushError) console.error(err.code); throw err; }
         finally { pusher.close(); }
       }
       void notify;
       // @ts-expect-error toRoom needs a message
       void createPusher({ connectionsTable: "chat-connections", roomsTable: "chat-rooms", messagesTable: "chat-messages", managementEndpoint: "https://x/dev" }).toRoom("general");
      `,
    );
    const tsc = spawnSync(
      process.execPath,
      [
        require.resolve("typescript/bin/tsc"),
        "--noEmit",
        "--strict",
        "--skipLibCheck",
        "--module",
        "commonjs",
        "--moduleResolution",
        "node",
        "--target",
        "ES2022",
        "--types",
        "node",
        consumer,
      ],
      { cwd: tmp, encoding: "utf8" },
    );
    assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
  });
});
