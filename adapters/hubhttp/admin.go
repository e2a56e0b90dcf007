package hubhttp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Admin calls the hub's admin endpoints (fault injection, records).
type Admin struct {
	URL     string // the hub's base URL
	Token   string // Tokens.Admin
	Timeout time.Duration
	// HTTPClient sends the requests (default: http.DefaultTransport, no redirects).
	HTTPClient *http.Client
}

// Inject makes the next settle requests suffer faults (by name: none,
// drop-request, drop-answer, delay, duplicate), in order, and the next
// failReverses reversals fail with an unknown outcome.
func (a *Admin) Inject(ctx context.Context, failReverses int, faults ...string) error {
	if faults == nil {
		faults = []string{}
	}
	var out FaultsRequest
	timeout := a.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	c := &call{http: a.HTTPClient, timeout: timeout, url: strings.TrimRight(a.URL, "/") + FaultsPath, token: a.Token,
		what: "fault injection", to: "the hub"}
	return c.do(ctx, FaultsRequest{Faults: faults, FailReverses: failReverses}, &out)
}

// Records returns the hub's record of every message, or of msgid's when it is not empty.
func (a *Admin) Records(ctx context.Context, msgid string) ([]Record, error) {
	timeout := a.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := strings.TrimRight(a.URL, "/") + RecordsPath
	if msgid != "" {
		u += "?msgid=" + url.QueryEscape(msgid)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.Token)
	req.Header.Set("Accept", "application/json")
	hc := a.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("hubhttp: GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	var env envelope
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64*MaxBody)).Decode(&env); err != nil {
		return nil, fmt.Errorf("hubhttp: GET %s: %s: %w", u, resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK || env.Error != nil {
		msg := resp.Status
		if env.Error != nil {
			msg += ": " + env.Error.Message
		}
		return nil, fmt.Errorf("hubhttp: GET %s: %s", u, msg)
	}
	var out RecordsAnswer
	if err := json.Unmarshal(env.Answer, &out); err != nil {
		return nil, fmt.Errorf("hubhttp: GET %s: %w", u, err)
	}
	return out.Records, nil
}
