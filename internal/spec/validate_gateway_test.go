package spec

import "testing"

func TestGatewaySemantics(t *testing.T) {
	runDiagCases(t, []diagCase{
		{"authorizers", `name: t
secrets:
  k: {keys: [a]}
functions:
  fn: {run: x}
gateway:
  authorizers:
    a: {type: jwt}
    b: {type: jwt, issuer: i, jwks: "https://x/j", jwksFile: ./j.json}
    c: {type: apiKey}
    d: {type: function}
    e: {type: apiKey, keys: {secret: k}, identitySource: cookie.x}
`, []string{
			`t.yaml:8:5: gateway.authorizers.a: a jwt authorizer needs issuer`,
			`t.yaml:8:5: gateway.authorizers.a: a jwt authorizer needs jwks or jwksFile`,
			`t.yaml:9:62: gateway.authorizers.b.jwksFile: set jwks or jwksFile, not both`,
			`t.yaml:10:5: gateway.authorizers.c: an apiKey authorizer needs keys: {secret: NAME}`,
			`t.yaml:11:5: gateway.authorizers.d: a function authorizer needs function`,
			`t.yaml:12:58: gateway.authorizers.e.identitySource: identitySource "cookie.x": write header.NAME or query.NAME`,
		}},
		{"integrations", `name: t
services:
  s: {run: x}
gateway:
  routes:
    - {path: /a, integration: {type: service}}
    - {path: /b, integration: {type: function, url: "http://x"}}
    - {path: /c, integration: {type: http, url: "ftp://x"}}
    - {path: /d, integration: {type: mock, service: s, status: 700}}
`, []string{
			`t.yaml:6:18: gateway.routes[0].integration: a service integration needs service`,
			`t.yaml:7:18: gateway.routes[1].integration: a function integration needs function`,
			`t.yaml:7:53: gateway.routes[1].integration.url: a function integration does not use url`,
			`t.yaml:8:49: gateway.routes[2].integration.url: url "ftp://x" must start with http:// or https://`,
			`t.yaml:9:53: gateway.routes[3].integration.service: a mock integration does not use service`,
			`t.yaml:9:64: gateway.routes[3].integration.status: status 700 is not an HTTP status (100..599)`,
		}},
		{"route paths and duplicates", `name: t
gateway:
  routes:
    - {path: users, integration: {type: mock}}
    - {path: "/{proxy+}/x", integration: {type: mock}}
    - {path: "/a{b}", integration: {type: mock}}
    - {path: "/users/{id}", methods: [GET], integration: {type: mock}}
    - {path: "/users/{userId}", methods: [POST, GET], integration: {type: mock}}
    - {path: /any, integration: {type: mock}}
    - {path: /any, methods: [DELETE], integration: {type: mock}}
    - {path: "/files/{proxy+}", methods: [GET], integration: {type: mock}}
`, []string{
			`t.yaml:4:14: gateway.routes[0].path: route path "users" must start with /`,
			`t.yaml:5:14: gateway.routes[1].path: {proxy+} takes the rest of the path, so it must be the last segment of /{proxy+}/x`,
			`t.yaml:6:14: gateway.routes[2].path: segment "a{b}" of /a{b}: a parameter is a whole segment, {name} or {name+}`,
			`t.yaml:8:14: gateway.routes[4].path: GET /users/{userId} is already routed by gateway.routes[3]`,
			`t.yaml:10:14: gateway.routes[6].path: DELETE /any is already routed by gateway.routes[5]`,
		}},
		{"cache keys", `name: t
gateway:
  routes:
    - path: /users/{id}
      integration: {type: mock}
      cache: {ttl: 30s, keys: [path.id, path.ids, query.q, header.h, cookie.c, path]}
    - path: /all
      integration: {type: mock}
      cache: {ttl: 30s, keys: [path.id]}
`, []string{
			`t.yaml:6:41: gateway.routes[0].cache.keys[1]: cache key "path.ids": the route path /users/{id} has no parameter "ids" (did you mean "id"?)`,
			`t.yaml:6:70: gateway.routes[0].cache.keys[4]: cache key "cookie.c": write path.NAME, query.NAME or header.NAME`,
			`t.yaml:6:80: gateway.routes[0].cache.keys[5]: cache key "path": write path.NAME, query.NAME or header.NAME`,
			`t.yaml:9:32: gateway.routes[1].cache.keys[0]: cache key "path.id": the route path /all has no parameters`,
		}},
		{"cors, throttles and status codes", `name: t
gateway:
  stages:
    prod: {throttle: {rate: 0}}
  routes:
    - path: /a
      integration: {type: mock}
      cors: {allowOrigins: ["*"], allowCredentials: true}
      throttle: {rate: 10, burst: -1}
      response:
        statusCodes: [{pattern: x, status: 99}]
`, []string{
			`t.yaml:4:29: gateway.stages.prod.throttle.rate: rate must be more than 0 requests per second, not 0`,
			`t.yaml:8:53: gateway.routes[0].cors.allowCredentials: allowCredentials cannot go with allowOrigins "*": browsers refuse it; list the origins`,
			`t.yaml:9:35: gateway.routes[0].throttle.burst: burst must be at least 0, not -1`,
			`t.yaml:11:44: gateway.routes[0].response.statusCodes[0].status: status 99 is not an HTTP status (100..599)`,
		}},
	})
}
