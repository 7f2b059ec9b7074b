package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/native"
	"github.com/chatgate/chatgate/chat/socketio"
	"github.com/chatgate/chatgate/history"
	"github.com/chatgate/chatgate/payload"
	"github.com/chatgate/chatgate/rooms"
)

// The OpenAPI description of the API (docs/openapi.yaml) checked against
// the code: one path per entry of the method table, request schemas whose
// properties are the JSON fields of the params structs the methods decode,
// required fields as the methods enforce them, the limits of methods.go,
// and real answers of the server validated against the response schemas.

const specFile = "../docs/openapi.yaml"

// specParams maps each method to the params struct it decodes. A method
// added to the table must be added here (and to the spec).
var specParams = map[string]any{
	"publish":     publishParams{},
	"broadcast":   broadcastParams{},
	"send":        sendParams{},
	"join":        membershipParams{},
	"leave":       membershipParams{},
	"disconnect":  disconnectParams{},
	"rooms":       roomsParams{},
	"members":     membersParams{},
	"connections": connectionsParams{},
	"info":        struct{}{},
	"batch":       batchParams{},
	"revoke":      revokeParams{},
	"history":     historyParams{},
}

// specResults maps each method to the type of its result.
var specResults = map[string]any{
	"publish":     empty{},
	"broadcast":   empty{},
	"send":        sendResult{},
	"join":        empty{},
	"leave":       empty{},
	"disconnect":  disconnectResult{},
	"revoke":      disconnectResult{},
	"rooms":       roomsResult{},
	"members":     membersResult{},
	"connections": connectionsResult{},
	"info":        infoResult{},
	"history":     historyResult{},
	"batch": struct {
		Replies []reply `json:"replies"`
	}{},
}

// specErrorCodes are the error codes of errors.go.
var specErrorCodes = []string{CodeBadRequest, CodeUnauthorized, CodeNotFound, CodeUnknownMethod, CodeTooLarge, CodeInternal,
	CodeBadOffset, CodeUnrecoverable, CodeNoHistory, CodeAckTimeout, CodeAckDisconnect, CodeAckUnsupported, CodeTooManyAcks}

func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(specFile)
	if err != nil {
		t.Fatalf("loading %s: %v", specFile, err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("%s is not a valid OpenAPI document: %v", specFile, err)
	}
	return doc
}

// specOp returns the POST operation of method's path.
func specOp(t *testing.T, doc *openapi3.T, method string) *openapi3.Operation {
	t.Helper()
	item := doc.Paths.Value("/api/" + method)
	if item == nil || item.Post == nil {
		t.Fatalf("%s: no POST /api/%s", specFile, method)
	}
	return item.Post
}

func specRequestSchema(t *testing.T, op *openapi3.Operation) *openapi3.Schema {
	t.Helper()
	if op.RequestBody == nil || op.RequestBody.Value == nil || !op.RequestBody.Value.Required {
		t.Fatalf("%s: no required request body", op.OperationID)
	}
	mt := op.RequestBody.Value.Content.Get("application/json")
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
		t.Fatalf("%s: no application/json request schema", op.OperationID)
	}
	return mt.Schema.Value
}

