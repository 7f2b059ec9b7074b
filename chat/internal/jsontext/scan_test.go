package jsontext

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

func TestSkipValue(t *testing.T) {
	tests := []struct {
		name string
		in   string
		end  int
	}{
		{name: "empty", in: "", end: -1},
		{name: "string", in: `"a\"b\\"x`, end: 8},
		{name: "unclosed string", in: `"a\"`, end: -1},
		{name: "number", in: `-1.5e+7,`, end: 7},
		{name: "literal", in: `true]`, end: 4},
		{name: "nested", in: `{"a":[1,{"b":"}]"}]} `, end: 20},
		{name: "unclosed object", in: `{"a":[1]`, end: -1},
		{name: "not a value", in: `:`, end: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if end := SkipValue([]byte(tc.in), 0); end != tc.end {
				t.Errorf("SkipValue(%q) = %d, want %d", tc.in, end, tc.end)
			}
		})
	}
}

func TestScanObject(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		end     int
		members []string // key=value pairs, in order
	}{
		{name: "empty", in: `{ } x`, end: 3},
		{name: "members", in: `{"a" : 1 ,"b\u0063":{"x":[]},"d":"}"}`, end: 37,
			members: []string{`a=1`, `b\u0063={"x":[]}`, `d="}"`}},
		{name: "duplicate keys", in: `{"a":1,"a":2}`, end: 13, members: []string{`a=1`, `a=2`}},
		{name: "not an object", in: `["a"]`, end: -1},
		{name: "missing colon", in: `{"a" 1}`, end: -1},
		{name: "unquoted key", in: `{a:1}`, end: -1},
		{name: "trailing comma", in: `{"a":1,}`, end: -1, members: []string{`a=1`}},
		{name: "unclosed", in: `{"a":1`, end: -1, members: []string{`a=1`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			end := ScanObject([]byte(tc.in), 0, func(k, v []byte) { got = append(got, string(k)+"="+string(v)) })
			if end != tc.end || !reflect.DeepEqual(got, tc.members) {
				t.Errorf("ScanObject(%q) = %d %q, want %d %q", tc.in, end, got, tc.end, tc.members)
			}
		})
	}
}

// FuzzScanObject checks the scanner against encoding/json: on any input it
// stays in bounds, and on a valid object it finds exactly its members.
func FuzzScanObject(f *testing.F) {
	for _, s := range []string{`{}`, ` {"a":1} `, `{"a":{"b":[1,"]"]},"c":"\"}"}`, `{"a\u0062":null}`, `{"a":1,}`, `[1]`, `"x"`, `{"a"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := []byte(s)
		i := SkipSpace(p, 0)
		var keys [][]byte
		end := ScanObject(p, i, func(k, v []byte) {
			keys = append(keys, k)
			if SkipValue(v, 0) != len(v) {
				t.Fatalf("value %q is not one whole value", v)
			}
		})
		if end > len(p) {
			t.Fatalf("end %d past input of %d bytes", end, len(p))
		}
		var m map[string]json.RawMessage
		if !json.Valid(p) || json.Unmarshal(p, &m) != nil || m == nil {
			return
		}
		if end < 0 || SkipSpace(p, end) != len(p) {
			t.Fatalf("valid object %q: end %d", s, end)
		}
		var want [][]byte
		dec := json.NewDecoder(bytes.NewReader(p))
		dec.Token() // '{'
		for dec.More() {
			k, _ := dec.Token()
			want = append(want, []byte(k.(string)))
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				t.Fatal(err)
			}
		}
		if len(keys) != len(want) {
			t.Fatalf("%q: %d members, encoding/json finds %d", s, len(keys), len(want))
		}
		for j := range keys {
			if got := AppendUnquoted(nil, keys[j]); !bytes.Equal(got, want[j]) {
				t.Fatalf("%q: key %d is %q, encoding/json gives %q", s, j, got, want[j])
			}
		}
	})
}
