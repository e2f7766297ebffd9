/**
 * The delivery queue of large rooms (issue 17): the SQS FIFO queue the routes send one job per room
 * shard to (handlers/lib/deliveries.ts) and the `deliver` worker reads through its event source
 * mapping (infra/websocketApi.ts createTriggers), with a FIFO dead-letter queue for jobs that failed
 * `maxReceiveCount` times. docs/deploy.md, "The delivery queue", says what to do when the DLQ fills.
 *
 * Encryption: SQS-managed server-side encryption (SSE-SQS), not the stack's KMS key. Both encrypt at
 * rest; a customer managed key would add kms:GenerateDataKey to every producer's role (and to every
 * push backend's, possibly in another account), kms:Decrypt to the worker's, a statement for
 * sqs.amazonaws.com in the key policy, and a KMS request per data key reuse period on each of them,
 * for nothing the jobs need: they carry a frame every member of the room receives anyway, and no one
 * outside the stack's roles can read the queue. SSE-SQS needs no permission and costs nothing.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { DELIVERY_MAX_RECEIVE_COUNT, deliveryVisibilityTimeoutSeconds } from "../handlers/lib/deliveries";

/**
 * A job older than a day is useless to its room; SQS keeps it at most 14 days. The dead-letter queue
 * keeps its jobs the longest SQS allows, so an operator has two weeks to redrive or read them.
 */
export const QUEUE_RETENTION_SECONDS = 86_400;
export const DLQ_RETENTION_SECONDS = 1_209_600;
/** Longest queue name SQS accepts, `.fifo` included (CreateQueue, QueueName). */
export const MAX_QUEUE_NAME = 80;

/** The physical names of a stack's delivery queue and its dead-letter queue: per region, so per stack prefix. */
export function deliveryQueueNames(namePrefix: string): { readonly queue: string; readonly dlq: string } {
  const names = { queue: `${namePrefix}-deliveries.fifo`, dlq: `${namePrefix}-deliveries-dlq.fifo` };
  for (const n of Object.values(names)) {
    // namePrefix is at most 37 characters (infra/config.ts), so this holds for every valid config.
    if (n.length > MAX_QUEUE_NAME) throw new Error(`queue name ${n} is longer than SQS's ${MAX_QUEUE_NAME} characters`);
  }
  return names;
}

export interface DeliveryQueueArgs {
  /** Prefix of the queues' names (`<prefix>-deliveries.fifo`, `<prefix>-deliveries-dlq.fifo`). */
  readonly namePrefix: string;
  /** Timeout of the worker reading the queue, in seconds; the visibility timeout is six times it. */
  readonly workerTimeoutSeconds: number;
  /** Tags (default none). */
  readonly tags?: Record<string, string>;
}

export class DeliveryQueue extends pulumi.ComponentResource {
  public readonly queueArn: pulumi.Output<string>;
  /** What producers send to (env DELIVERY_QUEUE_URL). */
  public readonly queueUrl: pulumi.Output<string>;
  /** The QueueName dimension of the queue's CloudWatch metrics. */
  public readonly queueName: pulumi.Output<string>;
  public readonly dlqArn: pulumi.Output<string>;
  public readonly dlqUrl: pulumi.Output<string>;
  public readonly dlqName: pulumi.Output<string>;

  constructor(name: string, args: DeliveryQueueArgs, opts?: pulumi.ComponentResourceOptions) {
    super("websocket-chat:infra:DeliveryQueue", name, {}, opts);
    const parent = this;
    const names = deliveryQueueNames(args.namePrefix);

    const dlq = createDeadLetterQueue();
    const queue = createQueue();

    this.queueArn = queue.arn;
    this.queueUrl = queue.url;
    this.queueName = queue.name;
    this.dlqArn = dlq.arn;
    this.dlqUrl = dlq.url;
    this.dlqName = dlq.name;
    this.registerOutputs({ queueArn: this.queueArn, queueUrl: this.queueUrl, dlqArn: this.dlqArn, dlqUrl: this.dlqUrl });

    // A FIFO queue's dead-letter queue must be FIFO too (SQS developer guide, dead-letter queues).
    function createDeadLetterQueue() {
      return new aws.sqs.Queue(
        `${name}-dlq`,
        {
          name: names.dlq,
          fifoQueue: true,
          messageRetentionSeconds: DLQ_RETENTION_SECONDS,
          sqsManagedSseEnabled: true,
          tags: args.tags,
        },
        { parent },
      );
    }

    function createQueue() {
      return new aws.sqs.Queue(
        `${name}-queue`,
        {
          name: names.queue,
          fifoQueue: true,
          // The producers set MessageDeduplicationId themselves (deliveries.ts jobDeduplicationId).
          contentBasedDeduplication: false,
          // High-throughput FIFO: deduplication and the throughput quota per message group (a room's
          // shard) instead of per queue, so many large rooms are not capped at the queue's 300 sends
          // a second. Deduplication ids carry the shard and group ids are per shard, so deduplicating
          // within a group drops exactly what deduplicating in the whole queue would.
          deduplicationScope: "messageGroup",
          fifoThroughputLimit: "perMessageGroupId",
          visibilityTimeoutSeconds: deliveryVisibilityTimeoutSeconds(args.workerTimeoutSeconds),
          messageRetentionSeconds: QUEUE_RETENTION_SECONDS,
          // The worker reads through its event source mapping, which long-polls by itself.
          receiveWaitTimeSeconds: 0,
          sqsManagedSseEnabled: true,
          redrivePolicy: dlq.arn.apply((deadLetterTargetArn) =>
            JSON.stringify({ deadLetterTargetArn, maxReceiveCount: DELIVERY_MAX_RECEIVE_COUNT }),
          ),
          tags: args.tags,
        },
        { parent },
      );
    }
  }
}