// specResultSchema returns the schema of the "result" of op's 200 answer.
func specResultSchema(t *testing.T, op *openapi3.Operation) *openapi3.Schema {
	t.Helper()
	r := op.Responses.Status(http.StatusOK)
	if r == nil || r.Value == nil {
		t.Fatalf("%s: no 200 response", op.OperationID)
	}
	mt := r.Value.Content.Get("application/json")
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
		t.Fatalf("%s: no application/json schema for 200", op.OperationID)
	}
	s := mt.Schema.Value
	if !slices.Equal(s.Required, []string{"result"}) || s.Properties["result"] == nil {
		t.Fatalf("%s: the 200 answer must be {\"result\":…}, required", op.OperationID)
	}
	return s.Properties["result"].Value
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestOpenAPIPaths: the spec is valid and has exactly one path per method
// of the table, each with POST only.
func TestOpenAPIPaths(t *testing.T) {
	doc := loadSpec(t)
	var want []string
	for m := range methods {
		want = append(want, "/api/"+m)
	}
	sort.Strings(want)
	got := sortedKeys(doc.Paths.Map())
	if !slices.Equal(got, want) {
		t.Errorf("%s paths = %v\nwant one per method of the table: %v", specFile, got, want)
	}
	for path, item := range doc.Paths.Map() {
		if ops := item.Operations(); len(ops) != 1 || item.Post == nil {
			t.Errorf("%s: want POST only, have %v", path, sortedKeys(ops))
		}
		if item.Post != nil && "/api/"+item.Post.OperationID != path {
			t.Errorf("%s: operationId %q, want the method's name", path, item.Post.OperationID)
		}
	}
	if got, want := sortedKeys(specParams), sortedKeys(methods); !slices.Equal(got, want) {
		t.Errorf("specParams lists %v, the method table %v: add the new method's params struct", got, want)
	}
	if got, want := sortedKeys(specResults), sortedKeys(methods); !slices.Equal(got, want) {
		t.Errorf("specResults lists %v, the method table %v: add the new method's result type", got, want)
	}
	// Every method but batch may be a batch command.
	cmd := doc.Components.Schemas["Command"].Value.Properties["method"].Value
	var enum, inBatch []string
	for _, v := range cmd.Enum {
		enum = append(enum, v.(string))
	}
	for m := range methods {
		if m != "batch" {
			inBatch = append(inBatch, m)
		}
	}
	sort.Strings(enum)
	sort.Strings(inBatch)
	if !slices.Equal(enum, inBatch) {
		t.Errorf("Command.method enum = %v, want %v", enum, inBatch)
	}
	// The security scheme: the Authorization header.
	sec := doc.Components.SecuritySchemes["apikey"]
	if sec == nil || sec.Value.Type != "apiKey" || sec.Value.In != "header" || sec.Value.Name != "Authorization" {
		t.Errorf("security scheme apikey: want an apiKey in the Authorization header")
	}
}

// jsonFields returns the JSON names of t's fields as encoding/json sees
// them: embedded structs without a tag are flattened, "-" is skipped.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
	return out
}

// compareSchema checks that schema s describes values of type typ: the
// same property names for a struct (recursively), items for a slice.
func compareSchema(t *testing.T, where string, s *openapi3.Schema, typ reflect.Type) {
	t.Helper()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch typ.Kind() {
	case reflect.Struct:
		if !s.Type.Is(openapi3.TypeObject) {
			t.Errorf("%s: schema type %v, want object (Go %s)", where, s.Type, typ)
			return
		}
		fields := jsonFields(typ)
		if got, want := sortedKeys(s.Properties), sortedKeys(fields); !slices.Equal(got, want) {
			t.Errorf("%s: schema properties %v, want the JSON fields of %s: %v", where, got, typ, want)
		}
		if s.AdditionalProperties.Has == nil || *s.AdditionalProperties.Has {
			t.Errorf("%s: want additionalProperties: false (the code refuses or never writes other keys)", where)
		}
		for name, f := range fields {
			if p := s.Properties[name]; p != nil && p.Value != nil {
				compareSchema(t, where+"."+name, p.Value, f.Type)
			}
		}
	case reflect.Slice:
		if typ.Elem().Kind() == reflect.Uint8 { // json.RawMessage: any JSON value
			return
		}
		if !s.Type.Is(openapi3.TypeArray) || s.Items == nil {
			t.Errorf("%s: schema type %v, want array (Go %s)", where, s.Type, typ)
			return
		}
		compareSchema(t, where+"[]", s.Items.Value, typ.Elem())
	case reflect.String:
		if !s.Type.Is(openapi3.TypeString) {
			t.Errorf("%s: schema type %v, want string", where, s.Type)
		}
	case reflect.Int, reflect.Int64, reflect.Uint16, reflect.Uint64:
		if !s.Type.Is(openapi3.TypeInteger) {
			t.Errorf("%s: schema type %v, want integer", where, s.Type)
		}
	case reflect.Float64:
		if !s.Type.Is(openapi3.TypeNumber) {
			t.Errorf("%s: schema type %v, want number", where, s.Type)
		}
	}
}

