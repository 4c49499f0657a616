package descope

// provider.go is the Provider: New builds it from a checked Config and
// starts its background work, Close stops it.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/internal/caller"
)

// VerifyToken checks a token's syntax itself (isCompactJWS, or the cache's
// exact match), so the middleware need not.
func init() { caller.ChecksTokenSyntax((*Provider)(nil)) }

// Provider verifies Descope access tokens for one MCP endpoint and serves
// its discovery documents. It implements auth.AuthProvider. Build it with
// New and stop it with Close.
type Provider struct {
	issuer   string      // the issuer the configuration names
	issuers  issuerForms // every issuer accepted in tokens
	resource auth.ProtectedResource

	maxTokenBytes int
	parser        *jwt.Parser
	keys          *keySet
	cache         *tokenCache // nil when disabled
	metadata      *metadataCache
	prm           *resourceMetadataHandler
	routes        []auth.Route

	stop context.CancelFunc
}

var _ auth.AuthProvider = (*Provider)(nil)

// New checks cfg and builds a Provider. It does no network I/O: signing keys
// load in the background, and until they have, the MCP endpoint answers 503
// rather than refusing good tokens.
func New(cfg Config) (*Provider, error) {
	c, err := normalize(cfg)
	if err != nil {
		return nil, err
	}
	if c.projectAudienceVia != "" {
		c.Logger.Warn("descope: tokens whose audience is the Descope project ID are accepted; "+
			"such a token may have been issued to any app of the project, not only to this MCP server",
			"project", c.projectID, "setting", c.projectAudienceVia)
	}
	life, stop := context.WithCancel(context.Background())
	p := &Provider{
		issuer:        c.issuer,
		issuers:       c.issuers,
		resource:      c.resource,
		maxTokenBytes: c.MaxTokenBytes,
		stop:          stop,
	}
	p.parser = jwt.NewParser(
		jwt.WithValidMethods(c.Algorithms),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(c.Leeway),
		jwt.WithAudience(c.Audience...),
		jwt.WithStrictDecoding(),
	)
	var onKeys func(map[string]bool)
	if !c.DisableTokenCache {
		p.cache = newTokenCache(c.TokenCacheSize, c.TokenCacheMaxAge)
		onKeys = p.cache.keepOnly
	}
	p.keys = newKeySet(life, keySetConfig{
		onLoad:       onKeys,
		url:          c.jwksURL,
		client:       c.HTTPClient,
		timeout:      c.FetchTimeout,
		refreshEvery: c.KeyRefreshInterval,
		minGap:       c.MinKeyRefreshGap,
		log:          c.Logger,
	})
	p.metadata = newMetadataCache(life, metadataConfig{
		client:  c.HTTPClient,
		url:     c.metadataURL,
		timeout: c.FetchTimeout,
		ttl:     c.MetadataTTL,
		log:     c.Logger,
		forms:   &p.issuers,
		onDoc:   func(issuer string) { p.followDiscovery(issuer, c.Logger) },
	})
	p.routes = p.buildRoutes(c)
	p.keys.startBackground()
	p.metadata.startBackground()
	return p, nil
}

// Close stops the provider's background work. It is safe to call more than
// once.
func (p *Provider) Close() error {
	p.stop()
	p.keys.waitStopped()
	p.metadata.waitStopped()
	return nil
}

// ReloadKeys fetches the project's signing keys from Descope now and
// installs them, so that a key removed from the project's key set stops
// verifying tokens at once instead of at the next background refresh (see
// Config.KeyRefreshInterval). Call it after removing or revoking a key in
// Descope. Verified tokens cached from a key that is gone are dropped in the
// same step, so once ReloadKeys returns nil, no request whose check starts
// afterwards is accepted on the strength of a key missing from the set it
// fetched.
//
// ReloadKeys returns only after a fetch that started after the call has
// ended: a fetch already in flight may carry the key set from before the
// change, so ReloadKeys waits for it to end and then for one more, shared
// by every ReloadKeys call that arrived meanwhile. Each fetch is bounded by
// Config.FetchTimeout, so a call waits at most twice that.
//
// It returns an error if the fetch fails (Descope unreachable, an error
// status, a key set without a usable key), in which case the keys loaded
// before stay in use and KeyStatus reports Failing; if ctx ends first
// (ctx's error, wrapped; the fetch goes on and is installed if it
// succeeds); or if the provider is closed. The error is for the operator:
// it may name the key set's URL.
func (p *Provider) ReloadKeys(ctx context.Context) error {
	if p.keys.life.Err() != nil {
		return errors.New("descope: signing keys not reloaded: the provider is closed")
	}
	if err := p.keys.fetches.fresh(ctx); err != nil {
		return fmt.Errorf("descope: signing keys not reloaded: %w", err)
	}
	return nil
}

// ProtectedResource describes the protected MCP endpoint.
func (p *Provider) ProtectedResource() auth.ProtectedResource {
	r := p.resource
	r.RequiredScopes = slices.Clone(r.RequiredScopes)
	r.DPoP.Algorithms = slices.Clone(r.DPoP.Algorithms)
	r.DPoP.NonceSecret = slices.Clone(r.DPoP.NonceSecret)
	return r
}

// Routes returns the discovery documents to serve beside the MCP endpoint:
// the protected-resource metadata (RFC 9728) at its path-inserted and root
// well-known paths, and Descope's authorization-server metadata forwarded
// at /.well-known/oauth-authorization-server and
// /.well-known/openid-configuration.
func (p *Provider) Routes() []auth.Route {
	return slices.Clone(p.routes)
}

// Issuer is the issuer the configuration names (WellKnownURL without its
// well-known suffix, or {base}/v1/apps/{ProjectID}).
func (p *Provider) Issuer() string { return p.issuer }

// AuthorizationServer is the issuer the protected-resource metadata names
// now: Issuer until Descope's discovery document has been fetched, then the
// issuer that document declares, which may be another issuer form of the
// same project (Descope serves an MCP Server's discovery under the agentic
// path but may declare the project-level issuer, and strict clients check
// that the two agree). A document declaring a foreign issuer is ignored.
func (p *Provider) AuthorizationServer() string { return p.prm.current.Load().issuer }

// followDiscovery names issuer, declared by a good discovery document, as
// the authorization server of the protected-resource metadata.
func (p *Provider) followDiscovery(issuer string, log *slog.Logger) {
	cur := p.prm.current.Load()
	if cur.discovered && cur.issuer == issuer {
		return
	}
	if issuer != cur.issuer && issuer != p.issuer {
		log.Info("descope: the discovery document declares another issuer of the project; "+
			"the protected-resource metadata names it", "configured", p.issuer, "declared", issuer)
	}
	p.prm.publish(issuer, true)
}
