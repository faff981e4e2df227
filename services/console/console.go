package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/clock"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed assets
var assetFiles embed.FS

// Config is what the console needs.
type Config struct {
	Clients Clients
	Clock   clock.Clock  // the claims queue's ages (nil: wall time)
	Logger  *slog.Logger // nil: discarded
	// ClaimTarget: see Options.ClaimTarget (zero: 48h).
	ClaimTarget time.Duration
	// SecureCookie: see Options.SecureCookie. Under TLS the cookie is
	// Secure anyway.
	SecureCookie bool
}

// Console serves the support console's pages.
type Console struct {
	cfg   Config
	pages map[string]*template.Template
	mux   *http.ServeMux
}

// Cookie names: the session (the token itself) and the sign-in form's
// CSRF value (before there is a session).
const (
	sessionCookie = "custody_console"
	signinCookie  = "custody_console_signin"
)

// contentSecurityPolicy: nothing but the console's own files; no inline
// script or style, no framing, forms post only to the console.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// New builds the console's handler.
func New(cfg Config) (*Console, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ClaimTarget <= 0 {
		cfg.ClaimTarget = DefaultOptions().ClaimTarget
	}
	c := &Console{cfg: cfg, pages: map[string]*template.Template{}, mux: http.NewServeMux()}
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		page := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if page == "layout" || page == "partials" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/partials.html", n)
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", n, err)
		}
		c.pages[page] = t
	}
	assets, err := fs.Sub(assetFiles, "assets")
	if err != nil {
		return nil, err
	}
	files := http.StripPrefix("/assets/", http.FileServerFS(assets))
	c.mux.Handle("GET /assets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))
	c.mux.HandleFunc("GET /signin", c.signinForm)
	c.mux.HandleFunc("POST /signin", c.signin)
	c.mux.HandleFunc("POST /signout", c.signedIn(c.signout))
	c.mux.HandleFunc("GET /{$}", c.signedIn(func(w http.ResponseWriter, r *http.Request, _ *session) {
		http.Redirect(w, r, "/orders", http.StatusSeeOther)
	}))
	c.mux.HandleFunc("GET /orders", c.signedIn(c.orders))
	c.mux.HandleFunc("GET /orders/{id}", c.signedIn(c.order))
	c.mux.HandleFunc("GET /claims", c.signedIn(c.claims))
	c.mux.HandleFunc("POST /claims/{id}/decide", c.signedIn(c.decide))
	c.mux.HandleFunc("GET /parked", c.signedIn(c.parked))
	c.mux.HandleFunc("POST /parked/{seq}/redrive", c.signedIn(c.redrive))
	c.mux.HandleFunc("GET /vendors", c.signedIn(c.vendorSearch))
	c.mux.HandleFunc("GET /vendors/{id}", c.signedIn(c.vendor))
	return c, nil
}

// ServeHTTP sets the headers every answer carries and routes.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	if !strings.HasPrefix(r.URL.Path, "/assets/") {
		h.Set("Cache-Control", "no-store")
	}
	c.mux.ServeHTTP(w, r)
}

// session is the signed-in person: the token the services verify on every
// call, and what the page shows of it.
type session struct {
	Token   string
	Subject string
	Roles   []string
	Expires time.Time
	CSRF    string
}

// Support: the session may decide claims (only support may: trust's
// access table).
func (s *session) Support() bool { return slices.Contains(s.Roles, "support") }

// consoleRoles are the roles that may sign in.
var consoleRoles = []string{"support", "platform"}

// readToken reads a token's claims without checking its signature: the
// console holds no key. The services check the token on every call the
// console makes with it; sign-in makes one such call before it accepts it.
func readToken(tok string) (subject string, roles []string, exp time.Time, err error) {
	var claims struct {
		Roles []string `json:"roles"`
		jwt.RegisteredClaims
	}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &claims); err != nil {
		return "", nil, time.Time{}, fmt.Errorf("not a Custody token: %w", err)
	}
	if claims.ExpiresAt != nil {
		exp = claims.ExpiresAt.Time
	}
	return claims.Subject, claims.Roles, exp, nil
}

