/** JSON helpers shared by the routes and the data layer; no dependencies, so any bundle may include it. */

/** Parses text as a JSON object: undefined when it is not JSON, or JSON that is not an object. */
export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}
