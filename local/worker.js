/*
 * Bootstrap of one local "Lambda function": runs inside its own worker_thread, whose process.env is
 * exactly the environment the stack gives the function (see local/functions.ts). Plain JavaScript so
 * it can load either the handlers transpiled once by esbuild (local/bundle.ts) or the serialized
 * callback module `pulumi up` uploads.
 *
 * Lifecycle as on Lambda: the factory runs once (the cold start, timed and reported as `ready`),
 * then the handler serves every `invoke` message. Invocations run concurrently on this one instance;
 * on Lambda each would get its own instance (documented in docs/local.md).
 */
"use strict";
const { parentPort, workerData } = require("node:worker_threads");
const { performance } = require("node:perf_hooks");

function serializeError(err) {
  if (err instanceof Error) return { name: err.name, message: err.message, stack: err.stack };
  return { name: "Error", message: typeof err === "string" ? err : JSON.stringify(err) };
}

function loadHandler() {
  const { source } = workerData;
  if (source.kind === "module" && /\.ts$/.test(source.modulePath)) {
    // A TypeScript fixture: transpile-only, as the bundle is (`npm run typecheck` checks types).
    require("ts-node").register({ transpileOnly: true, project: source.tsconfig });
  }
  if (source.kind === "bundle") process.setSourceMapsEnabled(true);
  const mod = require(source.modulePath);
  if (source.kind === "serialized") {
    // `serializeFunction(..., { isFactoryFunction: true })` calls the factory while the module loads.
    return mod[source.exportName || "handler"];
  }
  if (source.kind === "bundle") {
    const factories = mod[source.exportName];
    const factory = factories?.[workerData.functionName];
    if (typeof factory !== "function")
      throw new Error(`${source.modulePath} has no factory ${source.exportName}.${workerData.functionName}`);
    return factory();
  }
  // A plain module (test fixtures): `factory` export first, else `handler`.
  if (typeof mod.factory === "function") return mod.factory();
  return mod.handler;
}

const started = performance.now();
let handler;
try {
  handler = loadHandler();
  if (typeof handler !== "function") throw new TypeError(`function ${workerData.functionName} did not produce a handler function`);
  parentPort.postMessage({ type: "ready", initMs: performance.now() - started });
} catch (err) {
  parentPort.postMessage({ type: "initError", error: serializeError(err) });
}

parentPort.on("message", async (msg) => {
  if (msg.type !== "invoke" || !handler) return;
  const { id, event, context: c } = msg;
  const context = {
    functionName: c.functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: c.invokedFunctionArn,
    memoryLimitInMB: String(c.memoryLimitInMB),
    awsRequestId: c.awsRequestId,
    logGroupName: c.logGroupName,
    logStreamName: c.logStreamName,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, c.deadline - Date.now()),
  };
  try {
    const result = await handler(event, context);
    // Results cross the thread boundary as JSON, as they cross Lambda's runtime API.
    parentPort.postMessage({ type: "result", id, result: result === undefined ? null : JSON.parse(JSON.stringify(result)) });
  } catch (err) {
    parentPort.postMessage({ type: "error", id, error: serializeError(err) });
  }
});
