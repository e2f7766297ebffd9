import * as assert from "node:assert/strict";
import type { PolicyDocument } from "../../handlers/events";
import { ROUTE_SELECTION_EXPRESSION, ROUTE_FUNCTIONS } from "../../handlers/routes";
import {
  apiIdFrom,
  arnMatches,
  authorizerContext,
  clfTime,
  gatewayId,
  headerMaps,
  policyAllows,
  queryMaps,
  routeFor,
  selectRouteValue,
} from "../../local/apiGateway";
import { parseEmf } from "../../local/functions";

const ALL_KEYS = new Set(ROUTE_FUNCTIONS.map((f) => f.routeKey!));
const NO_DEFAULT = new Set([...ALL_KEYS].filter((k) => k !== "$default"));

describe("local API Gateway rules", () => {
  describe("route selection on $request.body.type", () => {
    it("sends a message to the route whose key equals its type", () => {
      assert.equal(routeFor(ROUTE_SELECTION_EXPRESSION, '{"type":"chat","message":"hi"}', ALL_KEYS), "chat");
    });

    it("sends an unknown type, a missing type and non-JSON to $default", () => {
      assert.equal(routeFor(ROUTE_SELECTION_EXPRESSION, '{"type":"dance"}', ALL_KEYS), "$default");
      assert.equal(routeFor(ROUTE_SELECTION_EXPRESSION, '{"message":"x"}', ALL_KEYS), "$default");
      assert.equal(routeFor(ROUTE_SELECTION_EXPRESSION, "hello", ALL_KEYS), "$default");
      assert.equal(routeFor(ROUTE_SELECTION_EXPRESSION, '["chat"]', ALL_KEYS), "$default");
    });

    it("never selects $connect or $disconnect from a message", () => {
      assert.equal(routeFor(ROUTE_SELECTION_EXPRESSION, '{"type":"$connect"}', ALL_KEYS), "$default");
      assert.equal(routeFor(ROUTE_SELECTION_EXPRESSION, '{"type":"$disconnect"}', ALL_KEYS), "$default");
    });

    it("returns no route (the Forbidden frame) without $default", () => {
      assert.equal(routeFor(ROUTE_SELECTION_EXPRESSION, '{"type":"dance"}', NO_DEFAULT), undefined);
      assert.equal(routeFor(ROUTE_SELECTION_EXPRESSION, '{"type":"ping"}', NO_DEFAULT), "ping");
    });

    it("follows nested paths and stringifies numbers", () => {
      assert.equal(selectRouteValue("$request.body.action.name", '{"action":{"name":"go"}}'), "go");
      assert.equal(selectRouteValue("$request.body.type", '{"type":7}'), "7");
      assert.equal(selectRouteValue("$request.body.type", '{"type":{"a":1}}'), undefined);
      assert.throws(() => selectRouteValue("$request.header.x", "{}"), /unsupported/);
    });
  });

  describe("identifiers and time", () => {
    it("makes ids in the service's format: 16 URL-safe base64 characters ending in '='", () => {
      const ids = new Set(Array.from({ length: 200 }, () => gatewayId()));
      assert.equal(ids.size, 200);
      for (const id of ids) assert.match(id, /^[A-Za-z0-9_-]{15}=$/);
    });

    it("makes 10-character lowercase API ids, stable for a seed", () => {
      assert.match(apiIdFrom(), /^[a-z0-9]{10}$/);
      assert.equal(apiIdFrom("local:3001"), apiIdFrom("local:3001"));
      assert.notEqual(apiIdFrom("local:3001"), apiIdFrom("local:3002"));
    });

    it("writes requestTime in Common Log Format, UTC", () => {
      assert.equal(clfTime(Date.UTC(2026, 10, 5, 9, 3, 7)), "05/Nov/2026:09:03:07 +0000");
    });
  });

  describe("authorizer policy", () => {
    const arn = "arn:aws:execute-api:us-east-1:000000000000:abc123defg/local/$connect";
    const policy = (effect: "Allow" | "Deny", resource: string): PolicyDocument => ({
      Version: "2012-10-17",
      Statement: [{ Action: "execute-api:Invoke", Effect: effect, Resource: resource }],
    });

    it("allows an Allow on the exact method ARN or a wildcard", () => {
      assert.ok(policyAllows(policy("Allow", arn), arn));
      assert.ok(policyAllows(policy("Allow", "arn:aws:execute-api:us-east-1:000000000000:abc123defg/*"), arn));
    });

    it("refuses a Deny, an Allow on another API and a missing policy", () => {
      assert.ok(!policyAllows(policy("Deny", arn), arn));
      assert.ok(!policyAllows(policy("Allow", "arn:aws:execute-api:us-east-1:000000000000:other/*"), arn));
      assert.ok(!policyAllows(undefined, arn));
    });

    it("lets an explicit Deny win over an Allow", () => {
      const both: PolicyDocument = {
        Version: "2012-10-17",
        Statement: [...policy("Allow", "*").Statement, ...policy("Deny", arn).Statement],
      };
      assert.ok(!policyAllows(both, arn));
    });

    it("matches ARN wildcards literally otherwise", () => {
      assert.ok(arnMatches("a.b/*", "a.b/c"));
      assert.ok(!arnMatches("a.b/*", "axb/c"));
    });

    it("passes on context values with principalId and integrationLatency", () => {
      const ctx = authorizerContext(
        { principalId: "u1", policyDocument: policy("Allow", arn), context: { userId: "u1", username: "Ann", admin: false } },
        12,
      );
      assert.deepEqual(ctx, { userId: "u1", username: "Ann", admin: false, principalId: "u1", integrationLatency: 12 });
    });
  });

  describe("event maps", () => {
    it("keeps header casing and repeated headers", () => {
      const { headers, multiValueHeaders } = headerMaps(["Host", "h:1", "X-A", "1", "X-A", "2"]);
      assert.deepEqual(headers, { Host: "h:1", "X-A": "2" });
      assert.deepEqual(multiValueHeaders, { Host: ["h:1"], "X-A": ["1", "2"] });
    });

    it("omits query maps when there is no query string", () => {
      assert.equal(queryMaps(new URLSearchParams("")), undefined);
      assert.deepEqual(queryMaps(new URLSearchParams("a=1&a=2&b=x")), {
        queryStringParameters: { a: "2", b: "x" },
        multiValueQueryStringParameters: { a: ["1", "2"], b: ["x"] },
      });
    });
  });

  describe("EMF parsing", () => {
    it("reads metric values named by the directives, with dimensions and request id", () => {
      const r = parseEmf("chat", {
        _aws: {
          Timestamp: 1,
          CloudWatchMetrics: [
            { Namespace: "ChatApi", Dimensions: [["Stage", "Function"]], Metrics: [{ Name: "Deliveries" }, { Name: "X" }] },
          ],
        },
        Stage: "local",
        Function: "chat",
        requestId: "r1",
        Deliveries: 3,
        X: [1, 2],
        NotAMetric: 9,
      });
      assert.deepEqual(r, {
        function: "chat",
        requestId: "r1",
        namespace: "ChatApi",
        dimensions: { Stage: "local", Function: "chat" },
        values: { Deliveries: 3, X: 3 },
      });
    });

    it("ignores a structured log line", () => {
      assert.equal(parseEmf("chat", { level: "info", msg: "hi" }), undefined);
    });
  });
});
