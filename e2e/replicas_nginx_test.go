package e2e

// This file runs nginx in front of the example's replicas: a config of the
// test's own (round-robin upstreams on loopback, HTTP/1.1 with keep-alive to
// them, no response buffering so that SSE streams flow, long read timeouts),
// nginx in the foreground as the test's user with every path in a scratch
// directory, and its access log read back as JSON lines that say which
// replica answered each request.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// nginxBinary returns the nginx binary. Without one the test is skipped
// with a message, or fails when CI=true.
func nginxBinary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("nginx unavailable, and CI=true requires it: %v", err)
		}
		t.Skipf("nginx not found (install the Debian package nginx, or put nginx in PATH): %v", err)
	}
	return bin
}

// nginxConfig is the whole configuration nginx runs with.
var nginxConfig = template.Must(template.New("nginx.conf").Parse(`# Written by the e2e replica tests.
{{if .User}}user {{.User}};
{{end}}worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;

events {
    worker_connections 1024;
}

http {
    client_body_temp_path {{.Dir}}/client_body;
    proxy_temp_path {{.Dir}}/proxy;
    fastcgi_temp_path {{.Dir}}/fastcgi;
    uwsgi_temp_path {{.Dir}}/uwsgi;
    scgi_temp_path {{.Dir}}/scgi;

    # MCP messages are small; kept in memory, a body is in the log.
    client_body_buffer_size 64k;
    log_format replicas escape=json '{"upstream":"$upstream_addr","upstream_status":"$upstream_status",'
        '"status":$status,"method":"$request_method","uri":"$request_uri",'
        '"session":"$http_mcp_session_id","new_session":"$sent_http_mcp_session_id",'
        '"protocol":"$http_mcp_protocol_version","body":"$request_body"}';
    access_log {{.Dir}}/access.log replicas;

    upstream replicas {
        # Round-robin, the default. A replica that refuses a connection is
        # left out for fail_timeout.
{{range .Upstreams}}        server {{.}} max_fails=1 fail_timeout=30s;
{{end}}        keepalive 32;
    }

    server {
        listen {{.Listen}};

        location / {
            proxy_pass http://replicas;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            # SSE: pass events on as they come, and keep quiet streams open.
            proxy_buffering off;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            # A replica that refuses the connection (it is down) is skipped
            # for the next one. A POST a replica may have received is not
            # sent again (no non_idempotent): a tool call must not run twice.
            proxy_next_upstream error timeout;
            add_header X-Upstream $upstream_addr always;
        }
    }
}
`))

// nginxProxy is nginx running in front of replicas.
type nginxProxy struct {
	URL  string // http://127.0.0.1:PORT
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	out  bytes.Buffer // nginx's stderr
}

// startNginx starts nginx on listen (host:port) in front of upstreams and
// returns once it accepts connections. It is stopped when the test ends.
func startNginx(t testing.TB, listen string, upstreams []string) *nginxProxy {
	t.Helper()
	bin := nginxBinary(t)
	dir := t.TempDir()
	data := struct {
		Dir, Listen, User string
		Upstreams         []string
	}{Dir: dir, Listen: listen, Upstreams: upstreams}
	if os.Geteuid() == 0 {
		// As root, nginx would hand its workers to nobody, who cannot
		// write into the scratch directory: keep them as the test's user.
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			t.Fatal(err)
		}
		data.User = u.Username + " " + g.Name
	}
	var conf bytes.Buffer
	if err := nginxConfig.Execute(&conf, data); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	n := &nginxProxy{URL: "http://" + listen, dir: dir, done: make(chan struct{})}
	// -e: nginx opens its error log before it reads the config, so the
	// compiled-in one (not writable by a user) must be replaced up front.
	n.cmd = exec.Command(bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	n.cmd.Stdout = &nginxOutputWriter{mu: &n.mu, w: &n.out}
	n.cmd.Stderr = n.cmd.Stdout
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	t.Cleanup(n.stop)

	// nginx says nothing when it is ready; it is once it accepts.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var exited bool
	var dialErr error
	pollUntil(ctx, func() bool {
		select {
		case <-n.done:
			exited = true
			return true
		default:
		}
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if dialErr = err; err == nil {
			c.Close()
		}
		return err == nil
	})
	switch {
	case exited:
		t.Fatalf("nginx exited at start: %s\n%s", n.output(), n.errorLog())
	case dialErr != nil:
		t.Fatalf("nginx does not accept on %s: %v\n%s", listen, dialErr, n.errorLog())
	}
	return n
}