// TestOpenAPISchemasMatchStructs: every request schema's properties are the
// JSON fields of the params struct its method decodes, and every result
// schema's those of the result type.
func TestOpenAPISchemasMatchStructs(t *testing.T) {
	doc := loadSpec(t)
	for _, m := range sortedKeys(methods) {
		op := specOp(t, doc, m)
		if p, ok := specParams[m]; ok {
			compareSchema(t, m+" params", specRequestSchema(t, op), reflect.TypeOf(p))
		}
		if r, ok := specResults[m]; ok {
			compareSchema(t, m+" result", specResultSchema(t, op), reflect.TypeOf(r))
		}
	}
	// The error body.
	compareSchema(t, "ErrorBody", doc.Components.Schemas["ErrorBody"].Value, reflect.TypeOf(Error{}))
	var codes []string
	for _, v := range doc.Components.Schemas["ErrorBody"].Value.Properties["code"].Value.Enum {
		codes = append(codes, v.(string))
	}
	want := slices.Clone(specErrorCodes)
	sort.Strings(codes)
	sort.Strings(want)
	if !slices.Equal(codes, want) {
		t.Errorf("ErrorBody.code enum = %v, want the codes of errors.go: %v", codes, want)
	}
}

// TestOpenAPILimits: the spec's limits are those of methods.go.
func TestOpenAPILimits(t *testing.T) {
	doc := loadSpec(t)
	sc := func(name string) *openapi3.Schema { return doc.Components.Schemas[name].Value }
	prop := func(schema, p string) *openapi3.Schema { return sc(schema).Properties[p].Value }
	maxLen := func(s *openapi3.Schema) int {
		if s.MaxLength == nil {
			return -1
		}
		return int(*s.MaxLength)
	}
	maxItems := func(s *openapi3.Schema) int {
		if s.MaxItems == nil {
			return -1
		}
		return int(*s.MaxItems)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("Room maxLength", maxLen(sc("Room")), chat.MaxRoomLen)
	check("Room minLength", sc("Room").MinLength, 1)
	check("Event maxLength", maxLen(sc("Event")), maxEventLen)
	check("DisconnectParams.reason maxLength", maxLen(prop("DisconnectParams", "reason")), maxReasonLen)
	check("BroadcastParams.rooms maxItems", maxItems(prop("BroadcastParams", "rooms")), maxRooms)
	check("BroadcastParams.rooms minItems", prop("BroadcastParams", "rooms").MinItems, 1)
	check("BatchParams.commands maxItems", maxItems(prop("BatchParams", "commands")), maxBatch)
	check("ListLimit minimum", *sc("ListLimit").Min, 1)
	check("ListLimit default", sc("ListLimit").Default, chat.DefaultListLimit)
	check("RoomsResult.rooms maxItems", maxItems(prop("RoomsResult", "rooms")), chat.MaxListLimit)
	check("MembersResult.members maxItems", maxItems(prop("MembersResult", "members")), chat.MaxListLimit)
	hl := prop("HistoryParams", "limit")
	check("HistoryParams.limit minimum", *hl.Min, 1)
	check("HistoryParams.limit maximum", *hl.Max, chat.MaxHistoryLimit)
	check("HistoryParams.limit default", hl.Default, chat.DefaultHistoryLimit)
	check("HistoryResult.messages maxItems", maxItems(prop("HistoryResult", "messages")), chat.MaxHistoryLimit)
	code := prop("DisconnectParams", "code")
	check("DisconnectParams.code minimum", *code.Min, 4000)
	check("DisconnectParams.code maximum", *code.Max, 4999)
	check("DisconnectParams.code default", code.Default, chat.DisconnectServer.Code)
	if !sc("Data").Nullable {
		t.Errorf("Data: any JSON value, null included: want nullable")
	}
}

// TestOpenAPIRequired: a field the spec marks required is one the method
// refuses to go without, and the other way round. Each method's request
// example must be accepted (valid for the spec, not a bad_request for the
// server); removing a property from it must give bad_request exactly when
// the spec requires it (directly, or as one branch of a oneOf such as
// "client" or "user").
func TestOpenAPIRequired(t *testing.T) {
	doc := loadSpec(t)
	for _, m := range sortedKeys(methods) {
		op := specOp(t, doc, m)
		schema := specRequestSchema(t, op)
		ex, ok := op.RequestBody.Value.Content.Get("application/json").Example.(map[string]any)
		if !ok {
			t.Errorf("%s: the request body needs an example object", m)
			continue
		}
		required := map[string]bool{}
		for _, r := range schema.Required {
			required[r] = true
		}
		alternatives := map[string]bool{}
		for _, alt := range schema.OneOf {
			for _, r := range alt.Value.Required {
				alternatives[r] = true
			}
		}
		for name := range schema.Properties {
			if _, in := ex[name]; !in && !alternatives[name] {
				t.Errorf("%s: the example lacks %q: give every property (but one of a oneOf)", m, name)
			}
		}
		srv := newSpecServer(t, "")
		body, _ := json.Marshal(ex)
		if err := specValidateRequest(doc, op, m, body); err != nil {
			t.Errorf("%s: the example does not match the request schema: %v", m, err)
		}
		if status, raw := srv.post(m, body); status == http.StatusBadRequest {
			t.Errorf("%s: the example is refused: %s", m, raw)
		}
		for name := range ex {
			cut := map[string]any{}
			for k, v := range ex {
				if k != name {
					cut[k] = v
				}
			}
			body, _ := json.Marshal(cut)
			status, raw := srv.post(m, body)
			refused := status == http.StatusBadRequest
			switch {
			case refused && !required[name] && !alternatives[name]:
				t.Errorf("%s without %q is refused (%s), but the spec does not require it", m, name, raw)
			case !refused && required[name]:
				t.Errorf("%s without %q is accepted (%d %s), but the spec requires it", m, name, status, raw)
			case !refused && alternatives[name]:
				t.Errorf("%s without %q is accepted (%d %s), but the spec's oneOf requires it", m, name, status, raw)
			}
		}
	}
}

// TestOpenAPIResponses runs every method on a hub with a few clients and
// validates the answers, and the error answers of each kind, against the
// spec's response schemas.
func TestOpenAPIResponses(t *testing.T) {
	doc := loadSpec(t)
	srv := newSpecServer(t, "")
	alice := srv.open(&auth.Identity{Subject: "alice"}, 0)
	bob := srv.open(nil, 1)
	srv.open(&auth.Identity{Subject: "alice"}, 1) // alice's second connection
	acker := srv.hub.Open(specAcker{}, 0, 1, nil) // answers acks by its data

	calls := []struct {
		method, body string
		status       int
	}{
		{"join", `{"client":"` + alice.ID() + `","room":"lobby"}`, 200},
		{"join", `{"client":"` + bob.ID() + `","room":"lobby"}`, 200},
		{"join", `{"user":"alice","room":"team-red"}`, 200},
		{"join", `{"client":"nobody","room":"lobby"}`, 404},
		{"leave", `{"user":"alice","room":"team-red"}`, 200},
		{"leave", `{"user":"nobody","room":"team-red"}`, 404},
		{"publish", `{"room":"lobby","data":{"text":"hi"},"event":"notice"}`, 200},
		{"publish", `{"room":"lobby","data":null}`, 200},
		{"publish", `{"room":"","data":1}`, 400},
		{"broadcast", `{"rooms":["lobby","empty"],"data":[1,2]}`, 200},
		{"broadcast", `{"rooms":[],"data":1}`, 400},
		{"send", `{"user":"alice","data":"x","event":"notify"}`, 200},
		{"send", `{"client":"` + bob.ID() + `","data":{"a":1}}`, 200},
		{"send", `{"client":"x","user":"alice","data":1}`, 400},
		{"send", `{"client":"` + acker.ID() + `","data":"ok","ack":true,"timeout":1000}`, 200},
		{"send", `{"client":"` + acker.ID() + `","data":"timeout","ack":true}`, 504},
		{"send", `{"client":"` + acker.ID() + `","data":"gone","ack":true}`, 410},
		{"send", `{"client":"` + acker.ID() + `","data":"full","ack":true}`, 429},
		{"send", `{"client":"` + bob.ID() + `","data":1,"ack":true}`, 422},
		{"send", `{"client":"nobody","data":1,"ack":true}`, 404},
		{"send", `{"user":"alice","data":1,"ack":true}`, 400},
		{"send", `{"client":"` + acker.ID() + `","data":1,"ack":true,"timeout":25001}`, 400},
		{"join", `{"client":"` + bob.ID() + `","room":"zoo"}`, 200},
		{"rooms", `{}`, 200},
		{"rooms", `{"prefix":"lob"}`, 200},
		{"rooms", `{"limit":1}`, 200},
		{"rooms", `{"limit":1,"cursor":"` + chat.EncodeCursor("lobby") + `"}`, 200},
		{"rooms", `{"limit":0}`, 400},
		{"rooms", `{"limit":1.5}`, 400},
		{"rooms", `{"cursor":"not a cursor"}`, 400},
		{"members", `{"room":"lobby"}`, 200},
		{"members", `{"room":"lobby","limit":1}`, 200},
		{"members", `{"room":"lobby","limit":"1"}`, 400},
		{"members", `{"room":"nowhere"}`, 200},
		{"connections", `{}`, 200},
		{"connections", `{"user":"alice"}`, 200},
		{"info", `{}`, 200},
		{"info", `{"verbose":true}`, 400},
		{"batch", `{"commands":[{"method":"rooms"},{"method":"members","params":{"room":"lobby"}},{"method":"batch"},{"method":"nope"},{"method":"join","params":{"client":"nobody","room":"x"}}]}`, 200},
		{"batch", `{}`, 200},
		{"disconnect", `{"user":"alice","code":4001,"reason":"bye"}`, 200},
		{"disconnect", `{"client":"` + bob.ID() + `"}`, 200},
		{"disconnect", `{"client":"` + bob.ID() + `","code":1000}`, 400},
		{"publish", `[1]`, 400},
		{"publish", `{"room":"lobby","data":1,"extra":1}`, 400},
	}
	for _, c := range calls {
		status, raw := srv.post(c.method, []byte(c.body))
		if status != c.status {
			t.Errorf("%s %s: status %d, want %d: %s", c.method, c.body, status, c.status, raw)
		}
		specValidateResponse(t, doc, c.method, status, raw)
	}

	// The lists must have had entries, so that their item schemas were
	// exercised above.
	for m, in := range map[string]string{"rooms": `{}`, "members": `{"room":"lobby"}`, "connections": `{}`, "info": `{}`} {
		_, raw := srv.post(m, []byte(in))
		var res struct {
			Result map[string][]json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(raw, &res); err != nil || len(res.Result) != 1 {
			t.Fatalf("%s: %s (%v)", m, raw, err)
		}
		for key, list := range res.Result {
			if len(list) == 0 {
				t.Errorf("%s: %q is empty: %s", m, key, raw)
			}
		}
	}

	// What the clients got: the shapes docs/api.md shows.
	srv.tr.mu.Lock()
	pushed := strings.Join(srv.tr.texts, "\n")
	srv.tr.mu.Unlock()
	for _, want := range []string{
		`{"type":"joined","room":"lobby","count":1}`,
		`{"type":"left","room":"team-red","count":1}`,
		`{"type":"message","room":"lobby","from":"","nick":"","data":{"text":"hi"},"ts":`,
		`,"event":"notice"}`,
		`{"type":"message","from":"","nick":"","data":"x","ts":`,
		`,"event":"notify"}`,
	} {
		if !strings.Contains(pushed, want) {
			t.Errorf("no payload to a client contains %s; got:\n%s", want, pushed)
		}
	}

	// history: off on srv; on hs, a page with every kind of message (an
	// emit's args, inlined attachments) and each of its errors.
	status, raw := srv.post("history", []byte(`{"room":"lobby"}`))
	checkStatus(t, "history off", status, http.StatusNotFound, raw)
	specValidateResponse(t, doc, "history", status, raw)
	hs := newSpecServerWith(t, "", history.NewMemory(history.Config{Size: 10}))
	hs.post("publish", []byte(`{"room":"lobby","data":{"text":"hi"},"event":"notice"}`))
	hs.post("publish", []byte(`{"room":"lobby","data":null}`))
	appendHistory(hs.hist, historyEmit, historyBinary)
	status, raw = hs.post("history", []byte(`{"room":"lobby"}`))
	checkStatus(t, "history", status, http.StatusOK, raw)
	specValidateResponse(t, doc, "history", status, raw)
	var page struct {
		Result historyResult `json:"result"`
	}
	if err := json.Unmarshal(raw, &page); err != nil || len(page.Result.Messages) != 4 {
		t.Fatalf("history: %s (%v), want 4 messages", raw, err)
	}
	pos := page.Result
	for _, c := range []struct {
		body   string
		status int
	}{
		{fmt.Sprintf(`{"room":"lobby","since":{"offset":1,"epoch":%q},"limit":2}`, pos.Epoch), 200},
		{fmt.Sprintf(`{"room":"lobby","since":{"offset":%d,"epoch":%q}}`, pos.Offset+1, pos.Epoch), 400},
		{`{"room":"lobby","since":{"offset":1,"epoch":"000000000000"}}`, 410},
		{`{"room":"lobby","since":{"offset":1}}`, 400},
		{`{"room":"lobby","limit":5000}`, 400},
	} {
		status, raw := hs.post("history", []byte(c.body))
		checkStatus(t, "history "+c.body, status, c.status, raw)
		specValidateResponse(t, doc, "history", status, raw)
	}

	// Errors outside the methods.
	keyed := newSpecServer(t, "s3cret")
	status, raw = keyed.do(http.MethodPost, "publish", "application/json", `{"room":"a","data":1}`, "apikey wrong")
	checkStatus(t, "wrong key", status, http.StatusUnauthorized, raw)
	specValidateResponse(t, doc, "publish", status, raw)
	status, raw = keyed.do(http.MethodPost, "info", "application/json", `{}`, "apikey s3cret")
	checkStatus(t, "right key", status, http.StatusOK, raw)
	specValidateResponse(t, doc, "info", status, raw)

	status, raw = srv.do(http.MethodPost, "info", "text/plain", `{}`, "")
	checkStatus(t, "text/plain", status, http.StatusUnsupportedMediaType, raw)
	specValidateResponse(t, doc, "info", status, raw)

	big := `{"room":"a","data":"` + strings.Repeat("x", MaxBody) + `"}`
	status, raw = srv.do(http.MethodPost, "publish", "application/json", big, "")
	checkStatus(t, "body over 1 MiB", status, http.StatusRequestEntityTooLarge, raw)
	specValidateResponse(t, doc, "publish", status, raw)

	// No operation describes these; their bodies are still Errors.
	status, raw = srv.do(http.MethodGet, "info", "", "", "")
	checkStatus(t, "GET", status, http.StatusMethodNotAllowed, raw)
	specValidateError(t, doc, "GET", raw, CodeBadRequest)
	status, raw = srv.do(http.MethodPost, "nope", "application/json", `{}`, "")
	checkStatus(t, "unknown method", status, http.StatusNotFound, raw)
	specValidateError(t, doc, "unknown method", raw, CodeUnknownMethod)

	// A node that does not answer: left out of lists; a join succeeds
	// with the connections of the nodes that answered, and is a 5xx when
	// only the silent node could have had any.
	cl := newSpecServer(t, "")
	cl.api.cl = specDeadCluster{}
	cl.open(&auth.Identity{Subject: "carol"}, 0)
	status, raw = cl.post("info", []byte(`{}`))
	checkStatus(t, "info, a node down", status, http.StatusOK, raw)
	specValidateResponse(t, doc, "info", status, raw)
	status, raw = cl.post("join", []byte(`{"user":"carol","room":"r"}`))
	checkStatus(t, "join, a node down, carol here", status, http.StatusOK, raw)
	specValidateResponse(t, doc, "join", status, raw)
	status, raw = cl.post("join", []byte(`{"user":"dave","room":"r"}`))
	checkStatus(t, "join, a node down, dave only there", status, http.StatusServiceUnavailable, raw)
	specValidateResponse(t, doc, "join", status, raw)
}

func checkStatus(t *testing.T, what string, got, want int, raw []byte) {
	t.Helper()
	if got != want {
		t.Errorf("%s: status %d, want %d: %s", what, got, want, raw)
	}
}

// specRoute is the route of method's operation, for openapi3filter.
func specRoute(doc *openapi3.T, method string) *routers.Route {
	path := "/api/" + method
	item := doc.Paths.Value(path)
	return &routers.Route{Spec: doc, Path: path, PathItem: item, Method: http.MethodPost, Operation: item.Post}
}

func specValidateRequest(doc *openapi3.T, op *openapi3.Operation, method string, body []byte) error {
	req := httptest.NewRequest(http.MethodPost, "/api/"+method, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	in := &openapi3filter.RequestValidationInput{Request: req, Route: specRoute(doc, method),
		Options: &openapi3filter.Options{MultiError: true}}
	return openapi3filter.ValidateRequestBody(context.Background(), in, op.RequestBody.Value)
}

// specValidateResponse validates an answer of method against the spec;
// a status the operation does not list is an error.
func specValidateResponse(t *testing.T, doc *openapi3.T, method string, status int, body []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/api/"+method, nil)
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, Route: specRoute(doc, method)},
		Status:                 status,
		Header:                 http.Header{"Content-Type": []string{"application/json"}},
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s answer %d %s does not match %s: %v", method, status, body, specFile, err)
	}
}

// specValidateError validates an answer no operation describes against
// the Error schema.
func specValidateError(t *testing.T, doc *openapi3.T, what string, body []byte, code string) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: %v: %s", what, err, body)
	}
	if err := doc.Components.Schemas["Error"].Value.VisitJSON(v); err != nil {
		t.Errorf("%s: answer %s does not match the Error schema: %v", what, body, err)
	}
	if !bytes.Contains(body, []byte(`"code":"`+code+`"`)) {
		t.Errorf("%s: answer %s, want code %s", what, body, code)
	}
}

