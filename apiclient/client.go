package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// DefaultTimeout bounds one call (connecting, sending the request and
// reading the whole answer) unless WithTimeout or WithHTTPClient says
// otherwise. A context deadline, when shorter, ends the call first.
const DefaultTimeout = 10 * time.Second

// maxErrorBody bounds how much of an answer that is not the API's JSON is
// quoted in an Error's message.
const maxErrorBody = 512

// Client calls one gateway's server API. Create it with New; the zero
// value is not usable.
type Client struct {
	base string // scheme://host:port, no trailing slash
	key  string
	hc   *http.Client
}

// Option configures a Client in New.
type Option func(*Client)

// WithTimeout sets the bound of each call (DefaultTimeout by default). It
// applies to the HTTP client New creates; with WithHTTPClient it sets that
// client's Timeout on a copy.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		hc := *c.hc
		hc.Timeout = d
		c.hc = &hc
	}
}

// WithHTTPClient makes the Client send its requests with hc (for a
// custom transport, proxy or TLS configuration). hc is used as given,
// including its Timeout; options after it may change a copy of it.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.hc = hc }
}

// New returns a Client for the API at baseURL, such as
// "http://127.0.0.1:9091" (the gateway's -api-addr; "http://" is assumed
// when baseURL has no scheme, and a trailing slash is ignored). key is the
// gateway's -api-key, sent as "Authorization: apikey <key>"; "" sends no
// Authorization header, for a gateway without a key.
func New(baseURL, key string, opts ...Option) *Client {
	base := strings.TrimRight(baseURL, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	c := &Client{base: base, key: key, hc: &http.Client{Timeout: DefaultTimeout}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Call runs API method with params (marshalled to the JSON object body;
// nil sends {}) and decodes the "result" object into result, unless
// result is nil. The typed methods of Client are built on it; use it for a
// method this package does not wrap. An answer of the API that is an
// error is returned as an *Error.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	body := []byte("{}")
	if params != nil {
		var err error
		if body, err = json.Marshal(params); err != nil {
			return fmt.Errorf("apiclient: %s: encoding the params: %w", method, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/"+method, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("apiclient: %s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.key != "" {
		req.Header.Set("Authorization", "apikey "+c.key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("apiclient: %s: %w", method, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("apiclient: %s: reading the answer: %w", method, err)
	}
	var answer struct {
		Result json.RawMessage `json:"result"`
		Error  *Error          `json:"error"`
	}
	decodeErr := json.Unmarshal(b, &answer)
	if resp.StatusCode != http.StatusOK {
		if decodeErr == nil && answer.Error != nil && answer.Error.Code != "" {
			answer.Error.Status = resp.StatusCode
			return answer.Error
		}
		// Not the API's own error (a proxy's page, say): keep the status
		// and quote the start of the body.
		msg := strings.TrimSpace(string(b))
		if len(msg) > maxErrorBody {
			msg = msg[:maxErrorBody] + "…"
		}
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return &Error{Status: resp.StatusCode, Message: msg}
	}
	if decodeErr != nil {
		return fmt.Errorf("apiclient: %s: the answer is not JSON: %w", method, decodeErr)
	}
	if answer.Error != nil {
		answer.Error.Status = resp.StatusCode
		return answer.Error
	}
	if len(answer.Result) == 0 {
		return fmt.Errorf("apiclient: %s: the answer has no result", method)
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(answer.Result, result); err != nil {
		return fmt.Errorf("apiclient: %s: decoding the result: %w", method, err)
	}
	return nil
}
