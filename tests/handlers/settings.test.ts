/**
 * Each handler setting is declared once (handlers/settings.ts); every other copy is derived from it
 * or checked against it here: the stack's schema and validation, Pulumi.yaml, the README's table,
 * each function's environment, the handlers' parsing, the local runtime's and the push module's
 * defaults. A setting added to the declaration and forgotten anywhere else fails one of these.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { functionEnvironment, isConfigurationError, type DeploymentSettings } from "../../handlers/env";
import { MAX_WEBSOCKET_MESSAGE_BYTES, readHandlerConfig, readSetting } from "../../handlers/lib/config";
import { FUNCTIONS } from "../../handlers/routes";
import { HANDLER_SETTINGS, SETTING_NAMES, configType, settingDefaults, type SettingSpec } from "../../handlers/settings";
import { CONFIG_SCHEMA, isConfigError, validateConfig, type ConfigKey } from "../../infra/config";
import { LOCAL_DEFAULTS } from "../../local/runtime";
import { createPusher, isPushError } from "../../push";
import { readYaml } from "../infra/support/stack";
import { sharedDynamo, uniquePrefix } from "../support/globalFixtures";

const ROOT = path.join(__dirname, "..", "..");
const spec = (name: (typeof SETTING_NAMES)[number]): SettingSpec => HANDLER_SETTINGS[name];

/** A value of the setting other than its default (to see it travel through every hop). */
function otherValue(s: SettingSpec): number | boolean | string {
  if (s.type === "integer") return s.defaultValue === s.max ? s.min : s.max;
  if (s.type === "boolean") return !s.defaultValue;
  if (s.type === "patterns") return "lobby,team-*";
  return s.values.find((v) => v !== s.defaultValue) as string;
}

/**
 * Keys a setting's other value needs beside it to form a valid config (infra/config.ts checks some
 * combinations): 1,000 delivery workers at the default 5,000 posts/s would each take longer than
 * Lambda's 900 s over a shard (deliveryWorkerTimeoutSeconds), at 10,000 they do not.
 */
const COMPANIONS: Partial<Record<string, Record<string, string>>> = {
  deliveryWorkerConcurrency: { deliveryPostsPerSecond: "10000" },
};

const BASE: DeploymentSettings = {
  tableNames: { connections: "c", rooms: "r", messages: "m" },
  managementEndpoint: "https://abc.execute-api.us-east-1.amazonaws.com/dev",
  stage: "dev",
  environment: "dev",
  metricsNamespace: "Chat",
  auth: { mode: "shared-secret", sharedSecret: "x".repeat(32) },
  allowedOrigins: [],
};

