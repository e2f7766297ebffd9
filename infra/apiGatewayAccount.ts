/**
 * API Gateway's CloudWatch Logs role: ONE account-wide setting per account and region, used by every
 * REST and WebSocket API there (AWS-FACTS: Stack lifecycle facts). A WebSocket stage cannot log
 * until it is set ("CloudWatch Logs role ARN must be set in account settings to enable logging").
 *
 * `aws.apigateway.Account` is the wrong tool for a program deployed as many stacks: every stack that
 * declares it replaces whatever role the region already logs with, and with pulumi-aws 7 (Terraform
 * AWS provider v6) deleting it always resets the setting to empty, so `pulumi destroy` of dev stops
 * prod's access logs. This component instead *ensures* the setting, at deploy time:
 *  - if the region already names a role that exists, it is left exactly as it is (never replaced);
 *  - otherwise it creates `apigateway-cloudwatch-logs-<region>` with the AWS managed policy
 *    AmazonAPIGatewayPushToCloudWatchLogs (which includes logs:CreateLogGroup, so API Gateway's
 *    validation write to `/aws/apigateway/welcome` works in a fresh account) and sets it;
 *  - deleting the resource (`pulumi destroy`) changes nothing in AWS: other stacks and other APIs of
 *    the region keep logging. docs/deploy.md says how to remove the role and setting by hand.
 * A Pulumi dynamic resource, because the decision depends on the account's live state, which a
 * declarative resource cannot read (pulumi-aws has no data source for it).
 */
import * as pulumi from "@pulumi/pulumi";

/** Trust policy: only API Gateway may assume the logging role. */
export const APIGATEWAY_TRUST_POLICY = {
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "apigateway.amazonaws.com" }, Action: "sts:AssumeRole" }],
} as const;

/** The AWS managed policy API Gateway's logging role needs (API Gateway developer guide: set up CloudWatch logging). */
export const PUSH_TO_CLOUDWATCH_LOGS_POLICY = "service-role/AmazonAPIGatewayPushToCloudWatchLogs";

/** Name of the role this project creates when a region has none: IAM names are account-wide, so it carries the region. */
export function loggingRoleName(region: string): string {
  return `apigateway-cloudwatch-logs-${region}`;
}

/** What the ensure step needs from AWS: three API Gateway/IAM operations behind a port a test can fake. */
export interface AccountLoggingPort {
  /** API Gateway GetAccount: the role ARN the region logs with, or undefined when unset. */
  getCloudWatchRoleArn(): Promise<string | undefined>;
  /** API Gateway UpdateAccount (patch /cloudwatchRoleArn). */
  setCloudWatchRoleArn(arn: string): Promise<void>;
  /** IAM GetRole: the role's ARN, or undefined when it does not exist. */
  getRoleArn(name: string): Promise<string | undefined>;
  /** IAM CreateRole with the trust policy, then AttachRolePolicy of the managed policy; returns the ARN. */
  createRole(name: string, trustPolicy: string, managedPolicyArn: string): Promise<string>;
  sleep(ms: number): Promise<void>;
}

export interface AccountLoggingInputs {
  readonly region: string;
  readonly partition: string;
  /** Name of the role to create if the region has none. */
  readonly roleName: string;
  /** Optional named profile (the stack's `aws:profile`) for the SDK clients. */
  readonly profile?: string;
}

export interface AccountLoggingState extends AccountLoggingInputs {
  /** The role the region logs with after this step. */
  readonly cloudwatchRoleArn: string;
  /** Whether this step created and set the role (false: the region already had one). */
  readonly created: boolean;
}

function roleNameOf(arn: string): string | undefined {
  // arn:{partition}:iam::{account}:role/{path/}{name}
  const m = /^arn:[^:]+:iam::\d{12}:role\/(?:.*\/)?([\w+=,.@-]+)$/.exec(arn);
  return m ? m[1] : undefined;
}

/**
 * Makes sure the region's API Gateway account settings name a CloudWatch Logs role, never replacing
 * one that exists. IAM is eventually consistent: a freshly created role can be refused by
 * UpdateAccount for some seconds ("The role ARN does not have required permissions"), so the set is
 * retried with backoff for up to about two minutes.
 */
