// Package apiclient is a Go client for chatgate's server API (package api):
// the HTTP API through which an application's backend publishes to rooms,
// sends to connections and users, moves connections between rooms,
// disconnects clients and asks who is online, cluster-wide, and reads a
// room's history from the node it calls.
//
// Every method of the API is POST /api/<method> with a JSON object body;
// the gateway answers 200 {"result":{…}} or a 4xx {"error":{"code",
// "message"}}. A Client wraps that: each API method is a Go method taking
// a context.Context, returning the decoded result, and returning an
// *Error, which errors.As finds, for every answer of the API that is an
// error:
//
//	c := apiclient.New("http://127.0.0.1:9091", os.Getenv("CHATGATE_API_KEY"))
//	if err := c.Publish(ctx, "lobby", map[string]any{"text": "hello"}); err != nil {
//		var apiErr *apiclient.Error
//		if errors.As(err, &apiErr) && apiErr.Code == apiclient.CodeBadRequest {
//			// the room name or the data was refused
//		}
//	}
//
// Failures that are not the API's answer (the gateway unreachable, a
// timeout, a cancelled context) are returned as the net/http error,
// wrapped.
//
// Message data (the data argument of Publish, Broadcast and Send) is
// marshalled with encoding/json; pass a json.RawMessage to send JSON that
// is already encoded, byte for byte.
//
// A Client is safe for concurrent use by several goroutines.
package apiclient
