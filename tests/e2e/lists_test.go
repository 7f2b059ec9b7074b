package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
)

// Room and member lists against the real binary (docs/protocol.md,
// "Lists"): a client's rooms list shows only the rooms its token lets it
// join (-rooms-list), and every list — native, Socket.IO, server API —
// comes in pages of at most 100 entries by default (at most 1000 when
// asked), with a cursor to the next page.

// lsRoom names the i-th room of the paging tests: the names sort like i.
func lsRoom(i int) string { return fmt.Sprintf("room-%04d", i) }

// lsJoin makes c join rooms, acknowledged, 500 requests at a time.
func lsJoin(t *testing.T, c *client, rooms []string) {
	t.Helper()
	for len(rooms) > 0 {
		n := min(len(rooms), 500)
		var reqs []map[string]any
		for i, r := range rooms[:n] {
			reqs = append(reqs, map[string]any{"type": "join", "id": fmt.Sprint(i), "room": r})
		}
		for id, r := range hdBurst(t, c, reqs, nil) {
			if r["type"] != "ack" {
				t.Fatalf("join %s: %v", id, r)
			}
		}
		rooms = rooms[n:]
	}
}

// lsPage is one page of a list: the keys of its entries (room names or
// member ids), its cursor ("" on the last page) and its size on the wire.
type lsPage struct {
	keys   []string
	cursor string
	bytes  int
}

// lsNative asks c for one page with the request req (plus cursor, when
// not empty).
func lsNative(t *testing.T, c *client, req map[string]any, cursor string) lsPage {
	t.Helper()
	v := map[string]any{"id": "list"}
	for k, x := range req {
		v[k] = x
	}
	if cursor != "" {
		v["cursor"] = cursor
	}
	c.send(v)
	for range 100 {
		raw := c.readRaw()
		var r map[string]json.RawMessage
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("reply %s: %v", raw, err)
		}
		if string(r["id"]) != `"list"` {
			continue // an event
		}
		if string(r["type"]) != `"ack"` {
			t.Fatalf("%v: %s", v, raw)
		}
		return lsParse(t, raw, r)
	}
	t.Fatalf("no reply to %v", v)
	return lsPage{}
}

// lsParse reads the page of a list reply or result object r (raw: its
// wire form, for the size).
func lsParse(t *testing.T, raw []byte, r map[string]json.RawMessage) lsPage {
	t.Helper()
	p := lsPage{bytes: len(raw)}
	var list []map[string]any
	key := ""
	switch {
	case r["rooms"] != nil:
		_ = json.Unmarshal(r["rooms"], &list)
		key = "room"
	case r["members"] != nil:
		_ = json.Unmarshal(r["members"], &list)
		key = "id"
		if len(list) > 0 && list[0]["client"] != nil {
			key = "client" // the server API's members
		}
	default:
		t.Fatalf("no list in %s", raw)
	}
	for _, e := range list {
		k, _ := e[key].(string)
		p.keys = append(p.keys, k)
	}
	if c, ok := r["cursor"]; ok {
		if err := json.Unmarshal(c, &p.cursor); err != nil || p.cursor == "" {
			t.Fatalf("cursor %s in %s", c, raw)
		}
	}
	return p
}

// lsAll follows the cursors of a list from its first page to its last,
// fetching each with page, and returns the pages' sizes and every key in
// order.
func lsAll(t *testing.T, page func(cursor string) lsPage) (sizes []int, keys []string) {
	t.Helper()
	cursor := ""
	for range 1000 {
		p := page(cursor)
		sizes = append(sizes, len(p.keys))
		keys = append(keys, p.keys...)
		if p.cursor == "" {
			return sizes, keys
		}
		if len(p.keys) == 0 {
			t.Fatalf("an empty page with a cursor, after %v", sizes)
		}
		cursor = p.cursor
	}
	t.Fatal("1000 pages: the cursor does not advance")
	return nil, nil
}

