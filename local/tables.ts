/**
 * Creates (or completes) the chat tables in DynamoDB Local from the same schemas the stack deploys.
 */
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceNotFoundException,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
  type CreateTableCommandInput,
  type TableDescription,
} from "@aws-sdk/client-dynamodb";
import { namedError } from "../handlers/lib/errors";
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

/** A persisted local table whose keys no longer match the schema: only deleting it can fix that. */
export interface TableSchemaMismatchError extends Error {
  readonly name: "TableSchemaMismatchError";
}

export function tableSchemaMismatchError(message: string): TableSchemaMismatchError {
  return namedError("TableSchemaMismatchError", message) as TableSchemaMismatchError;
}

export function isTableSchemaMismatchError(err: unknown): err is TableSchemaMismatchError {
  return err instanceof Error && err.name === "TableSchemaMismatchError";
}

function keyText(keys: ReadonlyArray<{ AttributeName?: string; KeyType?: string }> | undefined): string {
  return (keys ?? []).map((k) => `${k.AttributeName}:${k.KeyType}`).join(",");
}

/**
 * Creates every table that does not exist yet (with TTL on), and completes existing ones: a table
 * kept in `.local/dynamodb` from an older schema gets the indexes added since. A table or index
 * whose key schema changed cannot be altered in place (DynamoDB has no such operation): that is
 * a TableSchemaMismatchError telling what to delete.
 */
export async function ensureTables(client: DynamoDBClient, names: Record<TableName, string>): Promise<void> {
  for (const t of TABLE_NAMES) {
    const schema = TABLES[t];
    const wanted = createTableInput(schema, names[t]);
    let existing: TableDescription | undefined;
    try {
      existing = (await client.send(new DescribeTableCommand({ TableName: names[t] }))).Table;
    } catch (err) {
      if (!(err instanceof ResourceNotFoundException) && (err as Error).name !== "ResourceNotFoundException") throw err;
    }
    if (!existing) {
      await client.send(new CreateTableCommand(wanted));
      await client.send(
        new UpdateTimeToLiveCommand({
          TableName: names[t],
          TimeToLiveSpecification: { AttributeName: schema.ttlAttribute, Enabled: true },
        }),
      );
      continue;
    }
    const fix = `delete the local data folder (.local/dynamodb) or run with --in-memory`;
    if (keyText(existing.KeySchema) !== keyText(wanted.KeySchema)) {
      throw tableSchemaMismatchError(
        `local table ${names[t]} has keys ${keyText(existing.KeySchema)} but the schema now says ${keyText(wanted.KeySchema)}: ${fix}`,
      );
    }
    for (const ix of wanted.GlobalSecondaryIndexes ?? []) {
      const have = existing.GlobalSecondaryIndexes?.find((g) => g.IndexName === ix.IndexName);
      if (have) {
        if (keyText(have.KeySchema) !== keyText(ix.KeySchema)) {
          throw tableSchemaMismatchError(
            `local index ${names[t]}/${ix.IndexName} has keys ${keyText(have.KeySchema)}, the schema ${keyText(ix.KeySchema)}: ${fix}`,
          );
        }
        continue;
      }
      await client.send(
        new UpdateTableCommand({
          TableName: names[t],
          AttributeDefinitions: wanted.AttributeDefinitions,
          GlobalSecondaryIndexUpdates: [{ Create: { IndexName: ix.IndexName, KeySchema: ix.KeySchema, Projection: ix.Projection } }],
        }),
      );
    }
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
