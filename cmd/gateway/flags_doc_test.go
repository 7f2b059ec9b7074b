package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The documentation checked against the gateway's flags, relative to this
// package's directory (go test runs in it).
var flagDocs = []string{"../../README.md", "../../docs/*.md"}

// notGatewayFlags are flags the documentation names in a flag-like place
// (a code span that starts with the flag) that belong to other programs.
// Flags on a command line are only collected when the command is the
// gateway, so tools' command lines need no entry here.
var notGatewayFlags = map[string]string{
	"race":        "go test -race",                       // README.md: the tests run under `-race`
	"run":         "go test -run",                        // benchmark and test commands
	"bench":       "go test -bench",                      // micro-benchmark commands
	"benchmem":    "go test -benchmem",                   // micro-benchmark commands
	"benchtime":   "go test -benchtime",                  // docs/benchmarks.md: `-benchtime 3000x`
	"secret":      "auth/cmd/mint -secret",               // docs/security.md: the token minting tool
	"js":          "nats-server -js (JetStream)",         // a NATS server option, should docs/cluster.md name it
	"gateway-url": "examples/rooms/backend -gateway-url", // docs/backend.md: the example backend's flag
	"publisher":   "bench/cmd/load -publisher",           // docs/benchmarks.md: the load tool's API publisher
}

// builtinFlags are accepted by every flag.FlagSet without being defined.
var builtinFlags = map[string]bool{"h": true, "help": true}

// gatewayFlags returns the names of the flags `gateway -h` lists.
func gatewayFlags(t *testing.T) map[string]bool {
	t.Helper()
	// The flags' environment fallbacks (CHATGATE_*) are read before -h is
	// seen; a stray one with a bad value must not fail the test.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "CHATGATE_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	var out bytes.Buffer
	if err := run([]string{"-h"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("gateway -h: got error %v, want flag.ErrHelp; output:\n%s", err, out.String())
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9][a-z0-9-]*)`).FindAllStringSubmatch(out.String(), -1) {
		flags[m[1]] = true
	}
	if len(flags) < 10 {
		t.Fatalf("gateway -h lists only %d flags; output:\n%s", len(flags), out.String())
	}
	return flags
}

// docFiles returns the documentation files, in order.
func docFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range flagDocs {
		m, err := filepath.Glob(pattern)
		if err != nil || len(m) == 0 {
			t.Fatalf("no documentation matches %s (%v)", pattern, err)
		}
		files = append(files, m...)
	}
	return files
}

// docFlag is one flag named by the documentation.
type docFlag struct {
	name  string
	where string // file:line
}

var (
	// A flag token: -name or --name, optionally =value.
	flagToken = regexp.MustCompile(`^--?([a-z][a-z0-9-]*[a-z0-9])(?:=.*)?$`)
	codeSpan  = regexp.MustCompile("`([^`]+)`")
	// Where one shell command ends and the next may start.
	shellSeparator = regexp.MustCompile(`\|\||&&|[|;&]|\$\(|\x60|(?:^|\s)#`)
)

// documentedFlags returns every flag README.md and docs/*.md name in a
// flag-like place:
//   - a code span that starts with a flag (`-addr`, `-max-pending 4096`,
//     `-nats URL -node TAG`): every flag in it;
//   - a gateway command line, in a code span or a fenced code block
//     (`chatgate -nats … -node gw1`, `go run ./cmd/gateway -auth-required`,
//     `bench/out/bin/gateway -addr …`): the flags after the command;
//   - the first cell of a table row (a flag table): every flag in it.
func documentedFlags(t *testing.T) []docFlag {
	t.Helper()
	var found []docFlag
	for _, file := range docFiles(t) {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(filepath.ToSlash(file), "../../")
		add := func(line int, names []string) {
			for _, n := range names {
				found = append(found, docFlag{n, fmt.Sprintf("%s:%d", rel, line)})
			}
		}
		fenced := false
		lines := strings.Split(string(text), "\n")
		for i := 0; i < len(lines); i++ {
			line, lineNo := lines[i], i+1
			trimmed := strings.TrimSpace(line)
			if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
				fenced = !fenced
				continue
			}
			if fenced {
				// A command may continue over several lines.
				for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
					i++
					line = strings.TrimSuffix(line, `\`) + " " + lines[i]
				}
				add(lineNo, gatewayCommandFlags(line))
				continue
			}
			for _, m := range codeSpan.FindAllStringSubmatch(line, -1) {
				span := strings.TrimSpace(m[1])
				if strings.HasPrefix(span, "-") {
					add(lineNo, flagsIn(strings.Fields(span)))
				} else {
					add(lineNo, gatewayCommandFlags(span))
				}
			}
			if strings.HasPrefix(trimmed, "|") {
				cells := strings.Split(trimmed, "|")
				if len(cells) > 2 {
					add(lineNo, flagsIn(strings.Fields(strings.ReplaceAll(cells[1], "`", " "))))
				}
			}
		}
	}
	return found
}

// flagsIn returns the flag names among words.
func flagsIn(words []string) []string {
	var names []string
	for _, w := range words {
		if m := flagToken.FindStringSubmatch(w); m != nil {
			names = append(names, m[1])
		}
	}
	return names
}

// gatewayCommandFlags returns the flags given to the gateway by the shell
// commands in line, if any of them runs the gateway.
func gatewayCommandFlags(line string) []string {
	var names []string
	for _, cmd := range shellSeparator.Split(line, -1) {
		words := strings.Fields(cmd)
		for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
			words = words[1:] // VAR=value before the command
		}
		if len(words) == 0 {
			continue
		}
		prog := strings.Trim(words[0], `"'`)
		switch {
		case prog == "go" && len(words) > 2 && words[1] == "run" && strings.TrimSuffix(words[2], "/") == "./cmd/gateway":
			names = append(names, flagsIn(words[3:])...)
		case filepath.Base(prog) == "gateway" || filepath.Base(prog) == "chatgate":
			names = append(names, flagsIn(words[1:])...)
		}
	}
	return names
}

