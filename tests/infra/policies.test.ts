import { strict as assert } from "node:assert";
import { FUNCTIONS, functionSpec } from "../../handlers/routes";
import { functionPolicy, type FunctionPolicyInputs, type IamPolicyDocument } from "../../infra/policies";
import { pushPolicyDocument } from "../../infra/pushPolicy";

const EXEC = "arn:aws:execute-api:eu-west-1:123456789012:abc123";
const INPUTS: FunctionPolicyInputs = {
  tableArns: {
    connections: "arn:aws:dynamodb:eu-west-1:123456789012:table/chat-dev-connections",
    rooms: "arn:aws:dynamodb:eu-west-1:123456789012:table/chat-dev-rooms",
    messages: "arn:aws:dynamodb:eu-west-1:123456789012:table/chat-dev-messages",
  },
  executionArn: EXEC,
  stage: "dev",
  logGroupArn: "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/chat-dev-x",
  authSecretArn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:chat-dev/auth/hs256-AbCdEf",
  deliveryQueueArn: "arn:aws:sqs:eu-west-1:123456789012:chat-dev-deliveries.fifo",
  tracing: false,
};

function statement(doc: IamPolicyDocument, sid: string) {
  const s = doc.Statement.find((x) => x.Sid === sid);
  assert.ok(s, `statement ${sid} in ${JSON.stringify(doc)}`);
  return s;
}