// stop ends nginx at once (SIGTERM is its fast shutdown) and waits for it.
func (n *nginxProxy) stop() {
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}

func (n *nginxProxy) output() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.out.String()
}

func (n *nginxProxy) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
	return string(b)
}

// pid is nginx's master process.
func (n *nginxProxy) pid() int { return n.cmd.Process.Pid }

// proxied is one line of nginx's access log: a request and the replica (or
// replicas, when nginx moved on from one that was down) that got it.
type proxied struct {
	Upstream       string `json:"upstream"`        // "127.0.0.1:A" or "127.0.0.1:A, 127.0.0.1:B"
	UpstreamStatus string `json:"upstream_status"` // "200" or "502, 200"
	Status         int    `json:"status"`          // what the client got
	Method         string `json:"method"`
	URI            string `json:"uri"`
	Session        string `json:"session"`     // Mcp-Session-Id sent
	NewSession     string `json:"new_session"` // Mcp-Session-Id answered
	Protocol       string `json:"protocol"`    // Mcp-Protocol-Version sent
	Body           string `json:"body"`
}

// rpc returns the JSON-RPC method of the request's body, if any.
func (p proxied) rpc() string {
	var m struct {
		Method string `json:"method"`
	}
	_ = json.Unmarshal([]byte(p.Body), &m)
	return m.Method
}

// servedBy is the replica that answered: the last one tried.
func (p proxied) servedBy() string {
	addrs := strings.Split(p.Upstream, ", ")
	return addrs[len(addrs)-1]
}

// tried are all the replicas nginx passed the request to, in order.
func (p proxied) tried() []string { return strings.Split(p.Upstream, ", ") }

func (p proxied) String() string {
	s := fmt.Sprintf("%s %s", p.Method, p.URI)
	if m := p.rpc(); m != "" {
		s += " [" + m + "]"
	}
	if p.Protocol != "" {
		s += " (Mcp-Protocol-Version " + p.Protocol + ")"
	}
	if p.Session != "" {
		s += " (session " + sessionTail(p.Session) + ")"
	}
	if p.NewSession != "" {
		s += " (opens session " + sessionTail(p.NewSession) + ")"
	}
	return fmt.Sprintf("%s -> %d from %s (upstream status %s)", s, p.Status, p.Upstream, p.UpstreamStatus)
}

// sessionTail shows the end of a session ID, enough to tell sessions apart.
func sessionTail(id string) string {
	if len(id) > 8 {
		return "…" + id[len(id)-8:]
	}
	return id
}

// accessLog returns every request nginx has finished so far. Streams still
// open are not in it: nginx logs a request when it ends.
func (n *nginxProxy) accessLog(t testing.TB) []proxied {
	t.Helper()
	out, err := n.readAccessLog()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (n *nginxProxy) readAccessLog() ([]proxied, error) {
	f, err := os.Open(filepath.Join(n.dir, "access.log"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []proxied
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var p proxied
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return nil, fmt.Errorf("nginx access log line %q: %v", sc.Text(), err)
		}
		out = append(out, p)
	}
	return out, sc.Err()
}

// nginxOutputWriter serializes writes of a process's output into a buffer that
// the test reads while the process runs.
type nginxOutputWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *nginxOutputWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
