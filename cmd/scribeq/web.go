package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/scribeq/scribeq/pkg/query"
	"github.com/scribeq/scribeq/pkg/queue"
	"github.com/scribeq/scribeq/pkg/web"
)

// WebFlags configure the console, for `scribeq web` and `scribeq dev`.
type WebFlags struct {
	Token     string        `name:"token" env:"SCRIBEQ_WEB_TOKEN" placeholder:"TOKEN" help:"Access token: sent as 'Authorization: Bearer TOKEN' or typed once into the login page (never logged)."`
	BasicAuth string        `name:"basic-auth" env:"SCRIBEQ_WEB_BASIC_AUTH" placeholder:"USER:PASSWORD" help:"Accept HTTP basic auth with this user and password (never logged)."`
	Write     bool          `name:"write" env:"SCRIBEQ_WEB_WRITE" help:"Allow retry, cancel and dead-letter replay from the console (read-only without it)."`
	Refresh   time.Duration `name:"refresh" env:"SCRIBEQ_WEB_REFRESH" default:"3s" help:"How often the overview updates itself."`
}

// WebCmd serves the web console.
type WebCmd struct {
	ReadDBFlags `embed:""`
	QueueFlags  `embed:""`
	WebFlags    `embed:""`
	Addr        string `name:"addr" env:"SCRIBEQ_WEB_ADDR" default:"127.0.0.1:8080" help:"Address the console listens on."`
	NoAuth      bool   `name:"insecure-no-auth" env:"SCRIBEQ_WEB_INSECURE_NO_AUTH" help:"Serve without any authentication; refused unless --addr is a loopback address."`
}

func (c *WebCmd) Run(ctx context.Context, g *Globals) error {
	log := g.logger().With("process", "web")
	auth, err := webAuth(c.Addr, c.Token, c.BasicAuth, c.NoAuth)
	if err != nil {
		return err
	}
	db, err := openQuery(ctx, g, c.readURL())
	if err != nil {
		return err
	}
	defer db.Close()
	// NATS brings the player, consumer lag and operations; a read-only
	// console still shows everything else without it.
	qctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	q, err := openQueue(qctx, g, c.QueueFlags, "scribeq-web", log)
	cancel()
	switch {
	case err != nil && c.Write:
		return fmt.Errorf("web: --write needs NATS: %w", err)
	case err != nil:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Warn("no NATS: the console runs without audio, consumer lag and operations", "err", err)
		q = nil
	default:
		defer q.Close()
	}
	srv, err := c.server(db, q, auth, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("web: listen on %s: %w", c.Addr, err)
	}
	log.Info("console running", "url", "http://"+ln.Addr().String()+"/", "write", c.Write, "auth", authKind(auth))
	return serveWeb(ctx, ln, srv, log)
}

func (f WebFlags) server(db *query.DB, q *queue.Queue, auth web.Auth, log *slog.Logger) (*web.Server, error) {
	return web.New(web.Config{DB: db, Queue: q, Auth: auth, Write: f.Write, Refresh: f.Refresh, Logger: log})
}

// webAuth reads the authentication settings. A console without any is
// only allowed on a loopback address, and only when asked for by name.
func webAuth(addr, token, basic string, none bool) (web.Auth, error) {
	a := web.Auth{Token: strings.TrimSpace(token)}
	if basic != "" {
		user, pass, ok := strings.Cut(basic, ":")
		if !ok || user == "" || pass == "" {
			return a, errors.New("web: --basic-auth (SCRIBEQ_WEB_BASIC_AUTH) must be USER:PASSWORD, both non-empty")
		}
		a.User, a.Password = user, pass
	}
	switch {
	case none && (a.Token != "" || a.User != ""):
		return a, errors.New("web: --insecure-no-auth conflicts with --token and --basic-auth; choose one")
	case none && !loopback(addr):
		return a, fmt.Errorf("web: --insecure-no-auth is only allowed on a loopback address (127.0.0.1:PORT, [::1]:PORT, localhost:PORT), not %q", addr)
	case none:
		a.None = true
	case a.Token == "" && a.User == "":
		return a, errors.New("web: the console needs authentication: set SCRIBEQ_WEB_TOKEN (--token) or SCRIBEQ_WEB_BASIC_AUTH (--basic-auth); on a loopback address --insecure-no-auth turns it off")
	}
	return a, nil
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func authKind(a web.Auth) string {
	var kinds []string
	if a.Token != "" {
		kinds = append(kinds, "token")
	}
	if a.User != "" {
		kinds = append(kinds, "basic")
	}
	if a.None {
		kinds = append(kinds, "none")
	}
	return strings.Join(kinds, "+")
}

// serveWeb serves h on ln until ctx ends, then lets requests in flight
// finish for a few seconds.
func serveWeb(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("web: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("web: shut down: %w", err)
	}
	return nil
}

// devWeb starts the console inside `scribeq dev`. Without a token or basic
// auth it makes up a token and returns a link that logs in with it, as
// notebook servers do: the console is for whoever runs dev. The link is
// empty when the console is off. It reads through the pipeline's pool.
func (c *DevCmd) devWeb(ctx context.Context, db *query.DB, q *queue.Queue, log *slog.Logger) (link string, stop func(), err error) {
	if c.WebAddr == "" || c.WebAddr == "off" {
		return "", func() {}, nil
	}
	log = log.With("process", "web")
	f := c.WebFlags
	made := f.Token == "" && f.BasicAuth == ""
	if made {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return "", nil, fmt.Errorf("dev: console token: %w", err)
		}
		f.Token = hex.EncodeToString(b)
	}
	auth, err := webAuth(c.WebAddr, f.Token, f.BasicAuth, false)
	if err != nil {
		return "", nil, err
	}
	srv, err := f.server(db, q, auth, log)
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", c.WebAddr)
	if err != nil {
		return "", nil, fmt.Errorf("dev: console: listen on %s: %w", c.WebAddr, err)
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := serveWeb(wctx, ln, srv, log); err != nil {
			log.Error("console stopped", "err", err)
		}
	}()
	link = "http://" + ln.Addr().String() + "/"
	if made {
		link += "login?token=" + url.QueryEscape(f.Token)
	}
	return link, func() { cancel(); <-done }, nil
}
