package descope_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

// projectAudienceWarning is the message New logs when tokens whose audience
// is the project ID are accepted.
const projectAudienceWarning = "descope: tokens whose audience is the Descope project ID are accepted; " +
	"such a token may have been issued to any app of the project, not only to this MCP server"

// challengeInvalidNoScope is the challenge of a refused token when no scope
// is required.
const challengeInvalidNoScope = `Bearer error="invalid_token", error_description="The access token is invalid, expired, or not issued for this server.", resource_metadata="` + metadataURL + `"`

// logRecorder is a slog.Handler that keeps every record it is handed.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Clone())
	return nil
}

func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// count returns how many records of level with message msg were logged.
func (l *logRecorder) count(level slog.Level, msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.records {
		if r.Level == level && r.Message == msg {
			n++
		}
	}
	return n
}

// attrs returns the attributes of the first record with message msg.
func (l *logRecorder) attrs(msg string) map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.records {
		if r.Message == msg {
			out := map[string]string{}
			r.Attrs(func(a slog.Attr) bool {
				out[a.Key] = a.Value.String()
				return true
			})
			return out
		}
	}
	return nil
}

// TestAudienceOverHTTP pins which "aud" values the endpoint accepts under
// each audience configuration, and that New warns, once, whenever the
// project ID is accepted.
func TestAudienceOverHTTP(t *testing.T) {
	const otherApp = "https://other-app.example.com/mcp"
	project := descopetest.DefaultProjectID
	type try struct {
		aud    []string
		status int
	}
	ok := func(aud ...string) try { return try{aud, 200} }
	refused := func(aud ...string) try { return try{aud, 401} }
	tests := []struct {
		name  string
		cfg   descope.Config
		tries []try
		warn  bool   // New warns that project-ID tokens are accepted
		via   string // the setting the warning names
	}{
		{
			name:  "default: resource URL only",
			tries: []try{ok(resourceURL), refused(project), refused(project, otherApp), refused(otherApp), ok(project, resourceURL)},
		},
		{
			name:  "AcceptProjectAudience",
			cfg:   descope.Config{AcceptProjectAudience: true},
			tries: []try{ok(resourceURL), ok(project), ok(project, otherApp), refused(otherApp)},
			warn:  true, via: "AcceptProjectAudience",
		},
		{
			name:  "project ID listed in Audience",
			cfg:   descope.Config{Audience: []string{resourceURL, project}},
			tries: []try{ok(resourceURL), ok(project), refused(otherApp)},
			warn:  true, via: "Audience",
		},
		{
			name:  "Audience lists only the project ID",
			cfg:   descope.Config{Audience: []string{" " + project + " "}},
			tries: []try{refused(resourceURL), ok(project), refused(otherApp)},
			warn:  true, via: "Audience",
		},
		{
			name:  "both forms of the opt-in warn once",
			cfg:   descope.Config{Audience: []string{resourceURL, project}, AcceptProjectAudience: true},
			tries: []try{ok(resourceURL), ok(project)},
			warn:  true, via: "Audience",
		},
		{
			name:  "Audience without the project ID",
			cfg:   descope.Config{Audience: []string{resourceURL, otherApp}},
			tries: []try{ok(resourceURL), ok(otherApp), refused(project)},
		},
		{
			name:  "AcceptProjectAudience adds to an explicit Audience",
			cfg:   descope.Config{Audience: []string{otherApp}, AcceptProjectAudience: true},
			tries: []try{refused(resourceURL), ok(otherApp), ok(project)},
			warn:  true, via: "AcceptProjectAudience",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logRecorder{}
			cfg := tc.cfg
			cfg.Logger = slog.New(logs)
			f := newFixture(t, cfg)

			wantWarnings := 0
			if tc.warn {
				wantWarnings = 1
			}
			assert.Equal(t, wantWarnings, logs.count(slog.LevelWarn, projectAudienceWarning), "warnings after New")
			if tc.warn {
				assert.Equal(t, map[string]string{"project": project, "setting": tc.via}, logs.attrs(projectAudienceWarning))
			}

			for _, tr := range tc.tries {
				resp, body := f.post(t, "Bearer "+f.ds.Mint(map[string]any{"aud": tr.aud}))
				assert.Equal(t, tr.status, resp.StatusCode, "aud %q", tr.aud)
				if tr.status == 401 {
					assert.Equal(t, challengeInvalidNoScope, resp.Header.Get("WWW-Authenticate"), "aud %q", tr.aud)
					assert.Equal(t, bodyInvalid, body, "aud %q", tr.aud)
				} else {
					assert.Equal(t, "", resp.Header.Get("WWW-Authenticate"), "aud %q", tr.aud)
					assert.Equal(t, descopetest.DefaultUserID+" ", body, "aud %q", tr.aud)
				}
			}
			assert.Equal(t, wantWarnings, logs.count(slog.LevelWarn, projectAudienceWarning), "the warning is logged at New only")
		})
	}
}

// TestConfigFromEnvAcceptProjectAudience pins how
// DESCOPE_ACCEPT_PROJECT_AUDIENCE is read: only a true value opts in.
func TestConfigFromEnvAcceptProjectAudience(t *testing.T) {
	tests := []struct {
		value string
		want  bool
	}{
		{"true", true},
		{"TRUE", true},
		{" 1 ", true},
		{"false", false},
		{"0", false},
		{"", false},
		{"yes", false},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			t.Setenv("DESCOPE_ACCEPT_PROJECT_AUDIENCE", tc.value)
			assert.Equal(t, tc.want, descope.ConfigFromEnv().AcceptProjectAudience)
		})
	}
}

// TestProjectAudienceFromEnvOverHTTP runs the opt-in end to end from the
// environment: unset, a project-ID token is refused; set, it is accepted
// and New has warned.
func TestProjectAudienceFromEnvOverHTTP(t *testing.T) {
	for _, tc := range []struct {
		env    string
		status int
		warns  int
	}{
		{"", 401, 0},
		{"true", 200, 1},
	} {
		t.Run("DESCOPE_ACCEPT_PROJECT_AUDIENCE="+tc.env, func(t *testing.T) {
			t.Setenv("DESCOPE_ACCEPT_PROJECT_AUDIENCE", tc.env)
			logs := &logRecorder{}
			cfg := descope.ConfigFromEnv()
			cfg.Logger = slog.New(logs)
			f := newFixture(t, cfg)
			resp, _ := f.post(t, "Bearer "+f.ds.Mint(map[string]any{"aud": []string{f.ds.ProjectID()}}))
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Equal(t, tc.warns, logs.count(slog.LevelWarn, projectAudienceWarning))
		})
	}
}

// TestDefaultAudienceRefusesProjectIDWithReason checks VerifyToken's
// refusal of a project-ID token under the default configuration.
func TestDefaultAudienceRefusesProjectIDWithReason(t *testing.T) {
	f := newFixture(t, descope.Config{})
	_, err := f.p.VerifyToken(context.Background(), f.ds.Mint(map[string]any{"aud": f.ds.ProjectID()}))
	requireReason(t, err, "audience")
}

// requireReason asserts err is an invalid-token refusal for reason.
func requireReason(t *testing.T, err error, reason string) {
	t.Helper()
	var te *auth.TokenError
	require.ErrorAs(t, err, &te)
	require.ErrorIs(t, err, auth.ErrInvalidToken)
	require.Equal(t, reason, te.Reason)
}
