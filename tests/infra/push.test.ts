/**
 * The backends' push policy (infra/pushPolicy.ts) under mocks, for each stack's config: one
 * customer managed policy, exactly push/access.ts' actions, resources scoped to this stack's
 * tables, index and API stage, exported as `pushPolicyArn` and `pushPolicyJson`.
 */
import { strict as assert } from "node:assert";
import { pushPolicyDocument } from "../../infra/pushPolicy";
import { validateConfig } from "../../infra/config";
import { ACCOUNT, PROJECT, json, stackRun, type StackName, type StackRun } from "./support/stack";

interface Statement {
  readonly Sid: string;
  readonly Effect: string;
  readonly Action: string[];
  readonly Resource: string[];
}

function settingsOf(run: StackRun) {
  const raw: Record<string, string> = {};
  for (const [k, v] of Object.entries(run.config)) if (k.startsWith(`${PROJECT}:`)) raw[k.slice(PROJECT.length + 1)] = v;
  return validateConfig(raw, run.stack);
}

for (const stack of ["dev", "prod"] as StackName[]) {
  describe(`infra: push policy of the ${stack} stack under mocks`, function () {
    this.timeout(300_000);
    let run: StackRun;
    before(async () => {
      run = await stackRun(stack);
    });

    it("creates one customer managed policy named <prefix>-<region>-push (IAM names are account-wide), inside a PushPolicy component", () => {
      const c = settingsOf(run);
      const policies = run.ofType("aws:iam/policy:Policy");
      assert.equal(policies.length, 1);
      assert.equal(policies[0].inputs.name, `${c.resourcePrefix}-${run.region}-push`);
      assert.equal(run.resources.filter((r) => r.type === "websocket-chat:infra:PushPolicy").length, 1);
      assert.equal((policies[0].inputs.tags as Record<string, string>).Environment, c.environment);
    });

    it("grants exactly the actions push makes, on this stack's tables, byUser index and stage's POST and DELETE @connections", () => {
      const c = settingsOf(run);
      const table = (t: string) => `arn:aws:dynamodb:${run.region}:${ACCOUNT}:table/${c.resourcePrefix}-${t}`;
      const doc = json<{ Version: string; Statement: Statement[] }>(run.ofType("aws:iam/policy:Policy")[0].inputs.policy);
      assert.equal(doc.Version, "2012-10-17");
      // Written out by hand: a change to push/access.ts must be a deliberate change here too.
      assert.deepEqual(doc.Statement, [
        // Gone connections are removed one transaction each since issue 14 (no BatchWriteItem).
        // PutItem: a ban and a kick's restriction (issue 16; an unban is a DeleteItem); UpdateItem:
        // a kick's leave transaction (the kicked connection's `rooms`).
        {
          Sid: "PushTableConnections",
          Effect: "Allow",
          Action: ["dynamodb:BatchGetItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
          Resource: [table("connections")],
        },
        { Sid: "PushIndexConnections", Effect: "Allow", Action: ["dynamodb:Query"], Resource: [`${table("connections")}/index/byUser`] },
        {
          Sid: "PushTableRooms",
          Effect: "Allow",
          Action: ["dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:UpdateItem"],
          Resource: [table("rooms")],
        },
        // UpdateItem: a backend's delete (issue 16), one conditional UpdateItem leaving a tombstone.
        {
          Sid: "PushTableMessages",
          Effect: "Allow",
          Action: ["dynamodb:PutItem", "dynamodb:UpdateItem"],
          Resource: [table("messages")],
        },
        {
          Sid: "PushManageConnections",
          Effect: "Allow",
          Action: ["execute-api:ManageConnections"],
          Resource: [
            `arn:aws:execute-api:${run.region}:${ACCOUNT}:a1b2c3d4e5/${c.stageName}/DELETE/@connections/*`,
            `arn:aws:execute-api:${run.region}:${ACCOUNT}:a1b2c3d4e5/${c.stageName}/POST/@connections/*`,
          ],
        },
        // A push to a room of more than largeRoomUsers users is enqueued for the delivery workers (issue 17).
        {
          Sid: "PushEnqueueDeliveries",
          Effect: "Allow",
          Action: ["sqs:SendMessage"],
          Resource: [`arn:aws:sqs:${run.region}:${ACCOUNT}:${c.resourcePrefix}-deliveries.fifo`],
        },
      ]);
    });

    it("has no wildcard action, no account-wide resource, and no KMS statement (the tables use the AWS managed key)", () => {
      const doc = json<{ Statement: Statement[] }>(run.ofType("aws:iam/policy:Policy")[0].inputs.policy);
      for (const s of doc.Statement) {
        for (const a of s.Action) assert.ok(!a.includes("*"), a);
        for (const r of s.Resource) assert.notEqual(r, "*");
        assert.ok(!s.Action.some((a) => a.startsWith("kms:")), s.Sid);
      }
      // The tables really are on the AWS managed key: no customer key is named on any of them.
      for (const t of run.ofType("aws:dynamodb/table:Table")) {
        assert.equal((t.inputs.serverSideEncryption as { kmsKeyArn?: string }).kmsKeyArn, undefined, String(t.inputs.name));
      }
    });

    it("exports the policy's ARN and its JSON", () => {
      const c = settingsOf(run);
      const policy = run.ofType("aws:iam/policy:Policy")[0];
      assert.equal(run.outputs.pushPolicyArn, `arn:aws:iam::${ACCOUNT}:policy/${c.resourcePrefix}-${run.region}-push`);
      assert.equal(run.outputs.pushPolicyJson, policy.inputs.policy);
    });
  });
}

describe("infra: pushPolicyDocument (pure)", () => {
  const inputs = {
    tableArns: {
      connections: "arn:aws:dynamodb:eu-west-1:111122223333:table/x-connections",
      rooms: "arn:aws:dynamodb:eu-west-1:111122223333:table/x-rooms",
      messages: "arn:aws:dynamodb:eu-west-1:111122223333:table/x-messages",
    },
    executionArn: "arn:aws:execute-api:eu-west-1:111122223333:abc123",
    stage: "live",
  };

  it("adds kms:Decrypt and kms:GenerateDataKey on the tables' customer managed key only when one is given", () => {
    const without = pushPolicyDocument(inputs);
    assert.ok(!JSON.stringify(without).includes("kms:"));
    const withKey = pushPolicyDocument({ ...inputs, tableKmsKeyArn: "arn:aws:kms:eu-west-1:111122223333:key/k-1" });
    assert.deepEqual(withKey.Statement[withKey.Statement.length - 1], {
      Sid: "PushTableKey",
      Effect: "Allow",
      Action: ["kms:Decrypt", "kms:GenerateDataKey"],
      Resource: ["arn:aws:kms:eu-west-1:111122223333:key/k-1"],
    });
  });

  it("derives its table statements from the access list it is given, duplicates removed", () => {
    const doc = pushPolicyDocument(inputs, [{ table: "messages", actions: ["dynamodb:PutItem", "dynamodb:PutItem"] }]);
    assert.deepEqual(
      doc.Statement.map((s) => [s.Sid, s.Action, s.Resource]),
      [
        ["PushTableMessages", ["dynamodb:PutItem"], ["arn:aws:dynamodb:eu-west-1:111122223333:table/x-messages"]],
        [
          "PushManageConnections",
          ["execute-api:ManageConnections"],
          [
            "arn:aws:execute-api:eu-west-1:111122223333:abc123/live/DELETE/@connections/*",
            "arn:aws:execute-api:eu-west-1:111122223333:abc123/live/POST/@connections/*",
          ],
        ],
      ],
    );
  });
});
