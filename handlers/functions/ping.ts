/** `ping`: the rate-limit update already refreshed lastSeenAt; answer pong. */
import type { WebSocketHandler } from "../events";
import { messageRoute, createRuntime, requireFrame } from "../lib/runtime";
import { buildSchemas, parseFrame } from "../lib/frames";
import { managementFanout } from "../lib/fanout";

export function createHandler(): WebSocketHandler {
  const rt = createRuntime("ping", { tables: ["connections"], management: true }, managementFanout);
  const schemas = buildSchemas(rt.config.maxMessageBytes);
  return messageRoute(rt, async (req) => {
    parseFrame(schemas.ping, requireFrame(req));
    return { type: "pong" };
  });
}
