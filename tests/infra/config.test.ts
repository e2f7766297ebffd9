import { strict as assert } from "node:assert";
import { CONFIG_KEYS, CONFIG_SCHEMA, LOG_RETENTION_DAYS, MAX_STACK_SLUG, stackSlug, validateConfig } from "../../infra/config";
import { isMessageHandler } from "../../infra/websocketApi";
import { FUNCTIONS } from "../../handlers/routes";
import { rejects } from "./support/config";
import { PROJECT, readYaml, stackConfig } from "./support/stack";

/** Config keys of a stack file without the project prefix (what `new pulumi.Config()` sees). */
function projectKeys(stack: "dev" | "prod"): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(stackConfig(stack))) {
    if (key.startsWith(`${PROJECT}:`)) out[key.slice(PROJECT.length + 1)] = value;
  }
  return out;
}

describe("infra: stack config", () => {
  describe("Pulumi.yaml", () => {
    const project = readYaml("Pulumi.yaml") as {
      name: string;
      runtime: { name: string };
      config: Record<string, { type: string; default: unknown; description: string; items?: { type: string } }>;
    };

    it("is the websocket-chat nodejs project", () => {
      assert.equal(project.name, PROJECT);
      assert.equal(project.runtime.name, "nodejs");
    });

    it("declares exactly the keys infra/config.ts reads, with the same type, default and description", () => {
      assert.deepEqual(Object.keys(project.config).sort(), [...CONFIG_KEYS].sort());
      for (const key of CONFIG_KEYS) {
        const declared = project.config[key];
        const spec = CONFIG_SCHEMA[key];
        assert.equal(declared.type, spec.type, key);
        assert.deepEqual(declared.default, spec.default, key);
        assert.equal(declared.description, spec.description, key);
        assert.ok(declared.description.length > 10, `${key} has a description`);
        if (spec.type === "array") assert.deepEqual(declared.items, { type: "string" }, key);
      }
    });

    it("has defaults that validate (they are the dev values)", () => {
      const defaults: Record<string, string> = {};
      for (const [key, spec] of Object.entries(CONFIG_SCHEMA))
        defaults[key] = Array.isArray(spec.default) ? JSON.stringify(spec.default) : String(spec.default);
      const config = validateConfig(defaults);
      assert.deepEqual(config, validateConfig({}));
      assert.equal(config.environment, "dev");
      assert.equal(config.deletionProtection, false);
      assert.equal(config.pointInTimeRecovery, false);
    });
  });

  describe("README.md", () => {
    it("documents every config key in its table, with its default", () => {
      const doc = require("node:fs").readFileSync(require("node:path").join(__dirname, "..", "..", "README.md"), "utf8") as string;
      for (const key of CONFIG_KEYS) {
        const row = doc.split("\n").find((line) => line.startsWith(`| \`${key}\` |`));
        assert.ok(row, `README.md has a row for ${key}`);
        const d = CONFIG_SCHEMA[key].default;
        const shown = Array.isArray(d) ? "`[]`" : d === "" ? '`""`' : `\`${String(d)}\``;
        assert.ok(row.includes(`| ${CONFIG_SCHEMA[key].type} | ${shown} |`), `${key}: type and default in ${row}`);
      }
    });

    it("states how many times reservedConcurrency is reserved: once per message-handling function", () => {
      // A new route function is reserved too: the description, the README and docs/deploy.md say the total.
      const fs = require("node:fs") as typeof import("node:fs");
      const path = require("node:path") as typeof import("node:path");
      const times = FUNCTIONS.filter(isMessageHandler).length;
      assert.match(String(CONFIG_SCHEMA.reservedConcurrency.description), new RegExp(`reserves ${times} times it`));
      const root = path.join(__dirname, "..", "..");
      assert.match(fs.readFileSync(path.join(root, "README.md"), "utf8"), new RegExp(`reserved ${times} times: once per message-handling`));
      const deploy = fs.readFileSync(path.join(root, "docs", "deploy.md"), "utf8");
      assert.match(deploy, new RegExp(`reserves ${times} times the value`));
      assert.match(deploy, new RegExp(`values above ${Math.floor((1000 - 100) / times)} fail`));
    });
  });

  describe("stack files", () => {
    it("set aws:region and only known keys", () => {
      for (const stack of ["dev", "prod"] as const) {
        const all = stackConfig(stack);
        assert.match(all["aws:region"], /^[a-z]{2}-[a-z]+-\d$/, `${stack} sets aws:region`);
        for (const key of Object.keys(all)) {
          assert.ok(
            key === "aws:region" || (key.startsWith(`${PROJECT}:`) && key.slice(PROJECT.length + 1) in CONFIG_SCHEMA),
            `${stack}: ${key} is known`,
          );
        }
      }
    });

    it("dev is destroyable: no deletion protection, no PITR, no tracing", () => {
      const dev = validateConfig(projectKeys("dev"));
      assert.equal(dev.environment, "dev");
      assert.equal(dev.stageName, "dev");
      assert.equal(dev.deletionProtection, false);
      assert.equal(dev.pointInTimeRecovery, false);
      assert.equal(dev.enableXrayTracing, false);
      assert.equal(dev.enableDetailedMonitoring, false);
    });

    it("prod turns on monitoring, tracing, protection and PITR, with longer retention and higher throttles", () => {
      const dev = validateConfig(projectKeys("dev"));
      const prod = validateConfig(projectKeys("prod"));
      assert.equal(prod.environment, "prod");
      assert.equal(prod.enableDetailedMonitoring, true);
      assert.equal(prod.enableXrayTracing, true);
      assert.equal(prod.deletionProtection, true);
      assert.equal(prod.pointInTimeRecovery, true);
      assert.ok(prod.logRetentionDays > dev.logRetentionDays);
      assert.ok(prod.messageRetentionHours > dev.messageRetentionHours);
      assert.ok(prod.throttlingBurstLimit > dev.throttlingBurstLimit);
      assert.ok(prod.throttlingRateLimit > dev.throttlingRateLimit);
      assert.ok(prod.alarms.lambdaErrorRatePercent < dev.alarms.lambdaErrorRatePercent);
      // Issue 16: in prod every token must name its rooms; dev keeps the open default.
      assert.equal(prod.roomAccess, "token");
      assert.equal(dev.roomAccess, "open");
    });
  });

  describe("validateConfig", () => {
    it("parses every type: integers, booleans, arrays and enums", () => {
      const c = validateConfig(
        {
          environment: "staging",
          lambdaMemoryMb: "1024",
          enableXrayTracing: "true",
          allowedOrigins: '["https://chat.example.com","http://localhost:5173"]',
          logLevel: "warn",
          alarmEmail: "ops@example.com",
        },
        "staging",
      );
      assert.equal(c.environment, "staging");
      assert.equal(c.resourcePrefix, "chat-staging");
      assert.equal(c.lambdaMemoryMb, 1024);
      assert.equal(c.enableXrayTracing, true);
      assert.deepEqual(c.allowedOrigins, ["https://chat.example.com", "http://localhost:5173"]);
      assert.equal(c.logLevel, "warn");
      assert.equal(c.alarmEmail, "ops@example.com");
    });

    it("rejects an unknown environment naming the allowed values", () => {
      rejects({ environment: "production" }, "environment", /"production" is not allowed; allowed values: dev, staging, prod/);
    });

    it("rejects a log retention CloudWatch does not accept, listing the accepted values", () => {
      rejects({ logRetentionDays: "10" }, "logRetentionDays", /allowed values: 1, 3, 5, 7, 14, 30/);
      for (const days of LOG_RETENTION_DAYS) assert.equal(validateConfig({ logRetentionDays: String(days) }).logRetentionDays, days);
    });

    it("rejects a Lambda timeout above API Gateway's 29-second integration timeout", () => {
      rejects({ lambdaTimeoutSeconds: "30" }, "lambdaTimeoutSeconds", /an integer from 1 to 29/);
      assert.equal(validateConfig({ lambdaTimeoutSeconds: "29" }).lambdaTimeoutSeconds, 29);
    });

    it("rejects non-integers, out-of-range numbers and non-booleans", () => {
      rejects({ lambdaMemoryMb: "256.5" }, "lambdaMemoryMb", /an integer from 128 to 10240/);
      rejects({ lambdaMemoryMb: "64" }, "lambdaMemoryMb", /an integer from 128 to 10240/);
      rejects({ throttlingBurstLimit: "lots" }, "throttlingBurstLimit", /an integer from 0 to 5000/);
      rejects({ maxMessageBytes: "262144" }, "maxMessageBytes", /an integer from 1 to 131072/);
      rejects({ deletionProtection: "yes" }, "deletionProtection", /allowed values: true, false/);
    });

    it("rejects a bad auth mode, and oidc without an https JWKS URL and issuer", () => {
      rejects({ authMode: "jwt" }, "authMode", /allowed values: shared-secret, oidc/);
      rejects({ authMode: "oidc" }, "authJwksUrl", /required when authMode is oidc/);
      rejects(
        { authMode: "oidc", authJwksUrl: "http://idp.example.com/jwks.json", authIssuer: "https://idp.example.com/" },
        "authJwksUrl",
        /an https URL/,
      );
      rejects({ authMode: "oidc", authJwksUrl: "https://idp.example.com/jwks.json", authIssuer: "idp" }, "authIssuer", /an https URL/);
      rejects({ authJwksUrl: "https://idp.example.com/jwks.json" }, "authJwksUrl", /must be empty when authMode is shared-secret/);
      const oidc = validateConfig({
        authMode: "oidc",
        authJwksUrl: "https://idp.example.com/jwks.json",
        authIssuer: "https://idp.example.com/",
      });
      assert.deepEqual(oidc.auth, {
        mode: "oidc",
        issuer: "https://idp.example.com/",
        audience: "websocket-chat",
        jwksUrl: "https://idp.example.com/jwks.json",
      });
    });

    it("rejects bad origins, emails, project names, log levels and alarm periods", () => {
      rejects({ allowedOrigins: '["https://chat.example.com/path"]' }, "allowedOrigins", /no path/);
      rejects({ allowedOrigins: "https://chat.example.com" }, "allowedOrigins", /not a JSON array/);
      rejects({ allowedOrigins: "[1]" }, "allowedOrigins", /an array of strings/);
      rejects({ alarmEmail: "ops" }, "alarmEmail", /an email address or empty/);
      rejects({ projectName: "Chat_App" }, "projectName", /lowercase letters, digits and hyphens/);
      rejects({ logLevel: "trace" }, "logLevel", /allowed values: debug, info, warn, error/);
      rejects({ alarmPeriodSeconds: "90" }, "alarmPeriodSeconds", /a multiple of 60 from 60 to 86400/);
      // 10 and 30 s periods are for high-resolution metrics: on 1-minute metrics such an alarm never fires.
      rejects(
        { alarmPeriodSeconds: "10" },
        "alarmPeriodSeconds",
        /a multiple of 60 from 60 to 86400 \(the alarmed metrics have 1-minute resolution\)/,
      );
      rejects({ alarmPeriodSeconds: "30" }, "alarmPeriodSeconds", /a multiple of 60/);
      rejects({ reservedConcurrency: "0" }, "reservedConcurrency", /-1 \(unreserved\) or an integer from 1 to 1000/);
      rejects({ provisionedConcurrency: "-1" }, "provisionedConcurrency", /an integer from 0 to 100/);
    });

    it("names resources after the stack, not the environment: any number of stacks side by side", () => {
      assert.equal(validateConfig({}, "dev").resourcePrefix, "chat-dev");
      assert.equal(validateConfig({ environment: "prod" }, "prod").resourcePrefix, "chat-prod");
      // A stack without a file takes environment dev but keeps its own names.
      const feature = validateConfig({}, "feature-x");
      assert.deepEqual([feature.environment, feature.stageName, feature.resourcePrefix], ["dev", "dev", "chat-feature-x"]);
      // A stack named like an environment is that environment unless its file says otherwise.
      assert.deepEqual([validateConfig({}, "staging").environment, validateConfig({}, "prod").environment], ["staging", "prod"]);
      assert.equal(validateConfig({ environment: "dev" }, "prod").environment, "dev");
      assert.equal(validateConfig({ environment: "prod" }, "feature-x").resourcePrefix, "chat-feature-x");
      // Upgrading a stack not named like its environment: namePrefix keeps its old names.
      assert.equal(validateConfig({ environment: "prod", namePrefix: "chat-prod" }, "production").resourcePrefix, "chat-prod");
      assert.throws(() => validateConfig({ namePrefix: "Chat_Prod" }), /config namePrefix: "Chat_Prod" is not allowed/);
      assert.throws(() => validateConfig({ namePrefix: "a".repeat(38) }), /2-37 characters/);
    });

    it("makes any Pulumi stack name name-safe, short and still distinct", () => {
      assert.equal(stackSlug("dev"), "dev");
      assert.equal(stackSlug("feature-x"), "feature-x");
      const odd = [
        "Feature_X",
        "feature.x",
        "feature_x",
        "FEATURE-X",
        "a-very-long-stack-name-for-a-branch",
        "a-very-long-stack-name-for-a-branch-2",
        "x-",
        "9lives",
        "_",
      ];
      const slugs = odd.map(stackSlug);
      for (const [i, slug] of slugs.entries()) {
        assert.match(slug, /^[a-z0-9][a-z0-9-]*[a-z0-9]$/, odd[i]);
        assert.ok(slug.length <= MAX_STACK_SLUG, `${odd[i]} -> ${slug}`);
      }
      assert.equal(new Set([...slugs, "feature-x"]).size, slugs.length + 1, `all distinct: ${slugs.join(", ")}`);
      // The longest physical names stay within Lambda's and IAM's 64 characters.
      const prefix = validateConfig({ projectName: "abcdefghijklmnopqrst" }, "a-very-long-stack-name-for-a-branch").resourcePrefix;
      assert.ok(`${prefix}-authorizer`.length <= 64 && `${prefix}-disconnect-role-1234567`.length <= 64, prefix);
    });

    it("rejects a key it does not know (a typo in a stack file), listing the known keys", () => {
      rejects({ enviroment: "prod" }, "enviroment", /unknown key; allowed keys: environment, projectName/);
    });
  });
});
