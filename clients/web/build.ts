/**
 * Builds the web chat page into static files: index.html, styles.css and one minified app.js.
 *
 *   npm run build:web -- [--endpoint wss://…] [--out dir] [--no-local-token]
 *
 * `buildWeb()` is also what the local runtime calls at start (clients/web/dist is git-ignored), with
 * its own endpoint, so the page it serves connects to it without any typing.
 */
import * as esbuild from "esbuild";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseCommandLine } from "../../scripts/commandLine";

export interface BuildWebOptions {
  /** WebSocket endpoint baked into the page (`ws://` or `wss://`); empty = typed in at sign-in. */
  readonly endpoint?: string;
  /** Output folder (default clients/web/dist). */
  readonly outDir?: string;
  /**
   * Where the page mints local tokens, relative to the page (default `/_local/token`, served by the
   * local runtime). `""` builds a page for a deployed API, which asks for a pasted token.
   */
  readonly tokenUrl?: string;
  /** Minify (default true). */
  readonly minify?: boolean;
}

export interface BuiltFile {
  readonly name: string;
  readonly bytes: number;
  /** gzip size: what a browser actually downloads from a server that compresses. */
  readonly gzipBytes: number;
}

export interface BuildWebResult {
  readonly outDir: string;
  readonly files: readonly BuiltFile[];
  readonly totalBytes: number;
  readonly totalGzipBytes: number;
}

export const WEB_SOURCE_DIR = __dirname;
export const DEFAULT_WEB_OUT_DIR = path.join(__dirname, "dist");

export class BuildWebError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BuildWebError";
  }
}

function validateEndpoint(endpoint: string): void {
  if (endpoint === "") return;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new BuildWebError(`--endpoint "${endpoint}" is not a URL`);
  }
  if (url.protocol !== "ws:" && url.protocol !== "wss:")
    throw new BuildWebError(`--endpoint must be a ws:// or wss:// URL, got "${endpoint}"`);
}

export async function buildWeb(options: BuildWebOptions = {}): Promise<BuildWebResult> {
  const endpoint = options.endpoint ?? "";
  validateEndpoint(endpoint);
  const outDir = path.resolve(options.outDir ?? DEFAULT_WEB_OUT_DIR);
  const minify = options.minify ?? true;
  const tokenUrl = options.tokenUrl ?? "/_local/token";
  fs.mkdirSync(outDir, { recursive: true });

  const js = await esbuild.build({
    entryPoints: [path.join(WEB_SOURCE_DIR, "src", "app.ts")],
    bundle: true,
    minify,
    format: "iife",
    platform: "browser",
    // Evergreen browsers; WebSocket, fetch, URL and Intl are all the page relies on.
    target: ["es2020", "chrome100", "firefox100", "safari15"],
    define: { __CHAT_CONFIG__: JSON.stringify({ endpoint, tokenUrl }) },
    legalComments: "none",
    logLevel: "silent",
    write: false,
    outfile: path.join(outDir, "app.js"),
  });
  const css = await esbuild.build({
    entryPoints: [path.join(WEB_SOURCE_DIR, "styles.css")],
    bundle: true,
    minify,
    logLevel: "silent",
    write: false,
    outfile: path.join(outDir, "styles.css"),
  });

  const outputs = [...js.outputFiles, ...css.outputFiles].map((f) => ({ name: path.basename(f.path), contents: Buffer.from(f.contents) }));
  outputs.push({ name: "index.html", contents: fs.readFileSync(path.join(WEB_SOURCE_DIR, "index.html")) });

  const { gzipSync } = await import("node:zlib");
  const files: BuiltFile[] = [];
  for (const o of outputs) {
    fs.writeFileSync(path.join(outDir, o.name), o.contents);
    files.push({ name: o.name, bytes: o.contents.length, gzipBytes: gzipSync(o.contents, { level: 9 }).length });
  }
  files.sort((a, b) => a.name.localeCompare(b.name));
  return {
    outDir,
    files,
    totalBytes: files.reduce((n, f) => n + f.bytes, 0),
    totalGzipBytes: files.reduce((n, f) => n + f.gzipBytes, 0),
  };
}

const BUILD_USAGE = `usage: npm run build:web -- [--endpoint wss://…] [--out dir] [--no-local-token] [--token-url url] [--no-minify]
  --endpoint <url>   the API stage the page connects to (default: asked at sign-in, or ?endpoint= in the URL)
  --out <dir>        output folder (default clients/web/dist)
  --token-url <url>  where the sign-in screen mints tokens (the local runtime's /_local/token)
  --no-local-token   no token minting: the sign-in screen asks for a pasted token (deployed stacks)
  --no-minify        readable bundle`;

const BUILD_OPTIONS = {
  endpoint: { type: "string" },
  out: { type: "string" },
  "token-url": { type: "string" },
  "no-local-token": { type: "boolean" },
  "no-minify": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

function parseBuildArgs(argv: readonly string[]): BuildWebOptions {
  const { values } = parseCommandLine({ args: [...argv], options: BUILD_OPTIONS }, (m) => new BuildWebError(m), `\n${BUILD_USAGE}`);
  if (values.help) {
    process.stdout.write(`${BUILD_USAGE}\n`);
    process.exit(0);
  }
  return {
    ...(values.endpoint !== undefined ? { endpoint: values.endpoint } : {}),
    ...(values.out !== undefined ? { outDir: values.out } : {}),
    ...(values["token-url"] !== undefined ? { tokenUrl: values["token-url"] } : {}),
    ...(values["no-local-token"] ? { tokenUrl: "" } : {}),
    ...(values["no-minify"] ? { minify: false } : {}),
  };
}

if (require.main === module) {
  (async () => {
    const options = parseBuildArgs(process.argv.slice(2));
    const result = await buildWeb(options);
    for (const f of result.files)
      console.log(`${f.name.padEnd(12)} ${String(f.bytes).padStart(7)} bytes  ${String(f.gzipBytes).padStart(6)} gzip`);
    console.log(
      `${"total".padEnd(12)} ${String(result.totalBytes).padStart(7)} bytes  ${String(result.totalGzipBytes).padStart(6)} gzip  -> ${result.outDir}`,
    );
    if (!options.endpoint) console.log("no --endpoint: the page asks for one at sign-in (or takes ?endpoint=wss://… in its URL)");
  })().catch((err: unknown) => {
    console.error(err instanceof BuildWebError ? `error: ${err.message}` : err);
    process.exit(err instanceof BuildWebError ? 2 : 1);
  });
}
