package emulator

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
)

// SessionCookie is the cookie POST /auth/login sets, as GPUStack's local
// login does (a JWT there, an opaque id here).
const SessionCookie = "gpustack_session"

// sessions are the logins of a server, in memory: a restarted server
// forgets them, as an emulator may.
type sessions struct {
	mu  sync.Mutex
	ids map[string]string // session id → username
}

func (s *sessions) add(user string) (string, error) {
	id, err := randomHex(16)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[string]string{}
	}
	s.ids[id] = user
	return id, nil
}

func (s *sessions) admin(r *http.Request) bool {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[c.Value] == "admin"
}

// login is POST /auth/login with the form fields username and password:
// the admin's password as hashed in the database (users.hashed_password,
// or user_passwords from 7c5e3f9a2d18). It answers 200 with the session
// cookie, or 401.
func (c *clusterServer) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"detail": "invalid form"})
		return
	}
	user, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	hashed, err := adminHash(r.Context(), c.s.db, user)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"detail": err.Error()})
		return
	}
	sum := sha256.Sum256([]byte(password))
	want := "emulator-sha256$" + hex.EncodeToString(sum[:])
	if hashed == "" || subtle.ConstantTimeCompare([]byte(hashed), []byte(want)) != 1 {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"detail": "Incorrect username or password"})
		return
	}
	id, err := c.sessions.add(user)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"detail": err.Error()})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: id, HttpOnly: true, Path: "/"})
	w.WriteHeader(http.StatusOK)
}

// adminHash is the stored password hash of the admin user name, "" when
// there is no such admin.
func adminHash(ctx context.Context, db *sql.DB, name string) (string, error) {
	if name != "admin" {
		return "", nil
	}
	principals, err := pgHasTable(ctx, db, "principals")
	if err != nil {
		return "", err
	}
	q := "SELECT hashed_password FROM users WHERE username = " + placeholder(db, 1)
	if principals {
		q = "SELECT up.hashed_password FROM user_passwords up JOIN principals p ON p.id = up.principal_id WHERE p.name = " +
			placeholder(db, 1) + " AND p.kind = 'USER'"
	}
	var hashed sql.NullString
	err = db.QueryRowContext(ctx, q, name).Scan(&hashed)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("admin password: %s", pyPGError(err))
	}
	return hashed.String, nil
}