describe("handlers: settings declared once (handlers/settings.ts)", () => {
  it("lists every declared setting exactly once", () => {
    assert.deepEqual([...SETTING_NAMES].sort(), Object.keys(HANDLER_SETTINGS).sort());
    const envs = SETTING_NAMES.map((n) => spec(n).env);
    assert.equal(new Set(envs).size, envs.length, "one environment variable per setting");
    for (const n of SETTING_NAMES) {
      const s = spec(n);
      if (s.type === "integer") assert.ok(s.min <= s.defaultValue && s.defaultValue <= s.max, `${n}: default within its range`);
      if (s.type === "string") assert.ok(s.values.includes(s.defaultValue), `${n}: default is one of its values`);
    }
    // The handlers' frame checks and the declared bound are the same 128 KB.
    assert.equal(HANDLER_SETTINGS.maxMessageBytes.max, MAX_WEBSOCKET_MESSAGE_BYTES);
    // One range for fan-out, at deploy time and in the functions.
    assert.deepEqual([HANDLER_SETTINGS.fanoutConcurrency.min, HANDLER_SETTINGS.fanoutConcurrency.max], [1, 256]);
  });

  it("is the stack's schema, Pulumi.yaml and the README row of each config key", () => {
    const yaml = readYaml("Pulumi.yaml") as { config: Record<string, { type: string; default: unknown; description: string }> };
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8").split("\n");
    for (const n of SETTING_NAMES) {
      const s = spec(n);
      const key = s.configKey as ConfigKey;
      assert.deepEqual(
        CONFIG_SCHEMA[key],
        { type: configType(s), default: s.defaultValue, description: s.description },
        `${n}: CONFIG_SCHEMA.${key}`,
      );
      assert.deepEqual(
        yaml.config[key],
        { type: configType(s), default: s.defaultValue, description: s.description },
        `${n}: Pulumi.yaml ${key}`,
      );
      const row = readme.find((line) => line.startsWith(`| \`${key}\` |`));
      const shown = s.defaultValue === "" ? '`""`' : `\`${String(s.defaultValue)}\``;
      assert.ok(row?.includes(`| ${configType(s)} | ${shown} |`), `${n}: README row of ${key}: ${row}`);
      assert.ok(row?.endsWith(`| ${s.description} |`), `${n}: README description of ${key}`);
    }
  });

  it("validates the stack's config with the declared range and default", () => {
    const defaults = validateConfig({}) as unknown as Record<string, unknown>;
    for (const n of SETTING_NAMES) {
      const s = spec(n);
      assert.equal(defaults[s.configKey], s.defaultValue, `${n}: stack default`);
      assert.equal(
        (validateConfig({ ...COMPANIONS[n], [s.configKey]: String(otherValue(s)) }) as unknown as Record<string, unknown>)[s.configKey],
        otherValue(s),
        n,
      );
      if (s.type === "integer") {
        assert.throws(
          () => validateConfig({ [s.configKey]: String(s.min - 1) }),
          (e: unknown) => isConfigError(e) && e.message.includes(`from ${s.min} to ${s.max}`),
          n,
        );
        assert.throws(() => validateConfig({ [s.configKey]: String(s.max + 1) }), isConfigError, n);
      } else if (s.type === "patterns") {
        assert.throws(() => validateConfig({ [s.configKey]: "a b,*x" }), isConfigError, n);
      } else {
        assert.throws(() => validateConfig({ [s.configKey]: "nonsense" }), isConfigError, n);
      }
    }
  });

  it("parses in the handlers with the same range and default as the stack", () => {
    for (const n of SETTING_NAMES) {
      const s = spec(n);
      assert.equal(readSetting({}, n), s.defaultValue, `${n}: handler default`);
      assert.equal(readSetting({ [s.env]: String(otherValue(s)) }, n), otherValue(s), n);
      if (s.type === "integer") {
        assert.equal(readSetting({ [s.env]: String(s.min) }, n), s.min, n);
        assert.equal(readSetting({ [s.env]: String(s.max) }, n), s.max, n);
        assert.throws(() => readSetting({ [s.env]: String(s.min - 1) }, n), isConfigurationError, n);
        assert.throws(() => readSetting({ [s.env]: String(s.max + 1) }, n), isConfigurationError, n);
      } else if (s.type === "patterns") {
        assert.throws(() => readSetting({ [s.env]: "a b,*x" }, n), isConfigurationError, n);
      } else {
        assert.throws(() => readSetting({ [s.env]: "nonsense" }, n), isConfigurationError, n);
      }
    }
    const c = readHandlerConfig({ CONNECTIONS_TABLE: "c" }, "ping", { tables: ["connections"], management: false }) as unknown as Record<
      string,
      unknown
    >;
    for (const n of SETTING_NAMES) assert.equal(c[n], spec(n).defaultValue, `readHandlerConfig().${n}`);
  });

  it("reaches the functions that receive it, and only those, through functionEnvironment()", () => {
    const values = Object.fromEntries(SETTING_NAMES.map((n) => [n, otherValue(spec(n))]));
    for (const f of FUNCTIONS) {
      const env = functionEnvironment(f, { ...BASE, ...values });
      for (const n of SETTING_NAMES) {
        const s = spec(n);
        const receives = s.receivers === "all" || f.tables.length > 0;
        assert.equal(env[s.env], receives ? String(values[n]) : undefined, `${f.name}: ${s.env}`);
        if (receives) assert.equal(readSetting(env, n), values[n], `${f.name}: ${n} read back`);
      }
    }
    // The authorizer touches no table: it gets only the settings every function gets.
    assert.ok(FUNCTIONS.some((f) => f.tables.length === 0));
  });

  it("gives the local runtime the declared defaults", () => {
    const defaults = settingDefaults();
    for (const n of SETTING_NAMES) assert.equal((LOCAL_DEFAULTS as Record<string, unknown>)[n], defaults[n], `LOCAL_DEFAULTS.${n}`);
  });

  it("gives the push module the stack's maxMessageBytes by default: it takes what a chat user may send", async function () {
    this.timeout(30_000);
    const dynamo = await sharedDynamo();
    const prefix = uniquePrefix("settings");
    const pusher = createPusher({
      connectionsTable: `${prefix}-connections`,
      roomsTable: `${prefix}-rooms`,
      messagesTable: `${prefix}-messages`,
      managementEndpoint: "http://127.0.0.1:9/local",
      dynamoEndpoint: dynamo.endpoint,
      region: "us-east-1",
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    });
    try {
      const max = HANDLER_SETTINGS.maxMessageBytes.defaultValue;
      // One byte over the default: refused before anything is read.
      await assert.rejects(pusher.toUser("u1", "a".repeat(max + 1)), (e: unknown) => isPushError(e) && e.code === "TOO_LARGE");
      // Exactly the default: accepted as a message (then DynamoDB says the tables do not exist).
      await assert.rejects(pusher.toUser("u1", "a".repeat(max)), (e: unknown) => isPushError(e) && e.code === "UNAVAILABLE");
    } finally {
      pusher.close();
    }
  });
  it("gives the push module the declared ranges of the settings it takes", () => {
    const base = {
      connectionsTable: "c-connections",
      roomsTable: "c-rooms",
      messagesTable: "c-messages",
      managementEndpoint: "https://abc.execute-api.us-east-1.amazonaws.com/dev",
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    };
    const options = {
      maxMessageBytes: "maxMessageBytes",
      messageRetentionHours: "messageRetentionHours",
      concurrency: "fanoutConcurrency",
    } as const;
    for (const [option, name] of Object.entries(options)) {
      const s = HANDLER_SETTINGS[name];
      for (const ok of [s.min, s.max]) createPusher({ ...base, [option]: ok }).close();
      for (const bad of [s.min - 1, s.max + 1]) {
        assert.throws(
          () => createPusher({ ...base, [option]: bad }),
          (e: unknown) => isPushError(e) && e.code === "BAD_OPTIONS" && e.message.includes(`from ${s.min} to ${s.max}`),
          `${option} ${bad}`,
        );
      }
    }
  });
});
