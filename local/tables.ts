/**
 * Creates (or completes) the chat tables in DynamoDB Local from the same schemas the stack deploys.
 */
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceNotFoundException,
  UpdateTimeToLiveCommand,
  type CreateTableCommandInput,
} from "@aws-sdk/client-dynamodb";
import { TABLES, TABLE_NAMES, type TableName, type TableSchema } from "../handlers/tables";

/** The CreateTable input for a schema: on-demand billing, as the stack deploys it. */
export function createTableInput(schema: TableSchema, physicalName: string): CreateTableCommandInput {
  const attributes = new Map<string, string>();
  const add = (a: { name: string; type: string } | undefined) => a && attributes.set(a.name, a.type);
  add(schema.partitionKey);
  add(schema.sortKey);
  for (const ix of schema.indexes) {
    add(ix.partitionKey);
    add(ix.sortKey);
  }
  const keySchema = (pk: { name: string }, sk?: { name: string }) => [
    { AttributeName: pk.name, KeyType: "HASH" as const },
    ...(sk ? [{ AttributeName: sk.name, KeyType: "RANGE" as const }] : []),
  ];
  return {
    TableName: physicalName,
    BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [...attributes].map(([AttributeName, AttributeType]) => ({
      AttributeName,
      AttributeType: AttributeType as "S" | "N",
    })),
    KeySchema: keySchema(schema.partitionKey, schema.sortKey),
    GlobalSecondaryIndexes: schema.indexes.length
      ? schema.indexes.map((ix) => ({
          IndexName: ix.name,
          KeySchema: keySchema(ix.partitionKey, ix.sortKey),
          Projection: {
            ProjectionType: ix.projection.type,
            ...(ix.projection.nonKeyAttributes ? { NonKeyAttributes: [...ix.projection.nonKeyAttributes] } : {}),
          },
        }))
      : undefined,
  };
}

/** Physical names used locally: `<prefix>-<table>`. */
export function localTableNames(prefix: string): Record<TableName, string> {
  return Object.fromEntries(TABLE_NAMES.map((t) => [t, `${prefix}-${t}`])) as Record<TableName, string>;
}

/** Creates every table that does not exist yet and turns TTL on. Existing tables are left as they are. */
export async function ensureTables(client: DynamoDBClient, names: Record<TableName, string>): Promise<void> {
  for (const t of TABLE_NAMES) {
    const schema = TABLES[t];
    try {
      await client.send(new DescribeTableCommand({ TableName: names[t] }));
      continue;
    } catch (err) {
      if (!(err instanceof ResourceNotFoundException) && (err as Error).name !== "ResourceNotFoundException") throw err;
    }
    await client.send(new CreateTableCommand(createTableInput(schema, names[t])));
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: names[t],
        TimeToLiveSpecification: { AttributeName: schema.ttlAttribute, Enabled: true },
      }),
    );
  }
}

/** A DynamoDB client for DynamoDB Local (any credentials are accepted with -sharedDb). */
export function localDynamoClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
}
