package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// flags is how every subcommand reads its settings: a flag.FlagSet whose
// flags may name environment variables. parse applies the first non-empty
// variable of each flag, then the command line, so a flag given wins over the
// environment, and a value that does not parse is refused naming the variable
// or the flag it came from. -h lists the variables beside the flags.
type flags struct {
	*flag.FlagSet
	cmd  string     // "serve", "audit verify"
	env  []envFlag  // in the order the flags were defined
	vars []envValue // variables that have no flag, listed by -h only
	out  io.Writer
}

// envFlag is a flag that takes its default from environment variables.
type envFlag struct {
	flag string
	vars []string
}

// envValue is a variable read without a flag (e.g. the console's secret).
type envValue struct {
	name, usage string
	dst         *string
}

func newFlags(cmd string, stderr io.Writer) *flags {
	f := &flags{FlagSet: flag.NewFlagSet(cmd, flag.ContinueOnError), cmd: cmd, out: stderr}
	f.SetOutput(stderr)
	f.Usage = f.usage
	return f
}

// bind records the variables of a flag and names them in its help: inside
// the help's closing parenthesis when it has one ("(env X; default: off)").
func (f *flags) bind(name string, vars []string) {
	if len(vars) == 0 {
		return
	}
	f.env = append(f.env, envFlag{flag: name, vars: vars})
	fl := f.Lookup(name)
	env := "env " + strings.Join(vars, " or ")
	if i := strings.LastIndex(fl.Usage, " ("); i >= 0 && strings.HasSuffix(fl.Usage, ")") {
		fl.Usage = fl.Usage[:i+2] + env + "; " + fl.Usage[i+2:]
	} else {
		fl.Usage += " (" + env + ")"
	}
}

// String defines a string flag whose default the first set variable of env replaces.
func (f *flags) String(p *string, name, def, usage string, env ...string) {
	f.StringVar(p, name, def, usage)
	f.bind(name, env)
}

// Bool defines a boolean flag; a variable is read as strconv.ParseBool reads it.
func (f *flags) Bool(p *bool, name string, def bool, usage string, env ...string) {
	f.BoolVar(p, name, def, usage)
	f.bind(name, env)
}

// Duration defines a time.Duration flag.
func (f *flags) Duration(p *time.Duration, name string, def time.Duration, usage string, env ...string) {
	f.DurationVar(p, name, def, usage)
	f.bind(name, env)
}

// Int defines an int flag.
func (f *flags) Int(p *int, name string, def int, usage string, env ...string) {
	f.IntVar(p, name, def, usage)
	f.bind(name, env)
}

// Float64 defines a float64 flag.
func (f *flags) Float64(p *float64, name string, def float64, usage string, env ...string) {
	f.Float64Var(p, name, def, usage)
	f.bind(name, env)
}

// Uint64 defines a uint64 flag.
func (f *flags) Uint64(p *uint64, name string, def uint64, usage string, env ...string) {
	f.Uint64Var(p, name, def, usage)
	f.bind(name, env)
}

// Value defines a flag of any flag.Value.
func (f *flags) Value(v flag.Value, name, usage string, env ...string) {
	f.Var(v, name, usage)
	f.bind(name, env)
}

// EnvOnly reads a variable that has no flag into p when parse runs.
func (f *flags) EnvOnly(p *string, name, usage string) {
	f.vars = append(f.vars, envValue{name: name, usage: usage, dst: p})
}

// parse applies the environment, then args. An error has been printed to the
// command's stderr already, as the flag package does; the command exits 2.
func (f *flags) parse(args []string) error {
	for _, e := range f.env {
		for _, v := range e.vars {
			val := os.Getenv(v)
			if val == "" {
				continue
			}
			if err := f.Set(e.flag, val); err != nil {
				err = fmt.Errorf("$%s (for --%s): invalid value %q: %w", v, e.flag, val, err)
				fmt.Fprintf(f.out, "medsettle %s: %v\n", f.cmd, err)
				return err
			}
			break
		}
	}
	for _, v := range f.vars {
		*v.dst = os.Getenv(v.name)
	}
	return f.Parse(args)
}

// usage is -h: the flags, then every variable the command reads.
func (f *flags) usage() {
	fmt.Fprintf(f.out, "Usage of %s:\n", f.cmd)
	f.PrintDefaults()
	if len(f.env) == 0 && len(f.vars) == 0 {
		return
	}
	fmt.Fprintln(f.out, "\nEnvironment (a flag on the command line wins over its variable):")
	tw := tabwriter.NewWriter(f.out, 0, 8, 2, ' ', 0)
	for _, e := range f.env {
		fmt.Fprintf(tw, "  %s\tdefault of --%s\n", strings.Join(e.vars, ", "), e.flag)
	}
	for _, v := range f.vars {
		fmt.Fprintf(tw, "  %s\t%s\n", v.name, v.usage)
	}
	_ = tw.Flush()
}

// usageError is a refusal of the command line: the command exits 2, not 1.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// badUsage makes a usage error of a message.
func badUsage(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// exitStatus ends a command with a status and nothing more to print: what
// went wrong has been printed already (price's refusal, audit's breaks).
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// exit turns what a command returned into its exit status, printing the
// error as "medsettle <command>: <error>".
func (f *flags) exit(err error) int {
	var status exitStatus
	switch {
	case err == nil:
		return 0
	case errors.As(err, &status):
		return int(status)
	}
	fmt.Fprintf(f.out, "medsettle %s: %v\n", f.cmd, err)
	if errors.As(err, new(usageError)) {
		return 2
	}
	return 1
}
