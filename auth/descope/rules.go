package descope

import (
	"slices"

	"github.com/mcp-go-contrib/descope/auth"
)

// HasRoles reports whether the caller holds every role project-wide.
func (c *Claims) HasRoles(roles ...string) bool {
	return c != nil && containsAll(c.Roles, roles)
}

// HasPermissions reports whether the caller holds every permission
// project-wide.
func (c *Claims) HasPermissions(permissions ...string) bool {
	return c != nil && containsAll(c.Permissions, permissions)
}

// HasTenantRoles reports whether the caller holds every role in tenant; an
// empty tenant means the caller's current tenant ("dct"). As in Descope's
// SDKs, a token that names tenant as its current tenant but carries no
// "tenants" claim is judged by its project-wide roles.
func (c *Claims) HasTenantRoles(tenant string, roles ...string) bool {
	held, ok := c.tenantItems(tenant, func(t Tenant) []string { return t.Roles }, func() []string { return c.Roles })
	return ok && containsAll(held, roles)
}

// HasTenantPermissions is HasTenantRoles for permissions.
func (c *Claims) HasTenantPermissions(tenant string, permissions ...string) bool {
	held, ok := c.tenantItems(tenant, func(t Tenant) []string { return t.Permissions }, func() []string { return c.Permissions })
	return ok && containsAll(held, permissions)
}

// tenantItems returns the roles or permissions the caller has in tenant,
// and false when the caller does not belong to it.
func (c *Claims) tenantItems(tenant string, inTenant func(Tenant) []string, topLevel func() []string) ([]string, bool) {
	if c == nil {
		return nil, false
	}
	if tenant == "" {
		tenant = c.CurrentTenant
	}
	if tenant == "" {
		return nil, false
	}
	if t, ok := c.Tenants[tenant]; ok {
		return inTenant(t), true
	}
	if c.Tenants == nil && c.CurrentTenant == tenant {
		return topLevel(), true
	}
	return nil, false
}

func containsAll(held, wanted []string) bool {
	for _, w := range wanted {
		if !slices.Contains(held, w) {
			return false
		}
	}
	return true
}

// rule adapts a check of Descope claims to an auth.Requirement; callers
// whose claims are not Descope's fail it.
func rule(check func(*Claims) bool) auth.Requirement {
	return auth.RequireRule(func(c *auth.Claims) bool {
		d, ok := c.Extra.(*Claims)
		return ok && d != nil && check(d)
	})
}

// RequireRoles asks for every role, project-wide.
func RequireRoles(roles ...string) auth.Requirement {
	return rule(func(c *Claims) bool { return c.HasRoles(roles...) })
}

// RequirePermissions asks for every permission, project-wide.
func RequirePermissions(permissions ...string) auth.Requirement {
	return rule(func(c *Claims) bool { return c.HasPermissions(permissions...) })
}

// RequireTenantRoles asks for every role in tenant; an empty tenant means
// the caller's current tenant ("dct").
func RequireTenantRoles(tenant string, roles ...string) auth.Requirement {
	return rule(func(c *Claims) bool { return c.HasTenantRoles(tenant, roles...) })
}

// RequireTenantPermissions asks for every permission in tenant; an empty
// tenant means the caller's current tenant ("dct").
func RequireTenantPermissions(tenant string, permissions ...string) auth.Requirement {
	return rule(func(c *Claims) bool { return c.HasTenantPermissions(tenant, permissions...) })
}
