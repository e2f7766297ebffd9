/**
 * The stack's customer managed KMS key: encrypts every log group (function logs and API access
 * logs) and the alarm topic. A customer managed key is required for both: CloudWatch Logs cannot
 * use an AWS managed key, and CloudWatch alarms cannot publish to a topic encrypted with the AWS
 * managed aws/sns key (its policy cannot be changed to let cloudwatch.amazonaws.com use it).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

export interface EncryptionKeyArgs {
  /** Prefix of the stack's names; log groups `/aws/lambda/<prefix>-*` and `/aws/apigateway/<prefix>-*` may use the key. */
  readonly namePrefix: string;
  /** Days KMS waits before deleting the key after `pulumi destroy` (7-30; default 30). */
  readonly deletionWindowInDays?: number;
  /**
   * Pulumi `protect` on the key (default false): kept log groups stay readable only while their key
   * exists, so a stack that protects its logs protects their key too.
   */
  readonly protect?: boolean;
}

/** The key policy: a pure function of the account, region and partition, so a test reads it. */
export function encryptionKeyPolicy(p: { accountId: string; region: string; partition: string; namePrefix: string }): object {
  const logGroupArn = (name: string) => `arn:${p.partition}:logs:${p.region}:${p.accountId}:log-group:${name}`;
  return {
    Version: "2012-10-17",
    Statement: [
      {
        // Without this statement no IAM policy can grant use of the key and it becomes unmanageable
        // (KMS developer guide: default key policy). In a key policy "*" means this key.
        Sid: "EnableAccountIamPolicies",
        Effect: "Allow",
        Principal: { AWS: `arn:${p.partition}:iam::${p.accountId}:root` },
        Action: "kms:*",
        Resource: "*",
      },
      {
        // CloudWatch Logs encrypts with the key on behalf of exactly these log groups
        // (CloudWatch Logs user guide: encrypt log data using AWS KMS, step 2).
        Sid: "AllowCloudWatchLogs",
        Effect: "Allow",
        Principal: { Service: `logs.${p.region}.amazonaws.com` },
        Action: ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
        Resource: "*",
        Condition: {
          ArnLike: {
            "kms:EncryptionContext:aws:logs:arn": [
              logGroupArn(`/aws/lambda/${p.namePrefix}-*`),
              logGroupArn(`/aws/apigateway/${p.namePrefix}-*`),
            ],
          },
        },
      },
      {
        // CloudWatch alarms publish to the encrypted alarm topic (SNS developer guide: enable
        // compatibility between event sources from AWS services and encrypted topics).
        Sid: "AllowCloudWatchAlarmsToPublish",
        Effect: "Allow",
        Principal: { Service: "cloudwatch.amazonaws.com" },
        Action: ["kms:Decrypt", "kms:GenerateDataKey*"],
        Resource: "*",
        Condition: { StringEquals: { "aws:SourceAccount": p.accountId } },
      },
    ],
  };
}

export class EncryptionKey extends pulumi.ComponentResource {
  public readonly keyArn: pulumi.Output<string>;
  public readonly keyId: pulumi.Output<string>;
  public readonly accountId: pulumi.Output<string>;
  public readonly partition: pulumi.Output<string>;

  constructor(name: string, args: EncryptionKeyArgs, opts?: pulumi.ComponentResourceOptions) {
    super("websocket-chat:infra:EncryptionKey", name, {}, opts);

    const identity = aws.getCallerIdentityOutput({}, { parent: this });
    const partition = aws.getPartitionOutput({}, { parent: this });
    const region = aws.getRegionOutput({}, { parent: this });

    const key = new aws.kms.Key(
      `${name}-key`,
      {
        description: `${args.namePrefix}: log groups and alarm topic`,
        enableKeyRotation: true,
        deletionWindowInDays: args.deletionWindowInDays ?? 30,
        policy: pulumi
          .all([identity.accountId, region.region, partition.partition])
          .apply(([accountId, r, part]) =>
            JSON.stringify(encryptionKeyPolicy({ accountId, region: r, partition: part, namePrefix: args.namePrefix })),
          ),
      },
      { parent: this, protect: args.protect ?? false },
    );
    new aws.kms.Alias(`${name}-alias`, { name: `alias/${args.namePrefix}`, targetKeyId: key.keyId }, { parent: this });

    this.keyArn = key.arn;
    this.keyId = key.keyId;
    this.accountId = identity.accountId;
    this.partition = partition.partition;
    this.registerOutputs({ keyArn: this.keyArn, keyId: this.keyId });
  }
}
