/**
 * The handlers' settings, each declared once: its stack config key, environment variable, type,
 * range, default, description and which functions receive it. Everything else is derived from this
 * table: the stack's config schema and validation (infra/config.ts), each function's environment
 * (env.ts functionEnvironment), the handlers' parsing (lib/config.ts readHandlerConfig), the local
 * runtime's defaults (local/runtime.ts) and the push module's (push/index.ts). Pulumi.yaml and the
 * README's config table are the user-facing copies, kept in step by tests/infra/config.test.ts and
 * tests/handlers/settings.test.ts.
 *
 * Adding a setting: one entry here, its Pulumi.yaml entry and README row, and its use.
 *
 * Plain data only: handlers read it at cold start, so Pulumi's closure serializer copies it into
 * every function's archive. The default is `defaultValue`, not `default`: the serializer takes an
 * object with a `default` property for an `import *` result and fails on it (createClosure.ts
 * isImportStarResult).
 */
import { isAccessClaimProblem, parsePatternList } from "./lib/access";

/**
 * Who receives a setting: `all` functions, or only the `data` functions (those whose route declares
 * a table: every function but the authorizer).
 */
export type SettingReceivers = "all" | "data";

interface SettingBase {
  /** The stack config key (Pulumi.yaml); usually the setting's own name. */
  readonly configKey: string;
  /** The environment variable a function receives it in. */
  readonly env: string;
  readonly description: string;
  readonly receivers: SettingReceivers;
  /** Leave the variable out of the environment when the value is the default (keeps environments short). */
  readonly omitDefault?: boolean;
}

export interface IntegerSetting extends SettingBase {
  readonly type: "integer";
  readonly min: number;
  readonly max: number;
  readonly defaultValue: number;
}

export interface BooleanSetting extends SettingBase {
  readonly type: "boolean";
  readonly defaultValue: boolean;
}

export interface ChoiceSetting extends SettingBase {
  readonly type: "string";
  readonly values: readonly string[];
  readonly defaultValue: string;
}

/**
 * A list of room patterns as access.ts reads them (an exact room id, a prefix ending in `*`, or `*`),
 * comma separated; "" is the empty list. A string in the stack's config (Pulumi.yaml type `string`).
 */
export interface PatternListSetting extends SettingBase {
  readonly type: "patterns";
  readonly defaultValue: string;
}

export type SettingSpec = IntegerSetting | BooleanSetting | ChoiceSetting | PatternListSetting;

/** The Pulumi config type of a setting (Pulumi.yaml, README): a pattern list is a string. */
export function configType(spec: SettingSpec): "integer" | "boolean" | "string" {
  return spec.type === "patterns" ? "string" : spec.type;
}