// csrfOf is the CSRF value of a session: a hash of its token. Only a page
// the console rendered for that session holds it (the token is in an
// HttpOnly cookie no script can read), and every replica of the console
// computes the same value without sharing a secret.
func csrfOf(token string) string {
	sum := sha256.Sum256([]byte("custody console csrf\x00" + token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func sameString(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// newRequestID is the request_id a rendered form carries: submitting the
// form twice (a double click, a reload) repeats the same request, which
// the service answers with its first result and changes nothing.
func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "console-" + hex.EncodeToString(b)
}

// signedIn runs h for a signed-in request, with its session; a POST must
// carry the session's CSRF value. A request without a session goes to
// the sign-in page (a GET comes back where it was going).
func (c *Console) signedIn(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, ok := c.sessionOf(r)
		if !ok {
			c.clearSession(w, r)
			to := "/signin"
			if r.Method == http.MethodGet && r.URL.Path != "/" {
				to += "?next=" + url.QueryEscape(r.URL.RequestURI())
			}
			http.Redirect(w, r, to, http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				c.render(w, r, http.StatusBadRequest, "error", nil, errorPage{Title: "Bad form", Message: err.Error()})
				return
			}
			if !sameString(r.PostForm.Get("csrf"), s.CSRF) {
				c.render(w, r, http.StatusForbidden, "error", s, errorPage{Title: "Refused: no valid CSRF token",
					Message: "This form did not come from a page of the console for your session (its CSRF token is missing or stale). Nothing was changed. Reload the page and try again."})
				return
			}
		}
		h(w, r, s)
	}
}

func (c *Console) sessionOf(r *http.Request) (*session, bool) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil, false
	}
	sub, roles, exp, err := readToken(ck.Value)
	if err != nil || (!exp.IsZero() && !time.Now().Before(exp)) || !hasConsoleRole(roles) {
		return nil, false
	}
	return &session{Token: ck.Value, Subject: sub, Roles: roles, Expires: exp, CSRF: csrfOf(ck.Value)}, true
}

func hasConsoleRole(roles []string) bool {
	return slices.ContainsFunc(roles, func(r string) bool { return slices.Contains(consoleRoles, r) })
}

func (c *Console) secure(r *http.Request) bool { return r.TLS != nil || c.cfg.SecureCookie }

func (c *Console) cookie(r *http.Request, name, value string, expires time.Time) *http.Cookie {
	ck := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.secure(r)}
	if value == "" {
		ck.MaxAge = -1
	} else if !expires.IsZero() {
		ck.Expires = expires
	}
	return ck
}

func (c *Console) clearSession(w http.ResponseWriter, r *http.Request) {
	if _, err := r.Cookie(sessionCookie); err == nil {
		http.SetCookie(w, c.cookie(r, sessionCookie, "", time.Time{}))
	}
}

type signinPage struct {
	CSRF, Next, Message string
}

func (c *Console) signinForm(w http.ResponseWriter, r *http.Request) {
	if _, ok := c.sessionOf(r); ok {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	c.renderSignin(w, r, http.StatusOK, "")
}

func (c *Console) renderSignin(w http.ResponseWriter, r *http.Request, code int, msg string) {
	v := newRequestID()
	http.SetCookie(w, c.cookie(r, signinCookie, v, time.Now().Add(time.Hour)))
	next := r.URL.Query().Get("next")
	if r.Method == http.MethodPost {
		next = r.PostForm.Get("next")
	}
	c.render(w, r, code, "signin", nil, signinPage{CSRF: v, Next: safeNext(next), Message: msg})
}

// safeNext keeps a redirect after sign-in on the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/orders"
	}
	return next
}

