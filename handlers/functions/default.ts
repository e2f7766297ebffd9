/**
 * `$default`: API Gateway routes here every frame whose `type` matches no route, and every frame
 * that is not JSON (AWS-FACTS: Routing). The answer is a typed error, never silence.
 */
import type { WebSocketHandler } from "../events";
import { chatError } from "../lib/errors";
import { messageRoute, createRuntime } from "../lib/runtime";
import { managementFanout } from "../lib/fanout";

export function createHandler(): WebSocketHandler {
  const rt = createRuntime("default", { tables: ["connections"], management: true }, managementFanout);
  return messageRoute(rt, async (req) => {
    if (!req.frame) throw chatError("BAD_JSON", "the frame is not a JSON object");
    const type = req.frame.type;
    throw chatError(
      "UNKNOWN_TYPE",
      typeof type === "string"
        ? "unknown frame type; expected chat, join, leave, private, rooms, history, ping, edit, delete, kick, typing, react or read"
        : "the frame has no string `type`; expected chat, join, leave, private, rooms, history, ping, edit, delete, kick, typing, react or read",
    );
  });
}