export const HANDLER_SETTINGS = {
  messageRetentionHours: {
    configKey: "messageRetentionHours",
    env: "MESSAGE_RETENTION_HOURS",
    type: "integer",
    // Messages live at most a year; the 1 h floor keeps a message readable while its sender is online.
    min: 1,
    max: 8760,
    defaultValue: 168,
    description: "Hours a stored message is kept before DynamoDB TTL expires it (1-8760).",
    receivers: "data",
  },
  maxMessageBytes: {
    configKey: "maxMessageBytes",
    env: "MAX_MESSAGE_BYTES",
    type: "integer",
    // API Gateway carries messages of at most 128 KB (AWS-FACTS: Limits); the frames built around a
    // message are checked against that limit too (frames.ts assertDeliverable).
    min: 1,
    max: 131072,
    defaultValue: 16384,
    description: "Largest chat text a client may send, in bytes (1-131072; API Gateway caps a message at 128 KB).",
    receivers: "data",
  },
  rateLimitPerMinute: {
    configKey: "rateLimitPerMinute",
    env: "RATE_LIMIT_PER_MINUTE",
    type: "integer",
    min: 1,
    max: 100000,
    defaultValue: 60,
    description: "Frames one connection may send per minute before RATE_LIMITED (1-100000).",
    receivers: "data",
  },
  userRateLimitPerMinute: {
    configKey: "userRateLimitPerMinute",
    env: "USER_RATE_LIMIT_PER_MINUTE",
    type: "integer",
    min: 0,
    max: 1000000,
    defaultValue: 0,
    description:
      "Frames one user may send per minute over all their connections before RATE_LIMITED; 0 = 4 x rateLimitPerMinute (0-1000000).",
    receivers: "data",
  },
  userConnectsPerMinute: {
    configKey: "userConnectsPerMinute",
    env: "USER_CONNECTS_PER_MINUTE",
    type: "integer",
    min: 1,
    max: 100000,
    defaultValue: 10,
    description: "Handshakes one user may open per minute; one more is refused at $connect with 429 (1-100000).",
    receivers: "data",
  },
  fanoutConcurrency: {
    configKey: "fanoutConcurrency",
    env: "FANOUT_CONCURRENCY",
    type: "integer",
    // The SDK's HTTP agent keeps at most 50 sockets by default; beyond a few hundred a function only
    // queues requests and risks its timeout. One range for the stack, the handlers and push.
    min: 1,
    max: 256,
    defaultValue: 50,
    description: "Concurrent @connections POSTs while delivering one message (1-256).",
    receivers: "data",
  },
  roomAccess: {
    // Issue 16: a token's `rooms` claim always decides; this decides for a token without it
    // (handlers/lib/access.ts canAccess). Received by every route that reads or writes a room.
    configKey: "roomAccess",
    env: "ROOM_ACCESS",
    type: "string",
    values: ["open", "token"],
    defaultValue: "open",
    description: "Rooms a token without the `rooms` claim may use: open (every room) or token (none; the token must name its rooms).",
    receivers: "data",
  },
  typingIntervalSeconds: {
    // Issue 18: a client sends `typing` on every few keystrokes; the fan-out happens at most once per
    // interval per user and conversation (handlers/lib/signals.ts passThrottle), the rest are absorbed.
    // Shared read positions (readReceiptRooms) are throttled the same way.
    configKey: "typingIntervalSeconds",
    env: "TYPING_INTERVAL_SECONDS",
    type: "integer",
    min: 1,
    max: 60,
    defaultValue: 3,
    description:
      "Least seconds between two fan-outs of one user's typing (and of a shared read position) in one conversation; frames in between are absorbed (1-60).",
    receivers: "data",
  },
  typingMaxRoomUsers: {
    // A keystroke must not become 10,000 posts: rooms with more users than this get no typing
    // (nor shared read positions) at all. Read from the room's summary item (signals.ts roomUsers).
    configKey: "typingMaxRoomUsers",
    env: "TYPING_MAX_ROOM_USERS",
    type: "integer",
    min: 0,
    max: 100000,
    defaultValue: 100,
    description: "Rooms with more users than this get no typing indicators nor shared read positions; 0 = none in any room (0-100000).",
    receivers: "data",
  },
  largeRoomUsers: {
    // Issue 17: a broadcast to a room of more users than this is not posted by the route that sends
    // it but handed to the delivery workers, one queue message per shard (handlers/lib/deliveries.ts),
    // so the sender's invocation never waits for thousands of posts (API Gateway's 29 s integration
    // timeout: AWS-FACTS, Limits). Such rooms announce no joined/left: at a few joins a second each
    // announcement would be another broadcast to every member. Their user count stays exact.
    configKey: "largeRoomUsers",
    env: "LARGE_ROOM_USERS",
    type: "integer",
    min: 0,
    max: 1000000,
    defaultValue: 1000,
    description:
      "Rooms with more users than this are delivered by the fan-out workers through the delivery queue and announce no joined/left; 0 = every room (0-1000000).",
    receivers: "data",
  },
  roomShardSize: {
    // Issue 17: a room's member items are spread over 1, 2, 4, ... partitions (shards) so that no
    // partition holds more than this many users (below 1,024 shards: data.ts placeUser); one Query of a
    // shard then stays far below DynamoDB's 3,000 read units per second per partition (AWS-FACTS:
    // Scaling facts for large fan-out; docs/architecture.md, "Sharded membership").
    configKey: "roomShardSize",
    env: "ROOM_SHARD_SIZE",
    type: "integer",
    min: 1,
    max: 10000,
    defaultValue: 1000,
    description: "Users per shard of a room's membership: a room of more users is spread over 2, 4, 8, ... partitions (1-10000).",
    receivers: "data",
  },
  deliveryWorkerConcurrency: {
    // The delivery queue's event source mapping's maximumConcurrency (2-1000, AWS-FACTS), and the
    // divisor of deliveryPostsPerSecond: each worker paces itself at budget / concurrency.
    configKey: "deliveryWorkerConcurrency",
    env: "DELIVERY_WORKER_CONCURRENCY",
    type: "integer",
    min: 2,
    max: 1000,
    defaultValue: 5,
    description: "Delivery workers running at once (the queue's event source mapping's maximumConcurrency, 2-1000).",
    receivers: "data",
  },
  deliveryPostsPerSecond: {
    // The account's API Gateway throttle (10,000 requests per second, shared by every API and every
    // `@connections` call in the region: AWS-FACTS) is the floor of a large broadcast; the workers
    // together stay inside this share of it.
    configKey: "deliveryPostsPerSecond",
    env: "DELIVERY_POSTS_PER_SECOND",
    type: "integer",
    min: 10,
    max: 1000000,
    defaultValue: 5000,
    description:
      "@connections posts per second of all delivery workers together: their share of the account's API Gateway budget (10,000 a second by default, shared by every API in the region) (10-1000000).",
    receivers: "data",
  },
  readReceiptRooms: {
    // Issue 18: rooms whose members see how far the others have read (a `read` frame fanned out to
    // the room, throttled like typing and refused above typingMaxRoomUsers). Off by default: a
    // read position is the user's own state unless the room's owner decides otherwise.
    configKey: "readReceiptRooms",
    env: "READ_RECEIPT_ROOMS",
    type: "patterns",
    defaultValue: "",
    description:
      "Rooms whose members see each other's read positions: comma-separated room patterns (an exact id, a prefix ending in *, or *); empty = none.",
    receivers: "data",
  },
  logLevel: {
    configKey: "logLevel",
    env: "LOG_LEVEL",
    type: "string",
    values: ["debug", "info", "warn", "error"],
    defaultValue: "info",
    description: "Handlers' log level: debug, info, warn or error.",
    receivers: "all",
  },
  metricsPerFunction: {
    // Also decides the API's per-route metrics and the dashboard's per-function widgets (infra/).
    configKey: "enableDetailedMonitoring",
    env: "METRICS_PER_FUNCTION",
    type: "boolean",
    defaultValue: false,
    description: "Per-route API Gateway metrics and the per-route dashboard widgets.",
    receivers: "all",
    omitDefault: true,
  },
  tracing: {
    // Also decides each function's tracing mode and its X-Ray IAM (infra/).
    configKey: "enableXrayTracing",
    env: "TRACING_ENABLED",
    type: "boolean",
    defaultValue: false,
    description: "Active X-Ray tracing of every function and its AWS SDK clients, with the IAM to write traces.",
    receivers: "all",
  },
} as const satisfies Record<string, SettingSpec>;