export async function ensureAccountLogging(port: AccountLoggingPort, inputs: AccountLoggingInputs): Promise<AccountLoggingState> {
  const current = await port.getCloudWatchRoleArn();
  if (current) {
    const name = roleNameOf(current);
    // A setting naming a deleted role is as good as none (every stage's logging would fail).
    const exists = name === undefined ? true : (await port.getRoleArn(name)) !== undefined;
    if (exists) return { ...inputs, cloudwatchRoleArn: current, created: false };
  }
  const managed = `arn:${inputs.partition}:iam::aws:policy/${PUSH_TO_CLOUDWATCH_LOGS_POLICY}`;
  const arn =
    (await port.getRoleArn(inputs.roleName)) ?? (await port.createRole(inputs.roleName, JSON.stringify(APIGATEWAY_TRUST_POLICY), managed));
  let lastError: unknown;
  for (let attempt = 0; attempt < 12; attempt++) {
    try {
      await port.setCloudWatchRoleArn(arn);
      return { ...inputs, cloudwatchRoleArn: arn, created: true };
    } catch (err) {
      const e = err as { name?: string; message?: string };
      const propagating = e.name === "BadRequestException" && /role ARN|permissions|assume/i.test(e.message ?? "");
      if (!propagating) throw err;
      lastError = err;
      await port.sleep(Math.min(2_000 * 2 ** Math.min(attempt, 3), 15_000));
    }
  }
  throw lastError;
}

/** The port over the real AWS SDK v3 clients (loaded only when the deployment runs the step). */
export function sdkAccountLoggingPort(inputs: Pick<AccountLoggingInputs, "region" | "profile">): AccountLoggingPort {
  const apigw = require("@aws-sdk/client-api-gateway") as typeof import("@aws-sdk/client-api-gateway");
  const iam = require("@aws-sdk/client-iam") as typeof import("@aws-sdk/client-iam");
  const common = { region: inputs.region, ...(inputs.profile ? { profile: inputs.profile } : {}) };
  const gateway = new apigw.APIGatewayClient(common);
  const identity = new iam.IAMClient(common);
  return {
    async getCloudWatchRoleArn() {
      const out = await gateway.send(new apigw.GetAccountCommand({}));
      return out.cloudwatchRoleArn || undefined;
    },
    async setCloudWatchRoleArn(arn) {
      await gateway.send(new apigw.UpdateAccountCommand({ patchOperations: [{ op: "replace", path: "/cloudwatchRoleArn", value: arn }] }));
    },
    async getRoleArn(name) {
      try {
        return (await identity.send(new iam.GetRoleCommand({ RoleName: name }))).Role?.Arn;
      } catch (err) {
        if ((err as { name?: string }).name === "NoSuchEntityException") return undefined;
        throw err;
      }
    },
    async createRole(name, trustPolicy, managedPolicyArn) {
      const out = await identity.send(
        new iam.CreateRoleCommand({
          RoleName: name,
          AssumeRolePolicyDocument: trustPolicy,
          Description: "API Gateway: write CloudWatch logs for every API of this region (account-wide setting)",
        }),
      );
      await identity.send(new iam.AttachRolePolicyCommand({ RoleName: name, PolicyArn: managedPolicyArn }));
      return out.Role!.Arn!;
    },
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  };
}

/** The dynamic provider: create ensures, delete leaves AWS untouched, any input change re-ensures. */
export const accountLoggingProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: AccountLoggingInputs) {
    const state = await ensureAccountLogging(sdkAccountLoggingPort(inputs), inputs);
    return { id: `apigateway-account-logging-${inputs.region}`, outs: state };
  },
  async diff(_id: string, olds: AccountLoggingState, news: AccountLoggingInputs) {
    const changed = olds.region !== news.region || olds.partition !== news.partition || olds.roleName !== news.roleName;
    return { changes: changed, replaces: changed ? ["region"] : [], deleteBeforeReplace: false };
  },
  async delete() {
    // Deliberately nothing: the setting serves every API of the region (see the module comment).
  },
};

export interface ApiGatewayAccountLoggingArgs {
  /** Region of the stack (the setting is per account and region). */
  readonly region: pulumi.Input<string>;
  /** Partition of the account (`aws`, `aws-cn`, `aws-us-gov`): part of the managed policy's ARN. */
  readonly partition: pulumi.Input<string>;
  /** Named AWS profile the stack's provider uses (`aws:profile`), if any. */
  readonly profile?: string;
}

/** Ensures the region's API Gateway CloudWatch Logs role; never replaces or resets it. */
export class ApiGatewayAccountLogging extends pulumi.dynamic.Resource {
  /** The role API Gateway logs with in this region. */
  public readonly cloudwatchRoleArn!: pulumi.Output<string>;
  /** Whether this stack's deployment created the role (false: the region already had one). */
  public readonly created!: pulumi.Output<boolean>;

  constructor(name: string, args: ApiGatewayAccountLoggingArgs, opts?: pulumi.CustomResourceOptions) {
    const roleName = pulumi.output(args.region).apply(loggingRoleName);
    super(
      accountLoggingProvider,
      name,
      { region: args.region, partition: args.partition, roleName, profile: args.profile, cloudwatchRoleArn: undefined, created: undefined },
      opts,
    );
  }
}