describe("infra: function policies (pure)", () => {
  it("gives each function exactly its declared table actions on exactly its tables' ARNs", () => {
    for (const spec of FUNCTIONS) {
      const doc = functionPolicy(spec, INPUTS);
      const tableStatements = doc.Statement.filter((s) => s.Sid.startsWith("Table"));
      // A table the function only reads through an index gets no statement on the table itself.
      const onTable = spec.tables.filter((t) => t.actions.length > 0);
      assert.equal(tableStatements.length, onTable.length, spec.name);
      for (const access of onTable) {
        const s = statement(doc, `Table${access.table[0].toUpperCase()}${access.table.slice(1)}`);
        assert.deepEqual(s.Resource, [INPUTS.tableArns[access.table]]);
        assert.deepEqual([...s.Action].sort(), [...new Set(access.actions)].sort());
      }
    }
  });

  it("kick (issue 16): the restriction Put and the leave path, nothing on messages; the restriction check only where a join runs", () => {
    const kick = functionPolicy(functionSpec("kick"), INPUTS);
    assert.deepEqual([...statement(kick, "TableConnections").Action].sort(), [
      "dynamodb:BatchGetItem",
      "dynamodb:DeleteItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
    ]);
    assert.deepEqual([...statement(kick, "TableRooms").Action].sort(), ["dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:UpdateItem"]);
    assert.equal(
      kick.Statement.some((s) => s.Resource.some((r) => r.startsWith(INPUTS.tableArns.messages))),
      false,
    );
    // The join transaction's ConditionCheck of the kick restriction (data.ts addMembership): join and
    // $connect, on the connections table, and nobody else.
    const checking = FUNCTIONS.filter((f) =>
      functionPolicy(f, INPUTS).Statement.some((s) => s.Action.includes("dynamodb:ConditionCheckItem")),
    ).map((f) => f.name);
    assert.deepEqual(checking.sort(), ["connect", "join"]);
    for (const name of ["connect", "join"] as const) {
      assert.ok(statement(functionPolicy(functionSpec(name), INPUTS), "TableConnections").Action.includes("dynamodb:ConditionCheckItem"));
    }
  });

  it("react (issue 18): its reaction writes and the count read on messages (no Query, no batch), edit's fan-out elsewhere; history queries messages and reads the read position only", () => {
    const react = functionPolicy(functionSpec("react"), INPUTS);
    const edit = functionPolicy(functionSpec("edit"), INPUTS);
    assert.deepEqual([...statement(react, "TableMessages").Action].sort(), [
      "dynamodb:DeleteItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
    ]);
    for (const sid of ["TableConnections", "TableRooms"]) {
      assert.deepEqual([...statement(react, sid).Action].sort(), [...statement(edit, sid).Action].sort(), sid);
    }
    assert.deepEqual(
      react.Statement.filter((s) => s.Resource.some((r) => r.includes("/index/"))).flatMap((s) => s.Resource),
      edit.Statement.filter((s) => s.Resource.some((r) => r.includes("/index/"))).flatMap((s) => s.Resource),
      "the byUser index only, as edit",
    );
    // history's `me` read is a Query too; its GetItem is the caller's read position (fromRead, lib/reads.ts).
    assert.deepEqual([...statement(functionPolicy(functionSpec("history"), INPUTS), "TableMessages").Action].sort(), [
      "dynamodb:GetItem",
      "dynamodb:Query",
    ]);
  });

  it("read (issue 18): one UpdateItem on messages (the position; the message is never read), the fan-out of typing elsewhere", () => {
    const read = functionPolicy(functionSpec("read"), INPUTS);
    const typing = functionPolicy(functionSpec("typing"), INPUTS);
    assert.deepEqual([...statement(read, "TableMessages").Action], ["dynamodb:UpdateItem"]);
    for (const sid of ["TableConnections", "TableRooms"]) {
      assert.deepEqual([...statement(read, sid).Action].sort(), [...statement(typing, sid).Action].sort(), sid);
    }
  });

  it("push (issue 16): a backend's kick and delete get what the kick and delete functions get for the same code, and no more", () => {
    const push = pushPolicyDocument({ tableArns: INPUTS.tableArns, executionArn: EXEC, stage: "dev" });
    const actionsOn = (doc: IamPolicyDocument, sid: string) => [...statement(doc, sid).Action].sort();
    const kick = functionPolicy(functionSpec("kick"), INPUTS);
    // kickUser (moderation.ts) is shared: the restriction Put, the kicked connections' BatchGet, the
    // leave transaction and the clean-up of gone ones. A backend also bans (PutItem) and unbans.
    assert.deepEqual(actionsOn(push, "PushTableConnections"), actionsOn(kick, "TableConnections"));
    assert.deepEqual(actionsOn(push, "PushTableRooms"), actionsOn(kick, "TableRooms"));
    // deleteMessage (messageChanges.ts) is one UpdateItem; a room push is a PutItem. A backend
    // reads no history (no Query, no GetItem) and never joins (no ConditionCheckItem).
    const del = functionPolicy(functionSpec("delete"), INPUTS);
    assert.deepEqual(actionsOn(del, "TableMessages"), ["dynamodb:UpdateItem"]);
    assert.deepEqual(actionsOn(push, "PushTableMessages"), ["dynamodb:PutItem", "dynamodb:UpdateItem"]);
    assert.equal(
      push.Statement.some((s) => s.Action.includes("dynamodb:ConditionCheckItem")),
      false,
    );
  });

  it("grants Query on exactly the queried index ARNs", () => {
    const doc = functionPolicy(functionSpec("private"), INPUTS);
    assert.deepEqual(statement(doc, "IndexConnections"), {
      Sid: "IndexConnections",
      Effect: "Allow",
      Action: ["dynamodb:Query"],
      Resource: [`${INPUTS.tableArns.connections}/index/byUser`],
    });
    const rooms = functionPolicy(functionSpec("rooms"), INPUTS);
    assert.deepEqual(statement(rooms, "IndexRooms").Resource, [`${INPUTS.tableArns.rooms}/index/directory`]);
    // history queries the table itself, not an index.
    assert.equal(
      functionPolicy(functionSpec("history"), INPUTS).Statement.some((s) => s.Sid.startsWith("Index")),
      false,
    );
  });

  it("grants Query on a table only to functions that query the table's own key, and on index ARNs otherwise", () => {
    const queryResources = (name: "rooms" | "private" | "history" | "chat") =>
      functionPolicy(functionSpec(name), INPUTS)
        .Statement.filter((s) => s.Action.includes("dynamodb:Query"))
        .flatMap((s) => s.Resource)
        .sort();
    // rooms lists the directory index; private finds a user's devices through byUser: neither may
    // read the rooms or connections table (issue 13, defect 7). rooms also queries the messages
    // table's key: the user's read positions and each counted room's unread messages (issue 18).
    assert.deepEqual(queryResources("rooms"), [INPUTS.tableArns.messages, `${INPUTS.tableArns.rooms}/index/directory`].sort());
    assert.deepEqual(queryResources("private"), [`${INPUTS.tableArns.connections}/index/byUser`]);
    // history pages a conversation's partition and chat reads the room's partition: the table's own key.
    assert.deepEqual(queryResources("history"), [INPUTS.tableArns.messages]);
    assert.deepEqual(queryResources("chat"), [INPUTS.tableArns.rooms]);
  });

  it("grants execute-api:ManageConnections on the stage's @connections ARN per declared method only", () => {
    // Every route function posts and closes (a connection past its token's expiry); none reads (GET).
    for (const name of ["chat", "ping", "rooms", "history", "default", "connect", "disconnect", "kick"] as const) {
      assert.deepEqual(
        statement(functionPolicy(functionSpec(name), INPUTS), "ManageConnections").Resource,
        [`${EXEC}/dev/DELETE/@connections/*`, `${EXEC}/dev/POST/@connections/*`],
        name,
      );
    }
    const spec = { ...functionSpec("chat"), manageConnections: ["POST", "DELETE", "GET"] as const };
    assert.deepEqual(statement(functionPolicy(spec, INPUTS), "ManageConnections").Resource, [
      `${EXEC}/dev/DELETE/@connections/*`,
      `${EXEC}/dev/GET/@connections/*`,
      `${EXEC}/dev/POST/@connections/*`,
    ]);
    assert.equal(
      functionPolicy(functionSpec("authorizer"), INPUTS).Statement.some((s) => s.Sid === "ManageConnections"),
      false,
      "authorizer",
    );
  });

  it("lets only the authorizer read the auth secret, and only when a secret exists", () => {
    for (const spec of FUNCTIONS) {
      const has = functionPolicy(spec, INPUTS).Statement.some((s) => s.Action.includes("secretsmanager:GetSecretValue"));
      assert.equal(has, spec.readsAuthSecret, spec.name);
    }
    const { authSecretArn: _omit, ...oidc } = INPUTS;
    assert.equal(
      functionPolicy(functionSpec("authorizer"), oidc).Statement.some((s) => s.Sid === "ReadAuthSecret"),
      false,
    );
    assert.deepEqual(statement(functionPolicy(functionSpec("authorizer"), INPUTS), "ReadAuthSecret").Resource, [INPUTS.authSecretArn]);
  });

  it("grants X-Ray writes (Resource '*', which X-Ray requires) only when tracing is on", () => {
    for (const spec of FUNCTIONS) {
      assert.equal(
        functionPolicy(spec, INPUTS).Statement.some((s) => s.Sid === "WriteTraces"),
        false,
      );
      const traced = statement(functionPolicy(spec, { ...INPUTS, tracing: true }), "WriteTraces");
      assert.deepEqual(traced.Action, ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]);
      assert.deepEqual(traced.Resource, ["*"]);
    }
  });

  it("writes logs to its own log group only, and never uses a '*' action or any other '*' resource", () => {
    for (const spec of FUNCTIONS) {
      for (const tracing of [false, true]) {
        const doc = functionPolicy(spec, { ...INPUTS, tracing });
        assert.deepEqual(statement(doc, "WriteOwnLogs").Resource, [`${INPUTS.logGroupArn}:*`]);
        for (const s of doc.Statement) {
          for (const action of s.Action) assert.ok(!action.includes("*"), `${spec.name}: action ${action}`);
          if (s.Sid !== "WriteTraces") for (const r of s.Resource) assert.notEqual(r, "*", `${spec.name}: ${s.Sid}`);
        }
      }
    }
  });

  it("refuses a route table entry declaring an index action other than Query (an index has no items to write)", () => {
    const bad = {
      ...functionSpec("rooms"),
      tables: [{ table: "rooms" as const, actions: [], indexes: { directory: ["dynamodb:PutItem" as const] } }],
    };
    assert.throws(
      () => functionPolicy(bad, INPUTS),
      /dynamodb:PutItem on index directory of rooms: only dynamodb:Query is authorized on an index/,
    );
  });
});