export type HandlerSettings = typeof HANDLER_SETTINGS;
export type SettingName = keyof HandlerSettings;

type ValueOf<S> = S extends { readonly type: "integer" }
  ? number
  : S extends { readonly type: "boolean" }
    ? boolean
    : S extends { readonly type: "patterns" }
      ? string
      : S extends { readonly values: readonly (infer V)[] }
        ? V
        : never;

/** Each setting's value, by setting name (what a function is given). */
export type SettingValues = { -readonly [K in SettingName]: ValueOf<HandlerSettings[K]> };

/** Each setting's value, by stack config key (what the stack reads). */
export type SettingValuesByConfigKey = { readonly [K in SettingName as HandlerSettings[K]["configKey"]]: ValueOf<HandlerSettings[K]> };

export type SettingConfigKey = HandlerSettings[SettingName]["configKey"];

export const SETTING_NAMES = [
  "messageRetentionHours",
  "maxMessageBytes",
  "rateLimitPerMinute",
  "userRateLimitPerMinute",
  "userConnectsPerMinute",
  "fanoutConcurrency",
  "roomAccess",
  "typingIntervalSeconds",
  "typingMaxRoomUsers",
  "readReceiptRooms",
  "largeRoomUsers",
  "roomShardSize",
  "deliveryWorkerConcurrency",
  "deliveryPostsPerSecond",
  "logLevel",
  "metricsPerFunction",
  "tracing",
] as const satisfies readonly SettingName[];

/** Every setting's declared default. */
export function settingDefaults(): SettingValues {
  const out: Record<string, unknown> = {};
  for (const name of SETTING_NAMES) out[name] = HANDLER_SETTINGS[name].defaultValue;
  return out as SettingValues;
}

/** The settings, by setting name, of a value keyed by stack config key (the stack's StackConfig). */
export function settingsFromConfig(config: SettingValuesByConfigKey): SettingValues {
  const byKey = config as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const name of SETTING_NAMES) out[name] = byKey[HANDLER_SETTINGS[name].configKey];
  return out as SettingValues;
}

/** Whether the range or choices of a setting admit a value (undefined when it does). */
export function settingProblem(spec: SettingSpec, value: unknown): string | undefined {
  if (spec.type === "integer") {
    return typeof value === "number" && Number.isInteger(value) && value >= spec.min && value <= spec.max
      ? undefined
      : `an integer from ${spec.min} to ${spec.max}`;
  }
  if (spec.type === "boolean") return typeof value === "boolean" ? undefined : "true or false";
  if (spec.type === "patterns") {
    return typeof value === "string" && !isAccessClaimProblem(parsePatternList(spec.configKey, value))
      ? undefined
      : "comma-separated room patterns: an exact room id, a prefix ending in *, or *";
  }
  return typeof value === "string" && spec.values.includes(value) ? undefined : spec.values.join(", ");
}
