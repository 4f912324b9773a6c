package spec

// Gateway is the API gateway: stages, routes, authorizers and models.
type Gateway struct {
	// Name of the API.
	Name string `yaml:"name"`
	// Version of the API, shown in OpenAPI.
	Version string `yaml:"version"`
	// Stages are path prefixes with their own variables, cache and throttle.
	Stages map[string]*Stage `yaml:"stages" names:"stage"`
	// Authorizers check credentials: jwt, apiKey or function.
	Authorizers map[string]*Authorizer `yaml:"authorizers" names:"dns"`
	// Models are JSON Schemas that request bodies are validated against.
	Models map[string]*Model `yaml:"models" names:"identifier"`
	// Routes are the API's resources and methods.
	Routes []*GatewayRoute `yaml:"routes"`
}

// Stage is a deployment stage of the API, served under /NAME ($default: none).
type Stage struct {
	// Variables are ${stage.NAME} in integrations.
	Variables map[string]string `yaml:"variables" names:"identifier"`
	// Cache of GET and HEAD answers.
	Cache *StageCache `yaml:"cache"`
	// Throttle of the whole stage.
	Throttle *Throttle `yaml:"throttle"`
}

// StageCache caches answers of a stage.
type StageCache struct {
	// Enabled turns the cache on.
	Enabled bool `yaml:"enabled"`
	// TTL of an entry. Default 300s.
	TTL Duration `yaml:"ttl"`
	// Size bounds the cache; least recently used entries go first. Default 64Mi.
	Size Quantity `yaml:"size"`
	// Encrypted keeps entries encrypted in memory.
	Encrypted bool `yaml:"encrypted"`
}

// Throttle is a token bucket.
type Throttle struct {
	// Rate in requests per second.
	Rate float64 `yaml:"rate" required:"true" xmin:"0"`
	// Burst is the bucket size. Default: the rate, rounded up.
	Burst int `yaml:"burst" min:"0"`
}

// Authorizer checks a request's credentials.
type Authorizer struct {
	// Type of the authorizer.
	Type string `yaml:"type" required:"true" enum:"jwt|apiKey|function"`
	// IdentitySource is where the credential is: header.NAME or query.NAME.
	IdentitySource string `yaml:"identitySource"`
	// Issuer required in JWTs.
	Issuer string `yaml:"issuer"`
	// Audience: a JWT must name one of these.
	Audience []string `yaml:"audience"`
	// JWKS is the URL of the key set.
	JWKS string `yaml:"jwks"`
	// JWKSFile is a key-set file, relative to the spec.
	JWKSFile string `yaml:"jwksFile"`
	// Algorithms allowed. Default RS256 and ES256; never none.
	Algorithms []string `yaml:"algorithms" enum:"RS256|RS384|RS512|PS256|PS384|PS512|ES256|ES384|ES512|EdDSA|HS256|HS384|HS512"`
	// Keys is the secret holding the API keys, for apiKey.
	Keys *SecretRef `yaml:"keys"`
	// Function answering {"allow": bool, "context": {...}}, for function.
	Function string `yaml:"function"`
	// ResultTTL caches a function authorizer's answer per identity. Default 300s.
	ResultTTL Duration `yaml:"resultTtl"`
}

// Model is a JSON Schema for request bodies.
type Model struct {
	// ContentType of the body. Default application/json.
	ContentType string `yaml:"contentType"`
	// Schema is a JSON Schema.
	Schema any `yaml:"schema" required:"true"`
}

// GatewayRoute is a path template with its methods and integration.
type GatewayRoute struct {
	// Path is a template with {param} and a greedy {proxy+}.
	Path string `yaml:"path" required:"true" pattern:"^/"`
	// Methods answered; others get 405. Default all.
	Methods []string `yaml:"methods" enum:"GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|ANY"`
	// Authorizer names an authorizer; none: public.
	Authorizer string `yaml:"authorizer"`
	// CORS answers preflights and adds CORS headers.
	CORS *CORS `yaml:"cors"`
	// Integration is where the request goes.
	Integration Integration `yaml:"integration" required:"true"`
	// Cache of this route's answers.
	Cache *RouteCache `yaml:"cache"`
	// Throttle of this route.
	Throttle *Throttle `yaml:"throttle"`
	// Request validation and transform.
	Request *GatewayRequest `yaml:"request"`
	// Response transform, headers and status mapping.
	Response *GatewayResponse `yaml:"response"`
}

// CORS is the cross-origin policy of a route, as the Fetch standard defines it.
type CORS struct {
	// AllowOrigins; "*" allows any (not with credentials).
	AllowOrigins []string `yaml:"allowOrigins"`
	// AllowMethods in preflights.
	AllowMethods []string `yaml:"allowMethods"`
	// AllowHeaders in preflights.
	AllowHeaders []string `yaml:"allowHeaders"`
	// ExposeHeaders to scripts.
	ExposeHeaders []string `yaml:"exposeHeaders"`
	// MaxAge of a preflight answer, in seconds.
	MaxAge int `yaml:"maxAge"`
	// AllowCredentials allows cookies and authorization.
	AllowCredentials bool `yaml:"allowCredentials"`
}

// Integration is a route's backend.
type Integration struct {
	// Type of the backend.
	Type string `yaml:"type" required:"true" enum:"service|function|http|mock"`
	// Service name (through the mesh); may be ${stage.NAME}.
	Service string `yaml:"service"`
	// Path on the backend; {param} from the route template.
	Path string `yaml:"path"`
	// Function name.
	Function string `yaml:"function"`
	// URL for http integrations.
	URL string `yaml:"url"`
	// Timeout of the backend call. Default 29s.
	Timeout Duration `yaml:"timeout"`
	// Status answered by a mock. Default 200.
	Status int `yaml:"status"`
	// Body answered by a mock.
	Body string `yaml:"body"`
	// Headers answered by a mock.
	Headers map[string]string `yaml:"headers"`
}

// RouteCache caches a route's answers.
type RouteCache struct {
	// TTL of an entry.
	TTL Duration `yaml:"ttl" required:"true"`
	// Keys: path.NAME, query.NAME, header.NAME.
	Keys []string `yaml:"keys"`
}

// GatewayRequest validates and transforms requests.
type GatewayRequest struct {
	// Model validates the body.
	Model string `yaml:"model"`
	// Required headers and query parameters.
	Required RequiredParams `yaml:"required"`
	// Transform is a jq program over the body, with $request.
	Transform string `yaml:"transform"`
	// MaxBodySize bounds the body. Default 1Mi.
	MaxBodySize Quantity `yaml:"maxBodySize"`
}

// RequiredParams lists headers and query parameters a request must have.
type RequiredParams struct {
	// Headers required.
	Headers []string `yaml:"headers"`
	// Query parameters required.
	Query []string `yaml:"query"`
}

// GatewayResponse transforms answers.
type GatewayResponse struct {
	// Transform is a jq program over the body.
	Transform string `yaml:"transform"`
	// Headers added.
	Headers map[string]string `yaml:"headers"`
	// StatusCodes map a backend error message to a status, first match wins.
	StatusCodes []*StatusCode `yaml:"statusCodes"`
}

// StatusCode maps backend errors matching Pattern to Status.
type StatusCode struct {
	// Pattern is a regular expression over the backend's error message.
	Pattern string `yaml:"pattern" required:"true"`
	// Status answered.
	Status int `yaml:"status" required:"true" min:"100" max:"599"`
}