// ---- a server over a hub with a recording transport ----

type specServer struct {
	t    *testing.T
	hub  *chat.Hub
	hist chat.History // nil: history off
	api  *Server
	tr   *specTransport
}

func newSpecServer(t *testing.T, key string) *specServer {
	t.Helper()
	return newSpecServerWith(t, key, nil)
}

// newSpecServerWith is newSpecServer over a hub with history log hist
// (nil: history off).
func newSpecServerWith(t *testing.T, key string, hist chat.History) *specServer {
	t.Helper()
	hub := chat.NewHub(chat.Config{
		Codecs:   []chat.Codec{native.Codec{}, socketio.Codec{}},
		Node:     "spc1",
		Presence: true,
		History:  hist,
	}, rooms.New(2))
	tr := &specTransport{}
	hub.SetTransport(tr)
	s := New(Config{Key: key, Version: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stats: func() Stats {
		return Stats{Connections: hub.Sessions(), Rooms: hub.Table().Len()}
	}}, hub, nil)
	return &specServer{t: t, hub: hub, hist: hist, api: s, tr: tr}
}

func (s *specServer) open(ident *auth.Identity, loop int) *chat.Session {
	return s.hub.Open(specPeer{}, loop, 0, ident)
}

func (s *specServer) post(method string, body []byte) (int, []byte) {
	return s.do(http.MethodPost, method, "application/json", string(body), "")
}

