/**
 * Ephemeral signals (issue 18): typing indicators and shared read positions. Nothing a signal says
 * is stored; what bounds its cost is stored:
 *
 * - `passThrottle`: at most one fan-out per user, kind and conversation every typingIntervalSeconds,
 *   decided by one conditional UpdateItem on a small item of the connections table
 *   (`signal#<kind>#<userId>#<conversationId>`: user ids contain no `#`, so the key is unambiguous),
 *   which expires by TTL shortly after its interval. A frame within the interval fails the condition
 *   (one write unit, as any failed condition: AWS-FACTS DynamoDB) and is absorbed: no post, no error.
 * - `roomUsers`: the room's distinct users from its summary item (one eventually consistent GetItem,
 *   0.5 read unit), so a room above typingMaxRoomUsers is refused before its members are read.
 *
 * Plain functions only (closure serialization).
 */
import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { type DataContext, SUMMARY_SK, epochSeconds, isConditionFailure, tableName } from "./data";

export type SignalKind = "typing" | "read";

/** Key of a signal's throttle item in the connections table. */
export function signalThrottleKey(kind: SignalKind, userId: string, conversationId: string): string {
  return `signal#${kind}#${userId}#${conversationId}`;
}

/** How long a throttle item outlives its interval before TTL may remove it (TTL deletes lazily; the condition reads `at`). */
const THROTTLE_ITEM_SLACK_SECONDS = 60;

/**
 * Whether a signal of `userId` in `conversationId` may fan out now: true (and the time is recorded)
 * when none did in the last typingIntervalSeconds; false when one did (the frame is absorbed).
 */
export async function passThrottle(
  ctx: DataContext,
  kind: SignalKind,
  userId: string,
  conversationId: string,
  nowMs: number,
): Promise<boolean> {
  const intervalMs = ctx.config.typingIntervalSeconds * 1000;
  try {
    await ctx.doc.send(
      new UpdateCommand({
        TableName: tableName(ctx, "connections"),
        Key: { connectionId: signalThrottleKey(kind, userId, conversationId) },
        UpdateExpression: "SET #at = :now, #expiresAt = :expires",
        ConditionExpression: "attribute_not_exists(#at) OR #at <= :cutoff",
        ExpressionAttributeNames: { "#at": "at", "#expiresAt": "expiresAt" },
        ExpressionAttributeValues: {
          ":now": nowMs,
          ":cutoff": nowMs - intervalMs,
          ":expires": epochSeconds(nowMs + intervalMs) + THROTTLE_ITEM_SLACK_SECONDS,
        },
      }),
    );
    return true;
  } catch (err) {
    if (isConditionFailure(err)) return false;
    throw err;
  }
}

/**
 * The room's distinct users as its summary counts them (0 when it has no summary: nobody is in it).
 * Eventually consistent: a bound on fan-out cost needs no more.
 */
export async function roomUsers(ctx: DataContext, roomId: string): Promise<number> {
  const out = await ctx.doc.send(
    new GetCommand({
      TableName: tableName(ctx, "rooms"),
      Key: { roomId, sk: SUMMARY_SK },
      ProjectionExpression: "#users",
      ExpressionAttributeNames: { "#users": "users" },
    }),
  );
  return Number(out.Item?.users ?? 0);
}

/** Whether a room of `users` users may receive typing and shared read positions (typingMaxRoomUsers). */
export function signalsAllowed(ctx: Pick<DataContext, "config">, users: number): boolean {
  return users <= ctx.config.typingMaxRoomUsers && ctx.config.typingMaxRoomUsers > 0;
}
