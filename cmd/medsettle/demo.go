package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/adapters/demo"
)

func init() {
	register("demo", "drive a scripted counter day through a running platform (medsettle dev)", runDemo)
}

func runDemo(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080", "the platform's address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	raw, err := medsettle.DevKeys()
	if err != nil {
		fmt.Fprintln(stderr, "medsettle demo:", err)
		return 1
	}
	r := csv.NewReader(bytes.NewReader(raw))
	r.Comment = '#'
	rows, err := r.ReadAll()
	if err != nil {
		fmt.Fprintln(stderr, "medsettle demo:", err)
		return 1
	}
	keys := demo.Keys{}
	for _, row := range rows {
		if len(row) == 2 && !strings.HasPrefix(row[0], "bureau:") {
			keys[row[0]] = row[1]
		}
	}
	d := &demo.Day{URL: *url, Keys: keys, Out: stdout}
	if err := d.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "medsettle demo:", err)
		return 1
	}
	return 0
}
