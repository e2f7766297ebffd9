/**
 * The reference design the benchmarks compare against: the broadcast of the widely copied AWS
 * sample (aws-samples/simple-websockets-chat-app, `sendmessage`): on every message, Scan the whole
 * connections table, then post to every connection with one unbounded `Promise.all`, deleting a
 * connection whose post fails with 410 GoneException.
 *
 * Two deliberate differences, both in the reference's favour, so the comparison is not a straw man:
 * - it paginates on LastEvaluatedKey (the sample reads only the first 1 MB page and silently skips
 *   everyone after it: AWS-FACTS "Query and Scan return at most 1 MB per page");
 * - with `roomId` it posts only to connections whose `rooms` set contains the room, through a
 *   FilterExpression. A filter does not reduce what a Scan costs: DynamoDB charges read units on
 *   every item it evaluates (AWS-FACTS "DynamoDB facts"), so it still pays for the whole table,
 *   but it delivers to the same members as this project's room Query and makes the same number of
 *   `@connections` calls. Without `roomId` it posts to everyone, exactly like the sample.
 */
import { type ApiGatewayManagementApiClient, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import { DeleteItemCommand, ScanCommand, type AttributeValue, type DynamoDBClient, type ScanCommandInput } from "@aws-sdk/client-dynamodb";

export interface ScanBroadcastInput {
  readonly dynamo: DynamoDBClient;
  readonly management: ApiGatewayManagementApiClient;
  /** Physical name of the connections table (partition key `connectionId`). */
  readonly connectionsTable: string;
  /** The frame to send. */
  readonly data: string;
  /** Deliver only to connections whose `rooms` string set contains this room. */
  readonly roomId?: string;
}

export interface ScanBroadcastResult {
  /** Items DynamoDB evaluated (ScannedCount summed over pages). */
  readonly itemsRead: number;
  /** Items the filter kept (the recipients). */
  readonly recipients: number;
  /** Read units reported in ConsumedCapacity (Scan is eventually consistent by default: 0.5 per 4 KB). */
  readonly readUnits: number;
  /** Write units of the GoneException clean-up deletes. */
  readonly writeUnits: number;
  readonly scanPages: number;
  /** `@connections` POSTs made. */
  readonly managementCalls: number;
  readonly delivered: number;
  readonly gone: number;
  readonly failed: number;
}

function isGone(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "GoneException" || e?.$metadata?.httpStatusCode === 410;
}

export async function scanBroadcast(input: ScanBroadcastInput): Promise<ScanBroadcastResult> {
  let itemsRead = 0;
  let readUnits = 0;
  let writeUnits = 0;
  let scanPages = 0;
  const recipients: string[] = [];
  let exclusiveStartKey: Record<string, AttributeValue> | undefined;
  do {
    const params: ScanCommandInput = {
      TableName: input.connectionsTable,
      ProjectionExpression: "connectionId",
      ReturnConsumedCapacity: "TOTAL",
      ExclusiveStartKey: exclusiveStartKey,
    };
    if (input.roomId !== undefined) {
      params.FilterExpression = "contains(#rooms, :room)";
      params.ExpressionAttributeNames = { "#rooms": "rooms" };
      params.ExpressionAttributeValues = { ":room": { S: input.roomId } };
    }
    const page = await input.dynamo.send(new ScanCommand(params));
    scanPages += 1;
    itemsRead += page.ScannedCount ?? 0;
    readUnits += page.ConsumedCapacity?.CapacityUnits ?? 0;
    for (const item of page.Items ?? []) {
      const id = item.connectionId?.S;
      if (id) recipients.push(id);
    }
    exclusiveStartKey = page.LastEvaluatedKey;
  } while (exclusiveStartKey);

  const data = new TextEncoder().encode(input.data);
  let delivered = 0;
  let gone = 0;
  let failed = 0;
  // The sample's unbounded fan-out: every post in flight at once.
  await Promise.all(
    recipients.map(async (connectionId) => {
      try {
        await input.management.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: data }));
        delivered += 1;
      } catch (err) {
        if (!isGone(err)) {
          failed += 1;
          return;
        }
        gone += 1;
        const del = await input.dynamo.send(
          new DeleteItemCommand({
            TableName: input.connectionsTable,
            Key: { connectionId: { S: connectionId } },
            ReturnConsumedCapacity: "TOTAL",
          }),
        );
        writeUnits += del.ConsumedCapacity?.CapacityUnits ?? 0;
      }
    }),
  );
  return {
    itemsRead,
    recipients: recipients.length,
    readUnits,
    writeUnits,
    scanPages,
    managementCalls: recipients.length,
    delivered,
    gone,
    failed,
  };
}