func (s *specServer) do(httpMethod, method, contentType, body, auth string) (int, []byte) {
	req := httptest.NewRequest(httpMethod, "/api/"+method, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	s.api.Handler().ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		s.t.Errorf("%s /api/%s: Content-Type %q, want application/json", httpMethod, method, ct)
	}
	return rec.Code, rec.Body.Bytes()
}

// specPeer is a session's peer: it describes itself as a WebSocket.
type specPeer struct{}

func (specPeer) WriteReply(*chat.Reply) {}
func (specPeer) Describe() (protocol, transport, remote string) {
	return "native", "websocket", "192.0.2.1"
}

// specAcker is a Socket.IO-like peer that answers a send with ack at
// once: the error its data names ("timeout", "gone", "full"), else the
// arguments ["ok",<data>].
type specAcker struct{ specPeer }

func (specAcker) EmitWithAck(m *chat.Message, _ time.Duration, done chat.AckDone) {
	switch string(m.Data) {
	case `"timeout"`:
		done(nil, chat.ErrAckTimeout)
	case `"gone"`:
		done(nil, chat.ErrAckDisconnect)
	case `"full"`:
		done(nil, chat.ErrTooManyAcks)
	default:
		done([]byte(`["ok",`+string(m.Data)+`]`), nil)
	}
}

