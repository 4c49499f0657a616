package descope

// issuer.go decides which "iss" values belong to the configured project:
// the issuer forms Descope mints tokens under, on the configured origin and
// the extra origins of Config.IssuerOrigins, and nothing else.

import "strings"

// issuerForms matches the issuers of one project. Every form is compared
// as a whole string: an origin spelled exactly as configured, then
// exactly one of
//
//	/v1/apps/agentic/{project}/{mcpServer}  (only the configured MCP Server)
//	/v1/apps/{project}                      (project-level)
//	/v1/apps/{project}/{tenant}             (tenant-scoped: cross-app access,
//	                                         enterprise-managed authorization)
//
// so another project, another MCP Server, a deeper path, a trailing slash,
// another case, a port spelled out, percent-encoding and dot segments all
// fail to match. The tenant segment must be a well-formed ID (validID), and
// one of the allowed tenants when a list is configured.
type issuerForms struct {
	origins   []string // the configured origin first
	projectID string
	serverID  string          // the MCP Server ID; "" for a project-level configuration
	tenants   map[string]bool // nil: any well-formed tenant ID
}

// match reports whether iss is an issuer of the project, and the tenant it
// names when it is tenant-scoped. It runs once per token verified, not per
// cached request: a few prefix comparisons per configured origin and no
// allocation (BenchmarkVerify/cold includes it).
func (f *issuerForms) match(iss string) (tenant string, ok bool) {
	for _, o := range f.origins {
		rest, found := strings.CutPrefix(iss, o)
		if !found {
			continue
		}
		rest, found = strings.CutPrefix(rest, "/v1/apps/")
		if !found {
			continue
		}
		if f.serverID != "" && rest == "agentic/"+f.projectID+"/"+f.serverID {
			return "", true
		}
		rest, found = strings.CutPrefix(rest, f.projectID)
		switch {
		case !found:
			continue
		case rest == "":
			return "", true
		case rest[0] != '/':
			continue
		}
		t := rest[1:]
		if validID(t) && (f.tenants == nil || f.tenants[t]) {
			return t, true
		}
	}
	return "", false
}

// advertisable reports whether iss may be named as this resource's
// authorization server: a form of the project that has a discovery
// document of its own (agentic or project-level), not a tenant-scoped one.
func (f *issuerForms) advertisable(iss string) bool {
	t, ok := f.match(iss)
	return ok && t == ""
}
