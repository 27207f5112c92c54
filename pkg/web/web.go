// Package web is scribeq's console: an http.Handler that shows what the
// pipeline is doing and what it has produced, for people who would rather
// look than read.
//
// # Pages
//
//   - / (overview): jobs by state, jobs per minute and audio hours per hour
//     as charts, cost, batches with progress and ETA, consumer lag, recent
//     failures and dead letters; it refreshes itself (the page polls an HTML
//     fragment of itself, /overview/live).
//   - /jobs: the job list with the filters of `scribeq jobs` and keyset
//     pagination; /jobs/{id}: one job with its history, ids, options,
//     metadata, cost, and the transcript by speaker turn beside a player.
//     Clicking a word plays from there; the word being said is highlighted.
//     /jobs/{id}?t=SECONDS cues the player at that moment.
//   - /jobs/{id}/audio: the original audio from the AUDIO object store, with
//     HTTP range requests, so seeking in an hour-long recording fetches only
//     the chunks it needs.
//   - /jobs/{id}/export/{format} and /export/{format}?filters: transcripts
//     as SRT, VTT, TXT, JSON or CSV (pkg/export); the second is a zip.
//   - /search: full-text search (pkg/query) with snippets; each hit links to
//     its moment in the job page.
//   - /dead-letters: messages that could never be processed.
//
// Retry, cancel and dead-letter replay are POST forms that work only when
// Config.Write is set (403 otherwise); they act through pkg/control, so
// the sink stays the only writer of job state.
//
// # Safety
//
// Every page needs a token (a bearer header, or a cookie set by /login) or
// basic auth, unless Config.Auth.None says otherwise. POSTs carry a CSRF
// token and are refused from another origin. Pages are rendered from the
// database and NATS only; the API key and webhook secrets are not in
// Config, so no page can show them. The Content-Security-Policy allows
// only the console's own embedded script and style.
package web

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scribeq/scribeq/pkg/control"
	"github.com/scribeq/scribeq/pkg/query"
	"github.com/scribeq/scribeq/pkg/queue"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Auth says who may use the console. At least one way must be set, or None.
type Auth struct {
	// Token is accepted as "Authorization: Bearer TOKEN", or typed once into
	// /login, which sets a cookie derived from it.
	Token string
	// User and Password are accepted as HTTP basic auth.
	User, Password string
	// None turns authentication off. Only for a console on a loopback
	// address; the command that sets it checks that.
	None bool
}

func (a Auth) validate() error {
	switch {
	case a.None:
		return nil
	case a.Token == "" && a.User == "":
		return errors.New("web: no authentication: set a token or basic auth (or, on localhost only, none)")
	case a.User != "" && a.Password == "":
		return errors.New("web: basic auth needs a password")
	case strings.Contains(a.User, ":"):
		return errors.New("web: a basic-auth user name cannot contain ':'")
	}
	return nil
}