// TestDocumentedFlagsExist fails for every flag the documentation names
// that `gateway -h` does not list.
func TestDocumentedFlagsExist(t *testing.T) {
	flags := gatewayFlags(t)
	docs := documentedFlags(t)
	if len(docs) < 20 {
		t.Fatalf("found only %d flag mentions in the documentation: is the extraction broken?", len(docs))
	}
	seen := map[string]bool{}
	for _, d := range docs {
		seen[d.name] = true
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("%d flag mentions in the documentation, %d flags: %s", len(docs), len(names), strings.Join(names, " "))
	var missing []string
	for _, d := range docs {
		if flags[d.name] || builtinFlags[d.name] {
			continue
		}
		if _, ok := notGatewayFlags[d.name]; ok {
			continue
		}
		missing = append(missing, fmt.Sprintf("%s: -%s", d.where, d.name))
	}
	if len(missing) > 0 {
		t.Errorf("the documentation names flags that gateway -h does not list (rename or remove them in the docs, or add a non-gateway flag to notGatewayFlags):\n\t%s",
			strings.Join(missing, "\n\t"))
	}
	for name, what := range notGatewayFlags {
		if flags[name] {
			t.Errorf("-%s is listed in notGatewayFlags (%s) but is a gateway flag", name, what)
		}
	}
}

// TestGatewayFlagsDocumented fails for every flag of `gateway -h` that
// README.md and docs/*.md never mention as -name.
func TestGatewayFlagsDocumented(t *testing.T) {
	flags := gatewayFlags(t)
	var all strings.Builder
	for _, file := range docFiles(t) {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(text)
		all.WriteByte('\n')
	}
	mentioned := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?:^|[^A-Za-z0-9_-])--?([a-z][a-z0-9-]*[a-z0-9])`).FindAllStringSubmatch(all.String(), -1) {
		mentioned[m[1]] = true
	}
	var undocumented []string
	for name := range flags {
		if !mentioned[name] {
			undocumented = append(undocumented, "-"+name)
		}
	}
	sort.Strings(undocumented)
	if len(undocumented) > 0 {
		t.Errorf("gateway flags not mentioned in README.md or docs/*.md (document them, e.g. in docs/deploy.md or docs/security.md): %s",
			strings.Join(undocumented, " "))
	}
}