// lsSIO sends a Socket.IO event with ack id n on s and returns the page
// of its acknowledgement.
func lsSIO(t *testing.T, s *sioClient, n int, event string) lsPage {
	t.Helper()
	s.send(fmt.Sprintf("42%d%s", n, event))
	prefix := fmt.Sprintf("43%d[", n)
	for range 100 {
		got := s.nextText()
		if !strings.HasPrefix(got, prefix) {
			continue // an event
		}
		var args []map[string]json.RawMessage
		if err := json.Unmarshal([]byte(got[len(prefix)-1:]), &args); err != nil || len(args) != 1 {
			t.Fatalf("ack %q: %v", got, err)
		}
		return lsParse(t, []byte(got), args[0])
	}
	t.Fatalf("no ack to %s", event)
	return lsPage{}
}

// lsAPI calls a list method of the server API and returns its page.
func lsAPI(t *testing.T, g *gateway, method string, params map[string]any) lsPage {
	t.Helper()
	body, _ := json.Marshal(params)
	status, code, raw, _ := apiPost(t, g, http.MethodPost, "/api/"+method, http.Header{"Content-Type": {"application/json"}}, body)
	if status != 200 || code != "" {
		t.Fatalf("%s %s: %d %s", method, body, status, raw)
	}
	var ans struct {
		Result map[string]json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal([]byte(raw), &ans); err != nil {
		t.Fatal(err)
	}
	return lsParse(t, []byte(raw), ans.Result)
}

// lsAPIError calls a list method of the server API and expects 400
// bad_request.
func lsAPIError(t *testing.T, g *gateway, method, body string) {
	t.Helper()
	status, code, raw, _ := apiPost(t, g, http.MethodPost, "/api/"+method, http.Header{"Content-Type": {"application/json"}}, []byte(body))
	if status != 400 || code != "bad_request" {
		t.Errorf("%s %s: %d %s, want 400 bad_request", method, body, status, raw)
	}
}

// TestListsRoomsClaim is the case: a token limited to
// ["lobby","team-*"] must not see "secret-hr-layoffs" (nor its count) in
// its rooms list, on either endpoint; an anonymous client (authentication
// optional) and the server API see every room. -rooms-list all shows the
// token every room; -rooms-list none shows nobody any.
func TestListsRoomsClaim(t *testing.T) {
	every := []string{"lobby", "random", "secret-hr-layoffs", "team-red"}
	claims := hdWith(hdClaims("alice"), "rooms", []string{"lobby", "team-*"})
	for _, tc := range []struct {
		mode              string // -rooms-list; "" for the default
		limited, everyone []string
	}{
		{"", []string{"lobby", "team-red"}, every},
		{"permitted", []string{"lobby", "team-red"}, every},
		{"all", every, every},
		{"none", nil, nil},
	} {
		name := tc.mode
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			args := []string{"-jwt-secret", hdSecret}
			if tc.mode != "" {
				args = append(args, "-rooms-list", tc.mode)
			}
			g := startGateway(t, args...)
			other := dial(t, g)
			lsJoin(t, other, every)

			limited, _ := hdOpen(t, g, "/ws", hdBearer(hdHS256(t, claims)))
			r := hdExpectAck(limited, map[string]any{"type": "rooms"})
			b, _ := json.Marshal(r["rooms"])
			if strings.Contains(string(b), "secret") != slices.Contains(tc.limited, "secret-hr-layoffs") {
				t.Errorf("limited token's rooms %s, want %v", b, tc.limited)
			}
			if p := lsNative(t, limited, map[string]any{"type": "rooms"}, ""); !slices.Equal(p.keys, tc.limited) || p.cursor != "" {
				t.Errorf("limited token's rooms %v (cursor %q), want %v", p.keys, p.cursor, tc.limited)
			}
			if p := lsNative(t, dial(t, g), map[string]any{"type": "rooms"}, ""); !slices.Equal(p.keys, tc.everyone) {
				t.Errorf("anonymous client's rooms %v, want %v", p.keys, tc.everyone)
			}

			s := sioDial(t, g, true)
			s.connect(`40{"token":"`+hdHS256(t, claims)+`"}`, "/")
			if p := lsSIO(t, s, 1, `["rooms"]`); !slices.Equal(p.keys, tc.limited) {
				t.Errorf("limited token's rooms on Socket.IO %v, want %v", p.keys, tc.limited)
			}

			// The server API is the backend's: every room, whatever the mode.
			if p := lsAPI(t, g, "rooms", map[string]any{}); !slices.Equal(p.keys, every) {
				t.Errorf("API rooms %v, want %v", p.keys, every)
			}
		})
	}
}

