package descope

// TokenCacheLen exposes the cache size to the external tests.
func TokenCacheLen(p *Provider) int {
	if p.cache == nil {
		return 0
	}
	return p.cache.len()
}
