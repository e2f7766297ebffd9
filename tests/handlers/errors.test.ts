/**
 * One error style in deployed code (handlers/**, and the dynamic provider's code in
 * infra/apiGatewayAccount.ts): errors are made by the factories of handlers/lib/errors.ts and
 * handlers/env.ts, which survive Pulumi's closure serialization, and recognised by their isX() guards.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { configurationError, isConfigurationError } from "../../handlers/env";
import { chatError, internalError, isChatError, isInternalError, isUnauthorizedError, unauthorizedError } from "../../handlers/lib/errors";

const ROOT = path.join(__dirname, "..", "..");

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : p.endsWith(".ts") ? [p] : [];
  });
}

/** Code lines only: comments may quote `new Error(...)` to explain why it is not used. */
function codeLines(file: string): { line: string; at: string }[] {
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .map((line, i) => ({ line, at: `${path.relative(ROOT, file)}:${i + 1}` }))
    .filter(({ line }) => !/^\s*(\/\/|\*|\/\*)/.test(line));
}

describe("handlers: one error style (factories that survive closure serialization)", () => {
  it("deployed code makes errors only with the factories: no Error subclass, no bare new Error", () => {
    const files = [...sourceFiles(path.join(ROOT, "handlers")), path.join(ROOT, "infra", "apiGatewayAccount.ts")];
    const offending: string[] = [];
    for (const file of files) {
      for (const { line, at } of codeLines(file)) {
        if (/class\s+\w+\s+extends\s+\w*Error\b/.test(line)) offending.push(`${at}: ${line.trim()}`);
        // namedError() and unauthorizedError() in lib/errors.ts are the only places an Error is made.
        if (/new\s+Error\s*\(/.test(line) && !file.endsWith(path.join("handlers", "lib", "errors.ts")))
          offending.push(`${at}: ${line.trim()}`);
      }
    }
    assert.deepEqual(offending, []);
  });

  it("each factory's error has its name, message and stack, and only its own guard accepts it", () => {
    const made = [
      { err: chatError("BAD_REQUEST", "bad frame"), name: "ChatError", guard: isChatError },
      { err: configurationError("LOG_LEVEL is wrong"), name: "ConfigurationError", guard: isConfigurationError },
      { err: internalError("invariant broken"), name: "InternalError", guard: isInternalError },
    ];
    for (const { err, name, guard } of made) {
      assert.equal(err.name, name);
      assert.ok(err instanceof Error);
      assert.ok(err.stack?.includes(err.message), `${name}: stack names the message`);
      for (const other of made) assert.equal(other.guard(err), other.guard === guard, `${other.name} guard on ${name}`);
    }
    assert.equal(chatError("TOO_LARGE", "x").code, "TOO_LARGE");
    // API Gateway answers 401 when the authorizer's error message is exactly "Unauthorized".
    assert.equal(String(unauthorizedError()), "Error: Unauthorized");
    assert.ok(isUnauthorizedError(unauthorizedError()));
    assert.ok(!isUnauthorizedError(internalError("x")));
  });

  it("the errors arrive intact from a serialized function (what CallbackFunction uploads)", async function () {
    this.timeout(60_000);
    const thrower = () => (kind: string) => {
      if (kind === "chat") throw chatError("NOT_A_MEMBER", "not in room r1");
      if (kind === "config") throw configurationError("environment variable X is not set");
      if (kind === "internal") throw internalError("membership transaction did not settle");
      throw unauthorizedError();
    };
    const s = await pulumi.runtime.serializeFunction(thrower, { isFactoryFunction: true });
    fs.mkdirSync(path.join(ROOT, "test-artifacts"), { recursive: true });
    const dir = fs.mkdtempSync(path.join(ROOT, "test-artifacts", "errors-"));
    try {
      const file = path.join(dir, "thrower.js");
      fs.writeFileSync(file, s.text);
      const fn = (require(file) as Record<string, (kind: string) => never>)[s.exportName];
      const caught = (kind: string): unknown => {
        try {
          fn(kind);
        } catch (err) {
          return err;
        }
        assert.fail(`${kind} did not throw`);
      };
      const chat = caught("chat");
      assert.ok(isChatError(chat) && chat.code === "NOT_A_MEMBER" && chat.message === "not in room r1");
      const config = caught("config");
      assert.ok(
        isConfigurationError(config) && config.message === "environment variable X is not set" && config.stack?.includes("is not set"),
      );
      const internal = caught("internal");
      assert.ok(isInternalError(internal) && internal.message === "membership transaction did not settle");
      assert.equal(String(caught("unauthorized")), "Error: Unauthorized");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