// specTransport records the text of every payload and releases it.
type specTransport struct {
	mu    sync.Mutex
	texts []string
}

func (tr *specTransport) take(p *payload.Shared) {
	if p == nil {
		return
	}
	tr.mu.Lock()
	tr.texts = append(tr.texts, string(p.Payload()))
	tr.mu.Unlock()
	p.Release()
}

func (tr *specTransport) Fanout(_ *rooms.Snapshot, _ rooms.Member, p *chat.Payloads) {
	for _, pl := range p {
		tr.take(pl)
	}
}

func (tr *specTransport) Push(_ *chat.Session, p *payload.Shared)   { tr.take(p) }
func (tr *specTransport) Disconnect(*chat.Session, chat.Disconnect) {}
func (tr *specTransport) Exec(_ *chat.Session, fn func())           { fn() }

// specDeadCluster is a cluster of this node and one that never answers.
type specDeadCluster struct{}

func (specDeadCluster) Nodes() []string                { return []string{"dead"} }
func (specDeadCluster) NodeOf([]byte) (string, bool)   { return "dead", true }
func (specDeadCluster) UserNodes(user string) []string { return []string{"dead"} }
func (specDeadCluster) Call(context.Context, string, []byte) ([]byte, error) {
	return nil, errors.New("no answer")
}
