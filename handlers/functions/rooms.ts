/** `rooms`: one Query of the sparse `directory` index (summary items only; never a Scan). */
import type { WebSocketHandler } from "../events";
import { epochSeconds, listRooms } from "../lib/data";
import { buildSchemas, parseFrame } from "../lib/frames";
import { messageRoute, createRuntime, requireFrame } from "../lib/runtime";

export function createHandler(): WebSocketHandler {
  const rt = createRuntime("rooms", { tables: ["connections", "rooms"], management: false });
  const schemas = buildSchemas(rt.config.maxMessageBytes);
  return messageRoute(rt, async (req) => {
    parseFrame(schemas.rooms, requireFrame(req));
    return { type: "rooms", rooms: await listRooms(rt, epochSeconds(req.nowMs)) };
  });
}
