package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/medsettle/medsettle/rules"
)

func priceCommand(f *flags) func(context.Context, streams) error {
	var dataDir string
	f.String(&dataDir, "data", "", "rules directory (default: the embedded testdata rules)")
	return func(_ context.Context, s streams) error { return price(dataDir, s) }
}

// price answers a claim on stdin; a refusal is an answer too, and exits 2.
func price(dataDir string, s streams) error {
	rs, err := loadRules(dataDir)
	if err != nil {
		return err
	}
	stdin, stdout := s.stdin, s.stdout
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	req, err := rules.DecodeRequest(stdin)
	var res *rules.Result
	if err == nil {
		res, err = rs.Price(req.Claim())
	}
	if err != nil {
		_ = enc.Encode(rules.NewErrorAnswer(err))
		return exitStatus(2)
	}
	return (enc.Encode(rules.Answer{Setlinfo: res.Setlinfo, Lines: res.Lines, After: res.After}))
}

func rulesCheckCommand(f *flags) func(context.Context, streams) error {
	return func(_ context.Context, s streams) error { return rulesCheck(f.Arg(0), s.stdout, s.stderr) }
}

// rulesCheck prints what the rules of dir hold, or every problem they have.
func rulesCheck(dir string, stdout, stderr io.Writer) error {
	rs, err := loadRules(dir)
	var le *rules.LoadError
	if errors.As(err, &le) {
		for _, p := range le.Problems {
			fmt.Fprintln(stderr, p)
		}
		fmt.Fprintf(stderr, "%d problem(s): rules refused\n", len(le.Problems))
		return exitStatus(1)
	}
	if err != nil {
		return err
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
	return nil
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
