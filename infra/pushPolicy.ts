/**
 * The IAM policy a backend role attaches to push `system` frames (push/index.ts, docs/push.md):
 * exactly the DynamoDB actions push/access.ts declares, on this stack's tables and index, and
 * `execute-api:ManageConnections` on this API's stage's `@connections`. A customer managed policy
 * (`aws.iam.Policy`) attached to nothing here: the backend's owner attaches it to their own role
 * (`aws iam attach-role-policy --policy-arn $(pulumi stack output pushPolicyArn)`).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { TableName } from "../handlers/tables";
import { PUSH_MANAGEMENT_METHODS, PUSH_TABLE_ACCESS, type PushTableAccess } from "../push/access";
import { ENQUEUE_ACTIONS, tableAccessStatements, type IamPolicyDocument, type PolicyStatement } from "./policies";

export interface PushPolicyInputs {
  readonly tableArns: Readonly<Record<TableName, string>>;
  /** The API's execution ARN: `arn:aws:execute-api:{region}:{account}:{apiId}`. */
  readonly executionArn: string;
  readonly stage: string;
  /**
   * ARN of a customer managed KMS key encrypting the tables, if any: callers then need
   * kms:Decrypt and kms:GenerateDataKey on it. The stack's tables use the AWS managed key
   * (infra/chatTables.ts), which needs no permission, so index.ts passes none.
   */
  readonly tableKmsKeyArn?: string;
  /**
   * ARN of the delivery queue: push/index.ts hands a broadcast to a room of more than largeRoomUsers
   * users to the delivery workers, as the routes do (sqs:SendMessage only; SSE-SQS needs no KMS grant).
   */
  readonly deliveryQueueArn?: string;
}

/** The push policy document: a pure function of the ARNs, so a test reads exactly what a backend gets. */
export function pushPolicyDocument(inputs: PushPolicyInputs, access: readonly PushTableAccess[] = PUSH_TABLE_ACCESS): IamPolicyDocument {
  // The same derivation as the functions' policies: table actions on the table ARN, Query on index ARNs only.
  const statements: PolicyStatement[] = tableAccessStatements(access, inputs.tableArns, { table: "PushTable", index: "PushIndex" });
  statements.push({
    Sid: "PushManageConnections",
    Effect: "Allow",
    Action: ["execute-api:ManageConnections"],
    // arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{METHOD}/@connections/* (AWS-FACTS: Management API)
    Resource: [...new Set(PUSH_MANAGEMENT_METHODS)].sort().map((m) => `${inputs.executionArn}/${inputs.stage}/${m}/@connections/*`),
  });
  if (inputs.deliveryQueueArn) {
    statements.push({ Sid: "PushEnqueueDeliveries", Effect: "Allow", Action: ENQUEUE_ACTIONS, Resource: [inputs.deliveryQueueArn] });
  }
  if (inputs.tableKmsKeyArn) {
    statements.push({
      Sid: "PushTableKey",
      Effect: "Allow",
      // Reading and writing items of a table encrypted with a customer managed key (DynamoDB
      // developer guide: encryption at rest, customer managed keys).
      Action: ["kms:Decrypt", "kms:GenerateDataKey"],
      Resource: [inputs.tableKmsKeyArn],
    });
  }
  return { Version: "2012-10-17", Statement: statements };
}

export interface PushPolicyArgs {
  /** Prefix of the policy's name (`<prefix>-<region>-push`). */
  readonly namePrefix: string;
  /** Region of the stack: IAM policy names are account-wide, so the name carries it. */
  readonly region: pulumi.Input<string>;
  /** Table ARNs by logical name. */
  readonly tableArns: pulumi.Input<Record<TableName, string>>;
  /** The WebSocket API's execution ARN. */
  readonly executionArn: pulumi.Input<string>;
  /** The API's stage name. */
  readonly stage: pulumi.Input<string>;
  /** Customer managed key of the tables (default none: the tables use the AWS managed key). */
  readonly tableKmsKeyArn?: pulumi.Input<string>;
  /** The delivery queue's ARN: push enqueues large rooms' broadcasts (default none: no SQS statement). */
  readonly deliveryQueueArn?: pulumi.Input<string>;
  /** Tags (default none). */
  readonly tags?: Record<string, string>;
}

export class PushPolicy extends pulumi.ComponentResource {
  /** ARN of the policy: what `aws iam attach-role-policy --policy-arn` takes. */
  public readonly arn: pulumi.Output<string>;
  /** The policy document as JSON (for review, or to copy into another account's role). */
  public readonly json: pulumi.Output<string>;

  constructor(name: string, args: PushPolicyArgs, opts?: pulumi.ComponentResourceOptions) {
    super("websocket-chat:infra:PushPolicy", name, {}, opts);
    this.json = pulumi
      .all([args.tableArns, args.executionArn, args.stage, args.tableKmsKeyArn, args.deliveryQueueArn])
      .apply(([tableArns, executionArn, stage, tableKmsKeyArn, deliveryQueueArn]) =>
        JSON.stringify(
          pushPolicyDocument({
            tableArns,
            executionArn,
            stage,
            ...(tableKmsKeyArn ? { tableKmsKeyArn } : {}),
            ...(deliveryQueueArn ? { deliveryQueueArn } : {}),
          }),
        ),
      );
    const policy = new aws.iam.Policy(
      `${name}-push`,
      {
        name: pulumi.interpolate`${args.namePrefix}-${args.region}-push`,
        description: "Push system frames to the chat API's users and rooms (docs/push.md): attach to a backend's role",
        policy: this.json,
        tags: args.tags,
      },
      { parent: this },
    );
    this.arn = policy.arn;
    this.registerOutputs({ arn: this.arn, json: this.json });
  }
}
