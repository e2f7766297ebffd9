/**
 * Every function's factory, by name. `infra/` passes FACTORIES[name] to aws.lambda.CallbackFunction
 * as `callbackFactory` (run once per cold start: it reads the environment and builds the SDK
 * clients), and the local runtime calls FACTORIES[name]() in a worker whose environment is
 * functionEnvironment(spec, settings). Nothing under handlers/ imports @pulumi/*.
 *
 * Serialization: CallbackFunction serializes each factory and what it captures by value; modules
 * from node_modules are re-required. Every module under handlers/ therefore keeps only plain
 * constants and function declarations at module scope (tests/handlers/serialize.test.ts checks it).
 */
import type { AuthorizerHandler, SqsEvent, SqsBatchResponse, WebSocketHandler } from "./events";
import type { FunctionName } from "./routes";
import { createHandler as authorizer } from "./functions/authorizer";
import { createHandler as chat } from "./functions/chat";
import { createHandler as connect } from "./functions/connect";
import { createHandler as defaultRoute } from "./functions/default";
import { createHandler as deliver } from "./functions/deliver";
import { createHandler as deleteMessage } from "./functions/delete";
import { createHandler as disconnect } from "./functions/disconnect";
import { createHandler as edit } from "./functions/edit";
import { createHandler as history } from "./functions/history";
import { createHandler as join } from "./functions/join";
import { createHandler as kick } from "./functions/kick";
import { createHandler as leave } from "./functions/leave";
import { createHandler as privateMessage } from "./functions/private";
import { createHandler as react } from "./functions/react";
import { createHandler as ping } from "./functions/ping";
import { createHandler as read } from "./functions/read";
import { createHandler as rooms } from "./functions/rooms";
import { createHandler as typing } from "./functions/typing";

export type FactoryMap = {
  readonly [K in FunctionName]: K extends "authorizer"
    ? () => AuthorizerHandler
    : K extends "deliver"
      ? () => (event: SqsEvent) => Promise<SqsBatchResponse>
      : () => WebSocketHandler;
};

export const FACTORIES: FactoryMap = {
  authorizer,
  connect,
  disconnect,
  default: defaultRoute,
  chat,
  join,
  leave,
  private: privateMessage,
  rooms,
  history,
  ping,
  kick,
  edit,
  delete: deleteMessage,
  typing,
  react,
  read,
  deliver,
};

export { onInvocationUsage, type InvocationReport, type UsageListener } from "./lib/emf";
