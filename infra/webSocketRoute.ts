/**
 * One route of the WebSocket API, as SST's `ApiGatewayWebSocketRoute` and CDK's `WebSocketRoute`:
 * the permission letting API Gateway invoke the route's function, the AWS_PROXY integration, the
 * route and, on a two-way route, its `$default` route response.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

/** What API Gateway invokes: a function, or its alias when `qualifier` is set (ChatFunction has this shape). */
export interface InvokeTarget {
  /** The function's name. */
  readonly functionName: pulumi.Input<string>;
  /** The alias API Gateway invokes, which the permission is scoped to (default none: the function). */
  readonly qualifier?: pulumi.Input<string>;
  /** The integration URI of the function or alias. */
  readonly invokeArn: pulumi.Input<string>;
}

/** Lets API Gateway invoke `target` from `sourceArn` (an execute-api ARN pattern) and from nowhere else. */
export function invokePermission(
  name: string,
  target: InvokeTarget,
  sourceArn: pulumi.Input<string>,
  opts: pulumi.CustomResourceOptions,
): aws.lambda.Permission {
  return new aws.lambda.Permission(
    name,
    {
      action: "lambda:InvokeFunction",
      function: target.functionName,
      qualifier: target.qualifier,
      principal: "apigateway.amazonaws.com",
      sourceArn,
    },
    opts,
  );
}

export interface WebSocketRouteArgs {
  /** The WebSocket API's id. */
  readonly apiId: pulumi.Input<string>;
  /** The API's execution ARN (`arn:{partition}:execute-api:{region}:{account}:{apiId}`). */
  readonly executionArn: pulumi.Input<string>;
  /** Stage name: API Gateway may invoke the target from `{executionArn}/{stage}/{routeKey}` only. */
  readonly stage: string;
  /** The route key (`$connect`, `$default`, `join`, ...). */
  readonly routeKey: string;
  /** The function (or alias) the route invokes. */
  readonly target: InvokeTarget;
  /** Description of the integration (default none). */
  readonly description?: string;
  /** The REQUEST authorizer that guards the route (`CUSTOM`; default none: `NONE`). */
  readonly authorizerId?: pulumi.Input<string>;
  /** Return the integration's body to the caller through the `$default` route response (default false). */
  readonly twoWay?: boolean;
}

export class WebSocketRoute extends pulumi.ComponentResource {
  public readonly routeKey: string;
  /** The permission, created before the integration that points at its target. */
  public readonly permission: aws.lambda.Permission;
  public readonly integration: aws.apigatewayv2.Integration;
  public readonly route: aws.apigatewayv2.Route;
  /** The `$default` route response of a two-way route, else undefined. */
  public readonly routeResponse: aws.apigatewayv2.RouteResponse | undefined;

  /**
   * `opts.parent` is the API. Stacks deployed before this component existed hold the route's
   * resources as the API's own children, under the same names: each child is aliased to that parent,
   * so `pulumi up` moves them in state and replaces nothing (tests/infra/urns.test.ts).
   */
  constructor(name: string, args: WebSocketRouteArgs, opts?: pulumi.ComponentResourceOptions) {
    super("websocket-chat:infra:WebSocketRoute", name, {}, opts);
    const child: pulumi.CustomResourceOptions = { parent: this, aliases: opts?.parent ? [{ parent: opts.parent }] : [] };

    const permission = createPermission();
    const integration = createIntegration();
    const route = createRoute();
    const routeResponse = createRouteResponse();

    this.routeKey = args.routeKey;
    this.permission = permission;
    this.integration = integration;
    this.route = route;
    this.routeResponse = routeResponse;
    this.registerOutputs({ routeId: route.id, integrationId: integration.id });

    function createPermission() {
      // This stage and this route only: {executionArn}/{stage}/{routeKey}.
      return invokePermission(
        `${name}-invoke`,
        args.target,
        pulumi.interpolate`${args.executionArn}/${args.stage}/${args.routeKey}`,
        child,
      );
    }

    function createIntegration() {
      return new aws.apigatewayv2.Integration(
        `${name}-integration`,
        {
          apiId: args.apiId,
          integrationType: "AWS_PROXY",
          integrationMethod: "POST",
          integrationUri: args.target.invokeArn,
          description: args.description,
        },
        // Traffic must never reach the target before API Gateway may invoke it (infra/websocketApi.ts).
        { ...child, dependsOn: [permission] },
      );
    }

    function createRoute() {
      return new aws.apigatewayv2.Route(
        `${name}-route`,
        {
          apiId: args.apiId,
          routeKey: args.routeKey,
          target: pulumi.interpolate`integrations/${integration.id}`,
          authorizationType: args.authorizerId !== undefined ? "CUSTOM" : "NONE",
          authorizerId: args.authorizerId,
          // Two-way: API Gateway returns the integration's body to the caller through the $default route response.
          routeResponseSelectionExpression: args.twoWay ? "$default" : undefined,
        },
        child,
      );
    }

    function createRouteResponse() {
      if (!args.twoWay) return undefined;
      return new aws.apigatewayv2.RouteResponse(
        `${name}-response`,
        { apiId: args.apiId, routeId: route.id, routeResponseKey: "$default" },
        child,
      );
    }
  }
}
