package auth

import (
	"testing"
)

func TestTokenFrom(t *testing.T) {
	tests := []struct {
		name  string
		authz string
		query string
		want  string // "<nil>" for nil
	}{
		{"none", "", "", "<nil>"},
		{"bearer", "Bearer abc.def.ghi", "", "abc.def.ghi"},
		{"bearer lower case", "bearer abc", "", "abc"},
		{"bearer upper case", "BEARER abc", "", "abc"},
		{"bearer tab and spaces", "\tBearer \t abc \t", "", "abc"},
		{"bearer empty", "Bearer ", "", "<nil>"},
		{"bearer only", "Bearer", "", "<nil>"},
		{"bearer glued", "Bearerabc", "", "<nil>"},
		{"basic ignored", "Basic dXNlcjpwYXNz", "", "<nil>"},
		{"basic falls back to query", "Basic dXNlcjpwYXNz", "token=q", "q"},
		{"header wins", "Bearer h", "token=q", "h"},
		{"query", "", "token=abc.def.ghi", "abc.def.ghi"},
		{"query among others", "", "EIO=4&transport=websocket&token=t1", "t1"},
		{"query first wins", "", "token=a&token=b", "a"},
		{"query empty", "", "token=", "<nil>"},
		{"query empty then set", "", "token=&token=b", "<nil>"},
		{"query no value", "", "token", "<nil>"},
		{"query other key", "", "tokens=a&xtoken=b&Token=c", "<nil>"},
		{"query escaped", "", "token=a%2Eb%2ec", "a.b.c"},
		{"query plus", "", "token=a+b", "a b"},
		{"query broken escape", "", "token=a%zz", "a%zz"},
		{"query escaped empty", "", "token=%20", " "},
		{"query with equals", "", "token=a=b", "a=b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := TokenFrom([]byte(tt.authz), []byte(tt.query))
			if s := str(got); s != tt.want {
				t.Fatalf("TokenFrom(%q, %q) = %s, want %s", tt.authz, tt.query, s, tt.want)
			}
		})
	}
	if TokenFrom(nil, nil) != nil {
		t.Fatal("nil inputs")
	}
}

func str(b []byte) string {
	if b == nil {
		return "<nil>"
	}
	return string(b)
}

func TestTokenFromAliases(t *testing.T) {
	q := []byte("token=abc")
	got := TokenFrom(nil, q)
	if &got[0] != &q[6] {
		t.Fatal("an unescaped token should alias the query")
	}
	if n := testing.AllocsPerRun(100, func() { TokenFrom([]byte("Bearer x"), q) }); n != 0 {
		t.Fatalf("TokenFrom allocates %v times", n)
	}
}

func TestTokenFromSocketIOAuth(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"token", `{"token":"abc.def.ghi"}`, "abc.def.ghi"},
		{"with others", `{"x":1,"token":"t","y":[1]}`, "t"},
		{"bearer inside", `{"token":"Bearer t"}`, "t"},
		{"escaped", `{"token":"a\u002eb"}`, "a.b"},
		{"empty object", `{}`, "<nil>"},
		{"empty token", `{"token":""}`, "<nil>"},
		{"null token", `{"token":null}`, "<nil>"},
		{"number token", `{"token":42}`, "42"},
		{"object token", `{"token":{"a":1}}`, `{"a":1}`},
		{"not json", `token`, "<nil>"},
		{"array", `["t"]`, "<nil>"},
		{"string", `"t"`, "<nil>"},
		{"empty", ``, "<nil>"},
		{"null", `null`, "<nil>"},
		{"last duplicate wins", `{"token":"a","token":"b"}`, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := str(TokenFromSocketIOAuth([]byte(tt.in))); got != tt.want {
				t.Fatalf("TokenFromSocketIOAuth(%s) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}
