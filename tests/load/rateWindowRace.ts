/**
 * Probe for a finding of the load run (docs/reliability.md, "Found while loading", 1): frames of
 * one connection processed at the same time as they open a new minute window are answered
 * RATE_LIMITED although the count is far below the limit. Sets the connection's `rateWindow` to an
 * old value (as if its last frame was minutes ago), sends 3 pings at once, 5 times, and prints how
 * many of the 15 were refused. Exit code 1 while the race exists, 0 once it is fixed.
 *
 *   node --disable-warning=NodeVersionSupportWarning -r ts-node/register/transpile-only tests/load/rateWindowRace.ts
 */
import { UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { startLocalRuntime } from "../../local/runtime";
import { localDynamoClient } from "../../local/tables";
import { connect } from "../local/wsClient";

async function main(): Promise<number> {
  const rt = await startLocalRuntime({ port: 0, inMemory: true, quiet: true, warm: true });
  try {
    const token = await rt.mintToken("racer", "Racer");
    const client = await connect(`${rt.endpoint}?${new URLSearchParams({ token, roomId: "race" })}`);
    const ddb = localDynamoClient(rt.dynamodbEndpoint);
    const [id] = rt.connectionIds();
    let limited = 0;
    for (let round = 0; round < 5; round++) {
      await ddb.send(
        new UpdateItemCommand({
          TableName: rt.tableNames.connections,
          Key: { connectionId: { S: id } },
          UpdateExpression: "SET rateWindow = :w",
          ExpressionAttributeValues: { ":w": { N: "1" } },
        }),
      );
      const answers = Promise.all(
        [0, 1, 2].map(() => client.next((f) => f.json?.type === "pong" || f.json?.type === "error", 10_000, "an answer")),
      );
      for (let i = 0; i < 3; i++) client.send({ type: "ping" });
      const got = await answers;
      limited += got.filter((f) => f.json?.code === "RATE_LIMITED").length;
      console.log(
        `round ${round + 1}: ${got.map((f) => (f.json?.type === "error" ? String(f.json.code) : String(f.json?.type))).join(", ")}`,
      );
    }
    console.log(
      `${limited} of 15 pings (3 at once in a fresh minute window, limit ${rt.settings.rateLimitPerMinute}) answered RATE_LIMITED`,
    );
    ddb.destroy();
    await client.close();
    return limited === 0 ? 0 : 1;
  } finally {
    await rt.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(err);
    process.exit(2);
  },
);