func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		c.renderSignin(w, r, http.StatusBadRequest, "The form could not be read: "+err.Error())
		return
	}
	ck, err := r.Cookie(signinCookie)
	if err != nil || !sameString(ck.Value, r.PostForm.Get("csrf")) {
		c.renderSignin(w, r, http.StatusForbidden, "This sign-in form is stale or did not come from the console. Nothing was done; sign in again.")
		return
	}
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	tok = strings.TrimSpace(strings.TrimPrefix(tok, "Bearer "))
	if tok == "" {
		c.renderSignin(w, r, http.StatusBadRequest, "Paste a token: custody token --role support prints one.")
		return
	}
	_, roles, exp, err := readToken(tok)
	if err != nil {
		c.renderSignin(w, r, http.StatusBadRequest, "That is not a Custody token ("+err.Error()+").")
		return
	}
	if !hasConsoleRole(roles) {
		c.render(w, r, http.StatusForbidden, "error", nil, errorPage{Title: "This token cannot sign in to the console",
			Message: fmt.Sprintf("The console is for support and platform staff; this token's roles are %s. Nothing was done.", strings.Join(roles, ", "))})
		return
	}
	// The services, not the console, verify tokens: one call with it.
	if _, err := c.cfg.Clients.Audit.ListParkedEvents(withToken(r.Context(), tok), nil); err != nil {
		switch status.Code(err) {
		case codes.Unauthenticated:
			c.renderSignin(w, r, http.StatusUnauthorized, "The services refused this token: "+status.Convert(err).Message())
		case codes.PermissionDenied:
			c.renderSignin(w, r, http.StatusForbidden, "The services refused this token's roles: "+status.Convert(err).Message())
		default:
			c.renderSignin(w, r, http.StatusBadGateway, "The services could not check the token: "+status.Convert(err).Message())
		}
		return
	}
	http.SetCookie(w, c.cookie(r, signinCookie, "", time.Time{}))
	http.SetCookie(w, c.cookie(r, sessionCookie, tok, exp))
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request, _ *session) {
	http.SetCookie(w, c.cookie(r, sessionCookie, "", time.Time{}))
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// view is what every page's template gets.
type view struct {
	Session *session
	Page    any
	Path    string
}

type errorPage struct {
	Title, Message string
	Fields         []string
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, code int, page string, s *session, data any) {
	t, ok := c.pages[page]
	if !ok {
		http.Error(w, "no page "+page, http.StatusInternalServerError)
		return
	}
	var b strings.Builder
	if err := t.Execute(&b, view{Session: s, Page: data, Path: r.URL.Path}); err != nil {
		c.cfg.Logger.Error("console: rendering", "page", page, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
}

// fail shows what a service answered, as clearly as it said it. An
// expired or refused token ends the session.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, what string, err error) {
	st := status.Convert(err)
	p := errorPage{Title: what, Message: st.Message()}
	p.Fields = fieldViolations(st)
	code := http.StatusBadGateway
	switch st.Code() {
	case codes.Unauthenticated:
		c.clearSession(w, r)
		http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	case codes.PermissionDenied:
		code = http.StatusForbidden
	case codes.NotFound:
		code = http.StatusNotFound
	case codes.InvalidArgument, codes.FailedPrecondition, codes.AlreadyExists, codes.OutOfRange:
		code = http.StatusBadRequest
	case codes.Unavailable, codes.DeadlineExceeded:
		code = http.StatusServiceUnavailable
	}
	p.Title = fmt.Sprintf("%s: %s", what, st.Code())
	c.render(w, r, code, "error", s, p)
}

// fieldViolations lists a google.rpc.BadRequest's fields and what is
// wrong with each.
func fieldViolations(st *status.Status) []string {
	var out []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out = append(out, v.GetField()+": "+v.GetDescription())
			}
		}
	}
	return out
}

// refuse answers a form the console itself cannot send on (nothing was
// asked of a service).
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, s *session, msg string) {
	c.render(w, r, http.StatusBadRequest, "error", s, errorPage{Title: "Not done: the form needs a correction", Message: msg})
}
