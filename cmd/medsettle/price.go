package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/medsettle/medsettle/rules"
)

func init() {
	register("price", "price one claim read on stdin (PRICING.md format)", runPrice)
	register("rules check", "validate a rules directory and print what it holds", runRulesCheck)
}

func runPrice(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	f := newFlags("price", stderr)
	var dataDir string
	f.String(&dataDir, "data", "", "rules directory (default: the embedded testdata rules)")
	if err := f.parse(args); err != nil {
		return 2
	}
	rs, err := loadRules(dataDir)
	if err != nil {
		return f.exit(err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	req, err := rules.DecodeRequest(stdin)
	var res *rules.Result
	if err == nil {
		res, err = rs.Price(req.Claim())
	}
	if err != nil {
		_ = enc.Encode(rules.NewErrorAnswer(err))
		return 2
	}
	return f.exit(enc.Encode(rules.Answer{Setlinfo: res.Setlinfo, Lines: res.Lines, After: res.After}))
}

func runRulesCheck(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	f := newFlags("rules check", stderr)
	if err := f.parse(args); err != nil {
		return 2
	}
	dir := f.Arg(0)
	rs, err := loadRules(dir)
	if err != nil {
		if le, ok := err.(*rules.LoadError); ok {
			for _, p := range le.Problems {
				fmt.Fprintln(stderr, p)
			}
			fmt.Fprintf(stderr, "%d problem(s): rules refused\n", len(le.Problems))
			return 1
		}
		return f.exit(err)
	}
	if dir == "" {
		dir = "(embedded)"
	}
	fmt.Fprintf(stdout, "rules %s: OK\n\nregions:\n", dir)
	for _, code := range sortedKeys(rs.Regions) {
		r := rs.Regions[code]
		fmt.Fprintf(stdout, "  %s %s (%s), province %s, %d version(s):", r.Admdvs, r.Name, r.NameEn, r.Province, len(r.Versions))
		for _, v := range r.Versions {
			fmt.Fprintf(stdout, " %s[%s]", v.EffectiveFrom, joinKeys(v.Insutypes))
		}
		fmt.Fprintln(stdout)
	}
	fmt.Fprintln(stdout, "catalogs:")
	for _, p := range sortedKeys(rs.Catalogs) {
		fmt.Fprintf(stdout, "  %s: %d rows\n", p, rs.Catalogs[p].Len())
	}
	fmt.Fprintf(stdout, "institutions: %d\n", len(rs.Institutions))
	for _, code := range sortedKeys(rs.Institutions) {
		in := rs.Institutions[code]
		fmt.Fprintf(stdout, "  %s %-8s level %d region %s %s\n", in.Code, in.Kind, in.Level, in.Admdvs, in.Name)
	}
	return 0
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func joinKeys[V any](m map[string]V) string {
	s := ""
	for i, k := range sortedKeys(m) {
		if i > 0 {
			s += ","
		}
		s += k
	}
	return s
}
