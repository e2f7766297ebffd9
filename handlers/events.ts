/**
 * The event and result shapes API Gateway WebSocket APIs exchange with Lambda proxy integrations
 * (AWS-FACTS: "Lambda event shape"). The handlers consume them; the local runtime produces them
 * field for field, so it is written against the same types.
 */

export type EventType = "CONNECT" | "MESSAGE" | "DISCONNECT";

/** What the REQUEST authorizer returned as `context`, plus `principalId`, as API Gateway passes it on. */
export interface AuthorizerContext {
  readonly principalId: string;
  readonly userId: string;
  readonly username: string;
  readonly integrationLatency?: number;
  readonly [key: string]: string | number | boolean | undefined;
}

export interface WebSocketRequestContext {
  readonly routeKey: string;
  readonly eventType: EventType;
  /** Present on MESSAGE events only. */
  readonly messageId?: string;
  readonly extendedRequestId: string;
  readonly requestTime: string;
  readonly messageDirection: "IN";
  readonly stage: string;
  readonly connectedAt: number;
  readonly requestTimeEpoch: number;
  readonly identity: { readonly sourceIp: string; readonly userAgent?: string };
  readonly requestId: string;
  readonly domainName: string;
  readonly connectionId: string;
  readonly apiId: string;
  /** Present when an authorizer is attached to `$connect` (and then on every later event of the connection). */
  readonly authorizer?: AuthorizerContext;
  /** `$disconnect` only. */
  readonly disconnectStatusCode?: number;
  readonly disconnectReason?: string;
}

export interface WebSocketEvent {
  readonly requestContext: WebSocketRequestContext;
  /** `$connect` only. */
  readonly headers?: Record<string, string>;
  readonly multiValueHeaders?: Record<string, string[]>;
  readonly queryStringParameters?: Record<string, string>;
  readonly multiValueQueryStringParameters?: Record<string, string[]>;
  /** MESSAGE events only. */
  readonly body?: string;
  readonly isBase64Encoded: boolean;
}

/** What a route integration returns. For two-way routes API Gateway sends `body` back to the caller. */
export interface WebSocketResult {
  readonly statusCode: number;
  readonly body?: string;
}

/** REQUEST authorizer event for a WebSocket `$connect` (identity source: `route.request.querystring.token`). */
export interface AuthorizerEvent {
  readonly type: "REQUEST";
  /** `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/$connect` */
  readonly methodArn: string;
  readonly headers?: Record<string, string>;
  readonly multiValueHeaders?: Record<string, string[]>;
  readonly queryStringParameters?: Record<string, string>;
  readonly multiValueQueryStringParameters?: Record<string, string[]>;
  readonly stageVariables?: Record<string, string>;
  readonly requestContext: Omit<WebSocketRequestContext, "authorizer" | "messageId" | "disconnectStatusCode" | "disconnectReason">;
}

export interface PolicyDocument {
  readonly Version: "2012-10-17";
  readonly Statement: ReadonlyArray<{ readonly Action: string; readonly Effect: "Allow" | "Deny"; readonly Resource: string }>;
}

export interface AuthorizerResult {
  readonly principalId: string;
  readonly policyDocument: PolicyDocument;
  readonly context?: Record<string, string | number | boolean>;
}

/** Minimal Lambda context the handlers use (the local runtime supplies the same fields). */
export interface LambdaContextLike {
  readonly functionName: string;
  readonly awsRequestId: string;
  getRemainingTimeInMillis(): number;
}

export type WebSocketHandler = (event: WebSocketEvent, context?: LambdaContextLike) => Promise<WebSocketResult>;
export type AuthorizerHandler = (event: AuthorizerEvent, context?: LambdaContextLike) => Promise<AuthorizerResult>;
/** A factory as `aws.lambda.CallbackFunction`'s `callbackFactory` takes it: runs once per cold start. */
export type HandlerFactory = () => WebSocketHandler | AuthorizerHandler | SqsHandler;

/**
 * Lambda's SQS event and partial batch response (contract 3 of issue 17; Lambda Developer Guide,
 * "Using Lambda with Amazon SQS"). The `deliver` function consumes them; the local event source
 * mapping (local/eventSourceMapping.ts) produces them field for field.
 */
export interface SqsRecordAttributes {
  readonly ApproximateReceiveCount: string;
  /** Epoch milliseconds, as a string. */
  readonly SentTimestamp: string;
  readonly SenderId: string;
  readonly ApproximateFirstReceiveTimestamp: string;
  /** FIFO queues only. */
  readonly MessageGroupId?: string;
  readonly MessageDeduplicationId?: string;
  readonly SequenceNumber?: string;
  readonly AWSTraceHeader?: string;
  readonly DeadLetterQueueSourceArn?: string;
}

export interface SqsMessageAttribute {
  readonly dataType: string;
  readonly stringValue?: string;
  /** Base64. */
  readonly binaryValue?: string;
  readonly stringListValues: string[];
  readonly binaryListValues: string[];
}

export interface SqsRecord {
  readonly messageId: string;
  readonly receiptHandle: string;
  readonly body: string;
  readonly attributes: SqsRecordAttributes;
  readonly messageAttributes: Record<string, SqsMessageAttribute>;
  readonly md5OfBody: string;
  readonly md5OfMessageAttributes?: string;
  readonly eventSource: "aws:sqs";
  /** The queue's ARN. */
  readonly eventSourceARN: string;
  readonly awsRegion: string;
}

export interface SqsEvent {
  readonly Records: SqsRecord[];
}

/** With `ReportBatchItemFailures`, the records to retry: each `itemIdentifier` is a record's `messageId`. */
export interface SqsBatchResponse {
  readonly batchItemFailures: { readonly itemIdentifier: string }[];
}

/** The `deliver` function's handler (issue 17): the records it reports failed come back from the queue. */
export type SqsHandler = (event: SqsEvent, context?: LambdaContextLike) => Promise<SqsBatchResponse>;
