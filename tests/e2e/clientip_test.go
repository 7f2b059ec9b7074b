package e2e

import (
	"net/http"
	"testing"

	"github.com/gorilla/websocket"
)

// TestRepeatedForwardedForLines: from a trusted peer, every
// X-Forwarded-For line counts, so a client's forged first line cannot hide
// the address the proxy appended in a second line.
func TestRepeatedForwardedForLines(t *testing.T) {
	g := startGateway(t, "-trusted-proxies", "127.0.0.1/32", "-log-level", "debug")
	h := http.Header{}
	h.Add("X-Forwarded-For", "6.6.6.6")
	h.Add("X-Forwarded-For", "203.0.113.7")
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+g.addr+"/ws", h)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	defer ws.Close()
	c := &client{t: t, ws: ws}
	c.id = c.read()["id"].(string)
	expectClient(t, c.id, "203.0.113.7", g)
}
