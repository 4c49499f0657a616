package descope

// TokenCacheLen exposes the cache size to the external tests.
func TokenCacheLen(p *Provider) int {
	if p.cache == nil {
		return 0
	}
	return p.cache.len()
}

// OnReloadWaiting makes f run each time a ReloadKeys call has settled on
// the fetch it waits for. Set it before the calls it is meant to see.
func OnReloadWaiting(p *Provider, f func()) { p.keys.fetches.onWait = f }
