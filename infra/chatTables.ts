/**
 * The chat API's DynamoDB tables, created from the key schemas in handlers/tables.ts (the same
 * schemas the local runtime creates on DynamoDB Local).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { TABLES, TABLE_NAMES, type TableName, type TableSchema } from "../handlers/tables";

export interface ChatTablesArgs {
  /** Prefix of the physical table names (`<prefix>-connections`, ...). */
  readonly namePrefix: string;
  /**
   * DynamoDB deletion protection and Pulumi `protect` on every table (default false: `pulumi destroy`
   * deletes them). With it, `pulumi destroy` refuses to run until the flag is turned off and applied.
   */
  readonly deletionProtection?: boolean;
  /** Point-in-time recovery on every table (default false). */
  readonly pointInTimeRecovery?: boolean;
  /** Tags added to every table (default none). */
  readonly tags?: Record<string, string>;
}

/** The attribute definitions DynamoDB needs: every key attribute of the table and its indexes, once. */
export function attributeDefinitions(schema: TableSchema): { name: string; type: string }[] {
  const attributes = new Map<string, string>();
  const keys = [schema.partitionKey, schema.sortKey, ...schema.indexes.flatMap((i) => [i.partitionKey, i.sortKey])];
  for (const key of keys) {
    if (!key) continue;
    const seen = attributes.get(key.name);
    if (seen && seen !== key.type) throw new Error(`${schema.name}: attribute ${key.name} declared as ${seen} and ${key.type}`);
    attributes.set(key.name, key.type);
  }
  return [...attributes].map(([name, type]) => ({ name, type }));
}

export class ChatTables extends pulumi.ComponentResource {
  /** Physical table names by logical name. */
  public readonly names: pulumi.Output<Record<TableName, string>>;
  /** Table ARNs by logical name. */
  public readonly arns: pulumi.Output<Record<TableName, string>>;
  /** The table resources by logical name. */
  public readonly tables: Readonly<Record<TableName, aws.dynamodb.Table>>;

  constructor(name: string, args: ChatTablesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("websocket-chat:infra:ChatTables", name, {}, opts);

    const tables = {} as Record<TableName, aws.dynamodb.Table>;
    for (const logical of TABLE_NAMES) {
      const schema = TABLES[logical];
      tables[logical] = new aws.dynamodb.Table(
        `${name}-${logical}`,
        {
          name: `${args.namePrefix}-${logical}`,
          // On-demand: chat traffic is spiky and idle most of the time; no capacity to tune.
          billingMode: "PAY_PER_REQUEST",
          hashKey: schema.partitionKey.name,
          rangeKey: schema.sortKey?.name,
          attributes: attributeDefinitions(schema),
          globalSecondaryIndexes: schema.indexes.map((index) => ({
            name: index.name,
            hashKey: index.partitionKey.name,
            rangeKey: index.sortKey?.name,
            projectionType: index.projection.type,
            nonKeyAttributes: index.projection.nonKeyAttributes ? [...index.projection.nonKeyAttributes] : undefined,
          })),
          // TTL deletes lazily (AWS-FACTS: DynamoDB); the handlers also filter expired items on read.
          ttl: { attributeName: schema.ttlAttribute, enabled: true },
          // Encryption at rest with the AWS managed key (aws/dynamodb): no key policy to maintain and
          // no extra IAM for the functions.
          serverSideEncryption: { enabled: true },
          pointInTimeRecovery: { enabled: args.pointInTimeRecovery ?? false },
          deletionProtectionEnabled: args.deletionProtection ?? false,
          tags: { ...args.tags, Table: logical },
        },
        { parent: this, protect: args.deletionProtection ?? false },
      );
    }
    this.tables = tables;
    this.names = pulumi.output({
      connections: tables.connections.name,
      rooms: tables.rooms.name,
      messages: tables.messages.name,
    });
    this.arns = pulumi.output({
      connections: tables.connections.arn,
      rooms: tables.rooms.arn,
      messages: tables.messages.arn,
    });
    this.registerOutputs({ names: this.names, arns: this.arns });
  }
}
