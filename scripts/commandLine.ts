/**
 * Node's util.parseArgs (strict: an unknown option or a missing value is refused) with this
 * project's error wording, which the command-line tools' tests and users already know:
 * "unknown option --x", "--x needs a value", "unexpected argument y". Used by the scripts, the local
 * runtime's CLI, the bench, the load run and the push build (the clients inline the same call).
 * Also the UsageError (exit 2) that local/cli.ts and scripts/push.ts throw.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { namedError } from "../handlers/lib/errors";

/** The option a util.parseArgs error names (its messages quote it: `'--name <value>'`, `'--x'`). */
function optionNamed(message: string): string {
  return /'(-[^' ]*)/.exec(message)?.[1] ?? "";
}

/** The project's wording for a util.parseArgs error (code ERR_PARSE_ARGS_*), or undefined for any other error. */
export function commandLineErrorMessage(err: unknown): string | undefined {
  const e = err as { code?: unknown; message?: unknown };
  const message = String(e?.message ?? "");
  switch (e?.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown option ${optionNamed(message)}`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE": {
      const option = optionNamed(message);
      // util.parseArgs will not take "-1" as the value of `--x -1` (it could be an option): say how to.
      if (/ambiguous/.test(message)) return `${option} needs a value (write ${option}=<value> for a value that starts with a dash)`;
      // A value given to a boolean flag (`--force=yes`) is reported the same way.
      if (/does not take an argument/.test(message)) return `${option} takes no value`;
      return `${option} needs a value`;
    }
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `unexpected argument ${/'([^']*)'/.exec(message)?.[1] ?? ""}`;
    default:
      return undefined;
  }
}

/**
 * util.parseArgs with `strict: true`; its errors become `makeError(wording)` (default: a plain Error),
 * `suffix` (e.g. "\n" + the usage text) appended to the message.
 */
export function parseCommandLine<T extends ParseArgsConfig>(
  config: T,
  makeError: (message: string) => Error = (message) => new Error(message),
  suffix = "",
): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs<T>({ ...config, strict: true });
  } catch (err) {
    const message = commandLineErrorMessage(err);
    if (message === undefined) throw err;
    throw makeError(message + suffix);
  }
}

/** A malformed command line (exit 2). The project's one error style: a factory and a guard (handlers/lib/errors.ts). */
export interface UsageError extends Error {
  readonly name: "UsageError";
}

export function usageError(message: string): UsageError {
  return namedError("UsageError", message) as UsageError;
}

export function isUsageError(err: unknown): err is UsageError {
  return err instanceof Error && err.name === "UsageError";
}
