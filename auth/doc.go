/*
Package auth decides who may open a chatgate connection: it verifies JWTs
(RFC 7519) and checks the Origin of browser handshakes against an allowlist.
It is pure, holds no goroutines and never blocks, so netpoll calls it on the
event loop while it handles the HTTP upgrade.

Authentication:

	v, err := auth.NewVerifier(auth.Config{HS256Secret: secret})
	...
	// During the upgrade, on the event loop:
	var id *auth.Identity // nil: anonymous
	if tok := auth.TokenFrom(req.Header("Authorization"), req.Query); tok != nil {
		if id, err = v.Verify(tok); err != nil {
			// 401, WWW-Authenticate: auth.Challenge(err)
		}
	} else if authRequired {
		// 401, WWW-Authenticate: auth.Challenge(auth.ErrNoToken)
	}

	// Later, for every join (nil id: any room):
	if !id.MayJoin(room) {
		// error "forbidden"
	}

Origin check, before the upgrade (cross-site WebSocket hijacking):

	origins, err := auth.ParseOrigins("https://chat.example.com,https://*.example.com")
	...
	if !origins.Allowed(req.Header("Origin")) {
		// 403
	}

# Cost on the event loop

Verify runs on the loop that parses the handshake (BenchmarkVerify, one
core of an AMD EPYC VM): HS256 takes about 7 µs, mostly base64 and JSON;
RS256 (2048-bit) about 50 µs and ES256 about 90 µs, mostly the signature
check. That is checked inline rather than handed to a worker pool: it is
CPU work, not blocking, a pool would add two queue hops and a wake-up per
handshake without saving any CPU, and the connection's state stays on its
own loop. Even ES256 leaves a loop over 10,000 handshakes per second.

Reconnect storms (a gateway restart, a network blip) present the same
tokens again, so a Verifier keeps a bounded cache of tokens it accepted,
keyed by SHA-256 of the token: a hit costs about 0.3 µs and no
allocation, and still applies exp and nbf. Only accepted tokens are
cached, so forged or garbage tokens pay the full check every time (a
forged ES256 token costs as much as a valid one). Bounding that is the job
of the per-IP connection limit (package limit) and of connection-rate
limits at the proxy in front; docs/security.md has the details.
*/
package auth