// TestListsRoomsPages: 2,000 rooms come back in pages of at most 100 by
// default, every room exactly once and in order, each reply a few KB; a
// limit over 1,000 gets 1,000; Socket.IO and the server API page the same
// way; a bad limit or cursor is an error.
func TestListsRoomsPages(t *testing.T) {
	g := startGateway(t, "-max-rooms", "-1", "-presence=false")
	var want []string
	for i := range 2000 {
		want = append(want, lsRoom(i))
	}
	holder := dial(t, g)
	lsJoin(t, holder, want)
	c := dial(t, g)
	rooms := map[string]any{"type": "rooms"}

	maxBytes := 0
	sizes, keys := lsAll(t, func(cursor string) lsPage {
		p := lsNative(t, c, rooms, cursor)
		maxBytes = max(maxBytes, p.bytes)
		return p
	})
	if len(sizes) != 20 || slices.Max(sizes) != 100 || !slices.Equal(keys, want) {
		t.Errorf("default pages %v: %d rooms, want 20 pages of 100 listing the 2000 rooms once, in order", sizes, len(keys))
	}
	// {"room":"room-0000","count":1} and a comma: 31 bytes a room.
	if maxBytes > 100*31+100 {
		t.Errorf("a page of 100 rooms took %d bytes", maxBytes)
	}

	if sizes, keys = lsAll(t, func(cursor string) lsPage {
		return lsNative(t, c, map[string]any{"type": "rooms", "limit": 1000}, cursor)
	}); !slices.Equal(sizes, []int{1000, 1000}) || !slices.Equal(keys, want) {
		t.Errorf("limit 1000: pages %v", sizes)
	}
	if p := lsNative(t, c, map[string]any{"type": "rooms", "limit": 5000}, ""); len(p.keys) != 1000 || p.cursor == "" {
		t.Errorf("limit 5000: %d rooms, cursor %q; want 1000 and a cursor", len(p.keys), p.cursor)
	}
	for _, bad := range []map[string]any{
		{"type": "rooms", "limit": 0},
		{"type": "rooms", "limit": "10"},
		{"type": "rooms", "limit": 2.5},
		{"type": "rooms", "cursor": "not a cursor"},
		{"type": "rooms", "cursor": 7},
	} {
		hdExpectError(c, bad, "missing_field")
	}

	t.Run("socket.io", func(t *testing.T) {
		s := sioDial(t, g, true)
		s.connect("40", "/")
		n := 0
		sizes, keys := lsAll(t, func(cursor string) lsPage {
			n++
			if cursor == "" {
				return lsSIO(t, s, n, `["rooms",{"limit":700}]`)
			}
			return lsSIO(t, s, n, `["rooms",{"limit":700,"cursor":"`+cursor+`"}]`)
		})
		if !slices.Equal(sizes, []int{700, 700, 600}) || !slices.Equal(keys, want) {
			t.Errorf("Socket.IO pages %v, %d rooms", sizes, len(keys))
		}
		// No argument, as before: the first 100.
		if p := lsSIO(t, s, 99, `["rooms"]`); !slices.Equal(p.keys, want[:100]) || p.cursor == "" {
			t.Errorf("Socket.IO rooms without arguments: %d rooms, cursor %q", len(p.keys), p.cursor)
		}
	})

	t.Run("api", func(t *testing.T) {
		sizes, keys := lsAll(t, func(cursor string) lsPage {
			return lsAPI(t, g, "rooms", map[string]any{"cursor": cursor})
		})
		if len(sizes) != 20 || slices.Max(sizes) != 100 || !slices.Equal(keys, want) {
			t.Errorf("API default pages %v, %d rooms", sizes, len(keys))
		}
		sizes, keys = lsAll(t, func(cursor string) lsPage {
			return lsAPI(t, g, "rooms", map[string]any{"prefix": "room-1", "limit": 300, "cursor": cursor})
		})
		if !slices.Equal(sizes, []int{300, 300, 300, 100}) || !slices.Equal(keys, want[1000:]) {
			t.Errorf("API prefix room-1, limit 300: pages %v", sizes)
		}
		if p := lsAPI(t, g, "rooms", map[string]any{"limit": 5000}); len(p.keys) != 1000 || p.cursor == "" {
			t.Errorf("API limit 5000: %d rooms", len(p.keys))
		}
		lsAPIError(t, g, "rooms", `{"limit":0}`)
		lsAPIError(t, g, "rooms", `{"limit":"10"}`)
		lsAPIError(t, g, "rooms", `{"cursor":"not a cursor"}`)
	})
}

