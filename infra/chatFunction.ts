/**
 * One chat Lambda: an `aws.lambda.CallbackFunction` built from the handler module's factory, with
 * its own least-privilege role (policy from infra/policies.ts) and its own encrypted log group.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { HandlerFactory } from "../handlers/events";
import type { FunctionSpec } from "../handlers/routes";
import type { TableName } from "../handlers/tables";
import { functionPolicy, LAMBDA_ASSUME_ROLE_POLICY } from "./policies";

/** The package the handlers load (only) when TRACING_ENABLED=true. */
export const XRAY_PACKAGE = "aws-xray-sdk-core";

export interface ArchivePackages {
  /** Packages (with their dependencies) put in the archive. */
  readonly extraIncludePackages: string[];
  /** The project's other `dependencies`, which Pulumi would otherwise put in every archive. */
  readonly extraExcludePackages: string[];
}

/**
 * Which npm packages go into a function's archive. Pulumi's computeCodePaths starts from every
 * entry of package.json `dependencies` (skipping `@pulumi/*` and packages with a `pulumi` section)
 * and adds their dependencies; excluding the ones this function does not load keeps each archive to
 * `spec.packages` (plus the X-Ray SDK when tracing) and their dependencies.
 */
export function archivePackages(spec: FunctionSpec, tracing: boolean, projectDependencies: readonly string[]): ArchivePackages {
  const needed = new Set<string>([...spec.packages, ...(tracing ? [XRAY_PACKAGE] : [])]);
  return {
    extraIncludePackages: [...needed].sort(),
    extraExcludePackages: projectDependencies.filter((d) => !needed.has(d) && !d.startsWith("@pulumi/")).sort(),
  };
}

/** The `dependencies` of the project's package.json (what Pulumi packages by default). */
export function projectDependencies(packageJsonPath = path.join(__dirname, "..", "package.json")): string[] {
  const pkg = JSON.parse(fs.readFileSync(packageJsonPath, "utf8")) as { dependencies?: Record<string, string> };
  return Object.keys(pkg.dependencies ?? {});
}

export interface ChatFunctionArgs {
  /** The function's entry in the route table. */
  readonly spec: FunctionSpec;
  /** The handler module's factory; Pulumi serializes it into the archive (`callbackFactory`). */
  readonly factory: HandlerFactory;
  /** Physical function name; its log group is `/aws/lambda/<functionName>`. */
  readonly functionName: string;
  /** Environment variables (handlers/env.ts functionEnvironment). */
  readonly environment: pulumi.Input<Record<string, string>>;
  /** Table ARNs by logical name (for the policy). */
  readonly tableArns: pulumi.Input<Record<TableName, string>>;
  /** The WebSocket API's execution ARN (for execute-api:ManageConnections). */
  readonly executionArn: pulumi.Input<string>;
  /** Stage name (for the `@connections` ARN). */
  readonly stage: string;
  /** ARN of the HS256 secret, granted only if the spec reads it (default none). */
  readonly authSecretArn?: pulumi.Input<string>;
  /** ARN of the delivery queue: SendMessage for a spec that enqueues deliveries, the consumer's actions for its trigger. */
  readonly deliveryQueueArn?: pulumi.Input<string>;
  /** Active X-Ray tracing and its IAM (default false: PassThrough, no X-Ray permission). */
  readonly tracing?: boolean;
  /** Memory in MB (default 256). */
  readonly memoryMb?: number;
  /** Timeout in seconds (default 10). */
  readonly timeoutSeconds?: number;
  /** Reserved concurrency (default -1: unreserved). */
  readonly reservedConcurrency?: number;
  /**
   * Provisioned concurrency (default 0: none). When set, versions are published and API Gateway
   * invokes the `live` alias, which keeps this many instances initialised.
   */
  readonly provisionedConcurrency?: number;
  /** Log retention in days (default 7). */
  readonly logRetentionDays?: number;
  /** KMS key encrypting the log group. */
  readonly logKmsKeyArn: pulumi.Input<string>;
  /** Keep the log group on `pulumi destroy` (CloudWatch Logs deletion protection and Pulumi `protect`; default false). */
  readonly protectLogs?: boolean;
  /** The project's package.json dependencies (default: read from package.json). */
  readonly projectDependencies?: readonly string[];
  /** Tags (default none). */
  readonly tags?: Record<string, string>;
}

export class ChatFunction extends pulumi.ComponentResource {
  public readonly functionName: pulumi.Output<string>;
  public readonly arn: pulumi.Output<string>;
  /** What API Gateway invokes: the `live` alias when provisioned concurrency is on, else the function. */
  public readonly invokeArn: pulumi.Output<string>;
  /** The alias name to scope invoke permissions to, when provisioned concurrency is on. */
  public readonly qualifier: pulumi.Output<string> | undefined;
  public readonly roleArn: pulumi.Output<string>;
  public readonly logGroupName: pulumi.Output<string>;
  /** The role's policy document as JSON (what tests compare with infra/policies.ts). */
  public readonly policy: pulumi.Output<string>;
  public readonly lambda: aws.lambda.CallbackFunction<never, unknown>;

