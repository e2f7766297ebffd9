/**
 * Least-privilege IAM policies, derived (not written by hand) from what each function's route
 * declares it needs in handlers/routes.ts. Pure: no Pulumi, so a test reads exactly what a role gets.
 */
import type { FunctionSpec } from "../handlers/routes";
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
}

function sid(...parts: string[]): string {
  // Sids are alphanumeric only (IAM JSON policy reference: Sid).
  return parts.map((p) => p.replace(/[^A-Za-z0-9]/g, "").replace(/^./, (c) => c.toUpperCase())).join("");
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

  for (const access of spec.tables) {
    const tableArn = inputs.tableArns[access.table];
    statements.push({
      Sid: sid("Table", access.table),
      Effect: "Allow",
      Action: [...new Set(access.actions)].sort(),
      Resource: [tableArn],
    });
    // A Query on an index is authorised on the index ARN, not the table's (DynamoDB IAM: resources).
    if (access.indexes && access.indexes.length > 0) {
      if (!access.actions.includes("dynamodb:Query")) {
        throw new Error(`${spec.name}: indexes on ${access.table} are declared without dynamodb:Query`);
      }
      statements.push({
        Sid: sid("Index", access.table),
        Effect: "Allow",
        Action: ["dynamodb:Query"],
        Resource: access.indexes.map((index) => `${tableArn}/index/${index}`),
      });
    }
  }

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

/** Trust policy of API Gateway's CloudWatch Logs role. */
export const APIGATEWAY_ASSUME_ROLE_POLICY = {
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "apigateway.amazonaws.com" }, Action: "sts:AssumeRole" }],
} as const;

/**
 * Policy of API Gateway's account-wide CloudWatch Logs role. The role is account-wide (the last
 * stack to set it serves every API in the account and region), so it covers the access-log groups
 * of every stack of this project, `/aws/apigateway/*`, not only its own: with dev and prod in one
 * account, whichever set it last keeps both stacks' access logs flowing. The actions are those of
 * the AWS managed AmazonAPIGatewayPushToCloudWatchLogs policy, written inline so no managed policy
 * is attached; DescribeLogGroups is account-level, so it gets the account's log-group ARN pattern.
 */
export function apiGatewayLoggingPolicy(accessLogGroupsArnPattern: string, logGroupsArnPattern: string): IamPolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "WriteAccessLogs",
        Effect: "Allow",
        Action: ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents", "logs:GetLogEvents", "logs:FilterLogEvents"],
        Resource: [accessLogGroupsArnPattern, `${accessLogGroupsArnPattern}:*`],
      },
      { Sid: "DescribeLogGroups", Effect: "Allow", Action: ["logs:DescribeLogGroups"], Resource: [logGroupsArnPattern] },
    ],
  };
}