// TestListsMembersPages: a room's members come in pages by connection id,
// on both endpoints and through the server API.
func TestListsMembersPages(t *testing.T) {
	g := startGateway(t, "-presence=false")
	var cs []*client
	var want []string
	for range 150 {
		c := dial(t, g)
		hdExpectAck(c, map[string]any{"type": "join", "room": "lobby"})
		cs = append(cs, c)
		want = append(want, c.id)
	}
	s := sioDial(t, g, true)
	sid := s.connect("40", "/")
	s.send(`420["join","lobby"]`)
	s.expect(`430[{"room":"lobby","count":151}]`)
	want = append(want, sid)
	sort.Strings(want)

	members := map[string]any{"type": "members", "room": "lobby"}
	sizes, keys := lsAll(t, func(cursor string) lsPage { return lsNative(t, cs[7], members, cursor) })
	if !slices.Equal(sizes, []int{100, 51}) || !slices.Equal(keys, want) {
		t.Errorf("default pages %v, %d members; want [100 51], every member once by id", sizes, len(keys))
	}
	sizes, keys = lsAll(t, func(cursor string) lsPage {
		return lsNative(t, cs[7], map[string]any{"type": "members", "room": "lobby", "limit": 40}, cursor)
	})
	if !slices.Equal(sizes, []int{40, 40, 40, 31}) || !slices.Equal(keys, want) {
		t.Errorf("limit 40: pages %v", sizes)
	}
	hdExpectError(cs[7], map[string]any{"type": "members", "room": "lobby", "limit": -1}, "missing_field")
	hdExpectError(dial(t, g), map[string]any{"type": "members", "room": "lobby", "limit": 5}, "not_member")

	n := 0
	sizes, keys = lsAll(t, func(cursor string) lsPage {
		n++
		if cursor == "" {
			return lsSIO(t, s, n, `["members","lobby",{"limit":60}]`)
		}
		return lsSIO(t, s, n, `["members","lobby",{"limit":60,"cursor":"`+cursor+`"}]`)
	})
	if !slices.Equal(sizes, []int{60, 60, 31}) || !slices.Equal(keys, want) {
		t.Errorf("Socket.IO pages %v", sizes)
	}
	if p := lsSIO(t, s, 99, `["members","lobby"]`); len(p.keys) != 100 || p.cursor == "" {
		t.Errorf("Socket.IO members without options: %d, cursor %q", len(p.keys), p.cursor)
	}

	sizes, keys = lsAll(t, func(cursor string) lsPage {
		return lsAPI(t, g, "members", map[string]any{"room": "lobby", "limit": 70, "cursor": cursor})
	})
	if !slices.Equal(sizes, []int{70, 70, 11}) || !slices.Equal(keys, want) {
		t.Errorf("API pages %v", sizes)
	}
	if p := lsAPI(t, g, "members", map[string]any{"room": "lobby"}); len(p.keys) != 100 || p.cursor == "" {
		t.Errorf("API default page: %d members, cursor %q", len(p.keys), p.cursor)
	}
	lsAPIError(t, g, "members", `{"room":"lobby","limit":1.5}`)
	lsAPIError(t, g, "members", `{"room":"lobby","cursor":"%%%"}`)
}