  constructor(name: string, args: ChatFunctionArgs, opts?: pulumi.ComponentResourceOptions) {
    super("websocket-chat:infra:ChatFunction", name, {}, opts);
    const tracing = args.tracing ?? false;
    const provisioned = args.provisionedConcurrency ?? 0;

    const logGroup = new aws.cloudwatch.LogGroup(
      `${name}-logs`,
      {
        // Created by the stack (not by Lambda on first write) so it has retention and encryption,
        // and `pulumi destroy` removes it.
        name: `/aws/lambda/${args.functionName}`,
        retentionInDays: args.logRetentionDays ?? 7,
        kmsKeyId: args.logKmsKeyArn,
        deletionProtectionEnabled: args.protectLogs ?? false,
        tags: args.tags,
      },
      { parent: this, protect: args.protectLogs ?? false },
    );

    // Its own role with an inline policy only: passing `role` to CallbackFunction skips the default
    // managed policies it would otherwise attach (AWSLambda_FullAccess, AmazonDynamoDBFullAccess, ...;
    // @pulumi/aws lambda/lambdaMixins.ts).
    const role = new aws.iam.Role(
      `${name}-role`,
      {
        assumeRolePolicy: JSON.stringify(LAMBDA_ASSUME_ROLE_POLICY),
        description: `${args.functionName}: ${args.spec.description}`.slice(0, 1000),
        tags: args.tags,
      },
      { parent: this },
    );
    this.policy = pulumi
      .all([args.tableArns, args.executionArn, logGroup.arn, args.authSecretArn, args.deliveryQueueArn])
      .apply(([tableArns, executionArn, logGroupArn, authSecretArn, deliveryQueueArn]) =>
        JSON.stringify(
          functionPolicy(args.spec, {
            tableArns,
            executionArn,
            stage: args.stage,
            logGroupArn,
            ...(authSecretArn ? { authSecretArn } : {}),
            ...(deliveryQueueArn ? { deliveryQueueArn } : {}),
            tracing,
          }),
        ),
      );
    const rolePolicy = new aws.iam.RolePolicy(`${name}-policy`, { role: role.id, policy: this.policy }, { parent: this });

    const packages = archivePackages(args.spec, tracing, args.projectDependencies ?? projectDependencies());
    this.lambda = new aws.lambda.CallbackFunction<never, unknown>(
      name,
      {
        name: args.functionName,
        description: args.spec.description,
        // The factory runs once per cold start and returns the handler (STYLE.md: handlers).
        callbackFactory: args.factory as unknown as aws.lambda.CallbackFactory<never, unknown>,
        role: role.arn,
        runtime: aws.lambda.Runtime.NodeJS22dX,
        architectures: ["arm64"],
        memorySize: args.memoryMb ?? 256,
        timeout: args.timeoutSeconds ?? 10,
        reservedConcurrentExecutions: args.reservedConcurrency ?? -1,
        // Provisioned concurrency applies to a version or alias, never to $LATEST.
        publish: provisioned > 0,
        environment: { variables: args.environment },
        tracingConfig: { mode: tracing ? "Active" : "PassThrough" },
        // The handlers write their own JSON log and EMF lines (process.stdout.write); Text format stores
        // them unchanged. The log group is the one created above (not Lambda's implicit one).
        loggingConfig: { logFormat: "Text", logGroup: logGroup.name },
        codePathOptions: { extraIncludePackages: packages.extraIncludePackages, extraExcludePackages: packages.extraExcludePackages },
        tags: args.tags,
      },
      // The policy must exist before the first invocation; no data flows from it to the function.
      { parent: this, dependsOn: [rolePolicy] },
    );

    this.functionName = this.lambda.name;
    this.arn = this.lambda.arn;
    if (provisioned > 0) {
      const alias = new aws.lambda.Alias(
        `${name}-live`,
        {
          name: "live",
          functionName: this.lambda.name,
          functionVersion: this.lambda.version,
          description: "What API Gateway invokes (provisioned concurrency)",
        },
        { parent: this },
      );
      new aws.lambda.ProvisionedConcurrencyConfig(
        `${name}-provisioned`,
        { functionName: this.lambda.name, qualifier: alias.name, provisionedConcurrentExecutions: provisioned },
        { parent: this },
      );
      this.invokeArn = alias.invokeArn;
      this.qualifier = alias.name;
    } else {
      this.invokeArn = this.lambda.invokeArn;
      this.qualifier = undefined;
    }
    this.roleArn = role.arn;
    this.logGroupName = logGroup.name;
    this.registerOutputs({ functionName: this.functionName, arn: this.arn, roleArn: this.roleArn, logGroupName: this.logGroupName });
  }
}
