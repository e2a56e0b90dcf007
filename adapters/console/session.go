package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// A login session is a cookie holding the bureau's region, an expiry and a
// random nonce, signed with HMAC-SHA256 under Config.Secret. The key the
// bureau typed is checked once, at login, and never stored in the cookie.
// The cookie is HttpOnly and SameSite=Strict; forms also carry a token
// derived from the session (and posts from another origin are refused).

const cookieName = "medsettle_console"

type session struct {
	Region  string
	Expires time.Time
}

func (h *Handler) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, h.cfg.Secret)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

func (h *Handler) newSession(region string) (string, time.Time) {
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	exp := h.cfg.Now().Add(h.cfg.SessionTTL)
	payload := "v1|" + region + "|" + strconv.FormatInt(exp.Unix(), 10) + "|" + hex.EncodeToString(nonce[:])
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString(h.mac("session", payload)), exp
}

func (h *Handler) openSession(value string) (session, bool) {
	enc := base64.RawURLEncoding
	p64, m64, ok := strings.Cut(value, ".")
	if !ok {
		return session{}, false
	}
	payload, err1 := enc.DecodeString(p64)
	sig, err2 := enc.DecodeString(m64)
	if err1 != nil || err2 != nil || !hmac.Equal(sig, h.mac("session", string(payload))) {
		return session{}, false
	}
	f := strings.Split(string(payload), "|")
	if len(f) != 4 || f[0] != "v1" || f[1] == "" {
		return session{}, false
	}
	exp, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || !h.cfg.Now().Before(time.Unix(exp, 0)) {
		return session{}, false
	}
	return session{Region: f[1], Expires: time.Unix(exp, 0)}, true
}

func (h *Handler) csrfToken(cookie string) string {
	return base64.RawURLEncoding.EncodeToString(h.mac("csrf", cookie)[:18])
}

func (h *Handler) csrfOK(cookie, token string) bool {
	return token != "" && hmac.Equal([]byte(token), []byte(h.csrfToken(cookie)))
}

func (h *Handler) setCookie(w http.ResponseWriter, value string) {
	c := &http.Cookie{Name: cookieName, Value: value, Path: h.cfg.Prefix + "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: h.cfg.Secure}
	if value == "" {
		c.MaxAge = -1
	} else {
		// Max-Age, not Expires: the browser's clock need not be ours; the
		// signed expiry is what counts.
		c.MaxAge = int(h.cfg.SessionTTL.Seconds())
	}
	http.SetCookie(w, c)
}

type loginData struct {
	Next  string
	Error string
}

func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, viewer{}, http.StatusOK, "login", "Sign in", loginData{Next: h.safeNext(r.URL.Query().Get("next"))})
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	next := h.safeNext(r.PostFormValue("next"))
	who, known := h.cfg.Keys.Lookup(strings.TrimSpace(r.PostFormValue("key")))
	if !known || !who.IsBureau() {
		// One answer for an unknown key and an institution's key.
		h.render(w, r, viewer{}, http.StatusUnauthorized, "login", "Sign in",
			loginData{Next: next, Error: "That is not a bureau key."})
		return
	}
	value, _ := h.newSession(who.Region)
	h.setCookie(w, value)
	h.cfg.Log.Info("console: signed in", "bureau", who.Region)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	h.setCookie(w, "")
	http.Redirect(w, r, h.cfg.Prefix+"/login", http.StatusSeeOther)
}

// safeNext keeps a post-login redirect inside the console.
func (h *Handler) safeNext(next string) string {
	if strings.HasPrefix(next, h.cfg.Prefix+"/") && !strings.HasPrefix(next, "//") && !strings.Contains(next, "\\") {
		return next
	}
	return h.cfg.Prefix + "/"
}
