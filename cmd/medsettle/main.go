// Command medsettle is the settlement engine's one binary. Each subcommand
// wires packages together; the work is done in rules, settlement and adapters.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// streams are the standard streams a command runs with.
type streams struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// command is one subcommand. define registers its flags on f (each naming its
// environment variables) and returns what runs once they are parsed; dispatch
// does the parsing and turns the returned error into the exit status.
type command struct {
	summary string
	define  func(f *flags) func(ctx context.Context, s streams) error
}

// commands are every subcommand; two-word ones ("rules check", "audit
// verify") are named with their space.
var commands = map[string]command{
	"serve":        {"serve the counter interface (production: --dsn, --keys, TLS)", serveCommand},
	"keys hash":    {"print the sha256: form of a key read on stdin, for a production keys file", keysHashCommand},
	"hub":          {"run the national hub between province platforms over HTTP (--peer province=URL, --tokens or --dev-tokens)", hubCommand},
	"clear":        {"run the monthly clearing between provinces for a period, on Temporal", clearCommand},
	"dev":          {"run three provinces, the hub and Temporal on this machine: a throwaway PostgreSQL, seeded, dev keys, :8080", devCommand},
	"relay":        {"publish settlement events to Kafka and settle the manual claims it sends (--dsn, --kafka-brokers)", relayCommand},
	"migrate":      {"apply the database schema (and seed the registry with --seed)", migrateCommand},
	"audit verify": {"recompute hash chains, balances, settlement amounts and counters", auditVerifyCommand},
	"report":       {"write a bureau's monthly statement: --period YYYY-MM --region ADMDVS --out DIR (statement.csv, statement.html)", reportCommand},
	"price":        {"price one claim read on stdin (the offline format of docs/pricing.md)", priceCommand},
	"rules check":  {"validate a rules directory and print what it holds", rulesCheckCommand},
	"demo":         {"drive a scripted counter day through a running platform (medsettle dev)", demoCommand},
	"load":         {"drive a running server with concurrent counters and report throughput and latency", loadCommand},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		return 2
	}
	name, rest := args[0], args[1:]
	if len(rest) > 0 {
		if _, ok := commands[name+" "+rest[0]]; ok {
			name, rest = name+" "+rest[0], rest[1:]
		}
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "medsettle: unknown command %q\n\n", name)
		usage(stderr)
		return 2
	}
	f := newFlags(name, stderr)
	run := cmd.define(f)
	if err := f.parse(rest); err != nil {
		return 2
	}
	return f.exit(run(ctx, streams{stdin: stdin, stdout: stdout, stderr: stderr}))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: medsettle <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'medsettle <command> -h' for a command's flags.")
}