// Config configures the console.
type Config struct {
	// DB reads everything shown. Required. A role that can only read is
	// enough (query.Open makes every transaction read-only anyway).
	DB *query.DB
	// Queue serves audio from the AUDIO object store, reports consumer lag
	// and, with Write, carries retry, cancel and replay. Optional: without
	// it there is no player, no lag and no operations.
	Queue *queue.Queue
	Auth  Auth
	// Write enables retry, cancel and dead-letter replay. Needs Queue.
	Write bool
	// Refresh is how often the overview updates itself. Default 3s.
	Refresh time.Duration
	// Logger; default discard.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Server is the console. It is an http.Handler.
type Server struct {
	cfg      Config
	db       *query.DB
	ctl      *control.Control
	log      *slog.Logger
	mux      *http.ServeMux
	pages    map[string]*template.Template
	assets   map[string]asset
	csrf     string // the form token every POST must carry
	session  string // the cookie value a valid /login sets
	indexes  indexCache
	overview overviewCache

	streamMu sync.Mutex
	stream   jetstream.Stream // the AUDIO object store's stream, once looked up
}

// asset is an embedded static file and its content hash.
type asset struct {
	body []byte
	hash string
	ct   string
}

const sessionCookie = "scribeq_session"

// New returns the console.
func New(cfg Config) (*Server, error) {
	if cfg.DB == nil {
		return nil, errors.New("web: Config.DB is required")
	}
	if err := cfg.Auth.validate(); err != nil {
		return nil, err
	}
	if cfg.Write && cfg.Queue == nil {
		return nil, errors.New("web: Write needs a Queue (NATS) to act through")
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 3 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, db: cfg.DB, log: cfg.Logger, mux: http.NewServeMux()}
	if cfg.Queue != nil {
		s.ctl = control.New(cfg.DB, cfg.Queue, "web")
	}
	// The form token derives from the credentials, so that every replica
	// behind a load balancer accepts the forms of the others; without
	// credentials it is random per process.
	key := []byte(cfg.Auth.Token + "\x00" + cfg.Auth.User + "\x00" + cfg.Auth.Password)
	if cfg.Auth.None {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("web: random key: %w", err)
		}
	}
	s.csrf = mac(key, "scribeq web form")
	if cfg.Auth.Token != "" {
		// The cookie proves the token was typed without being the token:
		// a cookie that leaks (a proxy log) is no bearer token.
		s.session = mac([]byte(cfg.Auth.Token), "scribeq web session")
	}
	if err := s.loadAssets(); err != nil {
		return nil, err
	}
	if err := s.loadTemplates(); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

func mac(key []byte, msg string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return hex.EncodeToString(h.Sum(nil))
}

// equal compares secrets in constant time, whatever their lengths.
func equal(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

func (s *Server) routes() {
	open := func(pattern string, h http.HandlerFunc) { s.mux.Handle(pattern, h) }
	authed := func(pattern string, h http.HandlerFunc) { s.mux.Handle(pattern, s.requireAuth(h)) }
	write := func(pattern string, h http.HandlerFunc) { s.mux.Handle(pattern, s.requireAuth(s.requireWrite(h))) }

	open("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	open("GET /static/{file}", s.static)
	open("GET /login", s.loginPage)
	open("POST /login", s.login)
	open("POST /logout", s.logout)

	authed("GET /{$}", s.overviewPage)
	authed("GET /overview/live", s.overviewLive)
	authed("GET /jobs", s.jobsPage)
	authed("GET /jobs/{id}", s.jobPage)
	authed("GET /jobs/{id}/audio", s.audio)
	authed("GET /jobs/{id}/export/{format}", s.exportJob)
	authed("GET /export/{format}", s.exportZip)
	authed("GET /search", s.searchPage)
	authed("GET /dead-letters", s.deadLettersPage)

	write("POST /jobs/{id}/retry", s.retry)
	write("POST /jobs/{id}/cancel", s.cancel)
	write("POST /dead-letters/{id}/replay", s.replay)

	authed("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusNotFound, "There is no such page.")
	})
}

// ServeHTTP serves the console.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"media-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: with no-referrer a browser sends
	// "Origin: null" on form posts, which sameOrigin must refuse.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	s.mux.ServeHTTP(w, r)
}

// authorized reports whether r carries a credential the console accepts.
func (s *Server) authorized(r *http.Request) bool {
	a := s.cfg.Auth
	if a.None {
		return true
	}
	if a.Token != "" {
		if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && equal(strings.TrimSpace(v), a.Token) {
			return true
		}
		if c, err := r.Cookie(sessionCookie); err == nil && equal(c.Value, s.session) {
			return true
		}
	}
	if a.User != "" {
		if u, p, ok := r.BasicAuth(); ok && equal(u, a.User) && equal(p, a.Password) {
			return true
		}
	}
	return false
}

func (s *Server) requireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.authorized(r) {
			next.ServeHTTP(w, r)
			return
		}
		if s.cfg.Auth.User != "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="scribeq", charset="UTF-8"`)
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer realm="scribeq"`)
		}
		w.Header().Set("Cache-Control", "no-store")
		if s.cfg.Auth.Token == "" || r.URL.Path == "/overview/live" {
			http.Error(w, "401 unauthorized", http.StatusUnauthorized)
			return
		}
		s.renderStatus(w, r, http.StatusUnauthorized, "login", loginData{Next: r.URL.RequestURI()})
	})
}

// requireWrite refuses operations on a read-only console, and POSTs that
// did not come from one of its own forms.
func (s *Server) requireWrite(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.cfg.Write {
			s.fail(w, r, http.StatusForbidden, "This console is read-only. Start it with --write to retry, cancel or replay.")
			return
		}
		if !sameOrigin(r) || !equal(r.PostFormValue("csrf"), s.csrf) {
			s.fail(w, r, http.StatusForbidden, "This form is out of date or came from another site. Reload the page and try again.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin reports whether the browser says the request came from a
// page of this console. Browsers send Sec-Fetch-Site; older ones only
// Origin; requests with neither (curl, scripts) pass, since only a browser
// can be tricked into sending a form.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

type loginData struct {
	Next  string
	Wrong bool
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Auth.Token == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	// A link with the token (as `scribeq dev` prints one) logs in at once.
	if tok := r.URL.Query().Get("token"); tok != "" {
		s.tryLogin(w, r, tok, r.URL.Query().Get("next"))
		return
	}
	s.render(w, r, "login", loginData{Next: localPath(r.URL.Query().Get("next"))})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Auth.Token == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.tryLogin(w, r, r.PostFormValue("token"), r.PostFormValue("next"))
}

func (s *Server) tryLogin(w http.ResponseWriter, r *http.Request, token, next string) {
	next = localPath(next)
	if !equal(strings.TrimSpace(token), s.cfg.Auth.Token) {
		s.log.Warn("console login refused", "remote", r.RemoteAddr)
		s.renderStatus(w, r, http.StatusUnauthorized, "login", loginData{Next: next, Wrong: true})
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: s.session, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https", MaxAge: 30 * 24 * 3600,
	})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		s.fail(w, r, http.StatusForbidden, "Log out from the console's own page.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// localPath keeps a redirect target on this site.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/"
	}
	return p
}

func (s *Server) loadAssets() error {
	s.assets = map[string]asset{}
	return fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return fmt.Errorf("web: read asset %s: %w", p, err)
		}
		sum := sha256.Sum256(b)
		ct := "application/octet-stream"
		switch path.Ext(p) {
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		}
		s.assets[path.Base(p)] = asset{body: b, hash: hex.EncodeToString(sum[:6]), ct: ct}
		return nil
	})
}

// static serves embedded assets; a URL with the current hash is cached
// for good, since the next build's pages name a new one.
func (s *Server) static(w http.ResponseWriter, r *http.Request) {
	a, ok := s.assets[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.ct)
	if r.URL.Query().Get("v") == a.hash {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	}
	_, _ = w.Write(a.body)
}

func (s *Server) assetURL(name string) string {
	return "/static/" + name + "?v=" + s.assets[name].hash
}

// page is what every template gets.
type page struct {
	Nav     string
	Write   bool
	Logout  bool
	CSRF    string
	Refresh int64 // milliseconds
	Data    any
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	s.renderStatus(w, r, http.StatusOK, name, data)
}

func (s *Server) renderStatus(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	s.execute(w, r, status, name, "layout", data)
}

// execute runs template tpl of page name: "layout" for a whole page, or
// a fragment the page defines.
func (s *Server) execute(w http.ResponseWriter, r *http.Request, status int, name, tpl string, data any) {
	t, ok := s.pages[name]
	if !ok {
		s.log.Error("console: no such template", "name", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	p := page{
		Nav: name, Write: s.cfg.Write, CSRF: s.csrf, Data: data,
		Logout:  s.cfg.Auth.Token != "" && cookieSet(r),
		Refresh: s.cfg.Refresh.Milliseconds(),
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, tpl, p); err != nil {
		s.log.Error("console: render page", "page", name, "err", err)
		http.Error(w, "internal error: the console's log has the details", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func cookieSet(r *http.Request) bool {
	_, err := r.Cookie(sessionCookie)
	return err == nil
}

type failData struct {
	Status  int
	Message string
}

// fail shows a message meant for the person at the browser; internal
// errors reach the log, not the page.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.renderStatus(w, r, status, "error", failData{Status: status, Message: msg})
}

func (s *Server) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the browser went away
	}
	s.log.Error("console: "+what, "path", r.URL.Path, "err", err)
	s.fail(w, r, http.StatusInternalServerError, "Something went wrong while "+what+". The console's log has the details.")
}
