package socketio

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func ph(n int) string { return fmt.Sprintf(`{"_placeholder":true,"num":%d}`, n) }

var countCases = []struct {
	name string
	in   string
	want int
	err  error
}{
	{"none", `["a",1,{"b":"c"}]`, 0, nil},
	{"one", `["a",` + ph(0) + `]`, 1, nil},
	{"two in order", `["a",` + ph(0) + `,` + ph(1) + `]`, 2, nil},
	{"two reversed", `["a",` + ph(1) + `,` + ph(0) + `]`, 2, nil},
	{"nested", `["message",{"room":"r","data":{"img":` + ph(0) + `,"list":[` + ph(2) + `,{"x":` + ph(1) + `}]}}]`, 3, nil},
	{"keys reordered with space", `["a", { "num" : 0 , "_placeholder" : true } ]`, 1, nil},
	{"escaped keys", `["a",{"\u005fplaceholder":true,"n\u0075m":0}]`, 1, nil},
	{"extra scalar member", `["a",{"_placeholder":true,"num":0,"x":"y"}]`, 1, nil},
	{"duplicate key last wins", `["a",{"_placeholder":true,"num":5,"num":0}]`, 1, nil},
	{"placeholder false is data", `["a",{"_placeholder":false,"num":7}]`, 0, nil},
	{"placeholder string is data", `["a",{"_placeholder":"true","num":7}]`, 0, nil},
	{"later false wins", `["a",{"_placeholder":true,"_placeholder":false}]`, 0, nil},
	{"inside string is data", `["a","{\"_placeholder\":true,\"num\":0}"]`, 0, nil},
	{"key inside value is data", `["a",{"x":"_placeholder","_placeholder2":true}]`, 0, nil},
	{"nested before mark is data", `["a",{"x":{},"_placeholder":true,"num":9}]`, 0, nil},
	{"empty object", `["a",{}]`, 0, nil},
	{"many", `[` + ph(0) + manyPlaceholders(1, 600) + `]`, 600, nil},

	{"invalid JSON", `["a",`, 0, ErrJSON},
	{"num missing", `["a",{"_placeholder":true}]`, 0, ErrPlaceholder},
	{"num negative", `["a",{"_placeholder":true,"num":-1}]`, 0, ErrPlaceholder},
	{"num fraction", `["a",{"_placeholder":true,"num":0.5}]`, 0, ErrPlaceholder},
	{"num exponent", `["a",{"_placeholder":true,"num":0e0}]`, 0, ErrPlaceholder},
	{"num string", `["a",{"_placeholder":true,"num":"0"}]`, 0, ErrPlaceholder},
	{"num null", `["a",{"_placeholder":true,"num":null}]`, 0, ErrPlaceholder},
	{"num too big", `["a",{"_placeholder":true,"num":99999999999999999999999}]`, 0, ErrPlaceholder},
	{"gap", `["a",` + ph(0) + `,` + ph(2) + `]`, 0, ErrPlaceholder},
	{"duplicate", `["a",` + ph(0) + `,` + ph(0) + `]`, 0, ErrPlaceholder},
	{"starts at one", `["a",` + ph(1) + `]`, 0, ErrPlaceholder},
	{"nested after mark", `["a",{"_placeholder":true,"num":0,"x":[]}]`, 0, ErrPlaceholder},
	{"big num alone", `["a",` + ph(1000) + `,"` + strings.Repeat("x", 40000) + `"]`, 0, ErrPlaceholder},
}

func manyPlaceholders(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		b.WriteString(",")
		b.WriteString(ph(i))
	}
	return b.String()
}

func TestCountPlaceholders(t *testing.T) {
	for _, tc := range countCases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := CountPlaceholders([]byte(tc.in))
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if n != tc.want {
				t.Fatalf("count = %d, want %d", n, tc.want)
			}
		})
	}
}

func TestInlineAttachments(t *testing.T) {
	att := [][]byte{{1, 2, 3, 4}, {0xff}, {}}
	tests := []struct {
		name string
		in   string
		want string
		err  error
	}{
		{"none", `{"a":[1,"x"]}`, `{"a":[1,"x"]}`, nil},
		{"data is a placeholder", ph(0), `{"_binary":"AQIDBA=="}`, nil},
		{"several", `{"img":` + ph(1) + `,"l":[ ` + ph(0) + ` , ` + ph(2) + `]}`,
			`{"img":{"_binary":"/w=="},"l":[ {"_binary":"AQIDBA=="} , {"_binary":""}]}`, nil},
		{"repeated num", `[` + ph(1) + `,` + ph(1) + `]`, `[{"_binary":"/w=="},{"_binary":"/w=="}]`, nil},
		{"string untouched", `"{\"_placeholder\":true,\"num\":0}"`, `"{\"_placeholder\":true,\"num\":0}"`, nil},
		{"num out of range", `[` + ph(3) + `]`, ``, ErrPlaceholder},
		{"malformed", `[{"_placeholder":true,"num":"x"}]`, ``, ErrPlaceholder},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := InlineAttachments([]byte("pre"), []byte(tt.in), att)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if string(got) != "pre"+tt.want {
				t.Fatalf("got  %s\nwant pre%s", got, tt.want)
			}
		})
	}
}

func TestPlaceholderAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	data := []byte(`["message",{"room":"r","data":[` + ph(1) + `,` + ph(0) + `]}]`)
	att := [][]byte{[]byte("hello"), []byte("world")}
	buf := make([]byte, 0, 256)
	n := testing.AllocsPerRun(100, func() {
		if c, err := CountPlaceholders(data); c != 2 || err != nil {
			t.Fatal(c, err)
		}
		var err error
		if buf, err = InlineAttachments(buf[:0], data, att); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per run, want 0", n)
	}
}
