/**
 * Least-privilege IAM policies, derived (not written by hand) from what each function's route
 * declares it needs in handlers/routes.ts. Pure: no Pulumi, so a test reads exactly what a role gets.
 */
import type { FunctionSpec, TableAccess } from "../handlers/routes";
import type { TableName } from "../handlers/tables";

export interface PolicyStatement {
  readonly Sid: string;
  readonly Effect: "Allow";
  readonly Action: readonly string[];
  readonly Resource: readonly string[];
}

export interface IamPolicyDocument {
  readonly Version: "2012-10-17";
  readonly Statement: readonly PolicyStatement[];
}

/** Resolved ARNs and switches a function's policy depends on. */
export interface FunctionPolicyInputs {
  readonly tableArns: Readonly<Record<TableName, string>>;
  /** The API's execution ARN: `arn:aws:execute-api:{region}:{account}:{apiId}`. */
  readonly executionArn: string;
  readonly stage: string;
  /** ARN of the function's own log group (without a trailing `:*`). */
  readonly logGroupArn: string;
  /** Secrets Manager ARN of the HS256 secret; only in shared-secret mode. */
  readonly authSecretArn?: string;
  readonly tracing: boolean;
  /**
   * ARN of the delivery queue (infra/deliveryQueue.ts): required for a function that enqueues
   * deliveries or is triggered by the queue.
   */
  readonly deliveryQueueArn?: string;
}

/** What a producer of delivery jobs needs: SendMessage only (the URL comes from its environment, no GetQueueUrl). */
export const ENQUEUE_ACTIONS: readonly string[] = ["sqs:SendMessage"];

/**
 * What the worker's event source mapping does with the function's role (Lambda developer guide,
 * "Amazon SQS execution role permissions": ReceiveMessage, DeleteMessage, GetQueueAttributes), and
 * ChangeMessageVisibility, with which Lambda returns a message it could not hand to a throttled
 * function, and with which the worker itself makes a job it stopped at its time margin visible
 * again at once (handlers/functions/deliver.ts). The worker's code makes no other of these calls.
 */
export const CONSUME_ACTIONS: readonly string[] = [
  "sqs:ChangeMessageVisibility",
  "sqs:DeleteMessage",
  "sqs:GetQueueAttributes",
  "sqs:ReceiveMessage",
];

/** The delivery queue's ARN for a function that needs it, or a clear error naming the function. */
function queueArnFor(spec: FunctionSpec, inputs: FunctionPolicyInputs): string {
  if (!inputs.deliveryQueueArn) throw new Error(`function ${spec.name} uses the delivery queue, but no deliveryQueueArn was given`);
  return inputs.deliveryQueueArn;
}

function sid(...parts: string[]): string {
  // Sids are alphanumeric only (IAM JSON policy reference: Sid).
  return parts.map((p) => p.replace(/[^A-Za-z0-9]/g, "").replace(/^./, (c) => c.toUpperCase())).join("");
}

/** Actions that can be authorized on an index ARN (iam-data: dynamodb actions with the `index` resource type that we use). */
const INDEX_ACTIONS: ReadonlySet<string> = new Set(["dynamodb:Query"]);

/**
 * The statements granting what a route (or a pushing backend) declares on its tables: the table
 * actions on the table ARN (one statement per table, none when it has no table action), and per
 * table the index actions on exactly the `<table ARN>/index/<name>` ARNs. A Query on an index is
 * authorized on the index ARN, not the table's (DynamoDB IAM: resources), so a function that only
 * queries an index can read nothing else of the table.
 */
export function tableAccessStatements(
  accesses: readonly TableAccess[],
  tableArns: Readonly<Record<TableName, string>>,
  sidPrefix: { readonly table: string; readonly index: string },
): PolicyStatement[] {
  const statements: PolicyStatement[] = [];
  for (const access of accesses) {
    const tableArn = tableArns[access.table];
    if (access.actions.length > 0) {
      statements.push({
        Sid: sid(sidPrefix.table, access.table),
        Effect: "Allow",
        Action: [...new Set(access.actions)].sort(),
        Resource: [tableArn],
      });
    }
    const indexes = Object.entries(access.indexes ?? {}).filter(([, actions]) => actions.length > 0);
    for (const [index, actions] of indexes) {
      for (const action of actions) {
        if (!INDEX_ACTIONS.has(action))
          throw new Error(
            `${action} on index ${index} of ${access.table}: only ${[...INDEX_ACTIONS].join(", ")} is authorized on an index`,
          );
      }
    }
    if (indexes.length > 0) {
      // One statement per table: every index action is dynamodb:Query, so the union is exact.
      statements.push({
        Sid: sid(sidPrefix.index, access.table),
        Effect: "Allow",
        Action: [...new Set(indexes.flatMap(([, actions]) => actions))].sort(),
        Resource: indexes.map(([index]) => `${tableArn}/index/${index}`).sort(),
      });
    }
  }
  return statements;
}

/** The IAM policy document of one function's role. */
export function functionPolicy(spec: FunctionSpec, inputs: FunctionPolicyInputs): IamPolicyDocument {
  const statements: PolicyStatement[] = [
    {
      Sid: "WriteOwnLogs",
      Effect: "Allow",
      // The stack creates the log group, so the function needs no logs:CreateLogGroup.
      Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
      Resource: [`${inputs.logGroupArn}:*`],
    },
  ];

  statements.push(...tableAccessStatements(spec.tables, inputs.tableArns, { table: "Table", index: "Index" }));

  const methods = [...new Set(spec.manageConnections)].sort();
  if (methods.length > 0) {
    statements.push({
      Sid: "ManageConnections",
      Effect: "Allow",
      Action: ["execute-api:ManageConnections"],
      // arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{METHOD}/@connections/* (AWS-FACTS: Management API)
      Resource: methods.map((m) => `${inputs.executionArn}/${inputs.stage}/${m}/@connections/*`),
    });
  }

  if (spec.enqueuesDeliveries) {
    statements.push({ Sid: "EnqueueDeliveries", Effect: "Allow", Action: ENQUEUE_ACTIONS, Resource: [queueArnFor(spec, inputs)] });
  }
  if (spec.trigger === "deliveryQueue") {
    statements.push({ Sid: "ConsumeDeliveries", Effect: "Allow", Action: CONSUME_ACTIONS, Resource: [queueArnFor(spec, inputs)] });
  }

  if (spec.readsAuthSecret && inputs.authSecretArn) {
    statements.push({
      Sid: "ReadAuthSecret",
      Effect: "Allow",
      Action: ["secretsmanager:GetSecretValue"],
      Resource: [inputs.authSecretArn],
    });
  }

  if (inputs.tracing) {
    statements.push({
      Sid: "WriteTraces",
      Effect: "Allow",
      Action: ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
      // X-Ray write actions support no resource-level permissions: "*" is the only valid resource.
      Resource: ["*"],
    });
  }

  return { Version: "2012-10-17", Statement: statements };
}

/** Trust policy of every function role: only the Lambda service may assume it (no Resource in trust policies). */
export const LAMBDA_ASSUME_ROLE_POLICY = {
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" }],
} as const;
