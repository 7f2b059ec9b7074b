// Command chart renders the results file of the load tool into SVG charts
// and markdown tables:
//
//	chart -in results.jsonl -dir docs/bench -md tables.md
//
// Charts: fanout-p50.svg and fanout-p99.svg (latency against room size, fixed-rate
// runs), fanout-throughput.svg (best ramp deliveries/s against room size),
// fanout-efficiency.svg (deliveries per server CPU-second) and
// idle-memory.svg (server KiB per idle connection), each with one series
// per server label. A chart without data is skipped.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/chatgate/chatgate/bench/chart"
	"github.com/chatgate/chatgate/bench/load"
)

func main() {
	in := flag.String("in", "results.jsonl", "results file written by load -out")
	dir := flag.String("dir", ".", "directory for the SVG charts")
	md := flag.String("md", "", `write markdown tables to this file ("-": stdout)`)
	flag.Parse()

	f, err := os.Open(*in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
	rs, err := load.ReadJSONL(f)
	f.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
	names, err := chart.WriteAll(rs, *dir)
	for _, n := range names {
		fmt.Fprintln(os.Stderr, "chart: wrote", n)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	switch *md {
	case "":
	case "-":
		chart.WriteMarkdown(os.Stdout, rs)
	default:
		out, err := os.Create(*md)
		if err != nil {
			fmt.Fprintln(os.Stderr, "chart:", err)
			os.Exit(1)
		}
		chart.WriteMarkdown(out, rs)
		if err := out.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "chart:", err)
			os.Exit(1)
		}
	}
}
