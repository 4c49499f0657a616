package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// nodeDir holds the TypeScript client driver and its locked packages.
const nodeDir = "node"

var (
	npmOnce sync.Once
	npmErr  error
	nodeBin string
)

// nodeReady returns the node binary once the driver's packages are
// installed (npm ci, once per test binary). Without node or npm, or if the
// install fails, the test is skipped, or fails when CI=true.
func nodeReady(t *testing.T) string {
	t.Helper()
	npmOnce.Do(func() {
		var err error
		if nodeBin, err = exec.LookPath("node"); err != nil {
			npmErr = fmt.Errorf("node not found: %v", err)
			return
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			npmErr = fmt.Errorf("npm not found: %v", err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error")
		cmd.Dir = nodeDir
		cmd.Env = append(os.Environ(), "npm_config_update_notifier=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			npmErr = fmt.Errorf("npm ci in e2e/%s: %v\n%s", nodeDir, err, out)
		}
	})
	if npmErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("TypeScript client unavailable, and CI=true requires it: %v", npmErr)
		}
		t.Skipf("TypeScript client unavailable: %v", npmErr)
	}
	return nodeBin
}

// tsOptions are the driver's options (see node/client.mjs).
type tsOptions struct {
	Token          string   `json:"token,omitempty"`          // access token the client holds at the start
	Scope          string   `json:"scope,omitempty"`          // sign in first asking only for this scope
	Tools          []string `json:"tools,omitempty"`          // tools to call after connecting (default whoami)
	WaitMs         int      `json:"waitMs,omitempty"`         // then wait and call whoami again
	NoRefreshToken bool     `json:"noRefreshToken,omitempty"` // register without the refresh_token grant
	// ClientMetadataURL is a client ID metadata document's URL, the
	// client_id where the authorization server supports them.
	ClientMetadataURL string `json:"clientMetadataUrl,omitempty"`
}

// tsResult is what the driver prints.
type tsResult struct {
	OK              bool       `json:"ok"`
	Step            string     `json:"step"`
	Error           string     `json:"error"`
	Subs            []string   `json:"subs"`    // whoami's answers
	Calls           []tsCall   `json:"calls"`   // every tool result
	StepUps         int        `json:"stepUps"` // tool calls that needed a new authorization
	Tokens          []tsToken  `json:"tokens"`  // what the SDK saved, in order
	ProtocolVersion string     `json:"protocolVersion"`
	SessionID       string     `json:"sessionId"`
	Trace           []exchange `json:"trace"`
}

// tsCall is a tool result the driver got.
type tsCall struct {
	Name    string `json:"name"`
	Text    string `json:"text"`
	IsError bool   `json:"isError"`
}

// tsToken is a token response the SDK saved.
type tsToken struct {
	Scope        string `json:"scope"`
	RefreshToken bool   `json:"refreshToken"` // a refresh token came with it
	Token        string `json:"token"`        // fingerprint of the access token
}

// runTS runs the TypeScript SDK client driver against the env. Its failure
// reports carry the driver's own record of its exchanges and its stderr.
func (r *run) runTS(o tsOptions) tsResult {
	r.t.Helper()
	node := nodeReady(r.t)
	r.log = nil // the driver keeps its own record
	opts, _ := json.Marshal(o)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "client.mjs", r.env.mcpURL, string(opts))
	cmd.Dir = nodeDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()

	var res tsResult
	decodeErr := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &res)
	r.extra = func() string {
		var b strings.Builder
		b.WriteString("The TypeScript client's own record of its exchanges:")
		writeExchanges(&b, res.Trace)
		if s := strings.TrimSpace(stderr.String()); s != "" {
			b.WriteString("\nnode stderr:\n")
			b.WriteString(s)
		}
		return b.String()
	}
	if decodeErr != nil {
		r.failf("run the driver", "node %v; its output is not a result (%v):\n%s", runErr, decodeErr, stdout.String())
	}
	return res
}

// okTS checks that the driver got through and whoami returned the sub.
func (r *run) okTS(res tsResult, calls int) {
	r.t.Helper()
	r.okTSWith(res, calls, r.checkSub)
}

// okTSWith checks that the driver got through, made calls whoami calls,
// and that check accepts each answer.
func (r *run) okTSWith(res tsResult, calls int, check func(isError bool, text string) error) {
	r.t.Helper()
	if !res.OK {
		r.failf(res.Step, "%s", res.Error)
	}
	if len(res.Subs) != calls {
		r.failf("tools/call whoami", "the driver made %d call(s), want %d", len(res.Subs), calls)
	}
	for _, sub := range res.Subs {
		if err := check(false, sub); err != nil {
			r.failf("tools/call whoami", "%v", err)
		}
	}
}
