import { strict as assert } from "node:assert";
import { isConfigError, validateConfig, type RawConfig } from "../../../infra/config";

/**
 * Asserts that validateConfig refuses `raw` with a ConfigError naming `key`, whose message starts
 * "config <key>: " and matches `pattern`.
 */
export function rejects(raw: RawConfig, key: string, pattern: RegExp): void {
  assert.throws(
    () => validateConfig(raw),
    (err: unknown) => {
      assert.ok(isConfigError(err), `expected ConfigError, got ${String(err)}`);
      assert.equal(err.key, key);
      assert.match(err.message, new RegExp(`^config ${key}: `));
      assert.match(err.message, pattern);
      return true;
    },
  );
}
