package hubhttp

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/medsettle/medsettle/settlement"
)

// Client is the national hub as one province sees it, over HTTP: a
// settlement.Hub. Set the fields before first use; it is safe for
// concurrent use afterwards.
type Client struct {
	URL      string // the hub's base URL, e.g. http://127.0.0.1:8090
	Province string // the sending province, e.g. 150000
	Token    string // the province's token at the hub
	// Timeout bounds one request, connection to last byte of the answer
	// (default DefaultTimeout). Past it the outcome is unknown.
	Timeout time.Duration
	// HTTPClient sends the requests (default: http.DefaultTransport, no redirects).
	HTTPClient *http.Client
}

// NewClient returns a client of the hub at hubURL sending as province.
func NewClient(hubURL, province, token string) *Client {
	return &Client{URL: hubURL, Province: province, Token: token}
}

var _ settlement.Hub = (*Client)(nil)

func (c *Client) call(path, what string) *call {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &call{http: c.HTTPClient, timeout: timeout, url: strings.TrimRight(c.URL, "/") + path, token: c.Token,
		header: http.Header{ProvinceHeader: {c.Province}}, what: what, to: "the hub"}
}

// Settle implements settlement.Hub.
func (c *Client) Settle(ctx context.Context, rc settlement.RemoteClaim) (settlement.RemoteAnswer, error) {
	return sendClaim(ctx, c.call, SettlePath, rc)
}

// Reverse implements settlement.Hub.
func (c *Client) Reverse(ctx context.Context, r settlement.RemoteReverse) (settlement.RemoteReverseAnswer, error) {
	return sendReverse(ctx, c.call, ReversePath, r)
}
