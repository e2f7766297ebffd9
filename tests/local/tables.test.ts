import * as assert from "node:assert/strict";
import { CreateTableCommand, DescribeTableCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { TABLES } from "../../handlers/tables";
import { isTableSchemaMismatchError, createTableInput, ensureTables, localDynamoClient, localTableNames } from "../../local/tables";
import { sharedDynamo, uniquePrefix } from "../support/globalFixtures";

describe("local tables", function () {
  this.timeout(60_000);
  let client: DynamoDBClient;
  before(async () => {
    client = localDynamoClient((await sharedDynamo()).endpoint);
  });
  after(() => client.destroy());

  it("creates the tables with their indexes, and is idempotent", async () => {
    const names = localTableNames(uniquePrefix("tables"));
    await ensureTables(client, names);
    await ensureTables(client, names);
    const connections = (await client.send(new DescribeTableCommand({ TableName: names.connections }))).Table!;
    assert.deepEqual(
      connections.GlobalSecondaryIndexes?.map((g) => g.IndexName),
      ["byUser"],
    );
  });

  it("adds an index missing from a table kept from an older schema", async () => {
    const names = localTableNames(uniquePrefix("older"));
    const { GlobalSecondaryIndexes: _dropped, ...withoutIndexes } = createTableInput(TABLES.rooms, names.rooms);
    await client.send(
      new CreateTableCommand({
        ...withoutIndexes,
        AttributeDefinitions: [
          { AttributeName: "roomId", AttributeType: "S" },
          { AttributeName: "sk", AttributeType: "S" },
        ],
      }),
    );
    await ensureTables(client, names);
    const rooms = (await client.send(new DescribeTableCommand({ TableName: names.rooms }))).Table!;
    assert.deepEqual(
      rooms.GlobalSecondaryIndexes?.map((g) => g.IndexName),
      ["directory"],
    );
  });

  it("refuses a kept table whose keys changed, saying what to delete", async () => {
    const names = localTableNames(uniquePrefix("changed"));
    await client.send(
      new CreateTableCommand({
        TableName: names.messages,
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
      }),
    );
    await assert.rejects(ensureTables(client, names), (err: Error) => {
      assert.ok(isTableSchemaMismatchError(err));
      assert.match(err.message, /delete the local data folder/);
      return true;
    });
  });
});
